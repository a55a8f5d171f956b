"""Storage: two-point rates, guards, fresh/restarted containers, failed-node retention, publish.

Every expected rate is an exact integer: floor(Δcpu_ns * 1e9 / Δt_ns).
"""

from __future__ import annotations

import logging

import pytest

from metrics_server.scrape.batch import NodeBatch, PodKey, Point
from metrics_server.storage.snapshot import ContainerUsage, DictSnapshot, NodeUsage, PodUsage
from metrics_server.storage.store import FRESH_CONTAINER_MIN_AGE_NS, Storage

S = 1_000_000_000
RES = 15 * S
T0 = 1_700_000_000 * S
START = T0 - 3600 * S  # a container running for an hour
POD: PodKey = ("default", "web-0")


def new_storage() -> Storage:
    return Storage(staleness_ns=2 * RES, resolution_ns=RES)


def pt(ts: int, cpu: int, memory: int = 1000, start: int = START, swap: int | None = None) -> Point:
    return Point(ts, cpu, memory, start, swap)


def batch(node: str = "n1", node_point: Point | None = None, **containers: Point) -> NodeBatch:
    """A batch with one pod (POD) holding `containers`; no pod when none are given."""
    return NodeBatch(node, node_point, {POD: dict(containers)} if containers else {})


def pod_batch(node: str, node_point: Point | None, pods: dict[PodKey, dict[str, Point]]) -> NodeBatch:
    return NodeBatch(node, node_point, pods)


# --- rates -----------------------------------------------------------------------------------


def test_first_scrape_serves_nothing_second_serves_exact_rates() -> None:
    st = new_storage()
    st.store([batch(node_point=pt(T0, 100 * S, 5000, start=0), app=pt(T0, 50 * S, 700))], (), T0)
    assert st.snapshot().node("n1") is None
    assert st.snapshot().pod(*POD) is None
    assert st.points() == (0, 0)

    node2 = pt(T0 + RES, 100 * S + 1_000_000_007, 6000, start=0, swap=11)
    app2 = pt(T0 + 14_997_000_000, 53 * S + 1, 800, swap=22)
    st.store([batch(node_point=node2, app=app2)], (), T0 + RES)
    assert st.snapshot().node("n1") == NodeUsage(T0 + RES, RES, 66_666_667, 6000, 11)
    assert st.snapshot().pod(*POD) == PodUsage(
        T0 + 14_997_000_000, 14_997_000_000, (ContainerUsage("app", 200_040_008, 800, 22),)
    )
    assert st.points() == (1, 1)


def test_steady_counters_over_three_cycles() -> None:
    st = new_storage()
    for i, cpu in enumerate([0, 2 * S, 4 * S]):
        st.store([batch(node_point=pt(T0 + 12 * S * i, 10 * S + cpu), app=pt(T0 + 12 * S * i, cpu))], (), T0)
    assert st.snapshot().node("n1") == NodeUsage(T0 + 24 * S, 12 * S, 166_666_666, 1000)
    assert st.snapshot().pod(*POD) == PodUsage(
        T0 + 24 * S, 12 * S, (ContainerUsage("app", 166_666_666, 1000),)
    )


def test_pod_containers_sorted_and_timestamp_window_from_earliest_sample() -> None:
    st = new_storage()
    st.store([batch(zeta=pt(T0, 0), alpha=pt(T0 + S, 0), mid=pt(T0 + 2 * S, 0))], (), T0)
    st.store(
        [batch(zeta=pt(T0 + 16 * S, 2 * S), alpha=pt(T0 + 15 * S, 3 * S), mid=pt(T0 + 15 * S, 4 * S))], (), T0
    )
    # alpha and mid share the earliest timestamp; the shorter window (mid: 13 s) is taken.
    assert st.snapshot().pod(*POD) == PodUsage(
        T0 + 15 * S,
        13 * S,
        (
            ContainerUsage("alpha", 214_285_714, 1000),
            ContainerUsage("mid", 307_692_307, 1000),
            ContainerUsage("zeta", 125_000_000, 1000),
        ),
    )


# --- guards -----------------------------------------------------------------------------------


