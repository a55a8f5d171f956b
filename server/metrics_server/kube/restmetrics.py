"""client-go's request metrics for the kube-apiserver client, as metrics-server v0.8.0 exposes them:
`rest_client_requests_total{code,host,method}` and
`rest_client_request_duration_seconds{host,verb}` (time to the response headers; a request that
fails without a response counts as code `<error>`), with client-go's buckets and help texts.

`RestClientMetrics(registry)` registers both families; `MeasuredTransport(inner, metrics)` records
every request sent through it (`kube.connection.make_api_client(..., metrics=...)`). TokenReviews
and SubjectAccessReviews go through the same clients, as in client-go.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

import httpx
from prometheus_client.core import Metric
from prometheus_client.registry import Collector, CollectorRegistry

from metrics_server.promtext import CounterVec, HistogramVec

REQUEST_DURATION_BUCKETS = (0.005, 0.025, 0.1, 0.25, 0.5, 1.0, 2.0, 4.0, 8.0, 15.0, 30.0, 60.0)
ERROR_CODE = "<error>"


class RestClientMetrics(Collector):
    """The two families; construction registers them on `registry`."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = CounterVec(
            "rest_client_requests_total",
            "[ALPHA] Number of HTTP requests, partitioned by status code, method, and host.",
            ("code", "host", "method"),
        )
        self.durations = HistogramVec(
            "rest_client_request_duration_seconds",
            "[ALPHA] Request latency in seconds. Broken down by verb, and host.",
            ("host", "verb"),
            REQUEST_DURATION_BUCKETS,
        )
        registry.register(self)

    def describe(self) -> Iterable[Metric]:
        return [
            Metric(self.durations.name, self.durations.documentation, "histogram"),
            Metric(self.requests.name, self.requests.documentation, "counter"),
        ]

    def collect(self) -> Iterable[Metric]:
        return [self.durations.family(), self.requests.family()]

    def record(self, host: str, method: str, code: str, seconds: float | None) -> None:
        self.requests.inc((code, host, method))
        if seconds is not None:
            self.durations.observe((host, method), seconds)


class MeasuredTransport(httpx.AsyncBaseTransport):
    """Records each request that passes through to `inner` (see the module docstring)."""

    def __init__(self, inner: httpx.AsyncBaseTransport, metrics: RestClientMetrics) -> None:
        self._inner = inner
        self._metrics = metrics

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        url = request.url
        host = f"{url.host}:{url.port}" if url.port else url.host
        started = time.perf_counter()
        try:
            response = await self._inner.handle_async_request(request)
        except Exception:
            self._metrics.record(host, request.method, ERROR_CODE, time.perf_counter() - started)
            raise
        self._metrics.record(host, request.method, str(response.status_code), time.perf_counter() - started)
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()
