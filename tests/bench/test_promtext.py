"""The harness's reading of the server's request duration histogram (`bench.promtext`)."""

from __future__ import annotations

import math

from bench.promtext import WantedLines, bucket_delta, bucket_quantile, parse

LABELS = (
    'component="apiserver",dry_run="",group="metrics.k8s.io",le="{le}",resource="{resource}",'
    'scope="{scope}",subresource="",verb="{verb}",version="v1beta1"'
)


def exposition(counts: dict[str, float], *, resource: str = "pods", verb: str = "GET") -> str:
    lines = [
        "metrics_server_manager_tick_duration_seconds_count 3",
        "metrics_server_manager_tick_duration_seconds_sum 4.5",
    ]
    for le, n in counts.items():
        labels = LABELS.format(le=le, resource=resource, scope="namespace", verb=verb)
        lines.append(f"apiserver_request_duration_seconds_bucket{{{labels}}} {n}")
    return "\n".join(lines) + "\n"


def test_pod_request_buckets_are_read_by_verb_and_scope() -> None:
    text = exposition({"0.005": 1, "0.025": 3, "+Inf": 4}) + exposition(
        {"0.005": 9, "+Inf": 9}, resource="nodes"
    )
    counters = parse(text)
    assert counters.ticks == 3
    expected = ((0.005, 1.0), (0.025, 3.0), (math.inf, 4.0))
    assert dict(counters.pod_requests) == {("GET", "namespace"): expected}


def test_wanted_lines_are_kept_whatever_the_pieces_an_exposition_arrives_in() -> None:
    kept = exposition({"0.005": 1, "+Inf": 4})
    text = (
        "# HELP metrics_server_kubelet_request_duration_seconds per node\n"
        + 'metrics_server_kubelet_request_duration_seconds_bucket{node="n1",le="1"} 7\n'
        + kept
        + 'metrics_server_kubelet_request_total{success="true"} 12'  # no final newline
    )
    expected = kept + 'metrics_server_kubelet_request_total{success="true"} 12\n'
    for size in range(1, len(text) + 1):
        wanted = WantedLines()
        for start in range(0, len(text), size):
            wanted.feed(text[start : start + size])
        assert wanted.text() == expected, size
    assert parse(expected).requests_ok == 12


def test_bucket_quantile_is_the_bound_of_the_bucket_holding_it_between_two_readings() -> None:
    before = ((0.005, 10.0), (0.025, 10.0), (0.1, 10.0), (math.inf, 10.0))
    after = ((0.005, 60.0), (0.025, 108.0), (0.1, 109.0), (math.inf, 110.0))
    # 100 observations since `before`: 50 <= 5 ms, 48 in (5, 25] ms, 1 in (25, 100] ms, 1 above.
    delta = bucket_delta(before, after)
    assert delta == ((0.005, 50.0), (0.025, 98.0), (0.1, 99.0), (math.inf, 100.0))
    assert bucket_quantile(delta, 0.5) == 0.005
    assert bucket_quantile(delta, 0.98) == 0.025
    assert bucket_quantile(delta, 0.99) == 0.1
    assert bucket_quantile(delta, 1.0) == math.inf
    assert bucket_quantile(bucket_delta(after, after), 0.5) is None
    assert bucket_quantile(bucket_delta((), ()), 0.5) is None
