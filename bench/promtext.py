"""The few self-metrics the harness reads from the server's `/metrics` (Prometheus text format).

Only unlabelled or simply-labelled samples of the families named in `WANTED` are kept, and the
buckets of the pod requests' duration histogram (`REQUEST_DURATION`, the server's own view of the
latency the harness measures, which both our server and metrics-server expose); per-node families
are skipped without being split, so reading a 5000-node exposition stays cheap.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

TICK = "metrics_server_manager_tick_duration_seconds"
REQUESTS = "metrics_server_kubelet_request_total"
POINTS = "metrics_server_storage_points"
REQUEST_DURATION = "apiserver_request_duration_seconds"
WANTED = (f"{TICK}_sum", f"{TICK}_count", REQUESTS, POINTS, f"{REQUEST_DURATION}_bucket")
_BUCKET = re.compile(r'(\w+)="([^"]*)"')
_WANTED_LINE = re.compile("^(?:" + "|".join(map(re.escape, WANTED)) + ").*\n", re.MULTILINE)

Buckets = tuple[tuple[float, float], ...]
"""A histogram's cumulative buckets, `(le, count)` in increasing `le`, the last one `+Inf`."""


class MetricsFormatError(ValueError):
    """The exposition lacks a family the harness needs (wrong server, or renamed metrics)."""


@dataclass(frozen=True, slots=True)
class ServerCounters:
    """Cumulative tick count and seconds, kubelet requests by outcome, and stored points."""

    ticks: int
    tick_seconds: float
    requests_ok: int
    requests_failed: int
    node_points: int
    container_points: int
    pod_requests: Mapping[tuple[str, str], Buckets] = field(default_factory=dict)
    """`(verb, scope) -> buckets` of `REQUEST_DURATION` for `metrics.k8s.io` pods: `("GET",
    "resource")` single gets, `("LIST", "namespace")` namespace lists, `("LIST", "cluster")`
    all-pods lists."""


class WantedLines:
    """The lines `parse` reads, kept from an exposition fed in pieces of any size (a line may span
    pieces): the rest of a large exposition is dropped as it arrives, and each piece is scanned by
    one regular expression."""

    def __init__(self) -> None:
        self._kept: list[str] = []
        self._partial = ""

    def feed(self, piece: str) -> None:
        """Keep the wanted lines completed by `piece`; its unfinished last line waits for the next."""
        text = self._partial + piece
        end = text.rfind("\n") + 1
        self._partial = text[end:]
        self._kept.extend(_WANTED_LINE.findall(text, 0, end))

    def text(self) -> str:
        """The wanted lines fed so far, the last one even without its newline."""
        last = self._partial + "\n"
        return "".join(self._kept) + (last if _WANTED_LINE.match(last) else "")


def parse(text: str) -> ServerCounters:
    """Extract `ServerCounters` from an exposition; raises `MetricsFormatError` without a tick histogram."""
    values: dict[str, float] = {}
    buckets: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for line in text.splitlines():
        if not line.startswith(WANTED):
            continue
        name, _, value = line.rpartition(" ")
        if name.startswith(REQUEST_DURATION):
            labels = dict(_BUCKET.findall(name))
            if labels.get("resource") == "pods" and labels.get("group") == "metrics.k8s.io":
                key = (labels.get("verb", ""), labels.get("scope", ""))
                buckets.setdefault(key, []).append((float(labels["le"]), float(value)))
            continue
        values[name] = float(value)
    tick_count = values.get(f"{TICK}_count")
    if tick_count is None:
        raise MetricsFormatError(f"/metrics has no {TICK} histogram")
    return ServerCounters(
        ticks=int(tick_count),
        tick_seconds=values.get(f"{TICK}_sum", 0.0),
        requests_ok=int(values.get(f'{REQUESTS}{{success="true"}}', 0)),
        requests_failed=int(values.get(f'{REQUESTS}{{success="false"}}', 0)),
        node_points=int(values.get(f'{POINTS}{{type="node"}}', 0)),
        container_points=int(values.get(f'{POINTS}{{type="container"}}', 0)),
        pod_requests={key: tuple(sorted(b)) for key, b in buckets.items()},
    )


def bucket_delta(before: Buckets, after: Buckets) -> Buckets:
    """The buckets of the observations made between two readings of one histogram; its count is
    the last (`+Inf`) bucket's."""
    earlier = dict(before)
    return tuple((le, n - earlier.get(le, 0.0)) for le, n in after)


def bucket_quantile(counts: Buckets, q: float) -> float | None:
    """The upper bound (`le`, seconds) of the bucket holding quantile `q` (0-1) of the observations
    in `counts` (e.g. a `bucket_delta`); None without observations, and `math.inf` when it lies
    above the last finite bound. An upper bound, not an estimate: a p99 of 0.1 means 99 % of
    requests took at most 100 ms."""
    if not counts or counts[-1][1] <= 0:
        return None
    rank = q * counts[-1][1]
    for le, n in counts:
        if n >= rank:
            return le
    return math.inf