def test_counter_decrease_skips_one_cycle_then_pairs_with_the_reset_point() -> None:
    st = new_storage()
    st.store([batch(node_point=pt(T0, 500 * S), app=pt(T0, 90 * S))], (), T0)
    st.store([batch(node_point=pt(T0 + RES, 3 * S), app=pt(T0 + RES, 1 * S))], (), T0 + RES)
    assert st.snapshot().node("n1") is None
    assert st.snapshot().pod(*POD) is None
    assert st.points() == (0, 0)
    st.store([batch(node_point=pt(T0 + 2 * RES, 6 * S), app=pt(T0 + 2 * RES, 2 * S))], (), T0 + 2 * RES)
    assert st.snapshot().node("n1") == NodeUsage(T0 + 2 * RES, RES, 200_000_000, 1000)
    assert st.snapshot().pod(*POD) == PodUsage(T0 + 2 * RES, RES, (ContainerUsage("app", 66_666_666, 1000),))


def test_restart_start_moved_forward_before_last_sample_is_not_computed_across() -> None:
    # The new start time is later than the stored one but earlier than the stored sample:
    # inconsistent, so neither a rate across it nor a from-start measurement.
    st = new_storage()
    st.store([batch(app=pt(T0, 90 * S))], (), T0)
    st.store([batch(app=pt(T0 + RES, 95 * S, start=T0 - S))], (), T0 + RES)
    assert st.snapshot().pod(*POD) is None
    st.store([batch(app=pt(T0 + 2 * RES, 96 * S, start=T0 - S))], (), T0 + 2 * RES)
    assert st.snapshot().pod(*POD) == PodUsage(T0 + 2 * RES, RES, (ContainerUsage("app", 66_666_666, 1000),))


def test_restarted_container_measured_from_its_start_time() -> None:
    st = new_storage()
    st.store([batch(app=pt(T0, 90 * S))], (), T0)
    restart = T0 + 3 * S  # after the previous sample; 12 s before the new one
    st.store([batch(app=pt(T0 + RES, 2 * S, start=restart))], (), T0 + RES)
    assert st.snapshot().pod(*POD) == PodUsage(T0 + RES, 12 * S, (ContainerUsage("app", 166_666_666, 1000),))
    # Next cycle pairs with the real point, not the synthetic one.
    st.store([batch(app=pt(T0 + 2 * RES, 5 * S, start=restart))], (), T0 + 2 * RES)
    assert st.snapshot().pod(*POD) == PodUsage(T0 + 2 * RES, RES, (ContainerUsage("app", 200_000_000, 1000),))


def test_restarted_container_that_ran_under_10s_hides_the_pod_for_one_cycle() -> None:
    st = new_storage()
    st.store([batch(app=pt(T0, 90 * S), side=pt(T0, 1 * S))], (), T0)
    restart = T0 + RES - FRESH_CONTAINER_MIN_AGE_NS + 1  # ran 10 s minus 1 ns
    st.store([batch(app=pt(T0 + RES, 2 * S, start=restart), side=pt(T0 + RES, 2 * S))], (), T0 + RES)
    assert st.snapshot().pod(*POD) is None  # never a subset of the pod's containers
    assert st.points() == (0, 0)


def test_restart_at_exactly_the_previous_sample_time_counts_as_restart() -> None:
    st = new_storage()
    st.store([batch(app=pt(T0, 90 * S, start=0))], (), T0)  # start unknown: only the timestamp rule
    st.store([batch(app=pt(T0 + RES, 3 * S, start=T0))], (), T0 + RES)
    assert st.snapshot().pod(*POD) == PodUsage(T0 + RES, RES, (ContainerUsage("app", 200_000_000, 1000),))


def test_start_time_decrease_skips_one_cycle() -> None:
    st = new_storage()
    st.store([batch(app=pt(T0, 90 * S))], (), T0)
    st.store([batch(app=pt(T0 + RES, 91 * S, start=START - S))], (), T0 + RES)
    assert st.snapshot().pod(*POD) is None
    st.store([batch(app=pt(T0 + 2 * RES, 94 * S, start=START - S))], (), T0 + 2 * RES)
    assert st.snapshot().pod(*POD) == PodUsage(T0 + 2 * RES, RES, (ContainerUsage("app", 200_000_000, 1000),))


