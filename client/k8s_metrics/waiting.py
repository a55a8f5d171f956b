"""What an autoscaler's loop needs besides one read: waiting for the Metrics API, and noticing new samples.

The I/O-free parts of :meth:`Metrics.wait_until_available <k8s_metrics.usage.Metrics.wait_until_available>`
and :meth:`Metrics.watch_pods <k8s_metrics.usage.Metrics.watch_pods>` (and their async forms), shared
by the sync and async clients:

* :class:`Backoff`: the delays between availability checks: 0.2 s doubling up to 5 s, never past the
  deadline.
* :func:`retryable`: which errors mean "not available yet" (the API is starting or being registered)
  rather than "this will never work" (credentials, RBAC, a bad request).
* :class:`SampleTracker`: which pods carry a sample the caller has not seen, and how long to wait
  before asking again. metrics-server publishes a new sample per pod once per scrape, and the served
  ``window`` is the time between the two kubelet samples a rate was computed from, so it is the period
  at which samples change: polling every half ``window`` (within 1-30 s) notices each new sample at most
  half a period late, with two requests per period.
"""

from __future__ import annotations

import datetime
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Final

from .errors import ApiError, MetricsError, TransportError
from .values import PodUsage

__all__ = ["DISCOVERY_PATH", "Backoff", "SampleTracker", "retryable"]

DISCOVERY_PATH: Final = "/apis/metrics.k8s.io/v1beta1"
"""The Metrics API's resource list: 200 once kube-aggregator has an Available metrics server behind it."""

_RETRY_CODES: Final = frozenset({404, 429, 500, 502, 503, 504})
# 404: the APIService is not registered yet; 429 and 5xx: the apiserver or metrics-server is starting.


def retryable(exc: MetricsError) -> bool:
    """True for an error that waiting can cure: no answer, or 404/429/500/502/503/504."""
    if isinstance(exc, TransportError):
        return True
    return isinstance(exc, ApiError) and exc.code in _RETRY_CODES


@dataclass
class Backoff:
    """Exponential delays towards a deadline (seconds on any monotonic clock).

    ``next_delay(now)`` is ``initial``, then doubled each call up to ``cap``, and never beyond the
    deadline; None once the deadline has passed (``deadline=None`` waits for ever)."""

    deadline: float | None
    initial: float = 0.2
    cap: float = 5.0
    _delay: float = field(init=False, default=0.0)

    def next_delay(self, now: float) -> float | None:
        if self.deadline is not None and now >= self.deadline:
            return None
        self._delay = self.initial if self._delay == 0.0 else min(self._delay * 2, self.cap)
        if self.deadline is None:
            return self._delay
        return min(self._delay, self.deadline - now)


MIN_POLL: Final = 1.0
MAX_POLL: Final = 30.0
FIRST_POLL: Final = 5.0
"""Before any pod has a sample (no window known yet)."""


@dataclass
class SampleTracker:
    """The sample timestamp last seen per pod.

    ``interval`` overrides the derived polling interval (seconds)."""

    interval: float | None = None
    _seen: dict[tuple[str, str], datetime.datetime] = field(default_factory=dict)
    _window: datetime.timedelta | None = None

    def new(self, pods: Iterable[PodUsage[Any]]) -> list[PodUsage[Any]]:
        """The pods whose sample is new (a pod seen for the first time, or a changed ``timestamp``), in
        the order given. Pods absent from ``pods`` are forgotten: if they come back, they are new."""
        fresh: list[PodUsage[Any]] = []
        seen: dict[tuple[str, str], datetime.datetime] = {}
        windows = []
        for pod in pods:
            key = (pod.namespace, pod.name)
            seen[key] = pod.timestamp
            windows.append(pod.window)
            if self._seen.get(key) != pod.timestamp:
                fresh.append(pod)
        self._seen = seen
        positive = [w for w in windows if w > datetime.timedelta(0)]
        if positive:
            self._window = min(positive)
        return fresh

    def poll_interval(self) -> float:
        """Seconds until the next poll: ``interval`` if given, else half the smallest served window,
        within [1, 30] s (5 s until a window is known)."""
        if self.interval is not None:
            return self.interval
        if self._window is None:
            return FIRST_POLL
        return min(max(self._window.total_seconds() / 2, MIN_POLL), MAX_POLL)
