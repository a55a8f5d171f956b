"""Dropped caches are freed by a task of their own (`steps.Sweeper`), in steps, not by requests."""

from __future__ import annotations

from typing import cast

import trio
import trio.testing
from conftest import Asgi, default_world, make_app

from metrics_server.api import render
from metrics_server.api.steps import Sweeper
from metrics_server.kube.objects import PodInfo

API = "/apis/metrics.k8s.io/v1beta1"


class StepCounter(trio.abc.Instrument):
    """Event-loop steps per task name."""

    def __init__(self) -> None:
        self.steps: dict[str, int] = {}

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        self.steps[task.name] = self.steps.get(task.name, 0) + 1


def test_the_cache_calls_on_trash_when_its_trash_stops_being_empty() -> None:
    calls: list[object] = []
    cache = render.FragmentCache(on_trash=calls.append)
    snapshots = [object() for _ in range(4)]
    cache.generation(snapshots[0])
    cache.generation(snapshots[1])
    assert calls == []  # nothing dropped yet
    cache.generation(snapshots[2])  # drops the first generation
    assert calls == [cache.sweep]
    cache.discard([[b"x"]], 1)  # more trash while some is left: no second call
    assert len(calls) == 1
    assert cache.sweep(100)
    cache.generation(snapshots[3])
    assert calls == [cache.sweep, cache.sweep]


async def test_the_sweeper_empties_the_trash_in_steps_of_its_own() -> None:
    sweeper = Sweeper(10)
    cache = render.FragmentCache(on_trash=sweeper.wake)
    snapshots = [object() for _ in range(3)]
    first = cache.generation(snapshots[0])
    for i in range(25):
        first.entries[i] = (None, None, None)  # type: ignore[assignment]
    entries = first.entries
    cache.generation(snapshots[1])
    assert not sweeper.running
    counter = StepCounter()
    trio.lowlevel.add_instrument(counter)
    try:
        cache.generation(snapshots[2])
        assert sweeper.running
        assert len(entries) == 25  # nothing freed by the caller
        await trio.testing.wait_all_tasks_blocked()
    finally:
        trio.lowlevel.remove_instrument(counter)
    assert entries == {}
    assert cache.sweep(0)
    assert not sweeper.running
    # the snapshot reference, 3 empty dicts and 25 entries, 10 items per step: 1 + 9, 10, 6
    assert counter.steps["api-cache-sweeper"] == 3
    # the next drop starts it again
    cache.discard([[1, 2, 3]], 1)
    assert sweeper.running
    await trio.testing.wait_all_tasks_blocked()
    assert cache.sweep(0)
    assert not sweeper.running


async def test_lists_leave_the_sweeping_to_the_sweeper_and_serve_the_same_bytes() -> None:
    world = default_world()
    app = make_app(world)
    async with app.test_app():
        asgi = Asgi(app)
        bodies: list[bytes] = []
        counter = StepCounter()
        trio.lowlevel.add_instrument(counter)
        try:
            # each list from the second on sees a new snapshot, and the switch to it drops the
            # previous snapshot's generation and cached list: two steps of the sweeper (the list's
            # one chunk counts as `render.CHUNK` items, a whole step's budget), none of the request
            for _ in range(4):
                status, body = await asgi.get(f"{API}/pods")
                assert status == 200
                bodies.append(body)
                world.snapshot = type(world.snapshot)(dict(world.snapshot.nodes), dict(world.snapshot.pods))
            await trio.testing.wait_all_tasks_blocked()
        finally:
            trio.lowlevel.remove_instrument(counter)
        assert counter.steps["api-cache-sweeper"] == 2 + 2 + 2
        assert bodies == [bodies[0]] * 4


def test_keep_only_drops_the_generations_of_every_other_snapshot_to_the_trash() -> None:
    calls: list[object] = []
    cache = render.FragmentCache(on_trash=calls.append)
    first, second = object(), object()
    old = cache.generation(first)
    old.entries["x"] = cast(render.Fragment, ())
    kept = cache.generation(second)
    cache.keep_only(second, second)
    assert cache.generation(second) is kept and old.entries == {}
    assert len(calls) == 1
    while not cache.sweep(1000):
        pass
    assert cache.generation(first) is not old  # a new, empty one if it is asked for again


def _swept(cache: render.FragmentCache) -> None:
    while not cache.sweep(1000):
        pass


def test_static_parts_outlive_a_switch_to_a_snapshot_with_no_generation_yet() -> None:
    # keep_only(new, new) before anything was served from `new` (a switch with nothing to
    # rebuild) leaves no generation: the next one still takes the static parts over, instead of
    # encoding every object's name and labels again.
    cache = render.FragmentCache(on_trash=lambda sweep: None)
    first, second = object(), object()
    pod = PodInfo("ns", "web-1", "uid-web-1", {"app": "web"}, "node-1")
    parts = cache.generation(first).static_parts(pod, pod.namespace)
    cache.keep_only(second, second)
    _swept(cache)
    assert cache.generation(second).static_parts(pod, pod.namespace) is parts


def test_static_parts_of_a_dropped_generation_are_kept_for_the_newer_one_that_takes_them_over() -> None:
    cache = render.FragmentCache(on_trash=lambda sweep: None)
    first, second, third = object(), object(), object()
    pods = [PodInfo("ns", f"web-{i}", f"uid-{i}", {"app": "web"}, "node-1") for i in range(4)]
    parts = [cache.generation(first).static_parts(pod, pod.namespace) for pod in pods]
    newer = cache.generation(second)
    taken_over = newer.previous_static  # the first generation's static parts
    assert newer.static_parts(pods[0], "ns") is parts[0]  # taken over before the switch
    cache.keep_only(second, second)  # drops the first generation
    _swept(cache)
    assert all(newer.static_parts(pod, "ns") is part for pod, part in zip(pods[:3], parts, strict=False))
    # Once the newer one is dropped in turn, what it never took over (the fourth pod's) is trash.
    assert list(taken_over.values()) == [parts[3]]
    cache.generation(third)
    cache.keep_only(third, third)
    _swept(cache)
    assert taken_over == {}