def test_node_start_time_restart_and_decrease() -> None:
    st = new_storage()
    st.store([batch(node_point=pt(T0, 500 * S, start=START))], (), T0)
    st.store([batch(node_point=pt(T0 + RES, 600 * S, start=T0 + S))], (), T0 + RES)  # rebooted
    assert st.snapshot().node("n1") is None  # nodes are never measured from their start time
    st.store([batch(node_point=pt(T0 + 2 * RES, 603 * S, start=START))], (), T0 + 2 * RES)  # went back
    assert st.snapshot().node("n1") is None
    st.store([batch(node_point=pt(T0 + 3 * RES, 606 * S, start=START))], (), T0 + 3 * RES)
    assert st.snapshot().node("n1") == NodeUsage(T0 + 3 * RES, RES, 200_000_000, 1000)


def test_out_of_order_point_is_ignored() -> None:
    st = new_storage()
    st.store([batch(node_point=pt(T0, 0), app=pt(T0, 0))], (), T0)
    st.store([batch(node_point=pt(T0 + RES, 3 * S), app=pt(T0 + RES, 3 * S))], (), T0 + RES)
    before = st.snapshot()
    # Older than the stored last: nothing changes, the same usage is served again.
    st.store([batch(node_point=pt(T0 + 5 * S, 1 * S), app=pt(T0 + 5 * S, 1 * S))], (), T0 + 2 * RES)
    assert st.snapshot().node("n1") == before.node("n1") == NodeUsage(T0 + RES, RES, 200_000_000, 1000)
    assert st.snapshot().pod(*POD) == before.pod(*POD)
    # The next newer point pairs with the kept last (T0 + RES), never with the ignored one.
    st.store([batch(node_point=pt(T0 + 2 * RES, 6 * S), app=pt(T0 + 2 * RES, 9 * S))], (), T0 + 2 * RES)
    assert st.snapshot().node("n1") == NodeUsage(T0 + 2 * RES, RES, 200_000_000, 1000)
    assert st.snapshot().pod(*POD) == PodUsage(T0 + 2 * RES, RES, (ContainerUsage("app", 400_000_000, 1000),))


def test_point_older_than_staleness_means_the_clock_went_back_and_starts_over() -> None:
    st = new_storage()
    st.store([batch(node_point=pt(T0, 0), app=pt(T0, 0))], (), T0)
    st.store([batch(node_point=pt(T0 + RES, 3 * S), app=pt(T0 + RES, 3 * S))], (), T0 + RES)
    back = T0 + RES - 2 * RES  # exactly the staleness limit: still an ignored reorder
    st.store([batch(node_point=pt(back, 4 * S), app=pt(back, 4 * S))], (), T0 + 2 * RES)
    assert st.snapshot().node("n1") == NodeUsage(T0 + RES, RES, 200_000_000, 1000)
    assert st.snapshot().pod(*POD) == PodUsage(T0 + RES, RES, (ContainerUsage("app", 200_000_000, 1000),))
    back -= 1
    st.store([batch(node_point=pt(back, 4 * S), app=pt(back, 4 * S))], (), T0 + 3 * RES)
    assert st.snapshot().node("n1") is None
    assert st.snapshot().pod(*POD) is None
    st.store([batch(node_point=pt(back + RES, 7 * S), app=pt(back + RES, 7 * S))], (), T0 + 4 * RES)
    assert st.snapshot().node("n1") == NodeUsage(back + RES, RES, 200_000_000, 1000)
    assert st.snapshot().pod(*POD) == PodUsage(back + RES, RES, (ContainerUsage("app", 200_000_000, 1000),))


def test_repeated_sample_keeps_the_pair_that_gives_a_rate() -> None:
    st = new_storage()
    st.store([batch(node_point=pt(T0, 0), app=pt(T0, 0))], (), T0)
    # Second scrape repeats the first sample: no pair yet, and never a window of 0.
    st.store([batch(node_point=pt(T0, 0), app=pt(T0, 0))], (), T0 + RES)
    assert st.snapshot().node("n1") is None
    assert st.snapshot().pod(*POD) is None
    st.store([batch(node_point=pt(T0 + RES, 3 * S), app=pt(T0 + RES, 6 * S))], (), T0 + 2 * RES)
    expected_node = NodeUsage(T0 + RES, RES, 200_000_000, 1000)
    expected_pod = PodUsage(T0 + RES, RES, (ContainerUsage("app", 400_000_000, 1000),))
    assert (st.snapshot().node("n1"), st.snapshot().pod(*POD)) == (expected_node, expected_pod)
    # The kubelet serves the same sample again: (prev, last) still give the same rate.
    st.store([batch(node_point=pt(T0 + RES, 3 * S), app=pt(T0 + RES, 6 * S))], (), T0 + 3 * RES)
    assert (st.snapshot().node("n1"), st.snapshot().pod(*POD)) == (expected_node, expected_pod)
    # And the next fresh sample pairs with the repeated one.
    st.store([batch(node_point=pt(T0 + 2 * RES, 6 * S), app=pt(T0 + 2 * RES, 9 * S))], (), T0 + 4 * RES)
    assert st.snapshot().pod(*POD) == PodUsage(T0 + 2 * RES, RES, (ContainerUsage("app", 200_000_000, 1000),))


