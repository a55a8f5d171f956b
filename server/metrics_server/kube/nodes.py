"""The node cache: `NodeInfo` slices of full Node objects, keyed by name.

Full objects are needed (addresses, kubelet port, Ready condition live in `status`); everything
else, notably `status.images` which dominates a Node's size, is dropped at decode time.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

from metrics_server.kube.interning import LabelInterner
from metrics_server.kube.objects import NodeAddress, NodeInfo

METRICS_PATH_ANNOTATION = "metrics.k8s.io/resource-metrics-path"


def decode_node(obj: Mapping[str, Any], interner: LabelInterner) -> NodeInfo:
    """Extract a `NodeInfo`; raise KeyError/TypeError/ValueError when the object is malformed."""
    meta = obj["metadata"]
    status = obj.get("status") or {}
    name = meta["name"]
    if not isinstance(name, str) or not name:
        raise ValueError("node without metadata.name")
    addresses = tuple(
        NodeAddress(sys.intern(str(a["type"])), str(a["address"])) for a in status.get("addresses") or ()
    )
    endpoint = (status.get("daemonEndpoints") or {}).get("kubeletEndpoint") or {}
    # Go's DaemonEndpoint has no json tag on Port, so the key is capitalised.
    port = endpoint.get("Port") or 0
    if not isinstance(port, int):
        raise TypeError("kubeletEndpoint.Port is not an integer")
    annotations = meta.get("annotations") or {}
    metrics_path = annotations.get(METRICS_PATH_ANNOTATION) or None
    ready = any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or ()
    )
    return NodeInfo(
        name=sys.intern(name),
        uid=str(meta.get("uid") or ""),
        labels=interner.labels(meta.get("labels")),
        addresses=addresses,
        kubelet_port=port,
        metrics_path=str(metrics_path) if metrics_path else None,
        ready=ready,
    )


class _NodeReplacement:
    def __init__(self, cache: NodeCache) -> None:
        self._cache = cache
        self._nodes: dict[str, NodeInfo] = {}

    def add(self, obj: Mapping[str, Any]) -> None:
        node = decode_node(obj, self._cache._interner)
        old = self._cache._nodes.get(node.name)
        # As for pods: an unchanged node keeps its object (no second copy while relisting).
        self._nodes[node.name] = old if old is not None and old == node else node

    def commit(self) -> None:
        self._cache._nodes = self._nodes
        self._cache._prune_labels()


class NodeCache:
    """Implements `NodeLister` (reads) and the informer `Store` (writes). Reads never block."""

    def __init__(self) -> None:
        self._interner = LabelInterner()
        self._nodes: dict[str, NodeInfo] = {}

    # NodeLister
    def get(self, name: str) -> NodeInfo | None:
        return self._nodes.get(name)

    def list(self) -> tuple[NodeInfo, ...]:
        """A snapshot: later cache updates do not affect it."""
        return tuple(self._nodes.values())

    def __len__(self) -> int:
        return len(self._nodes)

    # Store
    def begin_replace(self) -> _NodeReplacement:
        return _NodeReplacement(self)

    def upsert(self, obj: Mapping[str, Any]) -> None:
        node = decode_node(obj, self._interner)
        if self._nodes.get(node.name) == node:
            return  # a heartbeat: nothing kept changed, readers keep the same object
        self._nodes[node.name] = node
        if self._interner.should_prune():
            self._prune_labels()

    def _prune_labels(self) -> None:
        self._interner.retain(n.labels for n in self._nodes.values())

    def delete(self, obj: Mapping[str, Any]) -> None:
        self._nodes.pop(obj["metadata"]["name"], None)
