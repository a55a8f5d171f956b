"""kube-apiserver access: connection, list+watch caches, authentication settings, reviews.

- `connection`: `load_connection` (kubeconfig or in-cluster) and `make_api_client` (one httpx client).
- `informer`: the generic list+watch loop (`Informer`, `InformerConfig`, `ResourceSpec`).
- `caches`: `KubeCaches`, the node cache (`nodes.NodeCache`, a `NodeLister`) and the running-pod
  cache (`pods.PodCache`, a `PodLister`), with their sync state for the health checks.
- `authconfig`: `AuthenticationConfigSource` (client CA and request-header settings, kept current).
- `reviews`: `TokenReviewer` and `AccessReviewer` with TTL caches.
- `objects`: the shared NodeInfo/PodInfo types and lister protocols.
"""
