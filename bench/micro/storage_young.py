"""Young collections while the serving process stores a worker's frames (not a test; run it by hand).

    .venv/bin/python -m bench.micro.storage_young [--nodes 5000] [--pods 30] [--cycles 5]
        [--reader-keeps 1]

Per cycle: usages shaped like the simulator's (pods of 1-2 containers) are encoded as a worker's
`Results` frames (`RESULTS_PER_FRAME` nodes each), then decoded frame by frame and stored as the
serving process does (`Cycle.add_usages` per node, then `publish_steps`), with the server's
collector thresholds (`gc.freeze()`, 10,000 / 10 / 100). A reader keeps the last
`--reader-keeps` snapshots, as the API does until its switch-over, so each cycle's adds run while
the storage frees a dropped snapshot (`Storage._free_dropped`). From the third cycle on, every
collection is timed (`gc.callbacks`): count, p50, max and total per generation. The longest young
collection is the longest pause a request waits behind while frames are stored.
"""

from __future__ import annotations

import argparse
import gc
import random
import time
from collections.abc import Mapping

from metrics_server.shard import protocol as p
from metrics_server.shard.worker import RESULTS_PER_FRAME
from metrics_server.storage.snapshot import DictSnapshot, NodeUsage, PodUsageTuple
from metrics_server.storage.store import Storage

NS = 1_000_000_000
NAMES = ("app", "sidecar")


def results(nodes: int, pods: int, cycle: int, rng: random.Random) -> list[p.NodeResult]:
    out = []
    for n in range(nodes):
        usages: dict[tuple[str, str], PodUsageTuple] = {}
        for i in range(pods):
            names = NAMES if rng.random() < 0.33 else NAMES[:1]
            containers = tuple(
                (c, rng.randrange(10**6, 10**8), rng.randrange(10**7, 10**9), None) for c in names
            )
            usages[(f"ns-{i % 7}", f"pod-{n}-{i}")] = (cycle * 15 * NS + n, 15 * NS, containers)
        node = NodeUsage(cycle * 15 * NS, 15 * NS, 10**9, 10**9, None)
        out.append(p.NodeResult(f"node-{n}", False, node, usages))
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.micro.storage_young")
    parser.add_argument("--nodes", type=int, default=5000)
    parser.add_argument("--pods", type=int, default=30)
    parser.add_argument("--cycles", type=int, default=5)
    parser.add_argument("--reader-keeps", type=int, default=1)
    args = parser.parse_args(argv)
    rng = random.Random(1)
    pauses: list[tuple[int, float]] = []
    started = [0.0]

    def timed(phase: str, info: Mapping[str, int]) -> None:
        if phase == "start":
            started[0] = time.perf_counter()
        else:
            pauses.append((info["generation"], time.perf_counter() - started[0]))

    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 10, 100)
    storage = Storage(staleness_ns=30 * NS, resolution_ns=15 * NS)
    readers: list[DictSnapshot] = []
    for cycle in range(1, args.cycles + 1):
        made = results(args.nodes, args.pods, cycle, rng)
        frames = [
            p.encode(p.Results(cycle, made[i : i + RESULTS_PER_FRAME]))
            for i in range(0, len(made), RESULTS_PER_FRAME)
        ]
        del made
        if cycle == 3:
            gc.callbacks.append(timed)
        building = storage.begin(cycle * 15 * NS)
        for frame in frames:
            message = p.decode_from_worker(frame[4:])
            assert isinstance(message, p.Results)
            for r in message.nodes:
                building.add_usages(r.node, r.usage, r.pods, first=r.first)
            del message
        for _ in building.publish_steps(()):
            pass
        readers = [*readers, storage.snapshot()][-args.reader_keeps :] if args.reader_keeps else []
    gc.callbacks.remove(timed)
    for generation in (0, 1, 2):
        each = sorted(d for g, d in pauses if g == generation)
        if each:
            print(
                f"gen{generation}: {len(each)} collections, p50 {each[len(each) // 2] * 1e3:.2f} ms, "
                f"max {each[-1] * 1e3:.2f} ms, total {sum(each) * 1e3:.0f} ms"
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
