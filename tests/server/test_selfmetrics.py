"""The six metrics_server_* families: names, types, labels, buckets as metrics-server derives them."""

from __future__ import annotations

import re

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from metrics_server.selfmetrics import (
    DEFAULT_BUCKETS,
    FRESHNESS_BUCKETS,
    SelfMetrics,
    buckets_for_scrape_duration,
    exponential_buckets,
)


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
    metrics.observe_freshness(16.0)
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
