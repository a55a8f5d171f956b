"""One small cluster as metrics-server and kube-apiserver serve it on the wire, shared by test_usage.py,
test_top.py and test_examples.py.

``serve_cluster(server)`` installs every route on a ``FakeApiServer`` (conftest): discovery (``/api``,
``/apis``) as real kubectl needs it, the Metrics API lists and objects, and the core ``/api/v1`` nodes and
pods (allocatable for ``top node``, pod specs and status for the autoscaler example).

The values are chosen to exercise the formatting rules: ``137491625n`` rounds up to ``138m``, ``1n`` to
``1m``, ``1612836Ki`` floors to ``1575Mi``; a pod with no containers (every container skipped), a node
with metrics but no Node object (``node-ghost``: its row has no % cells) and a Node without metrics
(``node-d``: ``<unknown>`` cells). Only one node lacks metrics, because kubectl prints those in Go map
order, which is random.
"""

from __future__ import annotations

import copy
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from conftest import FakeApiServer

V1BETA1 = "/apis/metrics.k8s.io/v1beta1"
CREATED = "2026-04-25T17:20:57Z"  # metrics-server's creationTimestamp: the time of the response
OLD = "2021-10-03T09:37:01Z"

API_VERSIONS = {
    "kind": "APIVersions",
    "versions": ["v1"],
    "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": "127.0.0.21:6443"}],
}
_GV = {"groupVersion": "metrics.k8s.io/v1beta1", "version": "v1beta1"}
API_GROUP_LIST = {
    "kind": "APIGroupList",
    "apiVersion": "v1",
    "groups": [{"name": "metrics.k8s.io", "versions": [_GV], "preferredVersion": _GV}],
}


API_RESOURCE_LIST = {
    "kind": "APIResourceList",
    "apiVersion": "v1",
    "groupVersion": "metrics.k8s.io/v1beta1",
    "resources": [
        {
            "name": "nodes",
            "singularName": "",
            "namespaced": False,
            "kind": "NodeMetrics",
            "verbs": ["get", "list"],
        },
        {
            "name": "pods",
            "singularName": "",
            "namespaced": True,
            "kind": "PodMetrics",
            "verbs": ["get", "list"],
        },
    ],
}


def _node_metrics(name: str, cpu: str, memory: str, ts: str, window: str, **labels: str) -> dict[str, Any]:
    metadata: dict[str, Any] = {"name": name, "creationTimestamp": CREATED}
    if labels:
        metadata["labels"] = dict(labels)
    return {"metadata": metadata, "timestamp": ts, "window": window, "usage": {"cpu": cpu, "memory": memory}}


NODE_METRICS = [
    _node_metrics("node-a", "137491625n", "1612836Ki", "2026-04-25T17:20:42Z", "15.012s", pool="blue"),
    _node_metrics("node-b", "1500m", "2048Mi", "2026-04-25T17:20:44Z", "1m0.729s", pool="blue"),
    _node_metrics("node-c", "1n", "1000000", "2026-04-25T17:20:45Z", "10s", pool="green"),
    _node_metrics("node-ghost", "1", "512Mi", "2026-04-25T17:20:46Z", "15s"),
]
NODE_METRICS_LIST = {
    "kind": "NodeMetricsList",
    "apiVersion": "metrics.k8s.io/v1beta1",
    "metadata": {},
    "items": NODE_METRICS,
}
BLUE_NODE_METRICS_LIST = {**NODE_METRICS_LIST, "items": NODE_METRICS[:2]}


def _node(name: str, cpu: str, memory: str, capacity_cpu: str, capacity_memory: str) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "creationTimestamp": OLD},
        "spec": {},
        "status": {
            "capacity": {"cpu": capacity_cpu, "memory": capacity_memory, "pods": "110"},
            "allocatable": {"cpu": cpu, "memory": memory, "pods": "110"},
        },
    }


NODES = [
    _node("node-a", "3800m", "8049336Ki", "4", "8151736Ki"),
    _node("node-b", "4", "16Gi", "4", "16Gi"),
    _node("node-c", "2", "4Gi", "2", "4Gi"),
    _node("node-d", "8", "32Gi", "8", "32Gi"),
]
NODE_LIST = {"kind": "NodeList", "apiVersion": "v1", "metadata": {"resourceVersion": "4242"}, "items": NODES}
BLUE_NODE_LIST = {**NODE_LIST, "items": NODES[:2]}


