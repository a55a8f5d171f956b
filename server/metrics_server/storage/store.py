"""The two-point store: last and previous sample per node and per container, rates, atomic publish.

One scrape cycle is one `Storage.store()` call, or `Storage.begin()`, `Cycle.add()` per node
as its scrape finishes, then `Cycle.publish()` (or `Cycle.publish_steps()`, the same work in
bounded steps for an event loop to interleave). It computes every servable usage from the new
batches and the points kept from the previous cycle, builds a complete new `DictSnapshot`, then
publishes it by swapping one reference. `snapshot()` hands out that object; a reader keeps the
cycle it got for as long as it holds it, whatever later cycles do. The replaced cycle's points,
and the usages of snapshots that readers have dropped, are freed in steps after the swap.

The rates and the rules that pair points are `storage.rates`; building one cycle is
`storage.cycle`.

Improvements on metrics-server (reference §12):

* a node in ``failed_nodes`` keeps its points and usages (node and pods, true timestamps and
  windows) until they are older than ``staleness_ns`` (sample timestamp to ``now_ns``);
* a pod is served only with every container of its latest batch, never a subset;
* swap is carried through to ``NodeUsage.swap_bytes`` / ``ContainerUsage.swap_bytes``.

Cost: ~1.6 us of CPU per container and cycle with the collector off (``python -m
bench.micro.storage_store 2000 30 2``). The event-loop steps of an incremental cycle:
``python -m bench.micro.storage_cycle``; memory and collector costs: ``bench.micro.storage_memory``,
``bench.micro.storage_gc``. Figures and their history (rounds 1-3: plain tuples of rows per pod,
plain-tuple usages, `Storage._made`) are in docs/performance.md.
"""

from __future__ import annotations

import gc
import logging
import sys
from collections.abc import Collection, Iterator, Mapping, Sequence
from itertools import islice
from typing import NamedTuple

from metrics_server.scrape.batch import NodeBatch, PodKey
from metrics_server.storage.cycle import PUBLISH_STEP_PODS, Cycle, NodeResult
from metrics_server.storage.rates import FRESH_CONTAINER_MIN_AGE_NS, NodeState
from metrics_server.storage.snapshot import DictSnapshot, NodeUsage, PodUsageTuple

__all__ = ["FRESH_CONTAINER_MIN_AGE_NS", "PUBLISH_STEP_PODS", "Cycle", "NodeResult", "Storage"]

logger = logging.getLogger(__name__)

_Graveyard = list[Mapping[PodKey, PodUsageTuple] | Mapping[str, NodeUsage]]

GRAVEYARD_STEP = 512
"""Entries of a dropped snapshot's mappings freed per node added to a cycle (`Cycle.add`,
`Cycle.add_usages`; ~0.1 ms). At 5000 x 30 a dropped snapshot (150,000 pods) is gone after ~300
nodes of the next cycle, instead of living on until that cycle's publish beside the published
snapshot and the cycle being built: one snapshot's usages fewer for most of every cycle."""
_DONE = object()
YOUNG_EVERY = 4
"""Freeing steps of the graveyard between two young collections run by the freeing itself.
Freeing an object the collector could track counts as one allocation less towards the young
generation's threshold: while a snapshot's ~1M usage objects were freed between a cycle's adds,
the adds' new objects piled up in the young generation unchecked (80,000 and more), to be walked
in one 20-30 ms collection. One young collection per ~2000 entries freed (~10,000 objects) keeps
it at what the threshold gives (`python -m bench.micro.storage_young`: longest young collection
2.6-2.9 ms, was 33 ms)."""


class _Snapshot(DictSnapshot):
    """The snapshot `Storage` publishes. When the last reader drops it, its two mappings go to
    the storage's graveyard instead of being freed on the spot: freeing a cycle's ~1M usage
    objects takes ~60 ms, which would otherwise stall whichever request let go of it last. The
    storage frees them in steps: one step per node added to the next cycle (`GRAVEYARD_STEP`),
    and what is left at that cycle's publish (see `Storage._reap`)."""

    __slots__ = ("_graveyard",)

    def __init__(
        self, graveyard: _Graveyard, nodes: dict[str, NodeUsage], pods: dict[PodKey, PodUsageTuple]
    ) -> None:
        super().__init__(nodes, pods)
        self._graveyard = graveyard

    def __del__(self) -> None:
        self._graveyard.extend((self.pods, self.nodes))


class _Published(NamedTuple):
    """What readers see, swapped as one object so that snapshot, points and readiness agree."""

    snapshot: DictSnapshot
    points: tuple[int, int]
    ready: bool


