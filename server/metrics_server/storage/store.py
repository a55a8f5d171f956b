"""The two-point store: last and previous sample per node and per container, rates, atomic publish.

One scrape cycle is one `Storage.store()` call, or `Storage.begin()`, `Cycle.add()` per node
as its scrape finishes, then `Cycle.publish()` (or `Cycle.publish_steps()`, the same work in
bounded steps for an event loop to interleave). It computes every servable usage from the new
batches and the points kept from the previous cycle, builds a complete new `DictSnapshot`, then
publishes it by swapping one reference. `snapshot()` hands out that object; a reader keeps the
cycle it got for as long as it holds it, whatever later cycles do. The replaced cycle's points,
and the usages of snapshots that readers have dropped, are freed in steps after the swap.

Rates (metrics-server `resourceUsage`, with integer arithmetic):
``cpu_nanocores = (last.cpu_ns - prev.cpu_ns) * 1e9 // (last.timestamp_ns - prev.timestamp_ns)``,
``memory = last.memory_bytes``, ``window = last.timestamp_ns - prev.timestamp_ns`` (always > 0).

How the pair (last, prev) of one node or container is chosen, given the new point `n` and the
stored pair (L, P); a start time of 0 means "unknown" and takes part in no start-time rule:

1. ``n`` older than ``L`` (out of order): ``n`` is ignored, (L, P) stays. Unless it is older by
   more than ``staleness_ns``: then the kubelet's clock went back, and (L, P) are dropped
   instead of being served for ever; ``n`` starts a new pair.
2. Fresh container (metrics-server's rule): started ``10 s <= age < resolution`` before the
   sample → prev is synthesised at its start time with CPU 0, so it has a rate after one scrape.
3. No ``L`` → no prev (a node or container needs two scrapes).
4. Restart: the start time moved forward, or the container started at/after ``L`` was sampled.
   Nothing is computed across it. Improvement: a container that started at/after ``L`` and has
   run >= 10 s is measured from its start time (its whole life lies inside the window), so one
   restart does not hide its pod for a cycle.
5. ``n`` newer than ``L`` → prev = L. Same timestamp (the kubelet served the sample again) →
   the older P stays prev if it is older than ``n``, so no window 0 is ever produced.
6. Counter decrease (cumulative CPU below prev's) or start-time decrease (the node-flip bug
   metrics-server guards against) → no prev this cycle; the next scrape pairs with ``n``.

Improvements on metrics-server (reference §12):

* a node in ``failed_nodes`` keeps its points and usages (node and pods, true timestamps and
  windows) until they are older than ``staleness_ns`` (sample timestamp to ``now_ns``);
* a pod is served only with every container of its latest batch, never a subset;
* swap is carried through to ``NodeUsage.swap_bytes`` / ``ContainerUsage.swap_bytes``.

Duplicate pods across nodes (a StatefulSet pod still reported by its old node): the first batch
that reports the pod wins; each duplicate is logged once (again only if it goes away and comes
back). A node scraped OK wins over a pod kept from a failed node.

Cost at 5000 nodes x 30 pods x 2 containers (CPython 3.11, a shared 2-vCPU VM under load where a
bare loop over the same 300k containers takes ~50 ms):

* ``.venv/bin/python tests/server/storage/bench_store.py`` (one-shot ``store()``, CPU time): first
  cycle ~0.2 s; steady state 0.5-1.0 s with the garbage collector disabled and 0.7-2.5 s at its
  default thresholds, i.e. ~2 µs per container plus the collector walking the live points.
  ``snapshot()`` ~0.1 µs, ``snapshot().pod(ns, name)`` and ``.node(name)`` ~0.4 µs.
* ``.venv/bin/python tests/server/storage/bench_cycle.py`` (the real scrape loop into the store,
  answers spread over 4 s, longest event-loop step in thread CPU time): the incremental cycle
  holds the loop for at most ~10 ms at a time (``Cycle.add`` 0.1-0.4 ms per node, rarely up to
  8; 75-300 publish steps of at most 3-7 ms), where one ``store()`` call held it for 0.7-1.7 s.
  Store CPU per cycle is unchanged (0.7-1.1 s with the collector off). Dropping a snapshot costs
  its last reader ~0 ms instead of ~60 ms. What still stalls the loop is the cyclic garbage
  collector: the ~1.5M live NamedTuples (``Point``, ``PodUsage``, ``ContainerUsage``) are never
  untracked (CPython only untracks exact tuples), so with the server's thresholds (100_000, 20,
  100) each cycle has ~13 gen0 pauses of 50-200 ms and every other cycle a gen1 pause of
  0.5-2.7 s; see the bench's ``--gc`` options.

Since 2026-11-27 (round 2) a pod's points are one plain tuple of rows (`PodPoints`), untracked by
the collector, with its key and names shared across cycles, instead of two dicts of `Point`s.
``.venv/bin/python tests/server/storage/bench_memory.py`` (kubesim-shaped bodies through the real
parser, 1.34 containers per pod), old -> new: tracemalloc at 500 x 30, bytes held by the store and
its snapshot per container served 1289 -> 816 (cycle peak 45 -> 27 MiB); at 5000 x 30 (200,909
containers) RSS held 500 -> ~300 MiB (2610 -> ~1600 B per container), objects the collector tracks
1.24M -> 0.53M, one full collection 0.51 -> 0.25 s CPU. Store CPU per cycle at 5000 x 30 x 1
(``bench_cycle.py --mode incremental``; machine under load, so ranges): collector off 0.64-0.83 ->
0.59-0.80 s; app thresholds (10_000, 10, 100) 1.19-2.42 -> 0.89-1.27 s, gen0 pauses up to 43 -> 18 ms.

Since 2026-11-27 (round 3) the usages are plain tuples (see `snapshot`), the API's fragments too,
and every tuple a cycle makes is untracked by the collector's first pass over it (`Storage._made`).
``.venv/bin/python tests/server/storage/bench_gc.py --cycles 7`` (5000 x 30, 200,000 containers:
store cycles plus the all-pods list of each snapshot through the app, cold and warm; the server's
`_tune_gc`; two runs each, interleaved, shared 2-core machine) old -> new: collector CPU per cycle
517-621 -> 325-358 ms (19-20 % -> 11-12 % of the cycle's CPU); longest gen0/gen1 pause 57-80 ->
21-25 ms; objects tracked after the run 2.27M -> 0.18M, so the full collection that comes every
~10 cycles (100 gen1s) costs 1.74-2.15 -> 0.43 s.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterator, Mapping, Sequence
from itertools import islice
from typing import Any, NamedTuple

from metrics_server.scrape.batch import NodeBatch, PodKey, Point
from metrics_server.storage.snapshot import ContainerUsageTuple, DictSnapshot, NodeUsage, PodUsageTuple

__all__ = ["FRESH_CONTAINER_MIN_AGE_NS", "PUBLISH_STEP_PODS", "Cycle", "NodeResult", "Storage"]

logger = logging.getLogger(__name__)

NS_PER_SECOND = 1_000_000_000
FRESH_CONTAINER_MIN_AGE_NS = 10 * NS_PER_SECOND
"""A container measured from its start time must have run at least this long (metrics-server's
``freshContainerMinMetricsResolution``): shorter windows give too noisy a rate."""
PUBLISH_STEP_PODS = 2048
"""Default size of one step of `Cycle.publish_steps`, in pods (a node counts as one): a few ms."""
_MAX_SHARED_STRINGS = 100_000


_Row = tuple[str, int, int, int, int, "int | None", "int | None", "int | None", "int | None"]
"""One container's points: name, the last point's timestamp, CPU, memory, start time and swap (a
`Point`'s fields), then the prev's timestamp, CPU and start time (all three None without a prev)."""
PodPoints = tuple["PodKey | _Row", ...]
"""One pod's points: its `PodKey`, then one `_Row` per container in the order of its latest batch.

Plain tuples of strings, ints and None, which the cyclic collector untracks after its first pass:
the former dict of `Point`s per pod for last and another for prev were ~3 tracked objects per
container for every collection to walk, and ~40% more bytes. The key and the names are the first
cycle's objects, reused while the pod lives, so successive snapshots share them too.
"""


class _NodeState(NamedTuple):
    """Everything kept for one node between cycles. Invariant: a stored prev always gives a valid
    rate with its last (older timestamp, CPU not above, start time consistent)."""

    node_last: Point | None
    node_prev: Point | None
    node_usage: NodeUsage | None
    pods: dict[PodKey, PodPoints] | dict[PodKey, PodUsageTuple]
    """Every pod of the latest batch (an out-of-order point is replaced by L). In a usage-only state
    (`Cycle.add_usages`, `has_points` False) it is `pod_usage` itself: there are no points."""
    pod_usage: dict[PodKey, PodUsageTuple]
    served_containers: int
    """Sum of len(containers) over pod_usage (for points() without a second pass)."""
    has_points: bool = True
    """False for a node whose usages were computed elsewhere (`Cycle.add_usages`): its staleness is
    judged by the usages' timestamps, and a later batch of points starts it afresh."""


class NodeResult(NamedTuple):
    """What one node's batch gave (`Cycle.add`): its usages, for whoever forwards them."""

    node_usage: NodeUsage | None
    pod_usage: Mapping[PodKey, PodUsageTuple]
    """Only the pods with a rate; not to be mutated (the store keeps it)."""
    first: bool
    """The store held no points for this node before this batch, so only fresh containers can have a
    rate: an owner of older usages (another store) should keep its own until they go stale."""


_Graveyard = list[Mapping[PodKey, PodUsageTuple] | Mapping[str, NodeUsage]]


class _Snapshot(DictSnapshot):
    """The snapshot `Storage` publishes. When the last reader drops it, its two mappings go to
    the storage's graveyard instead of being freed on the spot: freeing a cycle's ~1M usage
    objects takes ~60 ms, which would otherwise stall whichever request let go of it last. The
    storage frees them in steps at its next publish (see `Storage._reap`)."""

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


def _restarted(n: Point, last: Point) -> bool:
    start = n.start_time_ns
    return bool(start) and (
        start >= last.timestamp_ns or (bool(last.start_time_ns) and start > last.start_time_ns)
    )


def _advance(
    n: Point, last: Point | None, prev: Point | None, max_reorder_ns: int
) -> tuple[Point, Point | None]:
    """Rules 1 and 3-6 of the module docstring: the new (last, prev) of a node or a container."""
    if last is None:
        return n, None
    ts = n.timestamp_ns
    if ts < last.timestamp_ns:
        return (last, prev) if last.timestamp_ns - ts <= max_reorder_ns else (n, None)
    if _restarted(n, last):
        return n, None
    if ts > last.timestamp_ns:
        prev = last
    elif prev is None:  # same sample again; the stored prev is older than last, so than n
        return n, None
    start = n.start_time_ns
    if n.cpu_ns < prev.cpu_ns or (start and prev.start_time_ns and start < prev.start_time_ns):
        return n, None
    return n, prev


def _from_start(n: Point) -> Point:
    """A synthetic prev at the container's start time: no CPU used yet."""
    return Point(n.start_time_ns, 0, n.memory_bytes, n.start_time_ns, n.swap_bytes)


def _advance_container(
    n: Point, last: Point | None, prev: Point | None, fresh_max_age_ns: int, max_reorder_ns: int
) -> tuple[Point, Point | None]:
    """All six rules of the module docstring for one container."""
    ts = n.timestamp_ns
    if last is not None and ts < last.timestamp_ns:
        if last.timestamp_ns - ts <= max_reorder_ns:
            return last, prev
        last = prev = None
    start = n.start_time_ns
    age = ts - start
    if start and FRESH_CONTAINER_MIN_AGE_NS <= age < fresh_max_age_ns:
        return n, _from_start(n)
    if last is not None and _restarted(n, last):
        if start >= last.timestamp_ns and age >= FRESH_CONTAINER_MIN_AGE_NS:
            return n, _from_start(n)
        return n, None
    return _advance(n, last, prev, max_reorder_ns)


def _node_usage(last: Point, prev: Point) -> NodeUsage:
    window = last.timestamp_ns - prev.timestamp_ns
    return NodeUsage(
        last.timestamp_ns,
        window,
        (last.cpu_ns - prev.cpu_ns) * NS_PER_SECOND // window,
        last.memory_bytes,
        last.swap_bytes,
    )


def _update_node(
    batch: NodeBatch,
    old: _NodeState | None,
    fresh_max: int,
    max_reorder: int,
    strings: dict[str, str],
    made: list[object],
) -> _NodeState:
    """Advance one successfully scraped node: its node point and every container.

    The hot loop of the store (every container of every node, every cycle). `strings` shares
    namespace and container name strings between pods (`Storage._strings`). Every tuple made for
    the new state is also appended to `made` (see `Storage._made`).
    """
    node_last = batch.node_point
    node_prev: Point | None = None
    node_usage: NodeUsage | None = None
    if node_last is not None:
        if old is not None:
            node_last, node_prev = _advance(node_last, old.node_last, old.node_prev, max_reorder)
        if node_prev is not None:
            node_usage = _node_usage(node_last, node_prev)

    old_pods: dict[PodKey, PodPoints] = old.pods if old is not None and old.has_points else {}  # type: ignore[assignment]
    fresh_min = FRESH_CONTAINER_MIN_AGE_NS
    pods: dict[PodKey, PodPoints] = {}
    pod_usage: dict[PodKey, PodUsageTuple] = {}
    served = 0
    no_points: PodPoints = ()
    for key, conts in batch.pods.items():
        prior = old_pods.get(key, no_points)
        # The stored key object is reused across cycles; a new pod's namespace string is shared
        # with the other pods of that namespace.
        key = prior[0] if prior else (strings.setdefault(key[0], key[0]), key[1])  # type: ignore[assignment]
        end = len(prior)
        rows: list[PodKey | _Row] = [key]
        usages: list[ContainerUsageTuple] = []
        complete = True
        pod_ts = pod_window = 0
        for cname, n in conts.items():
            ts, cpu, memory, start, swap = n
            # The container's row is usually where it was last cycle (same batch order).
            row: _Row | None = prior[len(rows)] if len(rows) < end else None  # type: ignore[assignment]
            if row is None or row[0] != cname:
                row = _find(prior, cname)
            if row is not None:
                cname, last_ts, last_cpu, _, last_start, _, prev_ts, prev_cpu, _ = row
                # Fast path, the steady state: a newer sample of the same container whose
                # counter grew and which is not fresh. It gives exactly what
                # _advance_container would (prev = last); everything else goes there.
                if (
                    ts > last_ts
                    and start == last_start
                    and start < last_ts
                    and cpu >= last_cpu
                    and not fresh_min <= ts - start < fresh_max
                ):
                    start = last_start  # one int object while the container lives
                    rows.append((cname, ts, cpu, memory, start, swap, last_ts, last_cpu, start))
                    prev_ts, prev_cpu = last_ts, last_cpu
                else:
                    row = _slow_container(cname, n, row, fresh_max, max_reorder)
                    rows.append(row)
                    _, ts, cpu, memory, _, swap, prev_ts, prev_cpu, _ = row
            else:
                cname = strings.setdefault(cname, cname)
                row = _slow_container(cname, n, None, fresh_max, max_reorder)
                rows.append(row)
                _, ts, cpu, memory, _, swap, prev_ts, prev_cpu, _ = row
            if prev_ts is None or prev_cpu is None:
                complete = False
                continue
            if complete:
                window = ts - prev_ts
                rate = (cpu - prev_cpu) * NS_PER_SECOND // window
                usages.append((cname, rate, memory, swap))
                # The pod's timestamp/window come from its container with the earliest
                # sample (metrics-server's conservative choice for the HPA).
                if not pod_window or ts < pod_ts or (ts == pod_ts and window < pod_window):
                    pod_ts = ts
                    pod_window = window
        points = tuple(rows)
        pods[key] = points
        made += rows
        made.append(points)
        if complete and usages:
            if len(usages) > 1:
                usages.sort()
            # Plain tuples, not the NamedTuples: the collector untracks these (see `snapshot`).
            containers = tuple(usages)
            usage = (pod_ts, pod_window, containers)
            pod_usage[key] = usage
            made += usages
            made.append(containers)
            made.append(usage)
            served += len(usages)
    return _NodeState(node_last, node_prev, node_usage, pods, pod_usage, served)


def _find(prior: PodPoints, cname: str) -> _Row | None:
    """`cname`'s row in a pod's points, if it has one."""
    for row in prior[1:]:
        if row[0] == cname:
            return row  # type: ignore[return-value]
    return None


def _slow_container(cname: str, n: Point, row: _Row | None, fresh_max: int, max_reorder: int) -> _Row:
    """`_advance_container` for a container off the fast path: its new row."""
    last = prev = None
    if row is not None:
        last = Point(row[1], row[2], row[3], row[4], row[5])
        if row[6] is not None and row[7] is not None and row[8] is not None:
            prev = Point(row[6], row[7], 0, row[8])  # memory and swap of a prev are never read
    newer, prev = _advance_container(n, last, prev, fresh_max, max_reorder)
    ts, cpu, memory, start, swap = newer
    if prev is None:
        return (cname, ts, cpu, memory, start, swap, None, None, None)
    return (cname, ts, cpu, memory, start, swap, prev.timestamp_ns, prev.cpu_ns, prev.start_time_ns)


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
        self._states: dict[str, _NodeState] = {}
        self._graveyard: _Graveyard = []
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
        base: dict[str, _NodeState],
        states: dict[str, _NodeState],
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

    def _reap(self, base: dict[str, _NodeState], step: int) -> Iterator[None]:
        """Free the replaced cycle's states and the graveyard's mappings, yielding every `step`
        pods' worth. Nothing a reader can reach is mutated: `base` is no longer the current
        state, and a graveyard mapping is freed through private lists, so a reader that still
        holds one of those mappings (not the snapshot) keeps it whole."""
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
        graveyard = self._graveyard
        while graveyard:
            mapping = graveyard.pop()
            # Even taking a reference to every key and value touches ~1M objects' memory
            # (~10 ms), so that is done in steps too. The mappings are immutable once published.
            objects: list[object] = []
            keys, values = iter(mapping.keys()), iter(mapping.values())
            for _ in range(0, len(mapping), step):
                objects += islice(keys, step)
                objects += islice(values, step)
                yield
            del mapping, keys, values  # only decrements: `objects` holds every key and value
            while objects:
                del objects[-step:]
                yield


class Cycle:
    """One scrape cycle being built aside; nothing of it is visible before `publish()`.

    `add()` takes over each batch's `pods` dict and empties it (its points are copied into the
    store's rows; freeing them there, one node at a time, keeps that work out of whichever step
    drops the scrape round's batches), so the caller must not reuse it. A second batch for the same
    node in one cycle is ignored (logged). Odd data never raises: each rule degrades to "no rate
    this cycle" for the node or pod concerned. Using a cycle after `publish()`, or publishing a
    cycle begun before another cycle was published, raises RuntimeError.
    """

    __slots__ = (
        "_base",
        "_containers",
        "_duplicates",
        "_kept",
        "_nodes",
        "_now_ns",
        "_owner",
        "_pods",
        "_states",
        "_storage",
        "_storage_made",
    )

    def __init__(self, storage: Storage, now_ns: int) -> None:
        self._storage: Storage | None = storage
        self._storage_made = storage._made
        self._base = storage._states
        self._now_ns = now_ns
        self._states: dict[str, _NodeState] = {}
        self._nodes: dict[str, NodeUsage] = {}
        self._pods: dict[PodKey, PodUsageTuple] = {}
        # Which node reported each pod first this cycle (duplicates: the first batch wins).
        self._owner: dict[PodKey, str] = {}
        self._duplicates: dict[PodKey, tuple[str, str]] = {}
        self._containers = 0
        self._kept: set[str] = set()
        """Nodes added with `first` whose previous usages are kept (as if their scrape failed)."""

    def add(self, batch: NodeBatch) -> NodeResult | None:
        """Ingest one node scraped OK; its usages (None for a second batch of the node, ignored)."""
        storage = self._live()
        name = batch.node
        if name in self._states:
            logger.warning("node %s: a second batch in one cycle is ignored", name)
            return None
        strings = storage._strings
        if len(strings) > _MAX_SHARED_STRINGS:
            strings.clear()  # names of long-gone pods; the live ones are shared again as pods come
        old = self._base.get(name)
        state = _update_node(
            batch,
            old,
            storage._fresh_max_age_ns,
            storage._staleness_ns,
            strings,
            storage._made,
        )
        batch.pods.clear()
        result = NodeResult(state.node_usage, state.pod_usage, old is None or not old.has_points)
        if storage._serves:
            self._merge(name, state)
        else:
            self._states[name] = state._replace(pod_usage={}, served_containers=0)
        return result

    def add_usages(
        self,
        name: str,
        node_usage: NodeUsage | None,
        pod_usage: dict[PodKey, PodUsageTuple],
        *,
        first: bool = False,
    ) -> None:
        """Ingest one node's usages computed elsewhere (a scrape worker's store): what `add` does
        with a batch, without points. The store takes `pod_usage` over (it must not be mutated).

        `first` (`NodeResult.first` of the other store): when this store still holds usages of the
        node, it keeps them, as for a failed node, until they go stale or a later cycle brings
        rates; so a node that moved to another worker, or whose worker restarted, is not missing
        for the cycle in which its new store has only one point."""
        self._live()
        if name in self._states:
            logger.warning("node %s: a second batch in one cycle is ignored", name)
            return
        old = self._base.get(name)
        if first and old is not None:
            self._kept.add(name)
            return
        if old is not None and old.pod_usage:
            # Decoded keys are new objects every cycle: the previous cycle's key (and its
            # namespace and name strings) are kept instead, ~190 bytes less per pod and snapshot.
            known = {key: key for key in old.pod_usage}
            pod_usage = {known.get(key, key): usage for key, usage in pod_usage.items()}
        # The tuples came from elsewhere (a decoder): registered with `Storage._made` like the
        # store's own, so the collector untracks them on its first pass.
        made = self._storage_made
        served = 0
        for usage in pod_usage.values():
            containers = usage[2]
            served += len(containers)
            made += containers
            made.append(containers)
            made.append(usage)
        made += pod_usage.keys()
        self._merge(name, _NodeState(None, None, node_usage, pod_usage, pod_usage, served, False))

    def _merge(self, name: str, state: _NodeState) -> None:
        self._states[name] = state
        if state.node_usage is not None:
            self._nodes[name] = state.node_usage
        keys = state.pods.keys()
        if self._owner.keys().isdisjoint(keys):
            self._pods.update(state.pod_usage)
            self._owner.update(dict.fromkeys(keys, name))
            self._containers += state.served_containers
        else:
            self._merge_slow(name, state, report=True)

    def publish(self, failed_nodes: Collection[str], *, now_ns: int | None = None) -> None:
        """Finish the cycle and make it the one readers see: `publish_steps` run to the end."""
        for _ in self.publish_steps(failed_nodes, now_ns=now_ns):
            pass

    def publish_steps(
        self, failed_nodes: Collection[str], *, now_ns: int | None = None, step_pods: int = PUBLISH_STEP_PODS
    ) -> Iterator[None]:
        """`publish`, as a generator that pauses every `step_pods` pods' worth of work, so that
        an event loop can serve requests in between (`for _ in steps: await checkpoint()`).

        `failed_nodes`: nodes whose scrape failed; each keeps its previous points (node and pods)
        until they are sampled more than the staleness limit before `now_ns` (default: the time
        given to `begin`). A node that was also added counts as scraped OK. A node neither added
        nor failed is forgotten.

        Steps: keep the failed nodes' points; publish (one reference swap, readers see the old
        cycle before it and the new one after); free the replaced cycle's points. Once iteration
        has started the cycle takes no more `add` (RuntimeError). Abandoning the iterator before
        the swap publishes nothing and leaves the stored points as they were (like an abandoned
        cycle); abandoning it after the swap leaves the rest to be freed at once with the cycle.
        """
        if step_pods <= 0:
            raise ValueError(f"step_pods must be positive, got {step_pods}")
        storage = self._live()
        self._storage = None
        cutoff = (self._now_ns if now_ns is None else now_ns) - storage._staleness_ns
        work = 0
        if self._kept:
            failed_nodes = self._kept.union(failed_nodes)
        for name in failed_nodes:
            previous = self._base.get(name)
            if name in self._states or previous is None:
                continue
            work += len(previous.pods) + 1
            kept = _retain(previous, cutoff)
            if kept is not None:
                self._states[name] = kept
                if kept.node_usage is not None:
                    self._nodes[name] = kept.node_usage
                self._merge_slow(name, kept, report=False)
            if work >= step_pods:
                work = 0
                yield
        storage._publish(
            self._base, self._states, self._nodes, self._pods, self._containers, self._duplicates
        )
        self._owner = {}
        yield
        yield from storage._reap(self._base, step_pods)

    def _live(self) -> Storage:
        if self._storage is None:
            raise RuntimeError("this cycle was already published (or is being published)")
        return self._storage

    def _merge_slow(self, name: str, state: _NodeState, *, report: bool) -> None:
        """Merge a node's pods one by one, the earlier owner of a pod winning. `report` is False
        for nodes kept after a failed scrape: being superseded by a node scraped OK is the
        expected case (a pod rescheduled), not a duplicate to report."""
        owner = self._owner
        usages = state.pod_usage
        for key in state.pods:
            first = owner.setdefault(key, name)
            if first != name:
                if report:
                    self._duplicates.setdefault(key, (first, name))
                else:
                    logger.debug("pod %s/%s: kept from failed node %s, superseded by %s", *key, name, first)
                continue
            usage = usages.get(key)
            if usage is not None:
                self._pods[key] = usage
                self._containers += len(usage[2])


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


def _retain(state: _NodeState, cutoff_ns: int) -> _NodeState | None:
    """A failed node's state minus points sampled before `cutoff_ns`; None when nothing is left.

    A pod goes as a whole once any of its containers' last points is stale (its usage timestamp
    is its earliest container's sample, so usage and points expire together). A usage-only state
    is judged by those usage timestamps (the node's: the sample time of its newer point).
    """
    node_last, node_prev, node_usage = state.node_last, state.node_prev, state.node_usage
    node_ts = node_last.timestamp_ns if state.has_points and node_last is not None else None
    if not state.has_points and node_usage is not None:
        node_ts = node_usage.timestamp_ns
    if node_ts is not None and node_ts < cutoff_ns:
        node_last = node_prev = node_usage = None
    if state.has_points:
        stale = [
            key
            for key, points in state.pods.items()
            if any(row[1] < cutoff_ns for row in points[1:])  # type: ignore[index,operator]
        ]
    else:
        stale = [key for key, usage in state.pod_usage.items() if usage[0] < cutoff_ns]
    if stale:
        pod_usage = dict(state.pod_usage)
        pods: dict[PodKey, Any] = dict(state.pods) if state.has_points else pod_usage
        for key in stale:
            pods.pop(key, None)
            pod_usage.pop(key, None)
        served = sum(len(u[2]) for u in pod_usage.values())
        state = _NodeState(node_last, node_prev, node_usage, pods, pod_usage, served, state.has_points)
    elif node_usage is not state.node_usage:
        state = state._replace(node_last=None, node_prev=None, node_usage=None)
    if state.node_last is None and state.node_usage is None and not state.pods:
        return None
    return state
