"""Cost of one `/metrics` read at scale (not a test; run by hand).

    .venv/bin/python -m bench.micro.api_metrics [--nodes 5000] [--ticks 3] [--recorded-per-step 20]

Builds the registry the server builds (process, platform and GC collectors, then `SelfMetrics`),
records one kubelet request per node per tick, and times per tick:

* `generate_latest`: prometheus_client's rendering, what `/metrics` did before;
* `exposition, 1st read`: the first read after the tick (every node's text is stale);
* `exposition, 2nd read`: another read with nothing changed (every node's text cached);
* `GET /metrics`: the whole request through the app (ASGI call, no auth), after a tick, and the
  longest gap a concurrent probe task (`bench.micro.loop_gaps`) saw meanwhile (how long any other
  request would wait);
* `GET /metrics` again while a second task records `--recorded-per-step` kubelet requests (of
  nodes in turn) at each of its turns, as a scrape worker's frames do in the server during a
  cycle: the longest gap then also shows any node rendered again inside one step.

The render figures are the best of 3 (wall time of one synchronous render: how long the event
loop is held), plus the body size.
"""

from __future__ import annotations

import argparse
import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

import prometheus_client
import trio

if __package__ in (None, ""):  # run by path: the repository root makes `tests` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.micro import loop_gaps
from metrics_server.api.app import ApiOptions
from metrics_server.selfmetrics import SelfMetrics, exposition
from tests.server.api.conftest import Asgi, default_world, make_app


def best_ms(fn: Callable[[], object], runs: int = 3) -> float:
    best = float("inf")
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best * 1e3


def tick(metrics: SelfMetrics, nodes: int, rng: random.Random, now: float) -> None:
    for i in range(nodes):
        metrics.record_kubelet_request(
            f"sim-node-{i:04d}", success=True, duration_s=rng.expovariate(1 / 0.02), now_unix_s=now
        )
    metrics.observe_tick_duration(rng.uniform(1, 10))
    metrics.set_storage_points(nodes, nodes * 30)


async def main(args: argparse.Namespace) -> None:
    registry = prometheus_client.CollectorRegistry(auto_describe=True)
    prometheus_client.ProcessCollector(registry=registry)
    prometheus_client.PlatformCollector(registry=registry)
    prometheus_client.GCCollector(registry=registry)
    metrics = SelfMetrics(registry, 15)
    rng = random.Random(1)
    app = make_app(default_world(), ApiOptions(), registry=registry)
    async with app.test_app():
        asgi = Asgi(app)
        for t in range(args.ticks):
            tick(metrics, args.nodes, rng, 1.7e9 + 15 * t)
            old = best_ms(lambda: prometheus_client.generate_latest(registry))
            start = time.perf_counter()
            body = exposition(registry)
            first = (time.perf_counter() - start) * 1e3
            second = best_ms(lambda: exposition(registry))
            tick(metrics, args.nodes, rng, 1.7e9 + 15 * t + 7)
            gaps: list[float] = []
            done = trio.Event()

            async with trio.open_nursery() as nursery:
                nursery.start_soon(loop_gaps, done, gaps)
                await trio.lowlevel.checkpoint()
                start = time.perf_counter()
                status, served = await asgi.get("/metrics")
                request = (time.perf_counter() - start) * 1e3
                done.set()
            assert status == 200 and served.startswith(b"# HELP")
            recorded, busy_gaps = await get_while_recording(asgi, metrics, args, rng, 1.7e9 + 15 * t + 9)
            print(
                f"tick {t}: {args.nodes} nodes, {len(body) / 1e6:.1f} MB: generate_latest {old:.1f} ms, "
                f"exposition 1st read {first:.1f} ms, 2nd read {second:.2f} ms, "
                f"GET /metrics {request:.1f} ms (longest loop stall {max(gaps) * 1e3:.1f} ms), "
                f"while {recorded} requests were recorded: longest loop stall {max(busy_gaps) * 1e3:.1f} ms"
            )


async def get_while_recording(
    asgi: Asgi, metrics: SelfMetrics, args: argparse.Namespace, rng: random.Random, now: float
) -> tuple[int, list[float]]:
    """GET /metrics while a task records kubelet requests at each of its turns; (requests
    recorded, the probe's gaps)."""
    gaps: list[float] = []
    done = trio.Event()
    recorded = 0

    async def record() -> None:
        nonlocal recorded
        while not done.is_set():
            await trio.lowlevel.checkpoint()
            for _ in range(args.recorded_per_step):
                node = f"sim-node-{recorded % args.nodes:04d}"
                metrics.record_kubelet_request(
                    node, success=True, duration_s=rng.expovariate(1 / 0.02), now_unix_s=now
                )
                recorded += 1

    async with trio.open_nursery() as nursery:
        nursery.start_soon(loop_gaps, done, gaps)
        nursery.start_soon(record)
        await trio.lowlevel.checkpoint()
        status, served = await asgi.get("/metrics")
        done.set()
    assert status == 200 and served.startswith(b"# HELP")
    return recorded, gaps


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", type=int, default=5000)
    parser.add_argument("--ticks", type=int, default=3)
    parser.add_argument("--recorded-per-step", type=int, default=20)
    trio.run(main, parser.parse_args())
