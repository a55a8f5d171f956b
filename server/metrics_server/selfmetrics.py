"""The six `metrics_server_*` self-metrics, with metrics-server's names, types, labels and buckets.

`SelfMetrics(registry, resolution_s)` registers one collector on the registry it is given (no
global registry). The scraper, the tick loop, the storage and the API call its small methods;
`/metrics` renders the registry with `exposition(registry)`, which is
`prometheus_client.generate_latest(registry)` byte for byte but takes this collector's text as it
renders it itself.

Why a hand-written collector and not `prometheus_client.Counter/Histogram`: those add a
`*_created` series per family, which `generate_latest` renders as extra `metrics_server_*_created`
families (metrics-server's e2e test asserts exactly six families), and turning that off is a
process-wide switch. The collector also lets per-node series be dropped when a node leaves the
cluster (metrics-server keeps them forever, so `/metrics` grows with node churn).

Why it renders its own text: the two per-node families are ~15 lines per node. Through
`generate_latest` (a `Sample` per line, then generic formatting) one read cost ~400 ms at 1000
nodes, all of it holding the event loop. Here each node's lines are rendered once after each
change to that node (its request of the tick) and kept as bytes; a read joins them. So a read
between ticks costs a join, and one tick's worth of reads renders each node at most once. The
text is pinned equal to `generate_latest` over the same values by tests.

Not thread-safe: call every method from the trio thread (the whole server runs there).
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Iterable, Iterator

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from metrics_server.promtext import (
    DEFAULT_BUCKETS,
    Histogram,
    HistogramText,
    RenderedFamily,
    Stamps,
    exponential_buckets,
    exposition,
    exposition_pieces,
    go_count,
    go_float,
    header,
    label_value,
)

__all__ = [
    "DEFAULT_BUCKETS",
    "FRESHNESS_BUCKETS",
    "RenderedFamily",
    "SelfMetrics",
    "buckets_for_scrape_duration",
    "exponential_buckets",
    "exposition",
    "exposition_pieces",
]


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


NODES_PER_STEP = 100
"""Nodes rendered per `prepare()` step (~1 ms; 500 were steps of ~5 ms under the bench's load, in
the slow-step log at 5000 x 30, docs/performance.md round 6)."""


MAX_PREPARE_PASSES = 8
"""Passes of `SelfMetrics._render_stale_nodes` over the stale nodes at most (each pass renders the
nodes that changed during the previous one's steps)."""

_FRESHNESS = "metrics_server_api_metric_freshness_seconds"
_LAST_REQUEST = "metrics_server_kubelet_last_request_time_seconds"
_REQUEST_DURATION = "metrics_server_kubelet_request_duration_seconds"
_REQUESTS = "metrics_server_kubelet_request"
_TICK = "metrics_server_manager_tick_duration_seconds"
_POINTS = "metrics_server_storage_points"


class SelfMetrics(Collector):
    """Holds the values of the six families and renders them on `collect()`.

    `resolution_s` is `--metric-resolution`: the tick-duration buckets are derived from it exactly
    as metrics-server does. Construction registers the collector on `registry`; constructing two
    on one registry raises prometheus_client's duplicate-timeseries ValueError.
    """

    def __init__(self, registry: CollectorRegistry, resolution_s: float) -> None:
        self.tick_buckets = buckets_for_scrape_duration(resolution_s)
        self._freshness = Histogram(FRESHNESS_BUCKETS)
        self._tick = Histogram(self.tick_buckets)
        self._request_duration: dict[str, Histogram] = {}
        self._last_request: dict[str, float] = {}
        self._requests = {"true": 0, "false": 0}
        self._points = {"node": 0, "container": 0}
        # Rendering caches: per node (gauge line, histogram lines), dropped when the node changes;
        # the node names in exposition order, dropped when one comes or goes.
        self._node_text: dict[str, tuple[bytes, bytes]] = {}
        self._sorted_nodes: list[str] | None = None
        self._freshness_text = HistogramText(_FRESHNESS, FRESHNESS_BUCKETS, labeled=False)
        self._duration_text = HistogramText(_REQUEST_DURATION, DEFAULT_BUCKETS, labeled=True)
        self._tick_text = HistogramText(_TICK, self.tick_buckets, labeled=False)
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
            hist = self._request_duration[node] = Histogram(DEFAULT_BUCKETS)
            self._sorted_nodes = None
        hist.observe(duration_s)
        # Go stores `float64(time.Now().Unix())`: whole seconds.
        self._last_request[node] = float(math.floor(now_unix_s))
        self._node_text.pop(node, None)

    def forget_nodes(self, nodes: Iterable[str]) -> None:
        """Drop the per-node series of nodes that left the cluster."""
        for node in nodes:
            if self._request_duration.pop(node, None) is not None:
                self._sorted_nodes = None
            self._last_request.pop(node, None)
            self._node_text.pop(node, None)

    # -- tick loop / storage / API -----------------------------------------------------------

    def observe_tick_duration(self, seconds: float) -> None:
        self._tick.observe(seconds)

    def set_storage_points(self, nodes: int, containers: int) -> None:
        """Servable points (entries that have a previous point), as `Storage.points()` returns."""
        self._points["node"] = nodes
        self._points["container"] = containers

    def observe_freshness(self, now_s: float, stamps: Stamps) -> None:
        """The age (`now_s - timestamp`) of each served item, from the items' timestamps
        (`Histogram.observe_ages`)."""
        self._freshness.observe_ages(now_s, stamps)

    # -- prometheus_client -------------------------------------------------------------------

    def describe(self) -> Iterable[Metric]:
        # Registering calls describe(); returning the (empty) families avoids a collect() then.
        return self._families(with_samples=False)

    def collect(self) -> Iterable[Metric]:
        """The six families as `RenderedFamily`s: text for `exposition`, samples for anyone else."""
        texts = (
            self._freshness_family,
            self._last_request_family,
            self._duration_family,
            self._requests_family,
            self._tick_family,
            self._points_family,
        )
        pieces = {_LAST_REQUEST: self._last_request_pieces, _REQUEST_DURATION: self._duration_pieces}
        for template, text in zip(self._families(with_samples=False), texts, strict=True):
            per_node = pieces.get(template.name)
            yield RenderedFamily(
                template.name,
                template.documentation,
                template.type,
                text,
                self._family_builder(template.name),
                tuple if per_node is None else self._render_stale_nodes,
                per_node,
            )

    def _family_builder(self, name: str) -> Callable[[], Metric]:
        def build() -> Metric:
            return next(m for m in self._families(with_samples=True) if m.name == name)

        return build

    def _families(self, *, with_samples: bool) -> Iterator[Metric]:
        fresh = HistogramMetricFamily(_FRESHNESS, _HELP_FRESHNESS)
        last = GaugeMetricFamily(_LAST_REQUEST, _HELP_LAST_REQUEST, labels=["node"])
        duration = HistogramMetricFamily(_REQUEST_DURATION, _HELP_REQUEST_DURATION, labels=["node"])
        total = CounterMetricFamily(_REQUESTS, _HELP_REQUEST_TOTAL, labels=["success"])
        tick = HistogramMetricFamily(_TICK, _HELP_TICK)
        points = GaugeMetricFamily(_POINTS, _HELP_POINTS, labels=["type"])
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

    # -- exposition text ------------------------------------------------------------------------

    def _freshness_family(self) -> bytes:
        text = header(_FRESHNESS, _HELP_FRESHNESS, "histogram") + self._freshness_text.render(self._freshness)
        return text.encode()

    def _tick_family(self) -> bytes:
        return (header(_TICK, _HELP_TICK, "histogram") + self._tick_text.render(self._tick)).encode()

    def _requests_family(self) -> bytes:
        name = f"{_REQUESTS}_total"
        lines = [header(name, _HELP_REQUEST_TOTAL, "counter")]
        for success in ("false", "true"):
            if self._requests[success]:
                lines.append(f'{name}{{success="{success}"}} {go_count(self._requests[success])}\n')
        return "".join(lines).encode()

    def _points_family(self) -> bytes:
        lines = [header(_POINTS, _HELP_POINTS, "gauge")]
        for kind in ("container", "node"):
            lines.append(f'{_POINTS}{{type="{kind}"}} {go_float(self._points[kind])}\n')
        return "".join(lines).encode()

    def _last_request_family(self) -> bytes:
        return b"".join(self._last_request_pieces())

    def _last_request_pieces(self) -> list[bytes]:
        return [header(_LAST_REQUEST, _HELP_LAST_REQUEST, "gauge").encode(), *self._node_texts(0)]

    def _duration_family(self) -> bytes:
        return b"".join(self._duration_pieces())

    def _duration_pieces(self) -> list[bytes]:
        head = header(_REQUEST_DURATION, _HELP_REQUEST_DURATION, "histogram").encode()
        return [head, *self._node_texts(1)]

    def _nodes(self) -> list[str]:
        nodes = self._sorted_nodes
        if nodes is None:
            nodes = self._sorted_nodes = sorted(self._request_duration)
        return nodes

    def _render_stale_nodes(self) -> Iterator[None]:
        """Render the nodes whose text is stale, yielding after every `NODES_PER_STEP` renders,
        until none is stale when it returns (so the text taken in that step renders nothing).

        Between steps nodes may change or leave: a node gone is skipped, a node that changed after
        its render is found by the next pass. Nodes change far more slowly than they render (at
        most once per scrape each, against ~100 per ms), so passes shrink fast; after
        `MAX_PREPARE_PASSES` the read itself renders what is left.
        """
        cache, live = self._node_text, self._request_duration
        rendered = 0
        for _ in range(MAX_PREPARE_PASSES):
            stale = [node for node in live if node not in cache]
            if not stale:
                return
            for node in stale:
                if node not in cache and node in live:
                    cache[node] = self._render_node(node)
                    rendered += 1
                    if rendered % NODES_PER_STEP == 0:
                        yield

    def _node_texts(self, which: int) -> Iterator[bytes]:
        """Per node in name order: its gauge line (0) or its histogram lines (1), rendered if stale."""
        nodes = self._nodes()
        cache = self._node_text
        for node in nodes:
            texts = cache.get(node)
            if texts is None:
                texts = cache[node] = self._render_node(node)
            yield texts[which]

    def _render_node(self, node: str) -> tuple[bytes, bytes]:
        label = f'node="{label_value(node)}"'
        gauge = f"{_LAST_REQUEST}{{{label}}} {go_float(self._last_request[node])}\n"
        return gauge.encode(), self._duration_text.render(self._request_duration[node], label).encode()
