"""Measure the running-pod cache's memory at scale with realistic labels (tracemalloc).

Run:  python tests/server/kube/podcache_memory.py [PODS]      (default 150000)

The pods are generated as list pages of JSON bytes (500 pods a page, as the informer lists them)
and decoded with orjson, so every string is a fresh object as in production; only what the cache
keeps after the raw pages are gone is counted. The mix models 5000 nodes x 30 pods: DaemonSet pods
(identical labels per revision), Deployment replicas (3 per ReplicaSet, labels shared), StatefulSet
pods (a unique pod-name label each) and Job pods (unique controller-uid labels).
"""

from __future__ import annotations

import gc
import sys
import tracemalloc
from collections.abc import Iterator
from typing import Any

import orjson

from metrics_server.kube.pods import PodCache

PAGE = 500


def _pod(i: int, ns: str, name: str, node: str, labels: dict[str, str]) -> dict[str, Any]:
    return {
        "metadata": {
            "name": name,
            "namespace": ns,
            "uid": f"{i:08x}-7d3c-4a6b-9f0e-{i * 7919 % 16**12:012x}",
            "resourceVersion": str(1000000 + i),
            "labels": labels,
            "annotations": {"kubectl.kubernetes.io/restartedAt": "2026-11-27T10:00:00Z"},
        },
        "spec": {"nodeName": node, "containers": [{"name": "main", "image": f"registry.example/{name}:1.0"}]},
        "status": {"phase": "Running", "podIP": f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}"},
    }


def realistic_pods(total: int, nodes: int = 5000, namespaces: int = 500) -> Iterator[dict[str, Any]]:
    """Deterministic pods; about 1/6 DaemonSet, 1/15 StatefulSet, 1/30 Job, the rest Deployments."""
    daemonsets = ("kube-proxy", "node-exporter", "fluent-bit", "calico-node", "csi-node")
    i = 0
    node_names = [f"ip-10-{n >> 8 & 255}-{n & 255}-17.eu-west-1.compute.internal" for n in range(nodes)]
    # DaemonSets: one pod per node each, identical labels within a DaemonSet.
    for ds in daemonsets:
        for node in node_names:
            if i >= total // 6:
                break
            labels = {"k8s-app": ds, "controller-revision-hash": "6f9c8b7d5", "pod-template-generation": "3"}
            yield _pod(i, "kube-system", f"{ds}-{i:05x}", node, labels)
            i += 1
    sts = 0
    while i < total:
        ns = f"team-{i % namespaces:03d}"
        node = node_names[i * 7 % nodes]
        kind = i % 30
        if kind < 2:  # StatefulSet: the pod-name label is unique
            sts += 1
            name = f"db-{sts // 3}-{sts % 3}"
            labels = {
                "app.kubernetes.io/name": "postgres",
                "app.kubernetes.io/instance": f"db-{sts // 3}",
                "controller-revision-hash": f"db-{sts // 3}-7c9d8f6b5",
                "statefulset.kubernetes.io/pod-name": name,
                "apps.kubernetes.io/pod-index": str(sts % 3),
            }
            yield _pod(i, ns, name, node, labels)
            i += 1
        elif kind == 2:  # Job: unique controller uid
            uid = f"{i:08x}-0000-4000-8000-000000000000"
            labels = {
                "batch.kubernetes.io/controller-uid": uid,
                "batch.kubernetes.io/job-name": f"report-{i}",
                "controller-uid": uid,
                "job-name": f"report-{i}",
            }
            yield _pod(i, ns, f"report-{i}-x7k2p", node, labels)
            i += 1
        else:  # Deployment: 3 replicas share one ReplicaSet's labels
            app = f"svc-{i // 3}"
            labels = {
                "app": app,
                "app.kubernetes.io/name": app,
                "app.kubernetes.io/part-of": f"product-{i % 40}",
                "pod-template-hash": f"{i // 3 * 2654435761 % 16**10:010x}",
            }
            for r in range(3):
                if i >= total:
                    break
                yield _pod(
                    i, ns, f"{app}-{labels['pod-template-hash']}-r{r}", node_names[(i + r) % nodes], labels
                )
                i += 1


def page_bytes(total: int) -> Iterator[bytes]:
    page: list[dict[str, Any]] = []
    for pod in realistic_pods(total):
        page.append(pod)
        if len(page) == PAGE:
            yield orjson.dumps({"items": page})
            page = []
    if page:
        yield orjson.dumps({"items": page})


def measure(total: int) -> tuple[PodCache, int, int, int]:
    """Returns (cache, retained bytes, peak bytes, distinct label sets)."""
    pages = list(page_bytes(total))  # the wire bytes exist before the cache; not counted
    gc.collect()
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    cache = PodCache()
    replacement = cache.begin_replace()
    for raw in pages:
        for obj in orjson.loads(raw)["items"]:
            replacement.add(obj)
    replacement.commit()
    del replacement
    gc.collect()
    current, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return cache, current - base, peak - base, len(cache._interner)


def main() -> None:
    total = int(sys.argv[1]) if len(sys.argv) > 1 else 150_000
    cache, retained, peak, label_sets = measure(total)
    assert len(cache) == total
    print(f"pods: {len(cache)}  namespaces: {len(cache.namespaces())}  distinct label sets: {label_sets}")
    print(f"retained: {retained / 2**20:.1f} MiB ({retained / total:.0f} B/pod)", end="  ")
    print(f"peak while listing: {peak / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
