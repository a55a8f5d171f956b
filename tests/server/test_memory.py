"""`memory.old_dicts`: empty mappings that the cyclic collector already keeps in its oldest
generation, and the mappings that grow over a cycle made with it (the storage's cycle, the API's
fragment generation)."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from metrics_server import memory
from metrics_server.api.render import FragmentCache
from metrics_server.storage.store import Storage


@pytest.fixture
def no_automatic_collections() -> Iterator[None]:
    """What a test finds in a generation is not moved by a collection the test did not run."""
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def generation_of(obj: object) -> int | None:
    for generation in range(3):
        if any(o is obj for o in gc.get_objects(generation)):
            return generation
    return None


@pytest.mark.usefixtures("no_automatic_collections")
def test_old_dicts_are_new_empty_tracked_dicts_in_the_oldest_generation() -> None:
    dicts = memory.old_dicts(3)
    assert len(dicts) == 3
    assert len({id(mapping) for mapping in dicts}) == 3
    for mapping in dicts:
        assert mapping == {}
        assert gc.is_tracked(mapping)
        assert generation_of(mapping) == 2


@pytest.mark.usefixtures("no_automatic_collections")
def test_an_old_dict_stays_old_as_tracked_items_go_in_where_a_plain_one_becomes_young() -> None:
    (old,) = memory.old_dicts(1)
    plain: dict[str, tuple[list[int]]] = {}
    assert not gc.is_tracked(plain)
    for mapping in (old, plain):
        mapping["k"] = ([],)  # a tracked value: CPython tracks the dict now if it was not
    assert generation_of(plain) == 0
    assert generation_of(old) == 2
    gc.collect(0)
    assert generation_of(plain) == 1  # the middle generation: walked whole by its collections
    assert generation_of(old) == 2


@pytest.mark.usefixtures("no_automatic_collections")
def test_a_storage_cycle_builds_its_mappings_in_the_oldest_generation() -> None:
    cycle = Storage(staleness_ns=30 * 10**9).begin(10**18)
    for mapping in (cycle._states, cycle._nodes, cycle._pods, cycle._owner):
        assert generation_of(mapping) == 2


@pytest.mark.usefixtures("no_automatic_collections")
def test_a_fragment_generation_builds_its_mappings_in_the_oldest_generation() -> None:
    generation = FragmentCache().generation(object())
    assert generation_of(generation.entries) == 2
    assert generation_of(generation.static) == 2
