"""`Cycle.publish_steps`: the same result as `publish`; readers see the old cycle until the one
swap step; failed-node work and freeing split into steps; the staleness time given at publish;
misuse refused; what readers still hold stays whole while the replaced cycle is freed."""

from __future__ import annotations

import sys
from collections.abc import Collection

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from metrics_server.scrape.batch import NodeBatch, PodKey, Point
from metrics_server.storage import store
from metrics_server.storage.snapshot import NodeUsage, PodUsage
from metrics_server.storage.store import Storage

S = 1_000_000_000
RES = 15 * S
T0 = 1_700_000_000 * S
START = T0 - 3600 * S
NODES = ("n0", "n1", "n2", "n3")


def new_storage() -> Storage:
    return Storage(staleness_ns=2 * RES, resolution_ns=RES)


def cluster(tick: int, nodes: Collection[str] = NODES, pods: int = 3) -> list[NodeBatch]:
    """Every node's batch of `tick`: a node sample and `pods` one-container pods, all growing."""
    ts = T0 + tick * RES
    return [
        NodeBatch(
            name,
            Point(ts, tick * 3 * S, 1000),
            {
                (f"ns-{name}", f"p{p}"): {"c": Point(ts, tick * (p + 1) * S, 1000 + p, START)}
                for p in range(pods)
            },
        )
        for name in nodes
    ]


Contents = tuple[dict[str, NodeUsage], dict[PodKey, PodUsage], tuple[int, int], bool]


def contents(storage: Storage) -> Contents:
    snap = storage.snapshot()
    return dict(snap.nodes), dict(snap.pods), storage.points(), storage.ready()


def two_ticks(*storages: Storage) -> None:
    for storage in storages:
        for tick in range(2):
            storage.store(cluster(tick), (), T0 + tick * RES)


@pytest.mark.parametrize(("step_pods", "swap_at"), [(1, 2), (4, 2), (5, 1), (1000, 0)])
def test_steps_equal_publish_and_readers_see_the_old_cycle_until_the_swap(
    step_pods: int, swap_at: int
) -> None:
    steps, whole = new_storage(), new_storage()
    two_ticks(steps, whole)
    now = T0 + 2 * RES
    failed = ["n2", "n3", "ghost"]  # 4 units of work each (node + 3 pods); "ghost" was never seen
    whole.store(cluster(2, ["n0", "n1"]), failed, now)

    before = steps.snapshot()
    old = contents(steps)
    cycle = steps.begin(now)
    for batch in cluster(2, ["n0", "n1"]):
        cycle.add(batch)
    served_at_each_pause = []
    for _ in cycle.publish_steps(failed, step_pods=step_pods):
        served_at_each_pause.append(steps.snapshot() is before)
        if steps.snapshot() is before:
            assert contents(steps) == old
    # The old cycle up to the swap step, the new one from then on: one swap.
    assert served_at_each_pause.index(False) == swap_at
    assert all(served_at_each_pause[:swap_at]) and not any(served_at_each_pause[swap_at:])
    assert contents(steps) == contents(whole)
    assert steps.points() == (4, 12)
    assert steps.snapshot().node("n3") == before.node("n3")


def test_freeing_the_replaced_cycle_is_split_into_steps() -> None:
    storage = new_storage()
    two_ticks(storage)
    reader = storage.snapshot()
    cycle = storage.begin(T0 + 2 * RES)
    for batch in cluster(2):
        cycle.add(batch)
    # The swap's pause, then one per node of the replaced states (1 + 3 pods each).
    assert len(list(cycle.publish_steps((), step_pods=4))) == 1 + 4
    reader, dropped = storage.snapshot(), reader
    cycle = storage.begin(T0 + 3 * RES)
    for batch in cluster(3):
        cycle.add(batch)
    # Dropped after the adds (which would have freed it): its 12 pods and 4 nodes go to the
    # graveyard, which the publish empties 4 entries at a time.
    del dropped
    pods, nodes = 3, 1
    assert len(list(cycle.publish_steps((), step_pods=4))) == 1 + 4 + pods + nodes
    # A mapping a reader still holds is freed through private tuples of 4 keys or values: one
    # step per 4 keys to take references to them and their values, one per tuple to release it.
    reader, dropped = storage.snapshot(), reader
    held = dropped.pods
    cycle = storage.begin(T0 + 4 * RES)
    for batch in cluster(4):
        cycle.add(batch)
    del dropped
    pods = 3 + 6
    assert len(list(cycle.publish_steps((), step_pods=4))) == 1 + 4 + pods + nodes
    assert len(held) == 12


