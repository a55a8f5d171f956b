"""The few self-metrics the harness reads from the server's `/metrics` (Prometheus text format).

Only unlabelled or simply-labelled samples of the families named in `WANTED` are kept; per-node
families are skipped without being split, so reading a 5000-node exposition stays cheap.
"""

from __future__ import annotations

from dataclasses import dataclass

TICK = "metrics_server_manager_tick_duration_seconds"
REQUESTS = "metrics_server_kubelet_request_total"
POINTS = "metrics_server_storage_points"
WANTED = (f"{TICK}_sum", f"{TICK}_count", REQUESTS, POINTS)


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


def parse(text: str) -> ServerCounters:
    """Extract `ServerCounters` from an exposition; raises `MetricsFormatError` without a tick histogram."""
    values: dict[str, float] = {}
    for line in text.splitlines():
        if not line.startswith(WANTED):
            continue
        name, _, value = line.rpartition(" ")
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
    )
