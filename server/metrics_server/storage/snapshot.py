"""The read side of storage: usage computed for one published cycle.

The API layer reads only these types. A snapshot is immutable once published, so a request sees
one cycle's data from start to end.

Pod usages are plain tuples (`PodUsageTuple` of `ContainerUsageTuple`s), in the field order of
the `PodUsage` and `ContainerUsage` NamedTuples, which document the shape (and remain handy
constructors: a NamedTuple is a valid value and compares equal to the plain tuple). Readers index
them (`usage[2]` is the containers). Why: a snapshot holds ~150,000 pod and ~200,000 container
usages at 5000 x 30, and the API keeps two snapshots; CPython's cyclic collector untracks only
exact tuples whose items are all untracked, never a NamedTuple, so as NamedTuples those ~0.7M
objects were walked by every gen1/gen2 collection for as long as they lived
(`bench/micro/storage_gc.py`).
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
    """The shape of a `ContainerUsageTuple` (what storage publishes is the plain tuple)."""

    name: str
    cpu_nanocores: int
    memory_bytes: int
    swap_bytes: int | None = None


class PodUsage(NamedTuple):
    """The shape of a `PodUsageTuple` (what storage publishes is the plain tuple)."""

    timestamp_ns: int
    window_ns: int
    containers: tuple[ContainerUsage, ...]
    """Every container of the pod, sorted by name; never a subset."""


ContainerUsageTuple = tuple[str, int, int, int | None]
"""A container's usage: (name, cpu_nanocores, memory_bytes, swap_bytes), as `ContainerUsage`."""
PodUsageTuple = tuple[int, int, tuple[ContainerUsageTuple, ...]]
"""A pod's usage: (timestamp_ns, window_ns, containers), as `PodUsage`; containers sorted by name,
never a subset."""


class Snapshot(Protocol):
    """One cycle's servable usage."""

    def node(self, name: str) -> NodeUsage | None: ...

    def pod(self, namespace: str, name: str) -> PodUsageTuple | None: ...


class DictSnapshot:
    """A `Snapshot` over two plain mappings (what `Storage` publishes; also handy as a test fake).

    The mappings are exposed read-only by type; whoever builds a `DictSnapshot` must not mutate
    them afterwards, since readers may hold it for the whole of a request.
    """

    __slots__ = ("nodes", "pods")

    nodes: Mapping[str, NodeUsage]
    """Node name -> usage, for every servable node of the cycle."""
    pods: Mapping[PodKey, PodUsageTuple]
    """(namespace, pod name) -> usage, for every servable pod of the cycle."""

    def __init__(
        self,
        nodes: Mapping[str, NodeUsage] | None = None,
        pods: Mapping[PodKey, PodUsageTuple] | None = None,
    ) -> None:
        self.nodes = {} if nodes is None else nodes
        self.pods = {} if pods is None else pods

    def node(self, name: str) -> NodeUsage | None:
        return self.nodes.get(name)

    def pod(self, namespace: str, name: str) -> PodUsageTuple | None:
        return self.pods.get((namespace, name))
