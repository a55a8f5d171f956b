"""The six `metrics_server_*` self-metrics, with metrics-server's names, types, labels and buckets.

`SelfMetrics(registry, resolution_s)` registers one collector on the registry it is given (no
global registry). The scraper, the tick loop, the storage and the API call its small methods;
`/metrics` renders the registry with `prometheus_client.generate_latest`.

Why a hand-written collector and not `prometheus_client.Counter/Histogram`: those add a
`*_created` series per family, which `generate_latest` renders as extra `metrics_server_*_created`
families (metrics-server's e2e test asserts exactly six families), and turning that off is a
process-wide switch. The collector also lets per-node series be dropped when a node leaves the
cluster (metrics-server keeps them forever, so `/metrics` grows with node churn).

Not thread-safe: call every method from the trio thread (the whole server runs there).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Iterable, Iterator, Sequence

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry
from prometheus_client.utils import floatToGoString

DEFAULT_BUCKETS: tuple[float, ...] = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
"""Prometheus' default histogram buckets (client_golang `DefBuckets`)."""


def exponential_buckets(start: float, factor: float, count: int) -> tuple[float, ...]:
    """client_golang `ExponentialBuckets`: repeated multiplication, so the floats match Go's exactly."""
    if count < 1 or start <= 0 or factor <= 1:
        raise ValueError(f"invalid exponential buckets: start={start} factor={factor} count={count}")
    out: list[float] = []
    for _ in range(count):
        out.append(start)
        start *= factor
    return tuple(out)


def buckets_for_scrape_duration(timeout_s: float) -> tuple[float, ...]:
    """metrics-server `pkg/utils/monitoring.go` `BucketsForScrapeDuration`.

    Above the largest default bucket (10 s) it appends: halfway from 10 s to the timeout, the
    timeout, 1.5x and 2x the timeout (15 s gives ..., 10, 12.5, 15, 22.5, 30). Below it, the
    timeout is inserted in order unless it lies within the smallest bucket (5 ms) of a neighbour.
    """
    buckets = list(DEFAULT_BUCKETS)
    max_bucket = buckets[-1]
    if timeout_s > max_bucket:
        halfway = max_bucket + (timeout_s - max_bucket) / 2
        buckets += [halfway, timeout_s, timeout_s * 1.5, timeout_s * 2.0]
    elif timeout_s < max_bucket:
        i = bisect.bisect_right(buckets, timeout_s)  # first bucket > timeout (Go's loop + break)
        above = buckets[i]
        if above - timeout_s < buckets[0] or (i > 0 and timeout_s - buckets[i - 1] < buckets[0]):
            return tuple(buckets)
        buckets.insert(i, timeout_s)
    return tuple(buckets)


FRESHNESS_BUCKETS = exponential_buckets(1, 1.364, 20)

# component-base prefixes every help text with the stability level; keep the exposition identical.
_HELP_FRESHNESS = "[ALPHA] Freshness of metrics exported"
_HELP_LAST_REQUEST = "[ALPHA] Time of last request performed to Kubelet API since unix epoch in seconds"
_HELP_REQUEST_DURATION = "[ALPHA] Duration of requests to Kubelet API in seconds"
_HELP_REQUEST_TOTAL = "[ALPHA] Number of requests sent to Kubelet API"
_HELP_TICK = "[ALPHA] The total time spent collecting and storing metrics in seconds."
_HELP_POINTS = "[ALPHA] Number of metrics points stored."


class _Histogram:
    """A plain cumulative histogram: `le` buckets as Prometheus defines them (value <= bound)."""

    __slots__ = ("bounds", "count", "counts", "total")

    def __init__(self, bounds: Sequence[float]) -> None:
        self.bounds = tuple(bounds)
        self.counts = [0] * (len(self.bounds) + 1)  # last slot: above every bound (+Inf only)
        self.count = 0
        self.total = 0.0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.bounds, value)] += 1
        self.count += 1
        self.total += value

    def samples(self) -> list[tuple[str, float]]:
        out: list[tuple[str, float]] = []
        running = 0
        for bound, n in zip(self.bounds, self.counts, strict=False):
            running += n
            out.append((_le(bound), running))
        out.append(("+Inf", self.count))
        return out


