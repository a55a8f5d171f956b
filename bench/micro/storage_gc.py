"""What the cyclic garbage collector costs the store and the all-pods list (not a test; run by hand).

    .venv/bin/python -m bench.micro.storage_gc [--nodes 5000] [--pods 30] [--cycles 6]
        [--gc app|default|off] [--threshold a,b,c] [--freeze-each-cycle]

Steady-state cycles at the scale target: per cycle, fresh synthetic batches (new objects per node,
as the parser makes; 1 or 2 containers per pod, ~1.33 on average like kubesim's clusters) go
through the real `Storage` (`begin`, `Cycle.add` per node, `publish_steps`), then the all-pods
list of the new snapshot is served by the real app (real `NodeCache`/`PodCache`, filled as the
informers do, called as hypercorn does), cold and once warm. The app keeps the fragments of the
last two snapshots, as in the server.

`--gc app` runs `metrics_server.app._tune_gc()` at start (what `run_server` does), and its
`_freeze()` once the caches are filled (the server's `on_synced`); `--threshold` overrides the
thresholds after that; `default` is CPython's (2000, 10, 10) without freezing; `off` disables the
collector (the work alone).

Per cycle it prints the CPU time (`time.process_time`) of the whole cycle, the part of it spent
in collections (per generation), the collections per generation and the longest pause (wall and
CPU); then the steady-state totals (cycles after the first two: the first has no rates, the second
no old state), the objects still tracked and what one full collection then costs (the collection
that comes every ~100 gen1 collections, ~10 cycles). `--census` prints what the collector tracks,
per generation and type, after each cycle.

Figures: docs/performance.md ("Measurement notes by module", storage/, round 3) and the
thresholds' in `metrics_server.app._tune_gc`.
"""

from __future__ import annotations

import argparse
import gc
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import trio

if __package__ in (None, ""):  # run by path: the repository root makes `tests` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from metrics_server.kube.nodes import NodeCache
from metrics_server.kube.pods import PodCache
from metrics_server.scrape.batch import NodeBatch, Point
from metrics_server.storage.store import Storage
from tests.server.api.conftest import Asgi, World, make_app

NS = 1_000_000_000
RESOLUTION = 15 * NS
T0 = 1_745_601_600 * NS
WARMUP = 2
API = "/apis/metrics.k8s.io/v1beta1"


@dataclass
class GcStats:
    wall: float = 0.0
    cpu: float = 0.0
    counts: list[int] = field(default_factory=lambda: [0, 0, 0])
    cpu_by_gen: list[float] = field(default_factory=lambda: [0.0, 0.0, 0.0])
    max_wall: float = 0.0
    max_cpu: float = 0.0
    max_gen: int = 0


class GcMeter:
    """gc.callbacks: time (wall and process CPU) and count of every collection."""

    def __init__(self) -> None:
        self.stats = GcStats()
        self._wall = self._cpu = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._wall, self._cpu = time.perf_counter(), time.process_time()
            return
        wall, cpu = time.perf_counter() - self._wall, time.process_time() - self._cpu
        s = self.stats
        s.wall += wall
        s.cpu += cpu
        s.counts[info["generation"]] += 1
        s.cpu_by_gen[info["generation"]] += cpu
        if wall > s.max_wall:
            s.max_wall, s.max_cpu, s.max_gen = wall, cpu, info["generation"]


def pod_name(i: int) -> tuple[str, str]:
    return f"ns-{i % 50}", f"deploy-{i:06d}-abcde"


def containers(i: int) -> int:
    return 2 if i % 3 == 0 else 1


