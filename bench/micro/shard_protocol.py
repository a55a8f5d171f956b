"""What the worker -> server stream costs per cycle at scale (not a test; run it by hand).

    .venv/bin/python -m bench.micro.shard_protocol [--nodes 5000] [--pods 30] [--cycles 4]

Builds usages shaped like the simulator's (pods of 1-2 containers, names like the simulator's),
then per cycle: encodes them as the worker does (`Results` frames of `RESULTS_PER_FRAME` nodes),
decodes every frame as the serving process does and stores it (`Cycle.add_usages`, then
`publish`), timing each step (CPU time, the server's collector thresholds). Also encodes and
decodes the same data as JSON with orjson, for the comparison in `shard.protocol`. Prints bytes
per cycle, and the memory the serving side's snapshot holds per pod (tracemalloc, one cycle).
"""

from __future__ import annotations

import argparse
import gc
import random
import time
import tracemalloc

import orjson

from metrics_server.shard import protocol as p
from metrics_server.shard.worker import RESULTS_PER_FRAME
from metrics_server.storage.snapshot import NodeUsage, PodUsageTuple
from metrics_server.storage.store import Storage

NS = 1_000_000_000


def usages(nodes: int, pods: int, cycle: int) -> list[p.NodeResult]:
    rng = random.Random(cycle)
    ts = (1_700_000_000 + 15 * cycle) * NS
    out = []
    for n in range(nodes):
        pod_usage: dict[tuple[str, str], PodUsageTuple] = {}
        for i in range(pods):
            key = (f"sim-ns-{i % 5}", f"app-{i % 10}-tier-{n:05d}-{i:02d}-x7k2p")
            containers = tuple(
                (f"container-{c}", rng.randrange(10**8), rng.randrange(10**9), None)
                for c in range(1 + (i % 3 == 0))
            )
            pod_usage[key] = (ts, 15 * NS, containers)
        out.append(
            p.NodeResult(f"sim-node-{n:05d}", False, NodeUsage(ts, 15 * NS, 10**9, 10**10, None), pod_usage)
        )
    return out


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", type=int, default=5000)
    parser.add_argument("--pods", type=int, default=30)
    parser.add_argument("--cycles", type=int, default=4)
    args = parser.parse_args()
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 10, 100)
    storage = Storage(staleness_ns=30 * NS, resolution_ns=15 * NS)
    for cycle in range(args.cycles):
        results = usages(args.nodes, args.pods, cycle)
        clock = time.process_time
        t0 = clock()
        frames = [
            p.encode(p.Results(cycle, results[i : i + RESULTS_PER_FRAME]))
            for i in range(0, len(results), RESULTS_PER_FRAME)
        ]
        t1 = clock()
        decoded = [p.decode_from_worker(frame[4:]) for frame in frames]
        t2 = clock()
        storage_cycle = storage.begin(0)
        for message in decoded:
            assert isinstance(message, p.Results)
            for r in message.nodes:
                storage_cycle.add_usages(r.node, r.usage, r.pods, first=r.first)
        t3 = clock()
        storage_cycle.publish(())
        t4 = clock()
        del decoded
        size = sum(map(len, frames))
        print(
            f"cycle {cycle}: {size / 2**20:.1f} MiB in {len(frames)} frames; worker encode {t1 - t0:.3f} s; "
            f"server decode {t2 - t1:.3f} s, add_usages {t3 - t2:.3f} s, publish {t4 - t3:.3f} s"
        )
    rows = [[r.node, r.first, tuple(r.usage or ()), list(r.pods.items())] for r in results]
    t0 = time.process_time()
    as_json = [orjson.dumps(rows[i : i + 50]) for i in range(0, len(rows), 50)]
    t1 = time.process_time()
    for frame in as_json:
        orjson.loads(frame)
    t2 = time.process_time()
    print(
        f"orjson: {sum(map(len, as_json)) / 2**20:.1f} MiB, encode {t1 - t0:.3f} s, "
        f"decode (lists) {t2 - t1:.3f} s"
    )
    # Memory the serving side holds for one snapshot, per pod (keys and usages).
    results = usages(args.nodes, args.pods, args.cycles)
    frames = [p.encode(p.Results(0, results[i : i + 50])) for i in range(0, len(results), 50)]
    del results
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    storage_cycle = storage.begin(0)
    for frame in frames:
        message = p.decode_from_worker(frame[4:])
        assert isinstance(message, p.Results)
        for r in message.nodes:
            storage_cycle.add_usages(r.node, r.usage, r.pods, first=r.first)
        del message, r
    held = tracemalloc.get_traced_memory()[0] - before
    pods = args.nodes * args.pods
    print(f"one cycle held by the serving store: {held / 2**20:.1f} MiB, {held / pods:.0f} B per pod")


if __name__ == "__main__":
    main()
