"""Measure the event-loop stall of encoding a 150,000-pod list (not a test; run by hand).

    .venv/bin/python tests/server/api/bench_encode.py [pods]

Serves `GET /apis/metrics.k8s.io/v1beta1/pods` (2 containers per pod, 3 labels each) through the
Quart test client while a probe task yields in a loop and records the longest gap between its
turns: that gap is how long any other request would wait behind the list. Reports the cold
request (new snapshot, every fragment encoded) and a warm one (same snapshot, fragments reused).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parent))

import trio.lowlevel
from conftest import TS, FakePods, FakeSnapshot, World, default_world, make_app, pod

from metrics_server.storage.snapshot import ContainerUsage, PodUsage


def build(n: int) -> World:
    world = default_world()
    pods = []
    usage = {}
    for i in range(n):
        ns, name = f"ns-{i % 50}", f"deploy-{i:06d}-abcde"
        pods.append(pod(ns, name, {"app": f"app-{i % 300}", "pod-template-hash": "5d9c7b8f6", "tier": "web"}))
        usage[(ns, name)] = PodUsage(
            TS,
            15_012_000_000,
            (
                ContainerUsage("app", 2_460_574 + i, 12_533_760 + 4096 * i),
                ContainerUsage("istio-proxy", 5_000_000, 41_943_040),
            ),
        )
    world.pods = FakePods(pods)
    world.snapshot = FakeSnapshot(dict(world.snapshot.nodes), usage)
    return world


async def main(n: int) -> None:
    world = build(n)
    app = make_app(world)
    async with app.test_app() as test_app:
        client = test_app.test_client()
        for label in ("cold", "warm", "warm"):
            if label == "cold":
                world.snapshot = FakeSnapshot(dict(world.snapshot.nodes), dict(world.snapshot.pods))
            gaps: list[float] = []
            done = trio.Event()

            async def probe(done: trio.Event = done, gaps: list[float] = gaps) -> None:
                last = time.perf_counter()
                while not done.is_set():
                    await trio.lowlevel.checkpoint()
                    now = time.perf_counter()
                    gaps.append(now - last)
                    last = now

            async with trio.open_nursery() as nursery:
                nursery.start_soon(probe)
                start = time.perf_counter()
                response = await client.get("/apis/metrics.k8s.io/v1beta1/pods")
                body = await response.get_data()
                total = time.perf_counter() - start
                done.set()
            print(
                f"{label}: {n} pods, {len(body) / 1e6:.1f} MB, total {total * 1000:.0f} ms, "
                f"longest loop stall {max(gaps) * 1000:.0f} ms, probe turns {len(gaps)}"
            )


if __name__ == "__main__":
    if "--no-gc" in sys.argv:
        import gc

        gc.disable()
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    trio.run(main, int(args[0]) if args else 150_000)
