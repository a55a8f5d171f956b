"""API load while the server scrapes: the request patterns of real metrics clients.

* `hpa`: the HPA controller, one request per HPA per resolution, each a namespaced pod list with
  a label selector (`/apis/metrics.k8s.io/v1beta1/namespaces/<ns>/pods?labelSelector=...`);
* `kubectl`: `kubectl top pods -A` in a loop, an all-pods list every `kubectl_interval` seconds;
* `get`: single pod gets at `get_rate` per second.

Arrivals are open-loop (each request starts at its scheduled time in its own task, whatever the
earlier ones are doing), so a stalled server shows up as latency rather than as fewer requests.
Latency is measured in this process from sending the request to having read the whole body.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import httpx
import trio

API = "/apis/metrics.k8s.io/v1beta1"
HPA_NAMESPACES = ("default", "team-a", "team-b", "monitoring")
HPA_APPS = ("web", "api", "worker", "cache", "frontend", "payments", "search", "batch", "auth", "queue")
"""The simulator's namespaces and app labels (kubesim.model): every selector matches some pods."""


LAG_PROBE_S = 0.005
"""The sleep whose late wake-ups measure the harness's own event-loop delay (`lags`)."""


@dataclass(frozen=True, slots=True)
class LoadConfig:
    """Request rates. Zero disables a pattern."""

    hpas: int = 100
    hpa_period_s: float = 15.0
    kubectl_interval_s: float = 5.0
    get_rate: float = 5.0

    @property
    def warm_up_s(self) -> float:
        """Time from the start of the load until every client of it has made a first request."""
        periods = [self.hpa_period_s if self.hpas > 0 else 0.0, self.kubectl_interval_s]
        if self.get_rate > 0:
            periods.append(1 / self.get_rate)
        return max(periods)


@dataclass(slots=True)
class Pattern:
    """Latencies (seconds) and outcomes of one request pattern."""

    name: str
    latencies: list[float] = field(default_factory=list)
    starts: list[float] = field(default_factory=list)
    """`time.monotonic()` at each recorded request's start, in the order of `latencies`."""
    errors: int = 0
    bytes: int = 0
    last_error: str = ""

    def summary(self) -> dict[str, object]:
        lat = sorted(self.latencies)
        return {
            "count": len(lat),
            "errors": self.errors,
            "p50_ms": round(percentile(lat, 50) * 1e3, 2),
            "p99_ms": round(percentile(lat, 99) * 1e3, 2),
            "max_ms": round((lat[-1] if lat else 0.0) * 1e3, 2),
            "mean_bytes": self.bytes // len(lat) if lat else 0,
            "last_error": self.last_error,
            "slowest": self.slowest(),
        }

    def slowest(self, count: int = 5) -> list[tuple[float, float]]:
        """The `count` slowest requests as (start in seconds after the first recorded one, ms),
        slowest first: whether the tail is one event or spread over the run."""
        if not self.starts:
            return []
        first = min(self.starts)
        pairs = sorted(zip(self.latencies, self.starts, strict=True), reverse=True)[:count]
        return [(round(start - first, 2), round(took * 1e3, 1)) for took, start in pairs]


def percentile(sorted_values: Sequence[float], p: float) -> float:
    """Nearest-rank percentile of an already sorted sequence (0.0 when empty)."""
    if not sorted_values:
        return 0.0
    rank = max(1, math.ceil(p / 100 * len(sorted_values)))
    return sorted_values[min(rank, len(sorted_values)) - 1]


class LoadGenerator:
    """Runs the patterns against `client` (base URL and credentials set on it) until cancelled."""

    def __init__(
        self, client: httpx.AsyncClient, config: LoadConfig, pods: Sequence[tuple[str, str]], seed: int = 0
    ):
        self._client = client
        self._config = config
        self._pods = list(pods)
        self._rng = random.Random(seed)
        self.patterns = {name: Pattern(name) for name in ("hpa", "kubectl", "get")}
        self.recording = False
        self.lags: list[float] = []
        """While recording: how late this process's own event loop woke a `LAG_PROBE_S` sleep
        (seconds). Every request's latency includes such delays of the harness itself, e.g.
        while it receives a 55 MB all-pods list."""

    async def _request(self, pattern: Pattern, path: str, params: dict[str, str] | None = None) -> None:
        start = time.monotonic()
        # The body is read piece by piece and counted, never joined: joining a 50 MB list would
        # stall this process's loop, and with it the requests in flight beside it.
        size, head = 0, b""
        try:
            async with self._client.stream("GET", path, params=params) as response:
                async for piece in response.aiter_bytes():
                    head = head or piece[:200]
                    size += len(piece)
        except httpx.HTTPError as exc:
            if self.recording:
                pattern.errors += 1
                pattern.last_error = f"{type(exc).__name__}: {exc}"
            return
        took = time.monotonic() - start
        if not self.recording:
            return
        if response.status_code != 200:
            pattern.errors += 1
            pattern.last_error = f"HTTP {response.status_code}: {head!r}"
            return
        pattern.latencies.append(took)
        pattern.starts.append(start)
        pattern.bytes += size

    def lag_summary(self) -> dict[str, float]:
        """p50 / p99 / max of `lags`, in ms."""
        lags = sorted(self.lags)
        return {
            "p50_ms": round(percentile(lags, 50) * 1e3, 2),
            "p99_ms": round(percentile(lags, 99) * 1e3, 2),
            "max_ms": round((lags[-1] if lags else 0.0) * 1e3, 2),
        }

    async def _probe_lag(self) -> None:
        while True:
            start = trio.current_time()
            await trio.sleep(LAG_PROBE_S)
            if self.recording:
                self.lags.append(trio.current_time() - start - LAG_PROBE_S)

    async def run(self) -> None:
        async with trio.open_nursery() as nursery:
            nursery.start_soon(self._probe_lag)
            c = self._config
            if c.hpas > 0:
                for i in range(c.hpas):
                    ns = HPA_NAMESPACES[i % len(HPA_NAMESPACES)]
                    app = HPA_APPS[i // len(HPA_NAMESPACES) % len(HPA_APPS)]
                    selector = f"app={app},tier={('frontend', 'backend')[i // 40 % 2]}"
                    offset = c.hpa_period_s * i / c.hpas
                    nursery.start_soon(self._hpa, ns, selector, offset, nursery)
            if c.kubectl_interval_s > 0:
                nursery.start_soon(self._kubectl)
            if c.get_rate > 0 and self._pods:
                nursery.start_soon(self._gets, nursery)

    async def _hpa(self, ns: str, selector: str, offset: float, nursery: trio.Nursery) -> None:
        next_at = trio.current_time() + offset
        while True:
            await trio.sleep_until(next_at)
            nursery.start_soon(
                self._request,
                self.patterns["hpa"],
                f"{API}/namespaces/{ns}/pods",
                {"labelSelector": selector},
            )
            next_at += self._config.hpa_period_s

    async def _kubectl(self) -> None:
        # kubectl top in a `watch` loop: one list at a time, the next one interval after the start.
        while True:
            start = trio.current_time()
            await self._request(self.patterns["kubectl"], f"{API}/pods")
            await trio.sleep_until(start + self._config.kubectl_interval_s)

    async def _gets(self, nursery: trio.Nursery) -> None:
        period = 1.0 / self._config.get_rate
        next_at = trio.current_time()
        while True:
            await trio.sleep_until(next_at)
            ns, name = self._rng.choice(self._pods)
            nursery.start_soon(self._request, self.patterns["get"], f"{API}/namespaces/{ns}/pods/{name}")
            next_at += period
