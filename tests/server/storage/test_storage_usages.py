"""`Cycle.add_usages`: usages computed by another store (a scrape worker's) merged and published."""

from __future__ import annotations

import gc
import sys

from metrics_server.shard import protocol
from metrics_server.storage.snapshot import NodeUsage, PodUsageTuple
from metrics_server.storage.store import Storage

NS = 1_000_000_000
STALENESS = 30 * NS


def pod(ts: int, cpu: int) -> PodUsageTuple:
    return (ts, 15 * NS, (("c", cpu, 1000, None),))


def node(ts: int, cpu: int) -> NodeUsage:
    return NodeUsage(ts, 15 * NS, cpu, 2000, None)


def test_usages_are_published_as_given() -> None:
    storage = Storage(staleness_ns=STALENESS)
    cycle = storage.begin(100 * NS)
    cycle.add_usages("n1", node(90 * NS, 5), {("a", "p1"): pod(90 * NS, 1), ("a", "p2"): pod(91 * NS, 2)})
    cycle.add_usages("n2", None, {("b", "p3"): pod(92 * NS, 3)})
    cycle.publish(())
    snap = storage.snapshot()
    assert dict(snap.nodes) == {"n1": node(90 * NS, 5)}
    assert dict(snap.pods) == {
        ("a", "p1"): pod(90 * NS, 1),
        ("a", "p2"): pod(91 * NS, 2),
        ("b", "p3"): pod(92 * NS, 3),
    }
    assert storage.points() == (1, 3)
    assert storage.ready()


def test_a_first_result_keeps_the_previous_usages_until_they_are_stale() -> None:
    storage = Storage(staleness_ns=STALENESS)
    cycle = storage.begin(100 * NS)
    cycle.add_usages("n1", node(90 * NS, 5), {("a", "p1"): pod(90 * NS, 1)})
    cycle.publish(())
    # A new store for n1 (its worker restarted): one point, no rates yet.
    cycle = storage.begin(110 * NS)
    cycle.add_usages("n1", None, {}, first=True)
    cycle.publish((), now_ns=110 * NS)
    assert dict(storage.snapshot().pods) == {("a", "p1"): pod(90 * NS, 1)}
    assert dict(storage.snapshot().nodes) == {"n1": node(90 * NS, 5)}
    # Still first (the worker restarted again) and now older than the staleness: gone.
    cycle = storage.begin(121 * NS)
    cycle.add_usages("n1", None, {}, first=True)
    cycle.publish((), now_ns=121 * NS)
    assert dict(storage.snapshot().pods) == {}
    assert dict(storage.snapshot().nodes) == {}


def test_a_first_result_of_an_unknown_node_is_served() -> None:
    storage = Storage(staleness_ns=STALENESS)
    cycle = storage.begin(100 * NS)
    cycle.add_usages("n1", None, {("a", "fresh"): pod(99 * NS, 1)}, first=True)
    cycle.publish(())
    assert dict(storage.snapshot().pods) == {("a", "fresh"): pod(99 * NS, 1)}


def test_a_failed_node_keeps_each_pod_until_its_own_sample_is_stale() -> None:
    storage = Storage(staleness_ns=STALENESS)
    cycle = storage.begin(100 * NS)
    cycle.add_usages("n1", node(95 * NS, 5), {("a", "old"): pod(80 * NS, 1), ("a", "new"): pod(95 * NS, 2)})
    cycle.publish(())
    cycle = storage.begin(115 * NS)
    cycle.publish(["n1"], now_ns=115 * NS)  # cutoff 85 s: "old" (80 s) goes, "new" and the node stay
    assert dict(storage.snapshot().pods) == {("a", "new"): pod(95 * NS, 2)}
    assert dict(storage.snapshot().nodes) == {"n1": node(95 * NS, 5)}
    assert storage.points() == (1, 1)
    cycle = storage.begin(126 * NS)
    cycle.publish(["n1"], now_ns=126 * NS)  # cutoff 96 s: everything
    assert dict(storage.snapshot().pods) == {}
    assert dict(storage.snapshot().nodes) == {}


def test_duplicate_pods_across_workers_first_wins_and_a_node_not_reported_is_forgotten() -> None:
    storage = Storage(staleness_ns=STALENESS)
    cycle = storage.begin(100 * NS)
    cycle.add_usages("n1", None, {("a", "p"): pod(90 * NS, 1)})
    cycle.add_usages("n2", None, {("a", "p"): pod(91 * NS, 2), ("a", "q"): pod(91 * NS, 3)})
    cycle.add_usages("n1", None, {("a", "z"): pod(91 * NS, 9)})  # a second result in one cycle: ignored
    cycle.publish(())
    assert dict(storage.snapshot().pods) == {("a", "p"): pod(90 * NS, 1), ("a", "q"): pod(91 * NS, 3)}
    cycle = storage.begin(110 * NS)
    cycle.add_usages("n2", None, {("a", "q"): pod(101 * NS, 4)})
    cycle.publish(())
    assert dict(storage.snapshot().pods) == {("a", "q"): pod(101 * NS, 4)}


