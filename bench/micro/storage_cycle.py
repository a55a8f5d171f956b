"""Event-loop stalls of the scrape -> store path at the scale target (not a test; run by hand).

    .venv/bin/python -m bench.micro.storage_cycle [--nodes 5000] [--pods 30] [--containers 2]
        [--cycles 6] [--spread 4.0] [--mode incremental|oneshot] [--gc default|app|app-refreeze]

Runs the real `ScrapeLoop` and `Scraper` over a network-free node client whose answers are
synthetic batches (fresh objects per node and cycle, as parsing makes), spread over `--spread`
seconds like metrics-server's stagger, into the real `Storage`, tick after tick. Beside it, a
reader task holds the last two snapshots like the API's fragment cache does (and so pays for
dropping an old one), and a probe task sleeps 1 ms at a time.

Modes: `incremental` is the loop as it is (each batch added as it arrives, publish in steps);
`oneshot` is the former loop (all batches stored by one `Storage.store()` call after the scrape).
GC: `default` (CPython's thresholds), `app` (what `app._tune_gc` does before start-up:
`gc.freeze()` and thresholds (100_000, 20, 100)), `app-refreeze` (the same, plus another
`gc.freeze()` after the second cycle, once the caches and the store are populated), `off` (the
collector disabled: what the store and loop cost alone); `--threshold` and `--freeze-each-cycle`
try other settings on top. A simulated
pod cache (150k `PodInfo`, created after the start-up freeze as the informers' are) stands for
the server's other long-lived objects.

Per cycle it prints: store CPU (`Cycle.add` and publish steps, thread CPU time), the longest
task step (wall and CPU, and which task), the probe's worst lateness, and the collector's pauses
per generation. Without --mode/--gc it runs every combination, each in its own process.
"""

from __future__ import annotations

import argparse
import gc
import random
import subprocess
import sys
import time
from collections.abc import Collection, Iterator
from dataclasses import dataclass, field

import trio

from metrics_server.kube.objects import NodeInfo, PodInfo
from metrics_server.scrape.batch import NodeBatch, PodKey, Point
from metrics_server.scrape.loop import ScrapeLoop, StorageCycle
from metrics_server.scrape.scraper import Scraper
from metrics_server.storage.snapshot import DictSnapshot
from metrics_server.storage.store import Storage

NS = 1_000_000_000
RESOLUTION = 15 * NS
T0 = 1_700_000_000 * NS
WARMUP = 2  # cycles before the steady state (the first has no rates, the second no old state)


@dataclass
class Stats:
    """One cycle's measurements (seconds)."""

    add_cpu: float = 0.0
    add_max: float = 0.0
    publish_cpu: float = 0.0
    publish_steps: int = 0
    publish_max: float = 0.0
    step_wall: float = 0.0
    step_cpu: float = 0.0
    step_task: str = ""
    probe_late: float = 0.0
    reader_max: float = 0.0
    gc_pauses: dict[int, list[float]] = field(default_factory=lambda: {0: [], 1: [], 2: []})


class Meter(trio.abc.Instrument):
    """The longest task step (wall and thread CPU time) and its task."""

    def __init__(self) -> None:
        self.stats = Stats()
        self._wall = self._cpu = 0.0
        self._measuring = False

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        self._wall, self._cpu = time.perf_counter(), time.thread_time()
        self._measuring = True

    def skip_step(self) -> None:
        """Leave the current step (the bench's own bookkeeping) out."""
        self._measuring = False

    def after_task_step(self, task: trio.lowlevel.Task) -> None:
        if not self._measuring:
            return
        wall, cpu = time.perf_counter() - self._wall, time.thread_time() - self._cpu
        if wall > self.stats.step_wall:
            self.stats.step_wall, self.stats.step_task = wall, task.name.rsplit(".", 1)[-1]
        self.stats.step_cpu = max(self.stats.step_cpu, cpu)


