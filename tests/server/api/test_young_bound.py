"""`steps.YoungBound`: a loop that makes many objects runs a young collection itself once it has
made `YOUNG_ITEMS` items with none run meanwhile."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from metrics_server.api import steps


def collections() -> int:
    return sum(generation["collections"] for generation in gc.get_stats())


@pytest.fixture
def no_automatic_collections() -> Iterator[None]:
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


@pytest.mark.usefixtures("no_automatic_collections")
def test_a_young_collection_runs_after_young_items_without_one() -> None:
    young = steps.YoungBound()
    before = collections()
    young.step(steps.YOUNG_ITEMS - 1)
    assert collections() == before
    young.step(1)
    assert collections() == before + 1
    young.step(steps.YOUNG_ITEMS - 1)  # counted again from the collection it ran
    assert collections() == before + 1


@pytest.mark.usefixtures("no_automatic_collections")
def test_a_collection_run_meanwhile_starts_the_count_again() -> None:
    young = steps.YoungBound()
    young.step(steps.YOUNG_ITEMS - 1)
    gc.collect(1)  # as the collector's own threshold would have (any generation counts)
    before = collections()
    young.step(steps.YOUNG_ITEMS - 1)  # made since that collection: under the bound
    assert collections() == before
    young.step(1)
    assert collections() == before + 1