def fill_caches(nodes: int, pods: int) -> tuple[NodeCache, PodCache]:
    node_cache, pod_cache = NodeCache(), PodCache()
    for n in range(nodes):
        name = f"node-{n:04d}"
        labels = {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux"}
        node_cache.upsert({"metadata": {"name": name, "uid": f"uid-{name}", "labels": labels}})
    for i in range(nodes * pods):
        ns, name = pod_name(i)
        labels = {"app": f"app-{i % 300}", "pod-template-hash": "5d9c7b8f6", "tier": "web"}
        pod_cache.upsert(
            {
                "metadata": {"namespace": ns, "name": name, "uid": f"uid-{i}", "labels": labels},
                "spec": {"nodeName": f"node-{i % nodes:04d}"},
                "status": {"phase": "Running"},
            }
        )
    return node_cache, pod_cache


def batch(n: int, nodes: int, pods: int, cycle: int) -> NodeBatch:
    """Node `n`'s answer in `cycle`: fresh strings, dicts and points, as parsing one body makes."""
    ts = T0 + cycle * RESOLUTION + 1000 * n
    start = T0 - 86_400 * NS
    out: dict[tuple[str, str], dict[str, Point]] = {}
    for p in range(pods):
        i = n + nodes * p
        ns, name = pod_name(i)
        out[(ns, name)] = {
            f"c{k}": Point(ts + k, cycle * 7 * NS + i * 1000 + k, 50_000_000 + i, start)
            for k in range(containers(i))
        }
    return NodeBatch(f"node-{n:04d}", Point(ts, cycle * 90 * NS + n, 8_000_000_000), out)


def rss_mib() -> float:
    """This process's resident set (VmRSS), to see whether steady cycles keep growing it."""
    for entry in Path("/proc/self/status").read_text().splitlines():
        if entry.startswith("VmRSS:"):
            return int(entry.split()[1]) / 1024
    return 0.0


class _Unrecorded(list[float]):
    """The test world records every freshness observation; here that would grow by one float per
    served pod per list (tens of MiB over a run) and hide the server's own memory."""

    def append(self, value: float) -> None:
        pass


async def run(args: argparse.Namespace, world: World, meter: GcMeter) -> list[tuple[float, GcStats]]:
    world.freshness = _Unrecorded()
    app = make_app(world)
    storage = Storage(staleness_ns=2 * RESOLUTION, resolution_ns=RESOLUTION)
    results: list[tuple[float, GcStats]] = []
    async with app.test_app():
        asgi = Asgi(app)
        for cycle in range(args.cycles):
            meter.stats = GcStats()
            cpu0 = time.process_time()
            work = storage.begin(T0 + cycle * RESOLUTION + 5 * NS)
            for n in range(args.nodes):
                work.add(batch(n, args.nodes, args.pods, cycle))
                if n % 64 == 0:
                    await trio.lowlevel.checkpoint()
            for _ in work.publish_steps(()):
                await trio.lowlevel.checkpoint()
            world.snapshot = storage.snapshot()  # type: ignore[assignment]
            for _ in range(2):  # cold, then warm
                status, parts = await asgi.request(f"{API}/pods")
                assert status == 200
                del parts
            cpu = time.process_time() - cpu0
            results.append((cpu, meter.stats))
            print(f"{line(cycle, cpu, meter.stats)}, RSS {rss_mib():.0f} MiB", flush=True)
            if args.freeze_each_cycle:
                gc.freeze()
            if args.census:
                census()
    return results


def census() -> None:
    """The objects the collector tracks (frozen ones aside), per generation and type."""
    for g in range(3):
        types = Counter(type(o).__name__ for o in gc.get_objects(g))
        print(
            f"  gen{g}: {sum(types.values())} tracked:",
            ", ".join(f"{t} {n}" for t, n in types.most_common(8)),
        )
    print(f"  frozen: {gc.get_freeze_count()}", flush=True)


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:.0f}"


def line(cycle: int, cpu: float, s: GcStats) -> str:
    return (
        f"cycle {cycle}: CPU {ms(cpu)} ms, gc {ms(s.cpu)} ms CPU ({ms(s.wall)} wall) in "
        f"{'/'.join(map(str, s.counts))} collections (gen0/1/2, CPU {'/'.join(map(ms, s.cpu_by_gen))} ms), "
        f"longest gen{s.max_gen} "
        f"{ms(s.max_wall)} ms wall ({ms(s.max_cpu)} CPU)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=5000)
    parser.add_argument("--pods", type=int, default=30)
    parser.add_argument("--cycles", type=int, default=6)
    parser.add_argument("--gc", choices=["app", "default", "off"], default="app")
    parser.add_argument("--threshold", help="gc.set_threshold(a, b, c) after --gc's set-up, as a,b,c")
    parser.add_argument("--census", action="store_true", help="print what the collector tracks, each cycle")
    parser.add_argument("--freeze-each-cycle", action="store_true", help="gc.freeze() after every cycle")
    args = parser.parse_args()
    if args.gc == "app":
        from metrics_server.app import _freeze, _tune_gc

        _tune_gc()
    elif args.gc == "off":
        gc.disable()
    node_cache, pod_cache = fill_caches(args.nodes, args.pods)
    world = World(node_cache, pod_cache, None)  # type: ignore[arg-type]
    if args.gc == "app":
        _freeze()  # the server's on_synced
    if args.threshold:
        gc.set_threshold(*(int(t) for t in args.threshold.split(",")))
    print(
        f"== {args.nodes} x {args.pods}, gc={args.gc} threshold={gc.get_threshold()}"
        + (" freeze-each-cycle" if args.freeze_each_cycle else ""),
        flush=True,
    )
    meter = GcMeter()
    gc.callbacks.append(meter)
    results: list[Any] = trio.run(run, args, world, meter)
    gc.callbacks.remove(meter)
    tracked = len(gc.get_objects())
    cpu0 = time.process_time()
    gc.collect()
    full = time.process_time() - cpu0
    steady = results[WARMUP:] or results
    cpus = [cpu for cpu, _ in steady]
    gcs = [s.cpu for _, s in steady]
    print(
        f"steady state (cycles {WARMUP}+): CPU per cycle {ms(sum(cpus) / len(cpus))} ms "
        f"({', '.join(map(ms, cpus))}); gc CPU per cycle {ms(sum(gcs) / len(gcs))} ms "
        f"({', '.join(map(ms, gcs))}), {100 * sum(gcs) / sum(cpus):.0f}% of it; collections "
        + "/".join(str(sum(s.counts[g] for _, s in steady)) for g in range(3))
        + f"; longest pause {ms(max(s.max_wall for _, s in steady))} ms wall "
        f"({ms(max(s.max_cpu for _, s in steady))} ms CPU); then {tracked} objects tracked (not frozen), "
        f"a full collection {ms(full)} ms CPU",
        flush=True,
    )


if __name__ == "__main__":
    main()
