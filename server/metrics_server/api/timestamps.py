"""Timestamps as the Metrics API serves them: `metav1.Time` JSON.

`rfc3339_seconds` is the one place this format lives (`"2026-04-25T17:20:42Z"`: UTC, second
precision, `Z` suffix). The other wire formats of the API are the client's, which owns them:
`k8s_metrics.quantity.cpu_quantity` / `memory_quantity` (`resource.Quantity.String()`) and
`k8s_metrics.durations.format_duration` (`time.Duration.String()`, the `window`).
"""

from __future__ import annotations

import time


def rfc3339_seconds(ns: int) -> str:
    """A Unix time in ns as `metav1.Time` JSON: UTC, truncated to the second, `Z` suffix."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ns // 1_000_000_000))
