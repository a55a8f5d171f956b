"""Simulated wall time, derived from trio's clock so tests can drive it with a MockClock.

The epoch time a simulator reports is `start_epoch_ns + (trio.current_time() - trio_start)`,
rounded down to a whole millisecond: kubelet timestamps are milliseconds, and keeping every
sample on a millisecond keeps rates computed from them exact.
"""

from __future__ import annotations

import time

import trio

NS_PER_MS = 1_000_000
NS_PER_S = 1_000_000_000


class SimClock:
    """Maps trio time to simulated Unix time.

    Must be created inside a trio run (it reads `trio.current_time()`); `start_epoch_ns`
    defaults to the real wall time rounded down to a millisecond.
    """

    __slots__ = ("_start_epoch_ns", "_trio_start")

    def __init__(self, start_epoch_ns: int | None = None) -> None:
        if start_epoch_ns is None:
            start_epoch_ns = time.time_ns()
        self._start_epoch_ns = start_epoch_ns - start_epoch_ns % NS_PER_MS
        self._trio_start = trio.current_time()

    @property
    def start_ns(self) -> int:
        return self._start_epoch_ns

    def now_ns(self) -> int:
        """Simulated Unix time in ns, a whole number of milliseconds."""
        elapsed = int((trio.current_time() - self._trio_start) * 1000) * NS_PER_MS
        return self._start_epoch_ns + elapsed

    def trio_deadline(self, epoch_ns: int) -> float:
        """The trio time at which the simulated clock reads `epoch_ns`."""
        return self._trio_start + (epoch_ns - self._start_epoch_ns) / NS_PER_S