def test_a_dropped_snapshot_is_freed_while_the_next_cycle_is_built(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(store, "GRAVEYARD_STEP", 4)
    storage = new_storage()
    two_ticks(storage)
    reader = storage.snapshot()
    usage = reader.pod("ns-n3", "p2")  # the last of its 12 pods
    assert usage is not None
    storage.store(cluster(2), (), T0 + 2 * RES)
    del reader  # its 12 pods and 4 nodes go to the graveyard
    assert sys.getrefcount(usage) == 3
    cycle = storage.begin(T0 + 3 * RES)
    batches = cluster(3)
    # One step per node added: the nodes mapping emptied in one, then the pods mapping 4 entries a
    # step, the last added first: `usage`'s entry goes in the second step.
    cycle.add(batches[0])
    assert sys.getrefcount(usage) == 3
    cycle.add(batches[1])
    assert sys.getrefcount(usage) == 2  # freed before the publish: only this test holds it


def test_staleness_is_judged_at_the_time_given_to_publish() -> None:
    storages = [new_storage() for _ in range(3)]
    two_ticks(*storages)
    fresh, stale = T0 + RES + 2 * RES, T0 + RES + 2 * RES + 1  # n0's points: sampled at T0 + RES
    storages[0].begin(fresh).publish(["n0"], now_ns=stale)
    storages[1].begin(stale).publish(["n0"], now_ns=fresh)
    storages[2].begin(stale).publish(["n0"])
    assert [s.snapshot().node("n0") is None for s in storages] == [True, False, True]


def test_abandoned_before_the_swap_publishes_nothing() -> None:
    storage, reference = new_storage(), new_storage()
    two_ticks(storage, reference)
    old = contents(storage)
    cycle = storage.begin(T0 + 2 * RES)
    cycle.add(cluster(2, ["n0"])[0])
    steps = cycle.publish_steps(["n1", "n2"], step_pods=1)
    next(steps)  # n1 kept, n2 not yet
    del steps
    assert contents(storage) == old
    storage.store(cluster(2), (), T0 + 2 * RES)
    reference.store(cluster(2), (), T0 + 2 * RES)
    assert contents(storage) == contents(reference)


def test_a_cycle_being_published_takes_nothing_more() -> None:
    storage = new_storage()
    cycle = storage.begin(T0)
    steps = cycle.publish_steps((), step_pods=1)
    next(steps)
    with pytest.raises(RuntimeError, match="being published"):
        cycle.add(cluster(0)[0])
    with pytest.raises(RuntimeError, match="being published"):
        cycle.publish(())
    assert list(steps) == []


def test_step_size_must_be_positive() -> None:
    cycle = new_storage().begin(T0)
    with pytest.raises(ValueError, match="step_pods must be positive, got 0"):
        next(cycle.publish_steps((), step_pods=0))
    cycle.publish(())  # the cycle was not consumed


def test_mappings_a_reader_still_holds_stay_whole() -> None:
    storage = new_storage()
    two_ticks(storage)
    held_snapshot = storage.snapshot()
    snapshot_copy = (dict(held_snapshot.nodes), dict(held_snapshot.pods))
    dropped = storage.snapshot()
    held_pods, held_nodes = dropped.pods, dropped.nodes
    mapping_copy = (dict(held_nodes), dict(held_pods))
    del dropped
    for tick in (2, 3):
        cycle = storage.begin(T0 + tick * RES)
        for batch in cluster(tick):
            cycle.add(batch)
        for _ in cycle.publish_steps((), step_pods=1):
            pass
    assert (dict(held_snapshot.nodes), dict(held_snapshot.pods)) == snapshot_copy
    assert (dict(held_nodes), dict(held_pods)) == mapping_copy
    assert len(held_pods) == 12


def test_a_dropped_snapshot_is_freed_by_the_next_cycle_at_the_latest() -> None:
    storage = new_storage()
    two_ticks(storage)
    reader = storage.snapshot()
    usage = reader.pod("ns-n0", "p0")
    assert usage is not None
    storage.store(cluster(2), (), T0 + 2 * RES)
    del reader
    # Only the graveyard keeps the old snapshot's usages now, until the next cycle frees them.
    assert sys.getrefcount(usage) == 3
    storage.store(cluster(3), (), T0 + 3 * RES)
    assert sys.getrefcount(usage) == 2  # this function's variable and the call's argument


@settings(max_examples=60, deadline=None)
@given(
    st.lists(
        st.tuples(st.sets(st.sampled_from(NODES)), st.sampled_from([1, 2, 5, 100])),
        min_size=1,
        max_size=6,
    )
)
def test_publish_steps_matches_store(ticks: list[tuple[set[str], int]]) -> None:
    steps, whole = new_storage(), new_storage()
    for tick, (failed, step_pods) in enumerate(ticks):
        ok = [name for name in NODES if name not in failed]
        now = T0 + tick * RES + S
        whole.store(cluster(tick, ok), failed, now)
        cycle = steps.begin(now)
        for batch in cluster(tick, ok):
            cycle.add(batch)
        for _ in cycle.publish_steps(failed, step_pods=step_pods):
            pass
        assert contents(steps) == contents(whole)
