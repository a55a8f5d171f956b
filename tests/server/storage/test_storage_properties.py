"""Property: the store's fast path and pod assembly agree with the rule function applied one
container at a time, for random sequences of restarts, resets, repeats and reordered samples."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from metrics_server.scrape.batch import NodeBatch, PodKey, Point
from metrics_server.storage.rates import _advance_container
from metrics_server.storage.snapshot import ContainerUsage, PodUsage
from metrics_server.storage.store import Storage

S = 1_000_000_000
RES = 15 * S
T0 = 1_700_000_000 * S
POD: PodKey = ("ns", "pod")
NAMES = ("a", "b")

# One container's step: (timestamp delta, cpu delta, start-time change).
step = st.tuples(
    st.sampled_from([-40 * S, -5 * S, 0, 1, 5 * S, 12 * S, RES, 40 * S]),
    st.sampled_from([-S, 0, 1, 2 * S + 3]),
    st.sampled_from(["same", "same", "same", "restart", "earlier", "unknown"]),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(step, step), min_size=1, max_size=8))
def test_store_matches_the_rule_applied_per_container(cycles: list[tuple[tuple[int, int, str], ...]]) -> None:
    storage = Storage(staleness_ns=2 * RES, resolution_ns=RES)
    current = {name: Point(T0, 10 * S, 1000, T0 - 11 * S) for name in NAMES}
    model: dict[str, tuple[Point, Point | None]] = {}
    for cycle in cycles:
        for name, (dt, dcpu, start_change) in zip(NAMES, cycle, strict=True):
            ts, cpu, memory, start, _ = current[name]
            ts += dt
            start = {
                "same": start,
                "restart": ts - 11 * S,
                "earlier": start - S if start else 0,
                "unknown": 0,
            }[start_change]
            current[name] = Point(ts, max(cpu + dcpu, 0), memory + 1, start)
        for name in NAMES:
            last, prev = model.get(name, (None, None))
            model[name] = _advance_container(current[name], last, prev, RES, 2 * RES)
        storage.store([NodeBatch("n", None, {POD: dict(current)})], (), T0)

        expected: PodUsage | None = None
        if all(prev is not None for _, prev in model.values()):
            usages = []
            earliest: tuple[int, int] | None = None
            for name in NAMES:
                last, prev = model[name]
                assert prev is not None
                window = last.timestamp_ns - prev.timestamp_ns
                assert window > 0
                assert last.cpu_ns >= prev.cpu_ns
                usages.append(
                    ContainerUsage(name, (last.cpu_ns - prev.cpu_ns) * S // window, last.memory_bytes)
                )
                if earliest is None or (last.timestamp_ns, window) < earliest:
                    earliest = (last.timestamp_ns, window)
            assert earliest is not None
            expected = PodUsage(earliest[0], earliest[1], tuple(usages))
        assert storage.snapshot().pod(*POD) == expected