class GcTimer:
    def __init__(self, meter: Meter) -> None:
        self.meter = meter
        self._start = 0.0

    def __call__(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._start = time.perf_counter()
        else:
            self.meter.stats.gc_pauses[info["generation"]].append(time.perf_counter() - self._start)


class SyntheticClient:
    """A NodeClient: each node answers after `latency` with fresh synthetic points of `cycle`."""

    def __init__(self, pods: int, containers: int, latency: float) -> None:
        self.pods = pods
        self.containers = containers
        self.latency = latency
        self.cycle = 0

    async def scrape(self, node: NodeInfo) -> NodeBatch:
        await trio.sleep(self.latency)
        c = self.cycle
        ts = T0 + c * RESOLUTION + 1000 * len(node.name)
        start = T0 - 86_400 * NS
        name = node.name
        pods = {
            (f"ns-{p % 50}", f"{name}-pod-{p}"): {
                f"c{k}": Point(ts + k, c * 7 * NS + k, 50_000_000 + k, start) for k in range(self.containers)
            }
            for p in range(self.pods)
        }
        return NodeBatch(name, Point(ts, c * 90 * NS, 8_000_000_000), pods)

    async def retain(self, names: Collection[str]) -> list[str]:
        return []


class TimedCycle:
    def __init__(self, inner: StorageCycle, meter: Meter) -> None:
        self.inner = inner
        self.meter = meter

    def add(self, batch: NodeBatch) -> None:
        t0 = time.thread_time()
        self.inner.add(batch)
        spent = time.thread_time() - t0
        self.meter.stats.add_cpu += spent
        self.meter.stats.add_max = max(self.meter.stats.add_max, spent)

    def publish_steps(self, failed_nodes: Collection[str], *, now_ns: int | None = None) -> Iterator[None]:
        steps = self.inner.publish_steps(failed_nodes, now_ns=now_ns)
        stats = self.meter.stats
        while True:
            t0 = time.thread_time()
            done = next(steps, True)
            spent = time.thread_time() - t0
            stats.publish_cpu += spent
            stats.publish_max = max(stats.publish_max, spent)
            if done:
                return
            stats.publish_steps += 1
            yield


class OneShotCycle:
    """The former loop: batches collected during the scrape, then one `store()`."""

    def __init__(self, storage: Storage, now_ns: int) -> None:
        self.storage = storage
        self.now_ns = now_ns
        self.batches: list[NodeBatch] = []

    def add(self, batch: NodeBatch) -> None:
        self.batches.append(batch)

    def publish_steps(self, failed_nodes: Collection[str], *, now_ns: int | None = None) -> Iterator[None]:
        self.storage.store(self.batches, failed_nodes, self.now_ns if now_ns is None else now_ns)
        yield


class MeteredStorage:
    def __init__(self, storage: Storage, meter: Meter, oneshot: bool) -> None:
        self.storage = storage
        self.meter = meter
        self.oneshot = oneshot

    def begin(self, now_ns: int) -> StorageCycle:
        inner = OneShotCycle(self.storage, now_ns) if self.oneshot else self.storage.begin(now_ns)
        return TimedCycle(inner, self.meter)

    def points(self) -> tuple[int, int]:
        return self.storage.points()


class Lister:
    def __init__(self, nodes: list[NodeInfo]) -> None:
        self.nodes = nodes

    def get(self, name: str) -> NodeInfo | None:
        return None

    def list(self) -> list[NodeInfo]:
        return self.nodes


def pod_cache(nodes: int, pods: int) -> dict[PodKey, PodInfo]:
    return {
        (f"ns-{p % 50}", f"node-{n}-pod-{p}"): PodInfo(
            f"ns-{p % 50}",
            f"node-{n}-pod-{p}",
            f"uid-{n}-{p}",
            {"app": f"app-{p}", "pod-template-hash": f"{n:x}", "tier": "web"},
            f"node-{n}",
        )
        for n in range(nodes)
        for p in range(pods)
    }


async def reader(storage: Storage, meter: Meter) -> None:
    """Like the API: a snapshot per request, the last two kept (the fragment cache)."""
    kept: list[DictSnapshot] = []
    while True:
        t0 = time.perf_counter()
        snap = storage.snapshot()
        snap.pod("ns-0", "node-0-pod-0")
        if not kept or kept[-1] is not snap:
            kept = [*kept[-1:], snap]  # drops the one before the last, as FragmentCache does
        del snap
        meter.stats.reader_max = max(meter.stats.reader_max, time.perf_counter() - t0)
        await trio.sleep(0.05)


async def probe(meter: Meter) -> None:
    while True:
        t0 = trio.current_time()
        await trio.sleep(0.001)
        meter.stats.probe_late = max(meter.stats.probe_late, trio.current_time() - t0 - 0.001)


async def run(args: argparse.Namespace) -> list[Stats]:
    meter = Meter()
    gc.callbacks.append(GcTimer(meter))
    storage = Storage(staleness_ns=2 * RESOLUTION, resolution_ns=RESOLUTION)
    client = SyntheticClient(args.pods, args.containers, latency=0.005)
    rng = random.Random(1)
    scraper = Scraper(
        client, request_timeout=10, max_concurrency=256, jitter=lambda bound: rng.uniform(0.0, args.spread)
    )
    nodes = [NodeInfo(f"node-{n}", f"uid-{n}", {}, (), 10250, None, True) for n in range(args.nodes)]
    loop = ScrapeLoop(
        scraper=scraper,
        nodes=Lister(nodes),
        storage=MeteredStorage(storage, meter, args.mode == "oneshot"),
        resolution=15,
        cycle_timeout=60,
        time_ns=lambda: T0 + client.cycle * RESOLUTION + 5 * NS,
    )
    results = []
    trio.lowlevel.add_instrument(meter)
    async with trio.open_nursery() as nursery:
        nursery.start_soon(reader, storage, meter)
        nursery.start_soon(probe, meter)
        for cycle in range(args.cycles):
            client.cycle = cycle
            meter.stats = Stats()
            await loop.tick()
            await trio.sleep(0.2)  # let the reader pick up the new snapshot and drop an old one
            meter.skip_step()
            results.append(meter.stats)
            print(line(cycle, meter.stats), flush=True)
            if args.freeze_each_cycle or (cycle + 1 == WARMUP and args.gc == "app-refreeze"):
                gc.freeze()
            await trio.lowlevel.checkpoint()
        meter.stats = Stats()
        assert storage.points() == (args.nodes, args.nodes * args.pods * args.containers)
        nursery.cancel_scope.cancel()
    return results


def ms(seconds: float) -> str:
    return f"{seconds * 1e3:.1f}"


def line(cycle: int, s: Stats) -> str:
    gcs = ", ".join(
        f"gen{g} {len(p)}x max {ms(max(p))} ms" if p else f"gen{g} 0x" for g, p in s.gc_pauses.items()
    )
    return (
        f"cycle {cycle}: store CPU {ms(s.add_cpu + s.publish_cpu)} ms (adds {ms(s.add_cpu)}, max "
        f"{ms(s.add_max)}/node; publish {ms(s.publish_cpu)} in {s.publish_steps} steps, max "
        f"{ms(s.publish_max)}) | longest task step {ms(s.step_wall)} ms wall ({s.step_task}), "
        f"{ms(s.step_cpu)} ms CPU | probe late {ms(s.probe_late)} ms | reader step {ms(s.reader_max)} ms"
        f" | gc {gcs}"
    )


def child(args: argparse.Namespace) -> None:
    if args.gc in ("app", "app-refreeze"):
        gc.freeze()
        gc.set_threshold(100_000, 20, 100)
    elif args.gc == "off":
        gc.disable()
    if args.threshold:
        gc.set_threshold(*(int(t) for t in args.threshold.split(",")))
    extra = f" threshold={gc.get_threshold()}" + (" freeze-each-cycle" if args.freeze_each_cycle else "")
    print(
        f"== mode={args.mode} gc={args.gc}{extra}: {args.nodes} x {args.pods} x {args.containers}", flush=True
    )
    cache = pod_cache(args.nodes, args.pods)  # after the start-up freeze, as the informers fill
    results = trio.run(run, args)
    steady = results[WARMUP:] or results
    worst = max(steady, key=lambda s: s.step_wall)
    gc_worst = {g: max((max(s.gc_pauses[g], default=0.0) for s in steady), default=0.0) for g in range(3)}
    print(
        f"steady state (cycles {WARMUP}+): longest task step {ms(worst.step_wall)} ms wall "
        f"({worst.step_task}), max {ms(max(s.step_cpu for s in steady))} ms CPU; probe late max "
        f"{ms(max(s.probe_late for s in steady))} ms; store CPU per cycle "
        + ", ".join(ms(s.add_cpu + s.publish_cpu) for s in steady)
        + " ms; gc max pause "
        + ", ".join(f"gen{g} {ms(p)} ms" for g, p in gc_worst.items()),
        flush=True,
    )
    del cache


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=5000)
    parser.add_argument("--pods", type=int, default=30)
    parser.add_argument("--containers", type=int, default=2)
    parser.add_argument("--cycles", type=int, default=6)
    parser.add_argument("--spread", type=float, default=4.0, help="seconds the answers are spread over")
    parser.add_argument("--mode", choices=["incremental", "oneshot"])
    parser.add_argument("--gc", choices=["default", "app", "app-refreeze", "off"])
    parser.add_argument("--threshold", help="gc.set_threshold(a, b, c) on top of --gc, as a,b,c")
    parser.add_argument("--freeze-each-cycle", action="store_true", help="gc.freeze() after every tick")
    args = parser.parse_args()
    if args.mode and args.gc:
        child(args)
        return
    passthrough = sys.argv[1:]
    for mode in [args.mode] if args.mode else ["oneshot", "incremental"]:
        for gc_mode in [args.gc] if args.gc else ["app", "app-refreeze", "default"]:
            subprocess.run(
                [sys.executable, __file__, *passthrough, "--mode", mode, "--gc", gc_mode], check=True
            )


if __name__ == "__main__":
    main()
