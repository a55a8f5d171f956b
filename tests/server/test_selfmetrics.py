"""The six metrics_server_* families: names, types, labels, buckets as metrics-server derives them,
and `exposition()`, which must equal `generate_latest` byte for byte."""

from __future__ import annotations

import re
from collections.abc import Callable

import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st
from prometheus_client import (
    CollectorRegistry,
    Gauge,
    GCCollector,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)

from metrics_server import selfmetrics
from metrics_server.promtext import Histogram, count_stamps, one_stamp
from metrics_server.selfmetrics import (
    DEFAULT_BUCKETS,
    FRESHNESS_BUCKETS,
    RenderedFamily,
    SelfMetrics,
    buckets_for_scrape_duration,
    exponential_buckets,
    exposition,
    exposition_pieces,
)


def observe_age(metrics: SelfMetrics, seconds: float) -> None:
    """One served item `seconds` old: with `now` 0 the age is exactly `seconds`."""
    metrics.observe_freshness(0.0, one_stamp(-seconds))


def render(registry: CollectorRegistry) -> str:
    return generate_latest(registry).decode()


def type_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("# TYPE")]


def test_exactly_six_families_with_their_types() -> None:
    registry = CollectorRegistry()
    SelfMetrics(registry, 15)
    assert type_lines(render(registry)) == [
        "# TYPE metrics_server_api_metric_freshness_seconds histogram",
        "# TYPE metrics_server_kubelet_last_request_time_seconds gauge",
        "# TYPE metrics_server_kubelet_request_duration_seconds histogram",
        "# TYPE metrics_server_kubelet_request_total counter",
        "# TYPE metrics_server_manager_tick_duration_seconds histogram",
        "# TYPE metrics_server_storage_points gauge",
    ]


def test_every_family_in_use_has_its_labels_and_no_created_series() -> None:
    registry = CollectorRegistry()
    metrics = SelfMetrics(registry, 15)
    metrics.record_kubelet_request("node-1", success=True, duration_s=0.02, now_unix_s=1_700_000_000.9)
    metrics.record_kubelet_request("node-2", success=False, duration_s=0.3, now_unix_s=1_700_000_001.2)
    metrics.record_kubelet_request("node-3", success=False, duration_s=None, now_unix_s=1_700_000_001.2)
    metrics.observe_tick_duration(1.5)
    observe_age(metrics, 16.0)
    metrics.set_storage_points(2, 140)
    text = render(registry)
    assert "_created" not in text
    samples = [line for line in text.splitlines() if not line.startswith("#")]
    names = {re.sub(r"[{ ].*", "", line) for line in samples}
    assert names == {
        "metrics_server_api_metric_freshness_seconds_bucket",
        "metrics_server_api_metric_freshness_seconds_count",
        "metrics_server_api_metric_freshness_seconds_sum",
        "metrics_server_kubelet_last_request_time_seconds",
        "metrics_server_kubelet_request_duration_seconds_bucket",
        "metrics_server_kubelet_request_duration_seconds_count",
        "metrics_server_kubelet_request_duration_seconds_sum",
        "metrics_server_kubelet_request_total",
        "metrics_server_manager_tick_duration_seconds_bucket",
        "metrics_server_manager_tick_duration_seconds_count",
        "metrics_server_manager_tick_duration_seconds_sum",
        "metrics_server_storage_points",
    }
    for line in [
        'metrics_server_kubelet_last_request_time_seconds{node="node-1"} 1.7e+09',
        'metrics_server_kubelet_last_request_time_seconds{node="node-2"} 1.700000001e+09',
        'metrics_server_kubelet_request_duration_seconds_bucket{le="0.025",node="node-1"} 1.0',
        'metrics_server_kubelet_request_duration_seconds_bucket{le="0.25",node="node-2"} 0.0',
        'metrics_server_kubelet_request_duration_seconds_bucket{le="0.5",node="node-2"} 1.0',
        'metrics_server_kubelet_request_total{success="false"} 2.0',
        'metrics_server_kubelet_request_total{success="true"} 1.0',
        'metrics_server_manager_tick_duration_seconds_bucket{le="1.0"} 0.0',
        'metrics_server_manager_tick_duration_seconds_bucket{le="2.5"} 1.0',
        'metrics_server_api_metric_freshness_seconds_bucket{le="16.342907885890217"} 1.0',
        'metrics_server_storage_points{type="container"} 140.0',
        'metrics_server_storage_points{type="node"} 2.0',
    ]:
        assert line in samples
    # node-3 never sent a request: counted as a failure, no per-node series.
    assert 'node="node-3"' not in text


