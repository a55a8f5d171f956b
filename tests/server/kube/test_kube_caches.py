"""The caches' decoding, label sharing and memory footprint (no network)."""

from __future__ import annotations

from kubefake import make_node, make_pod
from podcache_memory import measure

from metrics_server.kube.nodes import NodeCache
from metrics_server.kube.pods import PodCache


def test_identical_label_sets_and_strings_are_shared() -> None:
    cache = PodCache()
    replacement = cache.begin_replace()
    for i in range(3):
        replacement.add(make_pod("ns-a", f"web-{i}", node="node-7", labels={"app": "web", "hash": "abc"}))
    replacement.add(make_pod("ns-a", "db-0", node="node-7", labels={"app": "db"}))
    replacement.commit()

    web = [cache.get("ns-a", f"web-{i}") for i in range(3)]
    assert all(p is not None for p in web)
    assert web[0] is not None and web[1] is not None and web[2] is not None
    assert web[0].labels is web[1].labels is web[2].labels
    assert web[0].node_name is web[2].node_name  # interned
    db = cache.get("ns-a", "db-0")
    assert db is not None and db.labels == {"app": "db"}
    assert len(cache._interner) == 2


def test_label_sets_of_departed_pods_are_forgotten() -> None:
    cache = PodCache()
    cache.begin_replace().commit()
    for rollout in range(6000):  # each rollout brings a new pod-template-hash
        cache.upsert(make_pod("ns", f"app-{rollout}", labels={"app": "x", "pod-template-hash": str(rollout)}))
        if rollout:
            cache.delete(make_pod("ns", f"app-{rollout - 1}"))
    assert len(cache) == 1
    assert len(cache._interner) < 4100  # pruned when it passed 4096 sets, not 6000
    assert cache.list()[0].labels == {"app": "x", "pod-template-hash": "5999"}


def test_metadata_only_objects_are_accepted() -> None:
    cache = PodCache()
    cache.upsert({"metadata": {"namespace": "ns", "name": "p", "uid": "u", "labels": {"a": "b"}}})
    pod = cache.get("ns", "p")
    assert pod is not None and pod.node_name == "" and pod.labels == {"a": "b"}


def test_node_cache_replace_is_atomic() -> None:
    cache = NodeCache()
    first = cache.begin_replace()
    first.add(make_node("a"))
    first.commit()
    second = cache.begin_replace()
    second.add(make_node("b"))
    assert [n.name for n in cache.list()] == ["a"]  # not visible before commit
    second.commit()
    assert [n.name for n in cache.list()] == ["b"]


def test_pod_cache_memory_per_pod() -> None:
    """tracemalloc of the retained cache, realistic labels (see podcache_memory.py for 150k)."""
    cache, retained, _, label_sets = measure(6000)
    assert len(cache) == 6000
    assert label_sets == 1999
    assert retained / 6000 < 600, f"{retained / 6000:.0f} bytes per pod"
