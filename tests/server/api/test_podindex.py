"""Label indexes and compiled matchers select exactly what a plain scan with `LabelSelector.matches` does."""

from __future__ import annotations

from collections.abc import Mapping

import pytest
import trio
from hypothesis import given, settings
from hypothesis import strategies as st

from k8s_metrics.selectors import LabelSelector, parse_label_selector
from metrics_server.api import podindex
from metrics_server.api.podindex import NamespaceIndex, PodIndexes, indexable
from metrics_server.kube.objects import PodInfo

KEYS = ("app", "tier", "k")
VALUES = ("a", "b", "", "10")
NAMES = tuple(f"p{i}" for i in range(12))

labels_st = st.dictionaries(st.sampled_from(KEYS), st.sampled_from(VALUES), max_size=3)


@st.composite
def requirement_text(draw: st.DrawFn) -> str:
    key = draw(st.sampled_from(KEYS))
    value = draw(st.sampled_from(VALUES))
    values = ",".join(draw(st.lists(st.sampled_from(VALUES), min_size=1, max_size=3, unique=True)))
    number = draw(st.sampled_from(("0", "5", "10")))
    return draw(
        st.sampled_from(
            (
                f"{key}={value}",
                f"{key}=={value}",
                f"{key}!={value}",
                f"{key} in ({values})",
                f"{key} notin ({values})",
                key,
                f"!{key}",
                f"{key}>{number}",
                f"{key}<{number}",
            )
        )
    )


selector_st = st.lists(requirement_text(), max_size=3).map(
    lambda terms: parse_label_selector(",".join(terms))
)

# One namespace over time: each state maps pod names to (labels, keep), where keep asks to reuse the
# previous state's object when the labels did not change (as the pod cache does for untouched pods).
state_st = st.dictionaries(
    st.sampled_from(NAMES), st.tuples(labels_st, st.booleans()), min_size=3, max_size=len(NAMES)
)


def scan(pods: tuple[PodInfo, ...], selector: LabelSelector) -> list[str]:
    return sorted(p.name for p in pods if selector.matches(p.labels))


Entry = tuple[tuple[str, str], str, frozenset[tuple[str, str]]]


def entry(item: tuple[str, str], name: str, pod: PodInfo) -> Entry:
    assert pod.name == name
    return item, name, frozenset(pod.labels.items())


def bucket_entries(index: NamespaceIndex) -> set[Entry]:
    out: set[Entry] = set()
    for key, values in index.buckets().items():
        assert values  # no empty value maps left behind
        for value, bucket in values.items():
            if isinstance(bucket, dict):
                assert len(bucket) >= 2  # one pod is stored as itself
                out |= {entry((key, value), name, pod) for name, pod in bucket.items()}
            else:
                out.add(entry((key, value), bucket.name, bucket))
    return out


def advance(
    previous: dict[str, PodInfo],
    state: dict[str, tuple[dict[str, str], bool]],
    shared: dict[frozenset[tuple[str, str]], dict[str, str]],
) -> dict[str, PodInfo]:
    pods: dict[str, PodInfo] = {}
    for name, (labels, keep) in state.items():
        old = previous.get(name)
        if keep and old is not None and dict(old.labels) == labels:
            pods[name] = old
            continue
        # Equal label sets share one mapping, as the cache's interner makes them (exercises the memo).
        mapping = shared.setdefault(frozenset(labels.items()), labels) if keep else labels
        pods[name] = PodInfo("ns", name, f"uid-{name}", mapping, "node")
    return pods