def test_request_duration_uses_default_buckets() -> None:
    registry = CollectorRegistry()
    SelfMetrics(registry, 15).record_kubelet_request("n", success=True, duration_s=1, now_unix_s=0)
    les = re.findall(r'request_duration_seconds_bucket\{le="([^"]+)"', render(registry))
    assert les == [
        "0.005",
        "0.01",
        "0.025",
        "0.05",
        "0.1",
        "0.25",
        "0.5",
        "1.0",
        "2.5",
        "5.0",
        "10.0",
        "+Inf",
    ]


def test_value_on_a_bucket_bound_counts_in_that_bucket() -> None:
    registry = CollectorRegistry()
    SelfMetrics(registry, 15).observe_tick_duration(15.0)
    text = render(registry)
    assert 'tick_duration_seconds_bucket{le="12.5"} 0.0' in text
    assert 'tick_duration_seconds_bucket{le="15.0"} 1.0' in text


def test_forgotten_nodes_lose_their_series() -> None:
    registry = CollectorRegistry()
    metrics = SelfMetrics(registry, 15)
    for node in ("a", "b"):
        metrics.record_kubelet_request(node, success=True, duration_s=0.1, now_unix_s=1.0)
    metrics.forget_nodes(["b", "never-seen"])
    text = render(registry)
    assert 'node="a"' in text and 'node="b"' not in text
    assert 'metrics_server_kubelet_request_total{success="true"} 2.0' in text


def test_no_global_registry_and_no_double_registration() -> None:
    one, two = CollectorRegistry(), CollectorRegistry()
    SelfMetrics(one, 15)
    SelfMetrics(two, 15)  # a second registry is independent
    with pytest.raises(ValueError, match="Duplicated timeseries"):
        SelfMetrics(one, 15)


def test_freshness_buckets_match_go_exponential_buckets() -> None:
    assert len(FRESHNESS_BUCKETS) == 20
    assert FRESHNESS_BUCKETS[:3] == (1, 1.364, 1.364 * 1.364)
    assert FRESHNESS_BUCKETS[-1] == pytest.approx(1.364**19)
    with pytest.raises(ValueError, match="invalid exponential buckets"):
        exponential_buckets(1, 1.0, 3)


@pytest.mark.parametrize(
    ("timeout", "extra"),
    [
        (15.0, (12.5, 15.0, 22.5, 30.0)),
        (60.0, (35.0, 60.0, 90.0, 120.0)),
        (10.0, ()),
    ],
)
def test_tick_buckets_above_the_defaults(timeout: float, extra: tuple[float, ...]) -> None:
    assert buckets_for_scrape_duration(timeout) == DEFAULT_BUCKETS + extra


@pytest.mark.parametrize(
    ("timeout", "expected"),
    [
        (3.0, (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 3.0, 5.0, 10.0)),
        (5.0, DEFAULT_BUCKETS),  # already a bucket
        (5.003, DEFAULT_BUCKETS),  # within 5 ms of a bucket: skipped
        (4.996, DEFAULT_BUCKETS),
        (0.002, DEFAULT_BUCKETS),  # within 5 ms of the smallest bucket
    ],
)
def test_tick_buckets_below_the_largest_default(timeout: float, expected: tuple[float, ...]) -> None:
    assert buckets_for_scrape_duration(timeout) == expected


def test_tick_buckets_follow_the_resolution() -> None:
    registry = CollectorRegistry()
    SelfMetrics(registry, 60).observe_tick_duration(70)
    les = re.findall(r'tick_duration_seconds_bucket\{le="([^"]+)"', render(registry))
    assert les[-5:] == ["35.0", "60.0", "90.0", "120.0", "+Inf"]