def _le(bound: float) -> str:
    # The same `le` text prometheus_client's own Histogram writes.
    return str(floatToGoString(bound))  # type: ignore[no-untyped-call]


class SelfMetrics(Collector):
    """Holds the values of the six families and renders them on `collect()`.

    `resolution_s` is `--metric-resolution`: the tick-duration buckets are derived from it exactly
    as metrics-server does. Construction registers the collector on `registry`; constructing two
    on one registry raises prometheus_client's duplicate-timeseries ValueError.
    """

    def __init__(self, registry: CollectorRegistry, resolution_s: float) -> None:
        self.tick_buckets = buckets_for_scrape_duration(resolution_s)
        self._freshness = _Histogram(FRESHNESS_BUCKETS)
        self._tick = _Histogram(self.tick_buckets)
        self._request_duration: dict[str, _Histogram] = {}
        self._last_request: dict[str, float] = {}
        self._requests = {"true": 0, "false": 0}
        self._points = {"node": 0, "container": 0}
        registry.register(self)

    # -- scraper -----------------------------------------------------------------------------

    def record_kubelet_request(
        self, node: str, *, success: bool, duration_s: float | None, now_unix_s: float
    ) -> None:
        """One request to a kubelet finished (or was given up). `duration_s` is None when no
        request was sent at all (the cycle ended first); it then only counts as a failure."""
        self._requests["true" if success else "false"] += 1
        if duration_s is None:
            return
        hist = self._request_duration.get(node)
        if hist is None:
            hist = self._request_duration[node] = _Histogram(DEFAULT_BUCKETS)
        hist.observe(duration_s)
        # Go stores `float64(time.Now().Unix())`: whole seconds.
        self._last_request[node] = float(math.floor(now_unix_s))

    def forget_nodes(self, nodes: Iterable[str]) -> None:
        """Drop the per-node series of nodes that left the cluster."""
        for node in nodes:
            self._request_duration.pop(node, None)
            self._last_request.pop(node, None)

    # -- tick loop / storage / API -----------------------------------------------------------

    def observe_tick_duration(self, seconds: float) -> None:
        self._tick.observe(seconds)

    def set_storage_points(self, nodes: int, containers: int) -> None:
        """Servable points (entries that have a previous point), as `Storage.points()` returns."""
        self._points["node"] = nodes
        self._points["container"] = containers

    def observe_freshness(self, seconds: float) -> None:
        """Age of one served item's timestamp (now - item timestamp), once per returned item."""
        self._freshness.observe(seconds)

    # -- prometheus_client -------------------------------------------------------------------

    def describe(self) -> Iterable[Metric]:
        # Registering calls describe(); returning the (empty) families avoids a collect() then.
        return self._families(with_samples=False)

    def collect(self) -> Iterable[Metric]:
        return self._families(with_samples=True)

    def _families(self, *, with_samples: bool) -> Iterator[Metric]:
        fresh = HistogramMetricFamily("metrics_server_api_metric_freshness_seconds", _HELP_FRESHNESS)
        last = GaugeMetricFamily(
            "metrics_server_kubelet_last_request_time_seconds", _HELP_LAST_REQUEST, labels=["node"]
        )
        duration = HistogramMetricFamily(
            "metrics_server_kubelet_request_duration_seconds", _HELP_REQUEST_DURATION, labels=["node"]
        )
        total = CounterMetricFamily("metrics_server_kubelet_request", _HELP_REQUEST_TOTAL, labels=["success"])
        tick = HistogramMetricFamily("metrics_server_manager_tick_duration_seconds", _HELP_TICK)
        points = GaugeMetricFamily("metrics_server_storage_points", _HELP_POINTS, labels=["type"])
        if with_samples:
            fresh.add_metric([], self._freshness.samples(), self._freshness.total)
            for node in sorted(self._last_request):
                last.add_metric([node], self._last_request[node])
            for node in sorted(self._request_duration):
                hist = self._request_duration[node]
                duration.add_metric([node], hist.samples(), hist.total)
            for success in ("false", "true"):
                if self._requests[success]:
                    total.add_metric([success], self._requests[success])
            tick.add_metric([], self._tick.samples(), self._tick.total)
            for kind in ("container", "node"):
                points.add_metric([kind], self._points[kind])
        yield from (fresh, last, duration, total, tick, points)