@settings(max_examples=150, deadline=None)
@given(
    st.lists(state_st, min_size=1, max_size=6),
    st.lists(selector_st, min_size=1, max_size=4),
    st.sampled_from((podindex.REBUILD_FRACTION, 100.0)),
)
def test_index_candidates_filtered_equal_a_scan(
    states: list[dict[str, tuple[dict[str, str], bool]]],
    selectors: list[LabelSelector],
    rebuild_fraction: float,
) -> None:
    async def run() -> None:
        index = NamespaceIndex(rebuild_fraction)  # 100: every change goes through the diff
        indexes = PodIndexes()
        shared: dict[frozenset[tuple[str, str]], dict[str, str]] = {}
        pods: dict[str, PodInfo] = {}
        for state in states:
            pods = advance(pods, state, shared)
            current = tuple(pods.values())
            await index.sync(current)
            assert index.pods == current
            assert bucket_entries(index) == {
                entry(item, p.name, p) for p in current for item in p.labels.items()
            }  # the buckets hold exactly the current pods (by value), whichever path built them
            for selector in selectors:
                expected = scan(current, selector)
                matches = selector.matcher()
                assert sorted(p.name for p in current if matches(p.labels)) == expected
                found = index.candidates(selector)
                assert (found is None) == (not indexable(selector))
                if found is None:
                    continue
                assert len({id(p) for p in found}) == len(found)  # no pod twice
                assert sorted(p.name for p in found if matches(p.labels)) == expected
                via_cache = await indexes.select("ns", list(current), selector)
                assert sorted(p.name for p in via_cache if selector.matches(p.labels)) == expected

    trio.run(run)


@settings(max_examples=200, deadline=None)
@given(selector_st, st.lists(labels_st, max_size=8))
def test_matcher_agrees_with_matches(selector: LabelSelector, label_sets: list[dict[str, str]]) -> None:
    matches = selector.matcher()
    for labels in [*label_sets, *label_sets]:  # the second pass answers from the memo
        assert matches(labels) == selector.matches(labels)


def test_matcher_memo_is_keyed_by_object_not_address() -> None:
    matches = parse_label_selector("app notin (x)").matcher()
    first: Mapping[str, str] = {"app": "y"}
    assert matches(first)
    del first
    # A new mapping may reuse the freed address; it must be evaluated afresh.
    assert not matches({"app": "x"})


def pods_of(count: int, tag: str = "a") -> tuple[PodInfo, ...]:
    return tuple(
        PodInfo("ns", f"p{i:03d}", f"u{i}", {"app": f"{tag}{i % 4}", "i": str(i)}, "n") for i in range(count)
    )


async def test_small_change_is_applied_as_a_diff(monkeypatch: pytest.MonkeyPatch) -> None:
    rebuilds: list[int] = []
    original = NamespaceIndex._rebuild

    async def counting(self: NamespaceIndex, current: tuple[PodInfo, ...]) -> None:
        rebuilds.append(len(current))
        await original(self, current)

    monkeypatch.setattr(NamespaceIndex, "_rebuild", counting)
    index = NamespaceIndex()
    pods = pods_of(100)
    await index.sync(pods)
    assert rebuilds == [100]
    await index.sync(tuple(pods))  # equal tuple: nothing to do
    assert rebuilds == [100]
    # one pod relabelled, one gone, one new: three changes among 100 pods
    changed = PodInfo("ns", "p005", "u5", {"app": "moved"}, "n")
    extra = PodInfo("ns", "p999", "u999", {"app": "a0"}, "n")
    current = (*pods[:5], changed, *pods[6:99], extra)
    await index.sync(current)
    assert rebuilds == [100]
    selector = parse_label_selector("app=a1")
    found = index.candidates(selector)
    assert found is not None
    assert sorted(p.name for p in found) == [f"p{i:03d}" for i in range(1, 99, 4) if i != 5]
    found = index.candidates(parse_label_selector("app in (moved,a0)"))
    assert found is not None
    assert sorted(p.name for p in found) == sorted([f"p{i:03d}" for i in range(0, 99, 4)] + ["p005", "p999"])
    assert index.candidates(parse_label_selector("app=gone")) == []
    assert index.candidates(parse_label_selector("app!=x")) is None
    # most pods replaced: rebuilt
    await index.sync(pods_of(100, "b"))
    assert rebuilds == [100, 100]