# --- exposition(): generate_latest's bytes, with per-node text cached between changes ----------------

Op = tuple[str, str, bool, float | None, float]

node_names = st.sampled_from(["a", "b", "node-1", "sim-node-0042", 'odd"name\\x', "new\nline", "p%s%%d"])
durations = st.one_of(
    st.none(),
    st.sampled_from([0.0, 0.005, 0.01, 2.5, 10.0, 1e-9, 123456.0]),
    st.floats(min_value=0, max_value=1e4, allow_nan=False),
)
ops = st.one_of(
    st.tuples(st.just("request"), node_names, st.booleans(), durations, st.floats(0, 3e9, allow_nan=False)),
    st.tuples(st.just("forget"), node_names, st.just(True), st.just(None), st.just(0.0)),
    st.tuples(st.just("tick"), st.just(""), st.just(True), st.floats(0, 100, allow_nan=False), st.just(0.0)),
    st.tuples(st.just("fresh"), st.just(""), st.just(True), st.floats(0, 500, allow_nan=False), st.just(0.0)),
    st.tuples(st.just("points"), st.just(""), st.just(True), st.just(None), st.integers(0, 10**7).map(float)),
    st.tuples(st.just("read"), st.just(""), st.just(True), st.just(None), st.just(0.0)),
)


