"""kube-apiserver access: connection, list+watch caches, REST helpers.

- `connection`: `load_connection` (kubeconfig or in-cluster) and `make_api_client` (one httpx client).
- `informer`: the generic list+watch loop (`Informer`, `InformerConfig`, `ResourceSpec`).
- `caches`: `KubeCaches`, the node cache (`nodes.NodeCache`, a `NodeLister`) and the running-pod
  cache (`pods.PodCache`, a `PodLister`), with their sync state for the health checks.
- `objects`: the shared NodeInfo/PodInfo types and lister protocols.

The authentication settings and the Token/SubjectAccess reviews, which also talk to the
apiserver, are auth's (`auth.authconfig`, `auth.reviews`): they use `informer` and `rest` from here.
"""