# --- fresh containers ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("age", "expected"),
    [
        (9 * S, None),
        (FRESH_CONTAINER_MIN_AGE_NS - 1, None),
        (10 * S, PodUsage(T0, 10 * S, (ContainerUsage("app", 500_000_000, 1000),))),
        (RES - 1, PodUsage(T0, RES - 1, (ContainerUsage("app", 333_333_333, 1000),))),
        (RES, None),  # metrics-server's rule: younger than the resolution only
        (-S, None),  # started after the sample
        (0, None),
    ],
)
def test_fresh_container_served_after_one_scrape(age: int, expected: PodUsage | None) -> None:
    st = new_storage()
    st.store([batch(app=pt(T0, 5 * S, start=T0 - age))], (), T0)
    assert st.snapshot().pod(*POD) == expected


def test_container_whose_first_sample_predates_its_start_is_measured_from_start() -> None:
    st = new_storage()
    st.store([batch(app=pt(T0, 1 * S, start=T0 + 2 * S))], (), T0)
    assert st.snapshot().pod(*POD) is None
    st.store([batch(app=pt(T0 + 20 * S, 3 * S, start=T0 + 2 * S))], (), T0 + 20 * S)
    assert st.snapshot().pod(*POD) == PodUsage(
        T0 + 20 * S, 18 * S, (ContainerUsage("app", 166_666_666, 1000),)
    )


def test_fresh_container_next_cycle_pairs_with_the_real_point() -> None:
    st = new_storage()
    st.store([batch(app=pt(T0, 5 * S, start=T0 - 12 * S))], (), T0)
    st.store([batch(app=pt(T0 + RES, 8 * S, start=T0 - 12 * S))], (), T0 + RES)
    assert st.snapshot().pod(*POD) == PodUsage(T0 + RES, RES, (ContainerUsage("app", 200_000_000, 1000),))


def test_unknown_start_time_is_never_fresh() -> None:
    st = new_storage()
    st.store([batch(app=pt(T0, 5 * S, start=0))], (), T0)
    assert st.snapshot().pod(*POD) is None
    st.store([batch(app=pt(T0 + RES, 8 * S, start=0))], (), T0 + RES)
    assert st.snapshot().pod(*POD) == PodUsage(T0 + RES, RES, (ContainerUsage("app", 200_000_000, 1000),))


def test_default_fresh_bound_is_half_the_staleness() -> None:
    st = Storage(staleness_ns=60 * S)  # wiring default: staleness = 2 x resolution (30 s)
    st.store([batch(app=pt(T0, 5 * S, start=T0 - 29 * S))], (), T0)
    assert st.snapshot().pod(*POD) == PodUsage(T0, 29 * S, (ContainerUsage("app", 172_413_793, 1000),))
    st = Storage(staleness_ns=60 * S)
    st.store([batch(app=pt(T0, 5 * S, start=T0 - 30 * S))], (), T0)
    assert st.snapshot().pod(*POD) is None


# --- whole pods only ------------------------------------------------------------------------------


def test_pod_with_one_container_missing_a_rate_is_omitted() -> None:
    st = new_storage()
    st.store([batch(app=pt(T0, 0))], (), T0)
    # A sidecar appears (first point, not fresh): the app has a rate, the pod is still omitted.
    st.store([batch(app=pt(T0 + RES, 3 * S), sidecar=pt(T0 + RES, 1 * S))], (), T0 + RES)
    assert st.snapshot().pod(*POD) is None
    assert st.points() == (0, 0)
    st.store([batch(app=pt(T0 + 2 * RES, 6 * S), sidecar=pt(T0 + 2 * RES, 4 * S))], (), T0 + 2 * RES)
    assert st.snapshot().pod(*POD) == PodUsage(
        T0 + 2 * RES,
        RES,
        (ContainerUsage("app", 200_000_000, 1000), ContainerUsage("sidecar", 200_000_000, 1000)),
    )
    assert st.points() == (0, 2)


