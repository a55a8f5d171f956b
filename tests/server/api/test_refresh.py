"""Lists asked for during one snapshot are rebuilt for the next in the background (`api.refresh`),
and a request for a list being built waits for that build rather than building it again."""

from __future__ import annotations

from typing import Any

import pytest
import trio
import trio.testing
from conftest import NOW_TEXT, TS, TS_TEXT, Asgi, FakeSnapshot, World, default_world, make_app

from metrics_server.api import listcache, refresh, resources
from metrics_server.api.refresh import ListRefresher
from metrics_server.api.resources import ResourceApi
from metrics_server.api.steps import BACKGROUND_STEP_S, STEP_S
from metrics_server.storage.snapshot import PodUsage

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


class RefresherHeld:
    """Holds every rebuild of the list refresher until `release` is set; `held` records the
    snapshots of the rebuilds that started (requests build as usual)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.release = trio.Event()
        self.held: list[object] = []
        build = ResourceApi._list_entry

        async def holding(api: ResourceApi, snap: Any, *args: Any) -> Any:
            if trio.lowlevel.current_task().name == "api-list-refresher":
                self.held.append(snap)
                await self.release.wait()  # the rebuild is under way
            return await build(api, snap, *args)

        monkeypatch.setattr(ResourceApi, "_list_entry", holding)


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
    refresher = RefresherHeld(monkeypatch)
    held, release = refresher.held, refresher.release
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
    assert refresher.serving(first) is first
    refresher.want(("pods", None))
    refresher.want(("nodes", None))
    assert not refresher.running
    assert refresher.serving(second) is second
    assert refresher.running
    await trio.testing.wait_all_tasks_blocked()
    assert (done, refresher.built, refresher.running) == ([("nodes", None)], 1, False)
    assert [r.getMessage() for r in caplog.records] == ["Rebuilding a cached list failed"]


class HeldBuilds:
    """A `build` for `ListRefresher` that waits for `release` and records what it built."""

    def __init__(self) -> None:
        self.release = trio.Event()
        self.done: list[tuple[object, tuple[str, str | None]]] = []

    async def __call__(self, snapshot: object, key: tuple[str, str | None]) -> None:
        await self.release.wait()
        self.done.append((snapshot, key))


async def test_during_a_large_rebuild_requests_are_served_from_the_previous_snapshot() -> None:
    builds = HeldBuilds()
    refresher = ListRefresher(builds, hold_at=100)
    first, second = object(), object()
    assert refresher.serving(first) is first
    refresher.want(("pods", None))
    refresher.sized(("pods", None), 100)
    assert refresher.serving(second) is first  # held: 100 objects to rebuild
    await trio.testing.wait_all_tasks_blocked()
    assert (refresher.running, refresher.serving(second)) == (True, first)
    builds.release.set()
    await trio.testing.wait_all_tasks_blocked()
    assert builds.done == [(second, ("pods", None))]
    assert (refresher.running, refresher.serving(second)) == (False, second)


async def test_a_small_rebuild_switches_at_once() -> None:
    builds = HeldBuilds()
    refresher = ListRefresher(builds, hold_at=100)
    first, second = object(), object()
    refresher.serving(first)
    refresher.want(("pods", "default"))
    refresher.sized(("pods", "default"), 99)
    assert refresher.serving(second) is second
    assert refresher.running
    builds.release.set()


async def test_a_rebuild_overtaken_by_a_newer_snapshot_is_served_as_it_is() -> None:
    """A snapshot is never held back behind more than one newer one; every switch is told, with
    the newest snapshot, so that caches of anything older can go."""
    builds = HeldBuilds()
    switches: list[tuple[object, object]] = []
    refresher = ListRefresher(builds, hold_at=1, on_switch=lambda *pair: switches.append(pair))
    first, second, third = object(), object(), object()
    refresher.serving(first)
    refresher.want(("pods", None))
    refresher.sized(("pods", None), 5)
    assert refresher.serving(second) is first
    await trio.testing.wait_all_tasks_blocked()  # the rebuild for the second is under way
    refresher.want(("pods", None))  # asked for again while held
    assert refresher.serving(third) is second
    builds.release.set()
    await trio.testing.wait_all_tasks_blocked()
    assert builds.done == [(second, ("pods", None)), (third, ("pods", None))]
    assert refresher.serving(third) is third
    assert switches == [(first, first), (second, third), (third, third)]


async def test_the_api_serves_the_previous_snapshot_until_its_large_list_is_rebuilt(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(refresh, "HOLD_AT", 1)
    world = default_world()
    app = make_app(world)
    release = RefresherHeld(monkeypatch).release
    async with app.test_app():
        asgi = Asgi(app)
        status, before = await asgi.get(f"{API}/pods")
        get_before = (await asgi.get(GET))[1]
        assert status == 200
        second = next_snapshot(world)
        web_1 = second.pods[("default", "web-1")]
        second.pods[("default", "web-1")] = PodUsage(TS + 15_000_000_000, web_1[1], web_1[2])
        # Held on the first snapshot, both the list and the get, without waiting for the build.
        assert await asgi.get(f"{API}/pods") == (200, before)
        assert await asgi.get(GET) == (200, get_before)
        release.set()
        await trio.testing.wait_all_tasks_blocked()
        status, after = await asgi.get(f"{API}/pods")
        assert status == 200
        web_1_before = b'"name":"web-1",' + before.split(b'"name":"web-1",', 1)[1].split(b"}]}", 1)[0]
        assert TS_TEXT.encode() in web_1_before
        assert after == before.replace(
            web_1_before, web_1_before.replace(TS_TEXT.encode(), NOW_TEXT.encode())
        )


async def test_a_rebuild_no_request_waits_for_takes_shorter_steps(monkeypatch: pytest.MonkeyPatch) -> None:
    """While requests are held on the previous snapshot the rebuild paces itself with
    `BACKGROUND_STEP_S`; a list a request builds (or may wait for) keeps `STEP_S`."""
    steps_of: list[tuple[str, float]] = []
    real = resources.Pacer

    def recording(step_s: float = STEP_S) -> Any:
        steps_of.append((trio.lowlevel.current_task().name, step_s))
        return real(step_s)

    monkeypatch.setattr(resources, "Pacer", recording)
    monkeypatch.setattr(refresh, "HOLD_AT", 1)
    world = default_world()
    app = make_app(world)
    async with app.test_app():
        asgi = Asgi(app)
        assert (await asgi.get(f"{API}/pods"))[0] == 200
        next_snapshot(world)
        assert (await asgi.get(GET))[0] == 200  # held: the rebuild starts
        await trio.testing.wait_all_tasks_blocked()
    assert [step for _, step in steps_of] == [STEP_S, BACKGROUND_STEP_S]
    assert steps_of[1][0] == "api-list-refresher"


async def test_after_a_switch_the_caches_of_older_snapshots_are_dropped(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(refresh, "HOLD_AT", 1)
    world = default_world()
    release = RefresherHeld(monkeypatch).release
    apis: list[ResourceApi] = []
    init = ResourceApi.__init__

    def capturing(self: ResourceApi, *args: Any) -> None:
        init(self, *args)
        apis.append(self)

    monkeypatch.setattr(ResourceApi, "__init__", capturing)
    app = make_app(world)
    (api,) = apis
    async with app.test_app():
        asgi = Asgi(app)
        first = world.snapshot
        assert (await asgi.get(f"{API}/pods"))[0] == 200
        assert (await asgi.get(f"{API}/namespaces/default/pods"))[0] == 200
        second = next_snapshot(world)
        assert (await asgi.get(f"{API}/pods"))[0] == 200  # held on the first; rebuilds both lists
        await trio.testing.wait_all_tasks_blocked()
        assert [s for s, _ in api.cache._generations] == [first]
        assert {key: entry.snapshot for key, entry in api.lists.items()} == {
            ("pods", None): first,
            ("pods", "default"): first,
        }
        release.set()
        await trio.testing.wait_all_tasks_blocked()
        assert [s for s, _ in api.cache._generations] == [second]
        assert {key: entry.snapshot for key, entry in api.lists.items()} == {
            ("pods", None): second,
            ("pods", "default"): second,
        }
