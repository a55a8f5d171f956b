"""Lists without selectors served from `api.listcache`: same bytes as a fresh build, invalidated by
a new snapshot or any change of the lister's objects; dropped caches freed in steps, untouched."""

from __future__ import annotations

from collections import Counter
from typing import Any

import orjson
from conftest import NOW, TS, World, default_world, make_app, node, pod
from test_resources import COREDNS, DB0, NODE_A, NODE_B, WEB1, WEB2, node_list, pod_list

from metrics_server.api import listcache, render
from metrics_server.api.app import ApiOptions
from metrics_server.storage.snapshot import ContainerUsage, NodeUsage, PodUsage

API = "/apis/metrics.k8s.io/v1beta1"


async def body(client: Any, path: str) -> bytes:
    response = await client.get(path)
    assert response.status_code == 200
    return await response.get_data()  # type: ignore[no-any-return]


def new_snapshot(world: World) -> None:
    world.snapshot = type(world.snapshot)(dict(world.snapshot.nodes), dict(world.snapshot.pods))


async def test_repeated_lists_are_the_same_bytes_and_observe_every_object(client: Any, world: World) -> None:
    all_pods = pod_list(DB0, WEB1, WEB2, COREDNS)  # by namespace, then name
    assert await body(client, f"{API}/pods") == all_pods
    assert await body(client, f"{API}/pods") == all_pods
    assert await body(client, f"{API}/namespaces/default/pods") == pod_list(DB0, WEB1, WEB2)
    assert await body(client, f"{API}/namespaces/default/pods") == pod_list(DB0, WEB1, WEB2)
    assert await body(client, f"{API}/nodes") == node_list(NODE_A, NODE_B)
    assert await body(client, f"{API}/nodes") == node_list(NODE_A, NODE_B)
    assert world.freshness == [NOW - TS / 1e9] * (2 * 4 + 2 * 3 + 2 * 2)


async def test_pod_cache_changes_are_served_at_once(client: Any, world: World) -> None:
    await body(client, f"{API}/pods")
    # relabelled (a new PodInfo object in place of the old one)
    world.pods.items[("default", "web-2")] = pod("default", "web-2", {"app": "api"}, "node-b")
    items = orjson.loads(await body(client, f"{API}/pods"))["items"]
    assert items[2]["metadata"]["labels"] == {"app": "api"}
    # removed, then added back with metrics
    del world.pods.items[("default", "web-1")]
    names = [i["metadata"]["name"] for i in orjson.loads(await body(client, f"{API}/pods"))["items"]]
    assert names == ["db-0", "web-2", "coredns-1"]
    world.pods.items[("default", "web-1")] = pod("default", "web-1", {"app": "web"}, "node-a")
    world.pods.items[("default", "ghost")] = pod("default", "ghost", {}, "node-a")
    names = [i["metadata"]["name"] for i in orjson.loads(await body(client, f"{API}/pods"))["items"]]
    assert names == ["db-0", "ghost", "web-1", "web-2", "coredns-1"]
    names = [
        i["metadata"]["name"]
        for i in orjson.loads(await body(client, f"{API}/namespaces/default/pods"))["items"]
    ]
    assert names == ["db-0", "ghost", "web-1", "web-2"]


async def test_a_new_snapshot_is_served_at_once(client: Any, world: World) -> None:
    await body(client, f"{API}/pods")
    await body(client, f"{API}/nodes")
    new_snapshot(world)
    world.snapshot.pods[("default", "db-0")] = PodUsage(TS, 30_000_000_000, (ContainerUsage("db", 1, 4096),))
    world.snapshot.nodes["node-a"] = NodeUsage(TS, 15_000_000_000, 1_000_000, 1 << 30)
    items = orjson.loads(await body(client, f"{API}/pods"))["items"]
    assert items[0]["containers"] == [{"name": "db", "usage": {"cpu": "1n", "memory": "4Ki"}}]
    items = orjson.loads(await body(client, f"{API}/nodes"))["items"]
    assert items[0]["usage"] == {"cpu": "1m", "memory": "1Gi"}
    # a pod that loses its metrics in a new snapshot is left out
    new_snapshot(world)
    del world.snapshot.pods[("default", "db-0")]
    assert await body(client, f"{API}/pods") == pod_list(WEB1, WEB2, COREDNS)