def test_container_gone_from_the_pod_is_forgotten() -> None:
    st = new_storage()
    st.store([batch(app=pt(T0, 0), old=pt(T0, 0))], (), T0)
    st.store([batch(app=pt(T0 + RES, 3 * S))], (), T0 + RES)
    assert st.snapshot().pod(*POD) == PodUsage(T0 + RES, RES, (ContainerUsage("app", 200_000_000, 1000),))
    st.store([batch(app=pt(T0 + 2 * RES, 6 * S), old=pt(T0 + 2 * RES, 6 * S))], (), T0 + 2 * RES)
    assert st.snapshot().pod(*POD) is None  # `old` came back with no stored point


# --- failed scrapes, removed nodes -------------------------------------------------------------------


def two_good_cycles(st: Storage) -> tuple[NodeUsage, PodUsage]:
    st.store([batch(node_point=pt(T0, 0), app=pt(T0 - S, 0))], (), T0)
    st.store([batch(node_point=pt(T0 + RES, 3 * S), app=pt(T0 + RES - S, 3 * S))], (), T0 + RES)
    node = NodeUsage(T0 + RES, RES, 200_000_000, 1000)
    pod = PodUsage(T0 + RES - S, RES, (ContainerUsage("app", 200_000_000, 1000),))
    assert (st.snapshot().node("n1"), st.snapshot().pod(*POD)) == (node, pod)
    return node, pod


def test_failed_scrape_keeps_node_and_pods_until_stale() -> None:
    st = new_storage()
    node, pod = two_good_cycles(st)
    staleness = 2 * RES
    # The pod's sample is 1 s older than the node's, so it expires 1 s earlier.
    st.store([], {"n1"}, T0 + RES - S + staleness)
    assert (st.snapshot().node("n1"), st.snapshot().pod(*POD)) == (node, pod)
    assert st.points() == (1, 1)
    assert st.ready()
    st.store([], {"n1"}, T0 + RES - S + staleness + 1)
    assert (st.snapshot().node("n1"), st.snapshot().pod(*POD)) == (node, None)
    assert st.points() == (1, 0)
    assert not st.ready()
    st.store([], {"n1"}, T0 + RES + staleness)
    assert st.snapshot().node("n1") == node
    st.store([], {"n1"}, T0 + RES + staleness + 1)
    assert st.snapshot().node("n1") is None
    assert st.points() == (0, 0)


def test_failed_node_pod_expires_with_its_oldest_container() -> None:
    st = new_storage()
    st.store([batch(app=pt(T0, 0), side=pt(T0 + 5 * S, 0))], (), T0)
    st.store([batch(app=pt(T0 + RES, 3 * S), side=pt(T0 + RES + 5 * S, 3 * S))], (), T0 + RES)
    pod = PodUsage(
        T0 + RES, RES, (ContainerUsage("app", 200_000_000, 1000), ContainerUsage("side", 200_000_000, 1000))
    )
    st.store([], ["n1"], T0 + 3 * RES)
    assert st.snapshot().pod(*POD) == pod
    st.store([], ["n1"], T0 + 3 * RES + 1)
    assert st.snapshot().pod(*POD) is None
    assert st.points() == (0, 0)


def test_node_back_after_a_failed_scrape_rates_across_the_gap() -> None:
    st = new_storage()
    two_good_cycles(st)
    st.store([], ["n1"], T0 + 2 * RES)
    st.store([batch(node_point=pt(T0 + 3 * RES, 10 * S), app=pt(T0 + 3 * RES - S, 10 * S))], (), T0 + 3 * RES)
    assert st.snapshot().node("n1") == NodeUsage(T0 + 3 * RES, 2 * RES, 233_333_333, 1000)
    assert st.snapshot().pod(*POD) == PodUsage(
        T0 + 3 * RES - S, 2 * RES, (ContainerUsage("app", 233_333_333, 1000),)
    )