class Storage:
    """Two points per node and container; publishes one immutable snapshot per scrape cycle.

    One writer at a time: a cycle is `store()`, or `begin()` then `Cycle.add()` per node then
    `Cycle.publish()`. Readers (`snapshot`, `ready`, `points`) may run at any time, also while a
    cycle is being built, and always see one whole published cycle. If building a cycle fails
    half-way, nothing of it is published and the previous cycle's points stay.
    """

    def __init__(self, *, staleness_ns: int, resolution_ns: int | None = None, serves: bool = True) -> None:
        """`staleness_ns`: how long a failed node's last points stay served (wiring: 2 x resolution).

        `resolution_ns`: the scrape interval, the upper bound of metrics-server's fresh-container
        age; when omitted it is taken as ``staleness_ns // 2`` (the wiring default). Raises
        ValueError for a non-positive duration.

        `serves=False` is a store whose usages are served elsewhere (a scrape worker's): `Cycle.add`
        returns each node's usages and keeps only its points, and its snapshot stays empty (no
        second copy of the usages, no duplicate-pod reports: whoever merges the usages does that).
        It also drops a node's previous points as soon as the node is added to a cycle, not at
        the publish: it holds one generation of points, not two, but a cycle abandoned before
        its publish leaves the nodes it added without points (their next batch starts them
        afresh, as for a new node). Its owner, a scrape worker, publishes every cycle it begins
        or exits.
        """
        if staleness_ns <= 0:
            raise ValueError(f"staleness_ns must be positive, got {staleness_ns}")
        if resolution_ns is None:
            resolution_ns = staleness_ns // 2
        if resolution_ns <= 0:
            raise ValueError(f"resolution_ns must be positive, got {resolution_ns}")
        self._staleness_ns = staleness_ns
        self._fresh_max_age_ns = resolution_ns
        self._serves = serves
        self._states: dict[str, NodeState] = {}
        self._graveyard: _Graveyard = []
        self._reaper: Iterator[None] | None = None
        """The graveyard's freeing in progress between two `Cycle.add` calls (`_reap_a_step`)."""
        self._published = _Published(_Snapshot(self._graveyard, {}, {}), (0, 0), False)
        self._duplicates: set[PodKey] = set()
        # Namespace and container names, one string object each for every pod that has them.
        self._strings: dict[str, str] = {}
        # Every tuple a cycle makes (rows, points, usages) is also kept here until its publish,
        # which empties the list in steps after the swap. Why: the collector untracks an exact
        # tuple of untracked items when a collection finds it, but it finds them breadth-first
        # from what is referenced from outside the generation it collects, so a tuple nested in
        # another new one is looked at after its parent: each level of nesting took one more
        # collection, and the pod usages (three levels) reached the oldest generation still
        # tracked, ~0.3M objects per snapshot for every full collection to walk. This list lives
        # as long as the storage (old, or frozen with the start-up objects), so it is an outside
        # reference: each tuple is looked at in the order it was made, children first, and is
        # untracked by the first collection after it was made (those made after the last one
        # before the publish, ~1% of a cycle, take the slow way). Costs ~6 list appends per pod
        # and, while a cycle is built, a pointer per tuple (~8 MB at 5000 x 30).
        self._made: list[object] = []

    def snapshot(self) -> DictSnapshot:
        """The last published cycle (an empty one before the first publish)."""
        return self._published.snapshot

    def ready(self) -> bool:
        """True when the last published cycle has at least one node and at least one pod to serve."""
        return self._published.ready

    def points(self) -> tuple[int, int]:
        """(nodes, containers) servable in the last published cycle: metrics_server_storage_points."""
        return self._published.points

    def store(self, batches: Sequence[NodeBatch], failed_nodes: Collection[str], now_ns: int) -> None:
        """Ingest one whole scrape cycle and publish its snapshot: `begin`, `add` each, `publish`.

        `batches`: the nodes scraped OK, `failed_nodes`: the nodes whose scrape failed this cycle,
        `now_ns`: the cycle's time (wall clock, ns since the epoch, compared with sample times).
        See `Cycle` for the details.
        """
        cycle = self.begin(now_ns)
        for batch in batches:
            cycle.add(batch)
        cycle.publish(failed_nodes)

    def begin(self, now_ns: int) -> Cycle:
        """Start building a cycle incrementally, so that the work can be spread over a scrape
        round (add each node's batch as its scrape finishes, then `Cycle.publish_steps`) instead
        of blocking the event loop for the whole cluster at once.

        `now_ns` is the cycle's time (wall clock, ns since the epoch) for the staleness of failed
        nodes' points; `Cycle.publish` may replace it with the time of publishing."""
        return Cycle(self, now_ns)

    def _publish(
        self,
        base: dict[str, NodeState],
        states: dict[str, NodeState],
        nodes: dict[str, NodeUsage],
        pods: dict[PodKey, PodUsageTuple],
        containers: int,
        duplicates: dict[PodKey, tuple[str, str]],
    ) -> None:
        if self._states is not base:
            raise RuntimeError("another cycle was published after this one began; its points would be lost")
        for key, (first, other) in duplicates.items():
            if key not in self._duplicates:
                logger.warning(
                    "pod %s/%s is reported by nodes %s and %s; serving the one from %s",
                    *key,
                    first,
                    other,
                    first,
                )
        self._duplicates = set(duplicates)
        node_count, pod_count = len(nodes), len(pods)
        ready = node_count > 0 and pod_count > 0
        if ready != self._published.ready:
            _log_readiness(ready, node_count, pod_count)
        self._states = states
        # The publish: everything was built aside; one reference swap makes it visible. The old
        # snapshot's usages stay referenced by `base` (freed in steps by `_reap`), so dropping
        # it here costs little.
        snapshot = _Snapshot(self._graveyard, nodes, pods)
        self._published = _Published(snapshot, (node_count, containers), ready)

    def _reap(self, base: dict[str, NodeState], step: int) -> Iterator[None]:
        """Free the replaced cycle's states and what is left in the graveyard, yielding every
        `step` pods' worth. Nothing a reader can reach is mutated: `base` is no longer the current
        state, and a graveyard mapping is freed through private lists (`_free_dropped`)."""
        work = 0
        # This cycle's tuples (`Storage._made`), now examined by the collector (all but the last
        # few): dropped in the same steps as the replaced states.
        made = self._made
        per_state = -(-len(made) // max(len(base), 1))
        while base:
            _, state = base.popitem()
            work += len(state.pods) + 1
            del state  # freed here, not when the next one is popped
            del made[-per_state:]
            if work >= step:
                work = 0
                yield
        made.clear()  # what is left when there were no states (an abandoned cycle's tuples)
        if self._reaper is not None:
            yield from self._reaper  # the rest of what the adds began
            self._reaper = None
        yield from self._free_dropped(step)

    def _reap_a_step(self) -> None:
        """One step (`GRAVEYARD_STEP`) of freeing the mappings of dropped snapshots, if any."""
        if self._reaper is None:
            if not self._graveyard:
                return
            self._reaper = self._free_dropped(GRAVEYARD_STEP)
        if next(self._reaper, _DONE) is _DONE:
            self._reaper = None

    def _free_dropped(self, step: int) -> Iterator[None]:
        """Free the graveyard's mappings, yielding every `step` keys and values. A mapping that
        nobody else holds is emptied in place; one a reader still holds is freed through private
        tuples, so that reader keeps it whole."""
        graveyard = self._graveyard
        released = 0
        while graveyard:
            mapping = graveyard.pop()
            if isinstance(mapping, dict) and sys.getrefcount(mapping) == 2:  # this name, the call
                while mapping:
                    for _ in range(min(step, len(mapping))):
                        mapping.popitem()
                    released += 1
                    if released % YOUNG_EVERY == 0:
                        gc.collect(0)
                    yield
                continue
            # Even taking a reference to every key and value touches ~1M objects' memory
            # (~10 ms), so that is done in steps too, `step` keys or values to a tuple. The
            # mappings are immutable once published.
            held: list[tuple[object, ...]] = []
            keys, values = iter(mapping.keys()), iter(mapping.values())
            for _ in range(0, len(mapping), step):
                held.append(tuple(islice(keys, step)))
                held.append(tuple(islice(values, step)))
                yield
            del mapping, keys, values  # only decrements: `held` holds every key and value
            while held:
                del held[-1]
                released += 1
                if released % YOUNG_EVERY == 0:
                    gc.collect(0)
                yield


def _log_readiness(ready: bool, node_count: int, pod_count: int) -> None:
    if ready:
        logger.info("storage ready: %d nodes and %d pods servable", node_count, pod_count)
    elif node_count:
        logger.warning(
            "storage not ready: %d nodes but no pod servable; check the container runtime and "
            "the kubelet's container metrics",
            node_count,
        )
    else:
        logger.warning("storage not ready: no node servable (%d pods servable)", pod_count)
