"""Measure the event-loop stall of encoding a 150,000-pod list (not a test; run by hand).

    .venv/bin/python tests/server/api/bench_encode.py [pods] [--no-gc] [--gets]

Serves `GET /apis/metrics.k8s.io/v1beta1/pods` (2 containers per pod, 3 labels each) by calling
the ASGI app as hypercorn does (Quart's test client re-joins and copies the body, which is not
the server's cost), while a probe task yields in a loop and records the longest gap between its
turns: that gap is how long any other request would wait behind the list. Reports the cold
request (new snapshot, every fragment encoded) and a warm one (same snapshot, fragments reused).

`--gets` also sends single pod gets back to back while the list is served and reports their
longest latency (a get waits for at most one step of the list).
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import trio

sys.path.insert(0, str(Path(__file__).resolve().parent))

import trio.lowlevel
from conftest import TS, Asgi, FakePods, FakeSnapshot, World, default_world, make_app, pod

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


async def main(n: int, gets: bool = False) -> None:
    world = build(n)
    app = make_app(world)
    async with app.test_app():
        asgi = Asgi(app)
        for label in ("cold", "warm", "warm"):
            if label == "cold":
                world.snapshot = FakeSnapshot(dict(world.snapshot.nodes), dict(world.snapshot.pods))
            gaps: list[float] = []
            latencies: list[float] = []
            done = trio.Event()

            async def probe(done: trio.Event = done, gaps: list[float] = gaps) -> None:
                last = time.perf_counter()
                while not done.is_set():
                    await trio.lowlevel.checkpoint()
                    now = time.perf_counter()
                    gaps.append(now - last)
                    last = now

            async def getter(done: trio.Event = done, latencies: list[float] = latencies) -> None:
                getter_asgi = Asgi(app)
                while not done.is_set():
                    start = time.perf_counter()
                    status, _ = await getter_asgi.request(f"{API}/namespaces/ns-7/pods/deploy-000007-abcde")
                    assert status == 200
                    latencies.append(time.perf_counter() - start)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(probe)
                if gets:
                    nursery.start_soon(getter)
                await trio.lowlevel.checkpoint()
                start = time.perf_counter()
                status, parts = await asgi.request(f"{API}/pods")
                total = time.perf_counter() - start
                done.set()
            assert status == 200
            size = sum(map(len, parts))
            line = (
                f"{label}: {n} pods, {size / 1e6:.1f} MB in {len(parts)} messages, "
                f"total {total * 1000:.0f} ms, longest loop stall {max(gaps) * 1000:.1f} ms, "
                f"probe turns {len(gaps)}"
            )
            if gets:
                line += f", {len(latencies)} gets meanwhile, slowest {max(latencies) * 1000:.1f} ms"
            print(line)


API = "/apis/metrics.k8s.io/v1beta1"


if __name__ == "__main__":
    if "--no-gc" in sys.argv:
        import gc

        gc.disable()
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    trio.run(main, int(args[0]) if args else 150_000, "--gets" in sys.argv)
