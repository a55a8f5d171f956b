"""The slices of Node and Pod objects the server keeps, and the read interface of their caches.

Only what is served or needed to scrape is kept (see the informer); everything else in the
kube-apiserver's objects is dropped at decode time.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import NamedTuple, Protocol


class NodeAddress(NamedTuple):
    """One entry of `status.addresses`: type (InternalIP, ExternalIP, Hostname, ...) and address."""

    type: str
    address: str


@dataclass(frozen=True, slots=True)
class NodeInfo:
    name: str
    uid: str
    labels: Mapping[str, str]
    addresses: tuple[NodeAddress, ...]
    kubelet_port: int
    """`status.daemonEndpoints.kubeletEndpoint.port`; 0 when the node does not report it."""
    metrics_path: str | None
    """The `metrics.k8s.io/resource-metrics-path` annotation, None when absent or empty."""
    ready: bool
    """The node's Ready condition is True."""


@dataclass(frozen=True, slots=True)
class PodInfo:
    namespace: str
    name: str
    uid: str
    labels: Mapping[str, str]
    node_name: str
    """`spec.nodeName`; empty when not known (metadata-only lists do not carry it)."""


class NodeLister(Protocol):
    """Read access to the node cache. Never blocks; returns what the cache holds now."""

    def get(self, name: str) -> NodeInfo | None: ...

    def list(self) -> Iterable[NodeInfo]: ...


class PodLister(Protocol):
    """Read access to the running-pod cache. Never blocks; returns what the cache holds now."""

    def get(self, namespace: str, name: str) -> PodInfo | None: ...

    def list(self, namespace: str | None = None) -> Iterable[PodInfo]:
        """All running pods, or those of one namespace."""
        ...
