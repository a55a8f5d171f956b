"""Session fixtures of the differential suite: one deterministic kubesim, our server and metrics-server
v0.8.0 side by side (`refharness`), and the tally every comparison lands in; the terminal summary
prints how many responses were compared and how they came out.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from compare import Tally
from refharness import PairHarness, reference_or_skip

TALLY = Tally()
TIMES: dict[str, float] = {}


@pytest.fixture(scope="session")
def pair(tmp_path_factory: pytest.TempPathFactory) -> Iterator[PairHarness]:
    reference = reference_or_skip()
    started = time.monotonic()
    harness = PairHarness(tmp_path_factory.mktemp("reference"), reference).start()
    try:
        harness.wait_ready()
        TIMES["start-up"] = time.monotonic() - started
        yield harness
    finally:
        harness.stop()


@pytest.fixture(scope="session")
def tally() -> Tally:
    return TALLY


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if TALLY.total == 0:
        return
    write = terminalreporter.write_line
    write("")
    write(
        f"reference differential suite: {TALLY.total} responses compared against metrics-server v0.8.0: "
        f"{sum(TALLY.identical.values())} identical, {sum(TALLY.listed.values())} listed differences, "
        f"{len(TALLY.unexplained)} unexplained"
    )
    for group, count in sorted(TALLY.identical.items()):
        write(f"  identical  {count:4d}  {group}")
    for difference, count in sorted(TALLY.listed.items()):
        write(f"  listed     {count:4d}  {difference}")
    for line in TALLY.unexplained:
        write(f"  UNEXPLAINED  {line}")
    for line in TALLY.resolved:
        write(f"  resolved (pending entry no longer differs)  {line}")
    for line in TALLY.notes:
        write(f"  {line}")
    if TIMES:
        write("  time: " + ", ".join(f"{k} {v:.1f}s" for k, v in TIMES.items()))


def repo_root() -> Path:
    return Path(__file__).resolve().parents[2]
