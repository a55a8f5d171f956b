"""The caches' decoding, label sharing and memory footprint (no network)."""

from __future__ import annotations

import gc
import re
import subprocess
import sys
import tracemalloc
from pathlib import Path

import orjson
from kubefake import make_node, make_pod

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
    """tracemalloc of the retained cache, realistic labels (see podcache_memory.py for 150k).

    Measured in a fresh interpreter: tracemalloc counts every thread's allocations and
    interpreter-wide table growth inside its window, so inside the test process the figure
    depended on which tests ran before (335-1094 B/pod); alone it is the same every run."""
    script = Path(__file__).with_name("podcache_memory.py")
    done = subprocess.run([sys.executable, str(script), "6000"], capture_output=True, text=True, check=True)
    lines = done.stdout.splitlines()
    assert lines[0] == "pods: 6000  namespaces: 501  distinct label sets: 1999"
    match = re.search(r"\((\d+) B/pod\)", lines[1])
    assert match is not None, lines[1]
    assert int(match.group(1)) < 600, lines[1]


def test_unchanged_pods_keep_their_object_across_events_and_relists() -> None:
    cache = PodCache()
    first = cache.begin_replace()
    first.add(make_pod("ns", "web-0", labels={"app": "web"}))
    first.add(make_pod("ns", "web-1", labels={"app": "web"}))
    first.commit()
    web0, web1 = cache.get("ns", "web-0"), cache.get("ns", "web-1")
    assert web0 is not None and web1 is not None

    cache.upsert(make_pod("ns", "web-0", labels={"app": "web"}))  # a status-only MODIFIED event
    assert cache.get("ns", "web-0") is web0
    cache.upsert(make_pod("ns", "web-1", labels={"app": "web", "v": "2"}))  # a label changed
    changed = cache.get("ns", "web-1")
    assert changed is not web1 and changed is not None and changed.labels == {"app": "web", "v": "2"}
    assert len(cache) == 2

    relist = cache.begin_replace()
    relist.add(make_pod("ns", "web-0", labels={"app": "web"}))  # unchanged
    relist.add(make_pod("ns", "web-1", node="node-2", labels={"app": "web", "v": "2"}))  # moved
    relist.add(make_pod("ns", "web-2", labels={"app": "web"}))  # new
    relist.commit()
    assert cache.get("ns", "web-0") is web0
    moved = cache.get("ns", "web-1")
    assert moved is not None and moved is not changed and moved.node_name == "node-2"
    assert [p.name for p in cache.list("ns")] == ["web-0", "web-1", "web-2"]
    assert len(cache) == 3


def test_pod_lists_are_the_same_tuple_until_the_cache_changes() -> None:
    cache = PodCache()
    replace = cache.begin_replace()
    for namespace, name in [("a", "p0"), ("a", "p1"), ("b", "q0")]:
        replace.add(make_pod(namespace, name))
    replace.commit()
    everything, in_a, in_b = cache.list(), cache.list("a"), cache.list("b")
    assert [p.name for p in everything] == ["p0", "p1", "q0"]
    assert (cache.list(), cache.list("a"), cache.list("b")) == (everything, in_a, in_b)
    assert cache.list() is everything and cache.list("a") is in_a and cache.list("b") is in_b

    cache.upsert(make_pod("a", "p0"))  # status only: nothing changed
    assert cache.list() is everything and cache.list("a") is in_a
    cache.upsert(make_pod("a", "p2"))  # added to a: a's list and the whole list are new
    assert [p.name for p in cache.list("a")] == ["p0", "p1", "p2"]
    assert cache.list() is not everything and cache.list("b") is in_b
    everything = cache.list()
    cache.delete(make_pod("b", "q0"))
    assert (cache.list("b"), [p.name for p in cache.list()]) == ((), ["p0", "p1", "p2"])
    cache.delete(make_pod("b", "gone"))  # not cached: nothing changed
    everything = cache.list()
    assert cache.list() is everything
    cache.upsert(make_pod("a", "p1", phase="Succeeded"))  # left Running: removed
    assert [p.name for p in cache.list()] == ["p0", "p2"]

    relist = cache.begin_replace()
    relist.add(make_pod("c", "r0"))
    relist.commit()
    assert ([p.name for p in cache.list()], cache.list("a")) == (["r0"], ())


def test_unchanged_nodes_keep_their_object_across_events_and_relists() -> None:
    cache = NodeCache()
    first = cache.begin_replace()
    first.add(make_node("a"))
    first.commit()
    a = cache.get("a")
    cache.upsert(make_node("a"))  # a heartbeat: only status timestamps changed
    assert cache.get("a") is a
    relist = cache.begin_replace()
    relist.add(make_node("a"))
    relist.commit()
    assert cache.get("a") is a
    cache.upsert(make_node("a", ready=False))
    now = cache.get("a")
    assert now is not a and now is not None and not now.ready


def test_relisting_unchanged_pods_allocates_no_second_copy() -> None:
    """The new generation holds the old pods: only its dicts are new (~60 B/pod, not ~400)."""
    pages = [orjson.dumps({"items": [make_pod("ns", f"p-{i}", labels={"k": str(i)}) for i in range(3000)]})]
    cache = PodCache()
    for relist in range(2):
        gc.collect()
        tracemalloc.start()
        replacement = cache.begin_replace()
        for raw in pages:
            for obj in orjson.loads(raw)["items"]:
                replacement.add(obj)
        replacement.commit()
        del replacement
        gc.collect()
        retained = tracemalloc.get_traced_memory()[0]
        tracemalloc.stop()
        if relist == 0:
            first = retained
    assert len(cache) == 3000
    assert retained < first / 3, (first, retained)