def test_node_back_after_stale_needs_two_scrapes() -> None:
    st = new_storage()
    two_good_cycles(st)
    st.store([], ["n1"], T0 + 10 * RES)  # everything stale: state dropped
    st.store([batch(node_point=pt(T0 + 11 * RES, 10 * S), app=pt(T0 + 11 * RES, 10 * S))], (), T0 + 11 * RES)
    assert st.snapshot().node("n1") is None
    assert st.snapshot().pod(*POD) is None


def test_removed_node_is_dropped_with_its_pods() -> None:
    st = new_storage()
    two_good_cycles(st)
    st.store([], (), T0 + RES + 1)
    assert st.snapshot().node("n1") is None
    assert st.snapshot().pod(*POD) is None
    assert st.points() == (0, 0)
    # Its points are gone too: coming back it needs two scrapes.
    st.store([batch(node_point=pt(T0 + 2 * RES, 6 * S), app=pt(T0 + 2 * RES, 6 * S))], (), T0 + 2 * RES)
    assert st.snapshot().node("n1") is None
    assert st.snapshot().pod(*POD) is None


def test_failed_node_never_seen_is_ignored_and_batch_wins_over_failed() -> None:
    st = new_storage()
    two_good_cycles(st)
    st.store(
        [batch(node_point=pt(T0 + 2 * RES, 6 * S), app=pt(T0 + 2 * RES - S, 6 * S))], ["n1", "ghost"], T0
    )
    assert st.snapshot().node("n1") == NodeUsage(T0 + 2 * RES, RES, 200_000_000, 1000)
    app = ContainerUsage("app", 200_000_000, 1000)
    assert st.snapshot().pod(*POD) == PodUsage(T0 + 2 * RES - S, RES, (app,))
    assert st.snapshot().node("ghost") is None
    assert st.points() == (1, 1)


def test_failed_scrape_of_one_node_does_not_touch_another() -> None:
    st = new_storage()
    other: PodKey = ("kube-system", "dns")
    for i in range(2):
        ts = T0 + i * RES
        st.store(
            [
                pod_batch("a", pt(ts, i * 3 * S), {POD: {"app": pt(ts, i * 3 * S)}}),
                pod_batch("b", pt(ts, i * 6 * S), {other: {"dns": pt(ts, i * 6 * S)}}),
            ],
            (),
            ts,
        )
    ts = T0 + 2 * RES
    st.store([pod_batch("b", pt(ts, 9 * S), {other: {"dns": pt(ts, 9 * S)}})], ["a"], ts)
    assert st.snapshot().node("a") == NodeUsage(T0 + RES, RES, 200_000_000, 1000)
    assert st.snapshot().node("b") == NodeUsage(ts, RES, 200_000_000, 1000)
    assert st.snapshot().pod(*POD) == PodUsage(T0 + RES, RES, (ContainerUsage("app", 200_000_000, 1000),))
    assert st.snapshot().pod(*other) == PodUsage(ts, RES, (ContainerUsage("dns", 200_000_000, 1000),))
    assert st.points() == (2, 2)


# --- duplicates across nodes -------------------------------------------------------------------------


def test_duplicate_pod_first_batch_wins_logged_once(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="metrics_server.storage.store")
    st = new_storage()
    for i in range(3):
        ts = T0 + i * RES
        st.store(
            [
                pod_batch("new", None, {POD: {"app": pt(ts, i * 3 * S)}}),
                pod_batch("old", None, {POD: {"app": pt(ts, i * 6 * S)}}),
            ],
            (),
            ts,
        )
    assert st.snapshot().pod(*POD) == PodUsage(T0 + 2 * RES, RES, (ContainerUsage("app", 200_000_000, 1000),))
    assert st.points() == (0, 1)
    assert [r.getMessage() for r in caplog.records] == [
        "pod default/web-0 is reported by nodes new and old; serving the one from new"
    ]


def test_duplicate_first_batch_wins_even_without_a_rate() -> None:
    st = new_storage()
    st.store([pod_batch("old", None, {POD: {"app": pt(T0, 0)}})], (), T0)
    ts = T0 + RES
    st.store(
        [
            pod_batch("new", None, {POD: {"app": pt(ts, 0)}}),
            pod_batch("old", None, {POD: {"app": pt(ts, 3 * S)}}),
        ],
        (),
        ts,
    )
    assert st.snapshot().pod(*POD) is None


