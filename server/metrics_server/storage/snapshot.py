"""The read side of storage: usage computed for one published cycle.

The API layer reads only these types. A snapshot is immutable once published, so a request sees
one cycle's data from start to end.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import NamedTuple, Protocol

from metrics_server.scrape.batch import PodKey


class NodeUsage(NamedTuple):
    timestamp_ns: int
    """Sample time of the newer point."""
    window_ns: int
    """Time between the two points the rate was computed from."""
    cpu_nanocores: int
    memory_bytes: int
    swap_bytes: int | None = None


class ContainerUsage(NamedTuple):
    name: str
    cpu_nanocores: int
    memory_bytes: int
    swap_bytes: int | None = None


class PodUsage(NamedTuple):
    timestamp_ns: int
    window_ns: int
    containers: tuple[ContainerUsage, ...]
    """Every container of the pod, sorted by name; never a subset."""


class Snapshot(Protocol):
    """One cycle's servable usage."""

    def node(self, name: str) -> NodeUsage | None: ...

    def pod(self, namespace: str, name: str) -> PodUsage | None: ...


class DictSnapshot:
    """A `Snapshot` over two plain mappings (what `Storage` publishes; also handy as a test fake).

    The mappings are exposed read-only by type; whoever builds a `DictSnapshot` must not mutate
    them afterwards, since readers may hold it for the whole of a request.
    """

    __slots__ = ("nodes", "pods")

    nodes: Mapping[str, NodeUsage]
    """Node name -> usage, for every servable node of the cycle."""
    pods: Mapping[PodKey, PodUsage]
    """(namespace, pod name) -> usage, for every servable pod of the cycle."""

    def __init__(
        self,
        nodes: Mapping[str, NodeUsage] | None = None,
        pods: Mapping[PodKey, PodUsage] | None = None,
    ) -> None:
        self.nodes = {} if nodes is None else nodes
        self.pods = {} if pods is None else pods

    def node(self, name: str) -> NodeUsage | None:
        return self.nodes.get(name)

    def pod(self, namespace: str, name: str) -> PodUsage | None:
        return self.pods.get((namespace, name))
