"""Lists asked for during one snapshot are rebuilt for the next in the background (`api.refresh`),
and a request for a list being built waits for that build rather than building it again."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing
from conftest import Asgi, FakeSnapshot, World, default_world, make_app

from metrics_server.api import listcache
from metrics_server.api.refresh import ListRefresher
from metrics_server.api.resources import ResourceApi

API = "/apis/metrics.k8s.io/v1beta1"
GET = f"{API}/namespaces/default/pods/web-1"


@pytest.fixture
def builds(monkeypatch: pytest.MonkeyPatch) -> list[tuple[object, tuple[str, str | None]]]:
    """Every cached list built, as (snapshot, (resource, namespace)), whoever asked for it."""
    seen: list[tuple[object, tuple[str, str | None]]] = []
    made = listcache.CachedList

    def counting(snapshot: Any, state: Any, order: Any, head: bytes, *rest: Any) -> listcache.CachedList:
        resource = "nodes" if head.startswith(b'{"kind":"NodeMetricsList"') else "pods"
        namespaces = {info.namespace for info in state} if resource == "pods" else set()
        seen.append((snapshot, (resource, namespaces.pop() if len(namespaces) == 1 else None)))
        return made(snapshot, state, order, head, *rest)

    monkeypatch.setattr(listcache, "CachedList", counting)
    return seen


def next_snapshot(world: World) -> FakeSnapshot:
    """A new snapshot object with the same usages (as a publish of unchanged data gives)."""
    world.snapshot = FakeSnapshot(dict(world.snapshot.nodes), dict(world.snapshot.pods))
    return world.snapshot


async def test_a_list_asked_for_is_rebuilt_for_the_next_snapshot_before_it_is_asked_again(
    builds: list[tuple[object, tuple[str, str | None]]],
) -> None:
    world = default_world()
    first = world.snapshot
    app = make_app(world)
    async with app.test_app():
        asgi = Asgi(app)
        status, before = await asgi.get(f"{API}/pods")
        assert status == 200
        assert (await asgi.get(f"{API}/nodes"))[0] == 200
        second = next_snapshot(world)
        # Any request that sees the new snapshot starts the rebuild; here a single get.
        assert (await asgi.get(GET))[0] == 200
        await trio.testing.wait_all_tasks_blocked()
        assert builds == [
            (first, ("pods", None)),
            (first, ("nodes", None)),
            (second, ("pods", None)),
            (second, ("nodes", None)),
        ]
        status, after = await asgi.get(f"{API}/pods")
        assert (status, after) == (200, before)  # served from the rebuilt list: no build
        assert len(builds) == 4


async def test_only_the_lists_asked_for_during_the_previous_snapshot_are_rebuilt(
    builds: list[tuple[object, tuple[str, str | None]]],
) -> None:
    world = default_world()
    app = make_app(world)
    async with app.test_app():
        asgi = Asgi(app)
        assert (await asgi.get(f"{API}/namespaces/default/pods"))[0] == 200
        assert (await asgi.get(f"{API}/pods", "labelSelector=app%3Dweb"))[0] == 200  # not cached
        second = next_snapshot(world)
        assert (await asgi.get(GET))[0] == 200
        await trio.testing.wait_all_tasks_blocked()
        assert builds[1:] == [(second, ("pods", "default"))]
        # Nothing was asked for during the second snapshot (the rebuild is not a request).
        next_snapshot(world)
        assert (await asgi.get(GET))[0] == 200
        await trio.testing.wait_all_tasks_blocked()
        assert builds[1:] == [(second, ("pods", "default"))]


async def test_a_request_during_a_rebuild_waits_for_it(
    builds: list[tuple[object, tuple[str, str | None]]], monkeypatch: pytest.MonkeyPatch
) -> None:
    world = default_world()
    app = make_app(world)
    release = trio.Event()
    held: list[object] = []
    build = ResourceApi._list_entry

    async def holding(self: ResourceApi, snap: Any, key: Any) -> Any:
        if trio.lowlevel.current_task().name == "api-list-refresher":
            held.append(snap)
            await release.wait()  # the rebuild is under way
        return await build(self, snap, key)

    monkeypatch.setattr(ResourceApi, "_list_entry", holding)
    async with app.test_app():
        asgi = Asgi(app)
        status, before = await asgi.get(f"{API}/pods")
        assert status == 200
        second = next_snapshot(world)
        bodies: list[bytes] = []

        async def list_pods() -> None:
            bodies.append((await asgi.get(f"{API}/pods"))[1])

        assert (await asgi.get(GET))[0] == 200  # starts the rebuild
        await trio.testing.wait_all_tasks_blocked()
        assert held == [second]
        async with trio.open_nursery() as nursery:
            nursery.start_soon(list_pods)
            await trio.testing.wait_all_tasks_blocked()
            assert bodies == []  # waiting for the rebuild, not building its own
            release.set()
        assert bodies == [before]
        assert [b for b in builds if b[0] is second] == [(second, ("pods", None))]


async def test_a_failed_rebuild_is_logged_and_the_next_list_is_rebuilt(
    caplog: pytest.LogCaptureFixture,
) -> None:
    done: list[tuple[str, str | None]] = []

    async def build(snapshot: object, key: tuple[str, str | None]) -> None:
        await trio.lowlevel.checkpoint()
        if key == ("pods", None):
            raise RuntimeError("broken")
        done.append(key)

    refresher = ListRefresher(build)
    first, second = object(), object()
    refresher.seen(first, ("pods", None))
    refresher.seen(first, ("nodes", None))
    refresher.seen(first, None)
    assert not refresher.running
    refresher.seen(second, None)
    assert refresher.running
    await trio.testing.wait_all_tasks_blocked()
    assert (done, refresher.built, refresher.running) == ([("nodes", None)], 1, False)
    assert [r.getMessage() for r in caplog.records] == ["Rebuilding a cached list failed"]