def _pod_metrics(
    namespace: str, name: str, containers: list[tuple[str, str, str]], ts: str = "2026-04-25T17:20:40Z"
) -> dict[str, Any]:
    return {
        "metadata": {"name": name, "namespace": namespace, "creationTimestamp": CREATED, "labels": {}},
        "timestamp": ts,
        "window": "15.004s",
        "containers": [{"name": c, "usage": {"cpu": cpu, "memory": mem}} for c, cpu, mem in containers],
    }


POD_METRICS = [
    _pod_metrics("default", "web-0", [("nginx", "12m", "5Mi"), ("log-shipper", "0", "1000000")]),
    _pod_metrics("default", "web-1", [("nginx", "250m", "64Mi"), ("log-shipper", "1n", "4Ki")]),
    _pod_metrics("jobs", "batch-7", []),
    _pod_metrics("kube-system", "coredns-558bd4d5db-4dpjz", [("coredns", "2460574n", "12240Ki")]),
    _pod_metrics(
        "monitoring",
        "prometheus-k8s-0",
        [("prometheus", "1200m", "1536Mi"), ("config-reloader", "3m", "20Mi"), ("a-sidecar", "500u", "1Gi")],
    ),
]
for _item in POD_METRICS:  # metrics-server copies the pod's labels; none here except app=web
    _item["metadata"]["labels"] = {"app": "web"} if _item["metadata"]["name"].startswith("web-") else {}
    if not _item["metadata"]["labels"]:
        del _item["metadata"]["labels"]


def pod_metrics_list(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"kind": "PodMetricsList", "apiVersion": "metrics.k8s.io/v1beta1", "metadata": {}, "items": items}


def in_namespace(namespace: str) -> list[dict[str, Any]]:
    return [p for p in POD_METRICS if p["metadata"]["namespace"] == namespace]


# -- the autoscaler scenario: namespace "shop", pods app=web (core objects and metrics)

SHOP_START = "2021-10-03T09:37:01Z"


def shop_pod(
    name: str,
    *,
    phase: str = "Running",
    ready: bool = True,
    requests: tuple[str | None, ...] = ("250m",),
    deleting: bool = False,
) -> dict[str, Any]:
    """A core Pod as the apiserver serves it, with one container per request (None: no request)."""
    containers = []
    for i, request in enumerate(requests):
        resources: dict[str, Any] = (
            {} if request is None else {"requests": {"cpu": request, "memory": "64Mi"}}
        )
        containers.append({"name": f"c{i}", "image": "nginx", "resources": resources})
    metadata: dict[str, Any] = {
        "name": name,
        "namespace": "shop",
        "labels": {"app": "web"},
        "creationTimestamp": SHOP_START,
    }
    if deleting:
        metadata["deletionTimestamp"] = "2026-04-25T17:20:00Z"
    status: dict[str, Any] = {"phase": phase}
    if phase != "Pending":
        status["startTime"] = SHOP_START
        status["conditions"] = [
            {"type": "Ready", "status": "True" if ready else "False", "lastTransitionTime": SHOP_START}
        ]
    return {"metadata": metadata, "spec": {"containers": containers}, "status": status}


def shop_metrics(name: str, *cpus: str) -> dict[str, Any]:
    item = _pod_metrics("shop", name, [(f"c{i}", cpu, "60Mi") for i, cpu in enumerate(cpus)])
    item["metadata"]["labels"] = {"app": "web"}
    return item


