"""Micro-benchmarks of single components, run by hand: `python -m bench.micro.<name> [options]`
from the repository root (or by path, `python bench/micro/<name>.py`). Each module's docstring
gives its options and what it measures; docs/performance.md keeps the figures. Not tests: pytest
collects only tests/, where tests/bench/test_micro.py checks that every module still imports.

`loop_gaps` is the probe several of them start beside the work they measure.
"""

from __future__ import annotations

import time

import trio


async def loop_gaps(done: trio.Event, gaps: list[float]) -> None:
    """Yield in a loop and append to `gaps` the time between turns until `done` is set: `max(gaps)`
    is the longest any concurrent task (a request) waited for the event loop."""
    last = time.perf_counter()
    while not done.is_set():
        await trio.lowlevel.checkpoint()
        now = time.perf_counter()
        gaps.append(now - last)
        last = now
