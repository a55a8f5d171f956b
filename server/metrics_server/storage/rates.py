"""Two points per node and container, and the rates they give: the rules of one node's update.

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

`update_node` applies them to one node's batch (the store's hot loop); `retain` ages a failed
node's kept points. Both build `NodeState`s, which `storage.store` and `storage.cycle` keep.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from metrics_server.scrape.batch import NodeBatch, PodKey, Point
from metrics_server.storage.snapshot import ContainerUsageTuple, NodeUsage, PodUsageTuple

NS_PER_SECOND = 1_000_000_000
FRESH_CONTAINER_MIN_AGE_NS = 10 * NS_PER_SECOND
"""A container measured from its start time must have run at least this long (metrics-server's
``freshContainerMinMetricsResolution``): shorter windows give too noisy a rate."""


_Row = tuple[str, int, int, int, int, "int | None", "int | None", "int | None", "int | None"]
"""One container's points: name, the last point's timestamp, CPU, memory, start time and swap (a
`Point`'s fields), then the prev's timestamp, CPU and start time (all three None without a prev)."""
PodPoints = tuple["PodKey | _Row", ...]
"""One pod's points: its `PodKey`, then one `_Row` per container in the order of its latest batch.

Plain tuples of strings, ints and None, which the cyclic collector untracks after its first pass
(a dict of `Point`s per pod for last and another for prev would be ~3 tracked objects per
container for every collection to walk, and ~40% more bytes). The key and the names are the first
cycle's objects, reused while the pod lives, so successive snapshots share them too.
"""


class NodeState(NamedTuple):
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


def update_node(
    batch: NodeBatch,
    old: NodeState | None,
    fresh_max: int,
    max_reorder: int,
    strings: dict[str, str],
    made: list[object],
    made_usages: bool = True,
) -> NodeState:
    """Advance one successfully scraped node: its node point and every container.

    The hot loop of the store (every container of every node, every cycle). `strings` shares
    namespace and container name strings between pods (`Storage._strings`). Every tuple made for
    the new state is also appended to `made` (see `Storage._made`); the usages' only with
    `made_usages` (a store that keeps them).
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
            if made_usages:
                made += usages
                made.append(containers)
                made.append(usage)
            served += len(usages)
    return NodeState(node_last, node_prev, node_usage, pods, pod_usage, served)


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


def retain(state: NodeState, cutoff_ns: int) -> NodeState | None:
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
        state = NodeState(node_last, node_prev, node_usage, pods, pod_usage, served, state.has_points)
    elif node_usage is not state.node_usage:
        state = state._replace(node_last=None, node_prev=None, node_usage=None)
    if state.node_last is None and state.node_usage is None and not state.pods:
        return None
    return state