# web-0: two containers, 30m + 20000001n (MilliValue 21m) = 51m; web-3: metrics without containers
# (missing, per the HPA); web-4 Failed and web-6 terminating (ignored); web-5 Pending (unready).
SHOP_PODS = [
    shop_pod("web-0", requests=("200m", "50m")),
    shop_pod("web-1"),
    shop_pod("web-2"),
    shop_pod("web-3"),
    shop_pod("web-4", phase="Failed", ready=False),
    shop_pod("web-5", phase="Pending"),
    shop_pod("web-6", deleting=True),
]
SHOP_METRICS = [
    shop_metrics("web-0", "30m", "20000001n"),
    shop_metrics("web-1", "60m"),
    shop_metrics("web-2", "70m"),
    {**shop_metrics("web-3"), "containers": []},
    shop_metrics("web-6", "900m"),
]
POD_LIST_KIND = {"kind": "PodList", "apiVersion": "v1", "metadata": {"resourceVersion": "4243"}}


def serve_cluster(server: FakeApiServer) -> None:
    """Install every route of this cluster on ``server``."""
    server.reply_json("/api", 200, API_VERSIONS)
    server.reply_json("/apis", 200, API_GROUP_LIST)
    server.reply_json(V1BETA1, 200, API_RESOURCE_LIST)
    server.reply_json(f"{V1BETA1}/nodes", 200, NODE_METRICS_LIST)
    server.reply_json(f"{V1BETA1}/nodes?labelSelector=pool%3Dblue", 200, BLUE_NODE_METRICS_LIST)
    for item in NODE_METRICS:
        name = item["metadata"]["name"]
        document = {"kind": "NodeMetrics", "apiVersion": "metrics.k8s.io/v1beta1", **item}
        server.reply_json(f"{V1BETA1}/nodes/{name}", 200, document)
    server.reply_json("/api/v1/nodes", 200, NODE_LIST)
    server.reply_json("/api/v1/nodes?labelSelector=pool%3Dblue", 200, BLUE_NODE_LIST)
    for node in NODES:
        document = {"kind": "Node", "apiVersion": "v1", **node}
        server.reply_json(f"/api/v1/nodes/{node['metadata']['name']}", 200, document)
    server.reply_json(f"{V1BETA1}/pods", 200, pod_metrics_list(POD_METRICS))
    for namespace in ("default", "jobs", "kube-system", "monitoring"):
        server.reply_json(
            f"{V1BETA1}/namespaces/{namespace}/pods", 200, pod_metrics_list(in_namespace(namespace))
        )
    for item in POD_METRICS:
        namespace, name = item["metadata"]["namespace"], item["metadata"]["name"]
        document = {"kind": "PodMetrics", "apiVersion": "metrics.k8s.io/v1beta1", **item}
        server.reply_json(f"{V1BETA1}/namespaces/{namespace}/pods/{name}", 200, document)
    server.reply_json(
        f"{V1BETA1}/namespaces/shop/pods?labelSelector=app%3Dweb", 200, pod_metrics_list(SHOP_METRICS)
    )
    server.reply_json(
        "/api/v1/namespaces/shop/pods?labelSelector=app%3Dweb", 200, {**POD_LIST_KIND, "items": SHOP_PODS}
    )


def deep(document: dict[str, Any]) -> dict[str, Any]:
    """A copy a test may change without touching the shared documents."""
    return copy.deepcopy(document)


# -- the simulated cluster (sim/kubesim): its apiserver, aggregator and Nodes, with a metrics backend


def sim_metrics(cluster: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """Made-up NodeMetricsList and PodMetricsList for every node and pod of a ``kubesim.SimCluster``:
    node i uses (i+1) × 250m and (i+1) GiB; container j of pod k uses (k+1) × 7m + j × 1001n and
    (k+1) × 9Mi + j × 4Ki."""
    nodes = [
        _node_metrics(name, f"{(i + 1) * 250}m", f"{i + 1}Gi", "2026-04-25T17:20:42Z", "15s")
        for i, name in enumerate(cluster.node_names())
    ]
    pods = [
        _pod_metrics(
            pod.namespace,
            pod.name,
            [
                (c.name, f"{(k + 1) * 7_000_000 + j * 1001}n", f"{((k + 1) * 9 * 1024) + j * 4}Ki")
                for j, c in enumerate(pod.containers)
            ],
        )
        for k, pod in enumerate(sorted(cluster.pods(), key=lambda p: (p.namespace, p.name)))
    ]
    node_list = {**NODE_METRICS_LIST, "items": nodes}
    return node_list, pod_metrics_list(pods)