def apply(metrics: SelfMetrics, op: Op) -> None:
    kind, node, success, value, extra = op
    if kind == "request":
        metrics.record_kubelet_request(node, success=success, duration_s=value, now_unix_s=extra)
    elif kind == "forget":
        metrics.forget_nodes([node])
    elif kind == "tick":
        assert value is not None
        metrics.observe_tick_duration(value)
    elif kind == "fresh":
        assert value is not None
        observe_age(metrics, value)
    elif kind == "points":
        metrics.set_storage_points(int(extra) // 3, int(extra))


@settings(max_examples=150, deadline=None)
@given(st.lists(ops, max_size=40))
def test_exposition_is_generate_latest_after_any_updates(steps: list[Op]) -> None:
    registry = CollectorRegistry(auto_describe=True)
    Gauge("other_gauge", "Another collector's family.", ["x"], registry=registry).labels("1").set(2)
    metrics = SelfMetrics(registry, 15)
    for op in steps:
        apply(metrics, op)
        if op[0] == "read":  # reads in between fill the caches the later reads must not trust blindly
            assert exposition(registry) == generate_latest(registry)
    assert exposition(registry) == generate_latest(registry)


def test_exposition_with_the_process_collectors_the_server_registers() -> None:
    registry = CollectorRegistry(auto_describe=True)
    ProcessCollector(registry=registry)
    PlatformCollector(registry=registry)
    GCCollector(registry=registry)
    metrics = SelfMetrics(registry, 15)
    metrics.record_kubelet_request("n", success=True, duration_s=0.2, now_unix_s=5.0)
    text = exposition(registry).decode()
    # process_* values move between two renderings, so compare the shape: same lines, same names.
    lines = generate_latest(registry).decode().splitlines()
    assert [line.split(" ")[0] for line in text.splitlines()] == [line.split(" ")[0] for line in lines]
    assert text.index("python_info") < text.index("metrics_server_api_metric_freshness_seconds")


def test_a_node_is_rendered_again_only_after_it_changes(monkeypatch: pytest.MonkeyPatch) -> None:
    registry = CollectorRegistry()
    metrics = SelfMetrics(registry, 15)
    for node in ("a", "b", "c"):
        metrics.record_kubelet_request(node, success=True, duration_s=0.1, now_unix_s=1.0)
    rendered: list[str] = []
    original = SelfMetrics._render_node

    def counting(self: SelfMetrics, node: str) -> tuple[bytes, bytes]:
        rendered.append(node)
        return original(self, node)

    monkeypatch.setattr(SelfMetrics, "_render_node", counting)
    first = exposition(registry)
    assert sorted(rendered) == ["a", "b", "c"]
    rendered.clear()
    assert exposition(registry) == first  # nothing changed: nothing rendered
    assert rendered == []
    metrics.observe_tick_duration(2.0)
    observe_age(metrics, 3.0)
    second = exposition(registry)
    assert rendered == []  # the small families are rendered live
    assert second != first and "tick_duration_seconds_count 1.0" in second.decode()
    metrics.record_kubelet_request("b", success=False, duration_s=3.0, now_unix_s=9.0)
    third = exposition(registry).decode()
    assert rendered == ["b"]  # a new tick's request refreshes that node only
    assert 'metrics_server_kubelet_request_duration_seconds_count{node="b"} 2.0' in third
    assert 'metrics_server_kubelet_last_request_time_seconds{node="b"} 9.0' in third
    assert third.encode() == generate_latest(registry)


def test_rendered_families_still_carry_samples_for_other_consumers() -> None:
    registry = CollectorRegistry()
    metrics = SelfMetrics(registry, 15)
    metrics.record_kubelet_request("n", success=True, duration_s=0.02, now_unix_s=1.0)
    families = {m.name: m for m in metrics.collect()}
    assert all(isinstance(m, RenderedFamily) for m in families.values())
    total = families["metrics_server_kubelet_request"]
    assert [(s.name, s.labels, s.value) for s in total.samples] == [
        ("metrics_server_kubelet_request_total", {"success": "true"}, 1)
    ]
    assert len(families["metrics_server_kubelet_request_duration_seconds"].samples) == 14


@pytest.mark.parametrize("n", [0, 1, 999_999, 1_000_000, 1_234_567, 10**15, 10**16, 2**63 - 1])
def test_count_formatting_is_go_float_formatting(n: int) -> None:
    from prometheus_client.utils import floatToGoString

    from metrics_server.promtext import go_count as _go_count

    assert _go_count(n) == floatToGoString(n)


def test_large_counts_take_the_line_by_line_path() -> None:
    from metrics_server.promtext import Histogram as _Histogram
    from metrics_server.promtext import HistogramText as _HistogramText

    text = _HistogramText("h", (0.1, 1.0), labeled=True)
    hist = _Histogram((0.1, 1.0))
    hist.observe(0.05)
    hist.observe(5)
    assert text.render(hist, 'node="n"') == text.render_lines(hist, 'node="n"')
    hist.counts, hist.count, hist.total = [999_999, 1, 1], 1_000_001, 12.5
    assert text.render(hist, 'node="n"') == (
        'h_bucket{le="0.1",node="n"} 999999.0\n'
        'h_bucket{le="1.0",node="n"} 1e+06\n'
        'h_bucket{le="+Inf",node="n"} 1.000001e+06\n'
        'h_count{node="n"} 1.000001e+06\n'
        'h_sum{node="n"} 12.5\n'
    )


def seven_nodes_in_steps_of_two(monkeypatch: pytest.MonkeyPatch) -> tuple[CollectorRegistry, SelfMetrics]:
    """Self-metrics of nodes n0-n6 (one request each), prepared 2 nodes per step."""
    monkeypatch.setattr(selfmetrics, "NODES_PER_STEP", 2)
    registry = CollectorRegistry()
    metrics = SelfMetrics(registry, 15)
    for i in range(7):
        metrics.record_kubelet_request(f"n{i}", success=True, duration_s=0.1 * i, now_unix_s=1.0)
    return registry, metrics


async def test_async_exposition_yields_between_steps_and_sees_changes_made_meanwhile(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    registry, metrics = seven_nodes_in_steps_of_two(monkeypatch)
    steps = 0

    async def meddle() -> None:
        nonlocal steps
        # Runs at each checkpoint of the read: the first time, change the cluster mid-read.
        while True:
            await trio.lowlevel.checkpoint()
            steps += 1
            if steps == 1:
                metrics.forget_nodes(["n5"])
                metrics.record_kubelet_request("n0", success=False, duration_s=7.0, now_unix_s=2.0)
                metrics.record_kubelet_request("n9", success=True, duration_s=0.5, now_unix_s=2.0)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(meddle)
        await trio.lowlevel.checkpoint()
        body = b"".join(await exposition_pieces(registry))
        nursery.cancel_scope.cancel()
    assert steps >= 3  # 7 stale nodes in steps of 2
    assert body == generate_latest(registry)
    text = body.decode()
    assert 'node="n5"' not in text
    assert 'metrics_server_kubelet_request_duration_seconds_count{node="n0"} 2.0' in text
    assert 'metrics_server_kubelet_last_request_time_seconds{node="n9"} 2.0' in text


@settings(max_examples=300, deadline=None)
@given(
    st.lists(st.floats(1.7e9, 1.7e9 + 600, allow_nan=False), max_size=60),
    st.floats(1.7e9, 1.7e9 + 900, allow_nan=False),
)
def test_ages_observed_in_bulk_fall_in_the_buckets_of_one_observation_each(
    stamps: list[float], now: float
) -> None:
    one_by_one, bulk = Histogram(selfmetrics.FRESHNESS_BUCKETS), Histogram(selfmetrics.FRESHNESS_BUCKETS)
    for t in stamps:
        one_by_one.observe(now - t)
    counts: dict[float, int] = {}
    for t in stamps:
        counts[t] = counts.get(t, 0) + 1
    bulk.observe_ages(now, count_stamps(counts))
    assert (bulk.counts, bulk.count) == (one_by_one.counts, one_by_one.count)
    assert bulk.total == pytest.approx(one_by_one.total, rel=1e-9, abs=1e-3)


def test_ages_on_a_bucket_bound_count_in_that_bucket_in_bulk() -> None:
    bulk = Histogram((1.0, 2.0))
    bulk.observe_ages(10.0, count_stamps({9.0: 2, 8.0: 1, 7.5: 3, 5.0: 1}))
    assert (bulk.counts, bulk.count, bulk.total) == ([2, 1, 4], 7, 2 * 1.0 + 2.0 + 3 * 2.5 + 5.0)


async def test_async_exposition_takes_each_family_in_the_step_that_prepared_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A node changed at a checkpoint between a per-node family's prepare() and its text would be
    # rendered again inside text(), all in one step (34-42 ms at 5000 nodes).
    registry, metrics = seven_nodes_in_steps_of_two(monkeypatch)
    in_text = False
    rendered_in_text: list[str] = []
    render = metrics._render_node

    def counted_render(node: str) -> tuple[bytes, bytes]:
        if in_text:
            rendered_in_text.append(node)
        return render(node)

    def text_of(family: Callable[[], list[bytes]]) -> Callable[[], list[bytes]]:
        def pieces() -> list[bytes]:
            nonlocal in_text
            in_text = True
            try:
                return family()
            finally:
                in_text = False

        return pieces

    monkeypatch.setattr(metrics, "_render_node", counted_render)
    monkeypatch.setattr(metrics, "_last_request_pieces", text_of(metrics._last_request_pieces))
    monkeypatch.setattr(metrics, "_duration_pieces", text_of(metrics._duration_pieces))
    changes = 0

    async def meddle() -> None:
        nonlocal changes
        while True:  # at every checkpoint of the read, one node has a new request
            await trio.lowlevel.checkpoint()
            changes += 1
            metrics.record_kubelet_request(f"n{changes % 7}", success=True, duration_s=0.2, now_unix_s=2.0)

    async with trio.open_nursery() as nursery:
        nursery.start_soon(meddle)
        await trio.lowlevel.checkpoint()
        body = b"".join(await exposition_pieces(registry))
        nursery.cancel_scope.cancel()
    assert changes >= 8  # prepare steps and one checkpoint per family
    assert rendered_in_text == []
    assert body.count(b"metrics_server_kubelet_last_request_time_seconds{node=") == 7


async def test_exposition_pieces_are_the_exposition_with_a_piece_per_node_of_the_node_families() -> None:
    registry = CollectorRegistry()
    metrics = SelfMetrics(registry, 15)
    for i in range(3):
        metrics.record_kubelet_request(f"n{i}", success=True, duration_s=0.1, now_unix_s=1.0)
    pieces = await exposition_pieces(registry)
    assert b"".join(pieces) == generate_latest(registry)
    # The gauge line, then the histogram's 14 lines (12 buckets, count, sum), of each node apart.
    assert [piece.count(b'node="') for piece in pieces if b'node="' in piece] == [1, 1, 1, 14, 14, 14]