async def test_node_lists_follow_the_node_cache_and_the_node_selector(world: World) -> None:
    world.nodes.items["node-c"] = node("node-c", {"tier": "2"})
    world.snapshot.nodes["node-c"] = NodeUsage(TS, 15_000_000_000, 1_000, 2048)
    app = make_app(world, ApiOptions(node_selector="tier!=1", version={}))
    async with app.test_app() as test_app:
        client = test_app.test_client()
        names = [i["metadata"]["name"] for i in orjson.loads(await body(client, f"{API}/nodes"))["items"]]
        assert names == ["node-b", "node-c"]
        del world.nodes.items["node-b"]
        names = [i["metadata"]["name"] for i in orjson.loads(await body(client, f"{API}/nodes"))["items"]]
        assert names == ["node-c"]


async def test_swap_lists_are_cached_with_swap() -> None:
    world = default_world()
    app = make_app(world, ApiOptions(serve_swap=True, version={}))
    async with app.test_app() as test_app:
        client = test_app.test_client()
        first = await body(client, f"{API}/namespaces/default/pods")
        assert await body(client, f"{API}/namespaces/default/pods") == first
        web1 = orjson.loads(first)["items"][1]
        assert web1["containers"][0]["usage"] == {"cpu": "5u", "memory": "1000000", "swap": "2Ki"}


async def test_big_lists_match_a_fresh_build_across_snapshots() -> None:
    world = default_world()
    for i in range(2 * render.CHUNK + 7):
        name = f"p-{i:05d}"
        world.pods.items[("bulk", name)] = pod("bulk", name, {"i": str(i % 3)})
        world.snapshot.pods[("bulk", name)] = PodUsage(TS, 15_000_000_000, (ContainerUsage("c", i, 4096),))
    app = make_app(world)
    async with app.test_app() as test_app:
        client = test_app.test_client()
        bodies = []
        for _ in range(3):  # the third snapshot drops the first one's generation (swept later)
            bodies.append(await body(client, f"{API}/pods"))
            assert await body(client, f"{API}/pods") == bodies[-1]
            new_snapshot(world)
        # a fresh app (nothing cached) gives the same bytes
        fresh = make_app(world)
        async with fresh.test_app() as fresh_test_app:
            assert await body(fresh_test_app.test_client(), f"{API}/pods") == bodies[-1]
        assert len(orjson.loads(bodies[-1])["items"]) == 2 * render.CHUNK + 7 + 4


def test_a_cached_list_holds_the_fragments_bytes_not_a_copy() -> None:
    heads = [f'{{"metadata":{{"name":"p{i}","creationTimestamp":"'.encode() for i in range(5)]
    fragments: list[Any] = [
        (head, b'"}', f',"n":{i}}}'.encode(), TS, f"p{i}", None, False, True) for i, head in enumerate(heads)
    ]
    chunks = [listcache.chunk_pieces(fragments[:2], True), listcache.chunk_pieces(fragments[2:], False)]
    cached = listcache.CachedList(None, (), (), b"HEAD[", chunks, listcache.stamps_of(Counter()))
    now = b"2026-12-07T01:30:00Z"
    items = [f[render.HEAD] + now + f[render.META_TAIL] + f[render.BODY_TAIL] for f in fragments]
    assert b"".join(cached.pieces(now)) == b"HEAD[" + b",".join(items) + render.LIST_TAIL
    later = b"HEAD[" + b",".join(items).replace(now, b"later") + render.LIST_TAIL
    assert b"".join(cached.pieces(b"later")) == later
    parts = (render.HEAD, render.META_TAIL, render.BODY_TAIL)
    kept = {id(piece) for chunk in chunks for piece in chunk if piece not in (b"", b",")}
    assert kept == {id(f[part]) for f in fragments for part in parts}


def test_discarded_references_are_dropped_in_steps_and_left_whole() -> None:
    cache = render.FragmentCache()
    held = [[b"a"] * 10 for _ in range(5)]
    cache.discard(held, 10)
    assert not cache.sweep(20)  # two of five dropped
    assert cache.sweep(100)
    assert held == [[b"a"] * 10 for _ in range(5)]  # whoever still holds them sees them whole


def test_a_dropped_generation_is_emptied_in_steps() -> None:
    cache = render.FragmentCache()
    snapshots = [object() for _ in range(3)]
    first = cache.generation(snapshots[0])
    for i in range(25):
        first.entries[i] = (None, None, None)  # type: ignore[assignment]
    entries = first.entries
    cache.generation(snapshots[1])
    assert cache.sweep(1)  # nothing dropped yet
    cache.generation(snapshots[2])
    assert first.entries == {}  # a request still holding the generation encodes again
    assert len(entries) == 25
    assert not cache.sweep(10)
    assert len(entries) == 16  # the snapshot reference went first
    assert cache.sweep(100)
    assert entries == {}
