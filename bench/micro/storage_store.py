"""Cost of Storage.store() and snapshot lookups at the scale target (not a test; run by hand).

    .venv/bin/python -m bench.micro.storage_store [nodes] [pods_per_node] [containers_per_pod]

Builds synthetic batches (defaults: 5000 x 30 x 2) for several cycles up front, then times each
`store()` in CPU time of this process (the machine may be shared), first with the garbage
collector at its default thresholds, then with it disabled (the difference is what the collector
costs while millions of points are alive). Also prints the bare cost of iterating the same
containers, to calibrate the machine, and the cost of one `pod()` / `node()` lookup.
"""

from __future__ import annotations

import gc
import sys
import time

from metrics_server.scrape.batch import NodeBatch, Point
from metrics_server.storage.store import Storage

NS = 1_000_000_000
RESOLUTION = 15 * NS
T0 = 1_700_000_000 * NS
CYCLES = 6


def make_batches(nodes: int, pods: int, containers: int, cycle: int) -> list[NodeBatch]:
    ts = T0 + cycle * RESOLUTION
    start = T0 - 86_400 * NS
    batches = []
    for n in range(nodes):
        node = f"node-{n}"
        pod_points = {
            (f"ns-{p % 50}", f"{node}-pod-{p}"): {
                f"c{c}": Point(ts + c, cycle * 7 * NS + c, 50_000_000 + c, start) for c in range(containers)
            }
            for p in range(pods)
        }
        batches.append(NodeBatch(node, Point(ts, cycle * 90 * NS, 8_000_000_000), pod_points))
    return batches


def run(nodes: int, pods: int, containers: int, collect: bool) -> Storage:
    cycles = [make_batches(nodes, pods, containers, c) for c in range(CYCLES)]
    baseline = time.process_time()
    for batch in cycles[0]:
        for conts in batch.pods.values():
            for _name, point in conts.items():
                _ts, _cpu, _memory, _start, _swap = point
    baseline = time.process_time() - baseline
    if not collect:
        gc.disable()
    storage = Storage(staleness_ns=2 * RESOLUTION, resolution_ns=RESOLUTION)
    times = []
    for c, batches in enumerate(cycles):
        t0 = time.process_time()
        storage.store(batches, (), T0 + c * RESOLUTION + 2 * NS)
        times.append(time.process_time() - t0)
    gc.enable()
    total = nodes * pods * containers
    assert storage.ready() and storage.points() == (nodes, total)
    label = "default gc" if collect else "gc disabled"
    print(
        f"{label}: store() first cycle {times[0] * 1e3:.0f} ms; steady "
        + ", ".join(f"{t * 1e3:.0f}" for t in times[1:])
        + f" ms (best {min(times[1:]) / total * 1e9:.0f} ns/container); "
        f"bare iteration {baseline * 1e3:.0f} ms"
    )
    return storage


def main() -> None:
    args = [int(a) for a in sys.argv[1:4]]
    nodes, pods, containers = args + [5000, 30, 2][len(args) :]
    print(f"{nodes} nodes x {pods} pods x {containers} containers = {nodes * pods * containers} containers")
    run(nodes, pods, containers, collect=True)
    storage = run(nodes, pods, containers, collect=False)
    snap = storage.snapshot()
    keys = list(snap.pods)
    t0 = time.process_time()
    for namespace, name in keys:
        snap.pod(namespace, name)
    pod_lookup = (time.process_time() - t0) / len(keys)
    names = list(snap.nodes)
    t0 = time.process_time()
    for name in names:
        snap.node(name)
    node_lookup = (time.process_time() - t0) / len(names)
    t0 = time.process_time()
    for _ in range(1000):
        storage.snapshot()
    get_snapshot = (time.process_time() - t0) / 1000
    print(
        f"snapshot() {get_snapshot * 1e9:.0f} ns; snapshot().pod() {pod_lookup * 1e9:.0f} ns; "
        f"snapshot().node() {node_lookup * 1e9:.0f} ns"
    )


if __name__ == "__main__":
    main()