async def test_rebuild_yields_to_the_event_loop(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(podindex, "CHUNK", 10)
    index = NamespaceIndex()
    turns = 0
    done = trio.Event()

    async def other() -> None:
        nonlocal turns
        while not done.is_set():
            turns += 1
            await trio.lowlevel.checkpoint()

    async with trio.open_nursery() as nursery:
        nursery.start_soon(other)
        await trio.lowlevel.checkpoint()
        before = turns
        await index.sync(pods_of(100))
        during = turns - before
        done.set()
    # ten chunks of ten pods: the other task ran between them (trio may order one turn either side)
    assert during >= 9
    assert len(index.pods) == 100


async def test_least_recently_used_namespace_is_evicted() -> None:
    indexes = PodIndexes(max_namespaces=2)
    selector = parse_label_selector("app=a0")
    await indexes.select("one", pods_of(4), selector)
    await indexes.select("two", pods_of(4), selector)
    await indexes.select("one", pods_of(4), selector)
    await indexes.select("three", pods_of(4), selector)
    assert len(indexes) == 2
    assert list(indexes._indexes) == ["one", "three"]


def relabelled(pods: tuple[PodInfo, ...], positions: tuple[int, ...], app: str) -> tuple[PodInfo, ...]:
    out = list(pods)
    for i in positions:
        out[i] = PodInfo("ns", out[i].name, f"new-{i}", {"app": app}, "n")
    return tuple(out)


async def test_concurrent_selects_each_see_their_own_generation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(podindex, "CHUNK", 7)  # many checkpoints inside each sync
    indexes = PodIndexes()
    selector = parse_label_selector("app in (a1,b1)")
    base = pods_of(60)
    await indexes.select("ns", base, selector)
    # Two small changes of the same base, synced at the same time: each a diff, not a rebuild.
    one = relabelled(base, (2, 6), "b1")
    two = relabelled(base, (10, 14), "b1")
    results: dict[str, list[str]] = {}

    async def select(label: str, pods: tuple[PodInfo, ...]) -> None:
        found = await indexes.select("ns", pods, selector)
        results[label] = sorted(p.name for p in found if selector.matches(p.labels))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(select, "one", one)
        nursery.start_soon(select, "two", two)
    assert results == {"one": scan(one, selector), "two": scan(two, selector)}
    index = indexes._indexes["ns"]
    assert bucket_entries(index) == {entry(item, p.name, p) for p in index.pods for item in p.labels.items()}


async def test_updates_in_place_and_appends_take_the_positional_diff(monkeypatch: pytest.MonkeyPatch) -> None:
    general: list[int] = []
    original = podindex._by_id

    async def counting(pods: tuple[PodInfo, ...]) -> dict[int, PodInfo]:
        general.append(len(pods))
        return await original(pods)

    monkeypatch.setattr(podindex, "_by_id", counting)
    index = NamespaceIndex()
    base = pods_of(100)
    await index.sync(base)
    updated = (*relabelled(base, (3, 50), "b1"), PodInfo("ns", "p100", "u", {"app": "b1"}, "n"))
    await index.sync(updated)
    assert general == []  # positions kept: no identity maps needed
    selector = parse_label_selector("app=b1")
    found = index.candidates(selector)
    assert found is not None and sorted(p.name for p in found) == ["p003", "p050", "p100"]
    # a deletion shifts what follows it: the general diff
    shifted = updated[:10] + updated[11:]
    await index.sync(shifted)
    assert general == [100, 101]
    assert bucket_entries(index) == {entry(item, p.name, p) for p in shifted for item in p.labels.items()}
    # same positions, another pod in one of them: still positional (removed, then added)
    renamed = (*shifted[:5], PodInfo("ns", "zz", "u", {"app": "a1"}, "n"), *shifted[6:])
    await index.sync(renamed)
    assert general == [100, 101]
    assert bucket_entries(index) == {entry(item, p.name, p) for p in renamed for item in p.labels.items()}
    # the tail dropped: positional too
    await index.sync(renamed[:95])
    assert general == [100, 101]
    assert bucket_entries(index) == {
        entry(item, p.name, p) for p in renamed[:95] for item in p.labels.items()
    }