def test_pod_kept_from_failed_node_loses_to_a_scraped_node(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="metrics_server.storage.store")
    st = new_storage()
    two_good_cycles(st)  # POD on n1
    ts = T0 + 2 * RES
    st.store([pod_batch("n2", None, {POD: {"app": pt(ts, 5 * S, start=ts - 12 * S)}})], ["n1"], ts)
    assert st.snapshot().pod(*POD) == PodUsage(ts, 12 * S, (ContainerUsage("app", 416_666_666, 1000),))
    assert st.snapshot().node("n1") == NodeUsage(T0 + RES, RES, 200_000_000, 1000)
    assert caplog.records == []  # a rescheduled pod is expected, not a duplicate to report


def test_second_batch_of_the_same_node_is_ignored(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.WARNING, logger="metrics_server.storage.cycle")
    st = new_storage()
    st.store([batch(node_point=pt(T0, 0))], (), T0)
    ts = T0 + RES
    st.store([batch(node_point=pt(ts, 3 * S)), batch(node_point=pt(ts, 9 * S))], (), ts)
    assert st.snapshot().node("n1") == NodeUsage(ts, RES, 200_000_000, 1000)
    assert [r.getMessage() for r in caplog.records] == ["node n1: a second batch in one cycle is ignored"]


# --- readiness, points, publish -----------------------------------------------------------------------


def test_readiness_transitions(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="metrics_server.storage.store")
    st = new_storage()
    assert not st.ready()
    st.store([batch(node_point=pt(T0, 0))], (), T0)
    assert not st.ready()
    st.store([batch(node_point=pt(T0 + RES, 3 * S), app=pt(T0 + RES, 0))], (), T0 + RES)
    assert not st.ready()  # a node but no pod
    st.store([batch(node_point=pt(T0 + 2 * RES, 6 * S), app=pt(T0 + 2 * RES, 3 * S))], (), T0 + 2 * RES)
    assert st.ready()
    st.store([batch(node_point=pt(T0 + 3 * RES, 9 * S), app=pt(T0 + 3 * RES, 6 * S))], (), T0 + 3 * RES)
    assert st.ready()
    st.store([batch(node_point=pt(T0 + 4 * RES, 12 * S))], (), T0 + 4 * RES)
    assert not st.ready()
    st.store([], (), T0 + 5 * RES)
    assert not st.ready()
    assert [r.getMessage() for r in caplog.records] == [
        "storage ready: 1 nodes and 1 pods servable",
        "storage not ready: 1 nodes but no pod servable; check the container runtime and the kubelet's "
        "container metrics",
    ]


def test_points_count_servable_nodes_and_containers() -> None:
    st = new_storage()
    pods = [("ns", f"p{i}") for i in range(3)]
    for i in range(2):
        ts = T0 + i * RES
        node_pods: dict[PodKey, dict[str, Point]] = {
            pods[0]: {"a": pt(ts, i * S), "b": pt(ts, i * S)},
            pods[1]: {"a": pt(ts, i * S)},
        }
        if i:
            node_pods[pods[2]] = {"a": pt(ts, i * S)}  # first seen: not servable yet
        st.store([pod_batch("n1", pt(ts, i * S), node_pods), pod_batch("n2", None, {})], (), ts)
    assert st.points() == (1, 3)


def test_snapshot_taken_before_store_is_unchanged() -> None:
    st = new_storage()
    node, pod = two_good_cycles(st)
    before = st.snapshot()
    assert isinstance(before, DictSnapshot)
    nodes_copy, pods_copy = dict(before.nodes), dict(before.pods)
    st.store(
        [
            batch(node_point=pt(T0 + 2 * RES, 9 * S), app=pt(T0 + 2 * RES, 9 * S)),
            pod_batch("n2", pt(T0 + 2 * RES, S), {("x", "y"): {"c": pt(T0 + 2 * RES, S, start=T0 + 18 * S)}}),
        ],
        (),
        T0 + 2 * RES,
    )
    after = st.snapshot()
    assert after is not before
    assert (before.node("n1"), before.pod(*POD)) == (node, pod)
    assert (dict(before.nodes), dict(before.pods)) == (nodes_copy, pods_copy)
    assert before.pod("x", "y") is None
    assert after.pod("x", "y") == PodUsage(T0 + 2 * RES, 12 * S, (ContainerUsage("c", 83_333_333, 1000),))
    st.store([], (), T0 + 3 * RES)
    assert (dict(after.nodes), len(after.pods)) == ({"n1": after.node("n1")}, 2)


