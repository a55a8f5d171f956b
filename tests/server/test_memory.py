"""`memory.collect_young`: the young collection the collector's own schedule would run."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from metrics_server.memory import collect_young


@pytest.fixture
def collector() -> Iterator[None]:
    """No automatic collection during the test (explicit ones still run), thresholds restored."""
    thresholds, enabled = gc.get_threshold(), gc.isenabled()
    gc.disable()
    gc.set_threshold(10_000, 3, 100)
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        if enabled:
            gc.enable()


def collections() -> list[int]:
    return [int(generation["collections"]) for generation in gc.get_stats()]


def test_every_threshold_young_collections_one_of_the_middle_generation(collector: None) -> None:
    gc.collect(1)  # the middle generation's count starts at 0
    before = collections()
    for _ in range(3):
        collect_young()
    assert gc.get_count()[1] == 3
    assert [a - b for a, b in zip(collections(), before, strict=True)] == [3, 0, 0]
    collect_young()  # as many young collections as the middle threshold: that one is due
    assert gc.get_count()[1] == 0
    assert [a - b for a, b in zip(collections(), before, strict=True)] == [3, 1, 0]