def test_a_store_that_does_not_serve_returns_usages_and_keeps_only_points() -> None:
    from metrics_server.scrape.batch import NodeBatch, Point

    def batch(ts: int, cpu: int) -> NodeBatch:
        start = 1
        return NodeBatch(
            "n1",
            Point(ts, cpu, 500, start),
            {("a", "p"): {"c": Point(ts, cpu, 100, start)}},
        )

    served = Storage(staleness_ns=STALENESS)
    worker = Storage(staleness_ns=STALENESS, serves=False)
    results = []
    for ts, cpu in ((100 * NS, 10 * NS), (115 * NS, 13 * NS)):
        for store in (served, worker):
            cycle = store.begin(ts)
            result = cycle.add(batch(ts, cpu))
            cycle.publish(())
            if store is worker:
                results.append(result)
    assert results[0] is not None and results[0].first and dict(results[0].pod_usage) == {}
    assert results[1] is not None and not results[1].first
    assert dict(results[1].pod_usage) == dict(served.snapshot().pods)
    assert results[1].node_usage == served.snapshot().node("n1")
    assert dict(results[1].pod_usage) == {("a", "p"): (115 * NS, 15 * NS, (("c", NS // 5, 100, None),))}
    assert dict(worker.snapshot().pods) == {} and dict(worker.snapshot().nodes) == {}


def test_decoded_usages_are_untracked_by_the_collectors_first_pass() -> None:
    """A decoder makes each tuple before its items (msgspec does): stored as they are, a pod's usage
    took three collections to be untracked; the store makes the outer levels again, items first."""
    frame = protocol.encode(
        protocol.Results(
            1,
            [
                protocol.NodeResult(
                    "n1",
                    False,
                    None,
                    {
                        ("a", f"p{i}"): (90 * NS, 15 * NS, (("c", i, 1000, None), ("d", i, 2000, 7)))
                        for i in range(50)
                    },
                )
            ],
        )
    )
    enabled = gc.isenabled()
    gc.disable()
    try:
        storage = Storage(staleness_ns=STALENESS)
        cycle = storage.begin(100 * NS)
        gc.collect()  # the storage is old, as in the server, when a worker's frames arrive
        message = protocol.decode_from_worker(frame[4:])
        assert isinstance(message, protocol.Results)
        result = message.nodes[0]
        cycle.add_usages(result.node, result.usage, result.pods, first=result.first)
        del message, result
        gc.collect(0)  # one pass over everything made since the last collection
        cycle.publish(())
        usages = list(storage.snapshot().pods.values())
        assert len(usages) == 50
        assert not [u for u in usages if gc.is_tracked(u) or gc.is_tracked(u[2]) or gc.is_tracked(u[2][0])]
        assert usages[0] == (90 * NS, 15 * NS, (("c", 0, 1000, None), ("d", 0, 2000, 7)))
    finally:
        if enabled:
            gc.enable()


def test_container_names_are_shared_across_pods_and_cycles() -> None:
    storage = Storage(staleness_ns=STALENESS)
    names: list[str] = []
    for tick in range(2):
        cycle = storage.begin((100 + tick) * NS)
        # Decoded names are new objects each time: one per container, equal, never the same.
        usages = {
            ("a", f"p{i}"): (90 * NS, 15 * NS, (("".join(["co", "nt"]), i, 1000, None),)) for i in range(3)
        }
        assert len({id(usage[2][0][0]) for usage in usages.values()}) == 3
        cycle.add_usages("n1", None, usages)
        cycle.publish(())
        names += [container[0] for usage in storage.snapshot().pods.values() for container in usage[2]]
    assert names == ["cont"] * 6
    assert len({id(name) for name in names}) == 1


def test_a_store_that_does_not_serve_drops_a_node_s_old_points_when_it_is_added() -> None:
    from metrics_server.scrape.batch import NodeBatch, Point

    def batch(node: str, ts: int, cpu: int) -> NodeBatch:
        return NodeBatch(node, Point(ts, cpu, 500, 1), {("a", f"p-{node}"): {"c": Point(ts, cpu, 100, 1)}})

    worker = Storage(staleness_ns=STALENESS, serves=False)
    cycle = worker.begin(100 * NS)
    for node in ("n1", "n2"):
        cycle.add(batch(node, 100 * NS, 10 * NS))
    cycle.publish(())
    states = worker._states
    old_n1 = states["n1"]
    cycle = worker.begin(115 * NS)
    result = cycle.add(batch("n1", 115 * NS, 13 * NS))
    assert result is not None and not result.first  # rates from the old points, then they go
    assert "n1" not in states and states["n2"] is not None  # n2 is not added yet: kept
    assert sys.getrefcount(old_n1) == 2  # only this test holds it
    result = cycle.add(batch("n2", 115 * NS, 13 * NS))
    assert result is not None
    # The usages it returns are not held by the store: they go with the caller's last reference.
    usage = result.pod_usage[("a", "p-n2")]
    assert sys.getrefcount(usage) == 3  # the result's mapping, this variable, the call's argument
    assert usage == (115 * NS, 15 * NS, (("c", NS // 5, 100, None),))
    cycle.publish(())
    assert sorted(worker._states) == ["n1", "n2"]