def test_swap_is_carried_through() -> None:
    st = new_storage()
    st.store([batch(node_point=pt(T0, 0, swap=1), app=pt(T0, 0, swap=2))], (), T0)
    st.store([batch(node_point=pt(T0 + RES, 0, swap=3 << 30), app=pt(T0 + RES, 0, swap=0))], (), T0 + RES)
    assert st.snapshot().node("n1") == NodeUsage(T0 + RES, RES, 0, 1000, 3 << 30)
    assert st.snapshot().pod(*POD) == PodUsage(T0 + RES, RES, (ContainerUsage("app", 0, 1000, 0),))


def test_node_batch_without_node_point_serves_pods_only() -> None:
    st = new_storage()
    st.store([batch(node_point=pt(T0, 0), app=pt(T0, 0))], (), T0)
    st.store([batch(app=pt(T0 + RES, 3 * S))], (), T0 + RES)
    assert st.snapshot().node("n1") is None
    assert st.snapshot().pod(*POD) == PodUsage(T0 + RES, RES, (ContainerUsage("app", 200_000_000, 1000),))


@pytest.mark.parametrize("kwargs", [{"staleness_ns": 0}, {"staleness_ns": 30 * S, "resolution_ns": 0}])
def test_non_positive_durations_are_refused(kwargs: dict[str, int]) -> None:
    with pytest.raises(ValueError, match="must be positive"):
        Storage(**kwargs)


# --- incremental cycles ----------------------------------------------------------------------------


def test_incremental_cycle_is_invisible_until_published_and_equals_store() -> None:
    st, whole = new_storage(), new_storage()
    node, pod = two_good_cycles(st)
    two_good_cycles(whole)
    ts = T0 + 2 * RES

    def batches() -> list[NodeBatch]:
        return [
            batch(node_point=pt(ts, 6 * S), app=pt(ts - S, 6 * S)),
            pod_batch("n2", pt(ts, 0), {("x", "y"): {"c": pt(ts, S, start=ts - 12 * S)}}),
        ]

    cycle = st.begin(ts)
    for b in batches():
        cycle.add(b)
        assert (st.snapshot().node("n1"), st.snapshot().pod(*POD), st.snapshot().pod("x", "y")) == (
            node,
            pod,
            None,
        )
    cycle.publish(())
    whole.store(batches(), (), ts)
    assert (
        dict(st.snapshot().nodes)
        == dict(whole.snapshot().nodes)
        == {"n1": NodeUsage(ts, RES, 200_000_000, 1000)}
    )
    assert dict(st.snapshot().pods) == dict(whole.snapshot().pods)
    assert st.snapshot().pod("x", "y") == PodUsage(ts, 12 * S, (ContainerUsage("c", 83_333_333, 1000),))
    assert st.points() == whole.points() == (1, 2)


def test_cycle_cannot_be_reused_or_published_over_a_newer_cycle() -> None:
    st = new_storage()
    cycle = st.begin(T0)
    cycle.publish(())
    with pytest.raises(RuntimeError, match="already published"):
        cycle.add(batch(node_point=pt(T0, 0)))
    with pytest.raises(RuntimeError, match="already published"):
        cycle.publish(())
    late = st.begin(T0)
    late.add(batch(node_point=pt(T0, 0)))
    st.store([batch(node_point=pt(T0, 0))], (), T0)
    with pytest.raises(RuntimeError, match="another cycle was published after this one began"):
        late.publish(())


def test_abandoned_cycle_leaves_the_stored_points_intact() -> None:
    st = new_storage()
    node, pod = two_good_cycles(st)
    cycle = st.begin(T0 + 2 * RES)
    cycle.add(batch(node_point=pt(T0 + 2 * RES, 0), app=pt(T0 + 2 * RES - S, 0)))  # counters reset
    del cycle
    assert (st.snapshot().node("n1"), st.snapshot().pod(*POD)) == (node, pod)
    st.store([batch(node_point=pt(T0 + 2 * RES, 6 * S), app=pt(T0 + 2 * RES - S, 6 * S))], (), T0 + 2 * RES)
    assert st.snapshot().node("n1") == NodeUsage(T0 + 2 * RES, RES, 200_000_000, 1000)
    assert st.snapshot().pod(*POD) == PodUsage(
        T0 + 2 * RES - S, RES, (ContainerUsage("app", 200_000_000, 1000),)
    )
