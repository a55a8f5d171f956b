"""Memory the store and its snapshot hold at the scale target, and what it costs the collector
(not a test; run by hand).

    .venv/bin/python -m bench.micro.storage_memory [--nodes 5000] [--pods 30] [--cycles 4]
        [--rss] [--keep-previous]

Each cycle renders every node's `/metrics/resource` body in the simulator's shape (stable format:
CPU, working set and start time per container, pod series, node series; ~1.27 containers per pod
as kubesim's pods have), parses it with the real parser (so every cycle brings fresh strings and
points, as in the server) and adds it to a real `Storage` cycle, then publishes. After each publish
it prints what is still allocated (tracemalloc, or with `--rss` the resident set from /proc, which
also counts the allocator's slack) relative to just before the first cycle, per container and per
pod servable, plus the number of objects the cyclic collector tracks and the CPU time of one full
`gc.collect()` over them. `--keep-previous` also holds the previous cycle's snapshot, as the API's
fragment cache does for two generations.
"""

from __future__ import annotations

import argparse
import gc
import os
import random
import time
import tracemalloc

from metrics_server.scrape.prometheus import parse_resource_metrics
from metrics_server.storage.snapshot import DictSnapshot
from metrics_server.storage.store import Storage

NS = 1_000_000_000
RESOLUTION = 15 * NS
T0_MS = 1_764_000_000_000
NAMESPACES = ("default", "kube-system", "monitoring", "team-a", "team-b", "team-c", "payments", "search")
APPS = ("api", "auth", "batch", "cache", "queue", "search", "web", "worker")
CHARS = "bcdfghjklmnpqrstvwxz2456789"


def node_template(rng: random.Random, pods: int) -> list[tuple[str, list[str]]]:
    """(pod label set, [container label sets]) for one node, in kubesim's naming."""
    result = []
    for p in range(pods):
        if p == 0:
            ns, app, name = "kube-system", "kube-proxy", "kube-proxy-" + "".join(rng.choices(CHARS, k=5))
            names = ["kube-proxy"]
        else:
            ns, app = rng.choice(NAMESPACES), rng.choice(APPS)
            name = f"{app}-{''.join(rng.choices(CHARS, k=10))}-{''.join(rng.choices(CHARS, k=5))}"
            names = [app] + (["istio-proxy"] if rng.random() < 0.25 else [])
            names += ["log-shipper"] if rng.random() < 0.1 else []
        conts = [f'{{container="{c}",namespace="{ns}",pod="{name}"}}' for c in names]
        result.append((f'{{namespace="{ns}",pod="{name}"}}', conts))
    return result


def render(template: list[tuple[str, list[str]]], cycle: int, index: int) -> bytes:
    ts = T0_MS + cycle * 15_000 + index % 500
    cpu, mem, start, pod_cpu, pod_mem = [], [], [], [], []
    for i, (pod_labels, conts) in enumerate(template):
        for k, labels in enumerate(conts):
            seconds = 1000 + i * 37.123456789 + k + cycle * (0.5 + i / 100)
            cpu.append(f"container_cpu_usage_seconds_total{labels} {seconds:.9f} {ts + k}\n")
            memory = 1.2e8 + i * 40960 + cycle * 4096
            mem.append(f"container_memory_working_set_bytes{labels} {memory:e} {ts + k}\n")
            start.append(f"container_start_time_seconds{labels} 1.7630000001234567e+09\n")
        pod_cpu.append(f"pod_cpu_usage_seconds_total{pod_labels} {1000 + i * 40 + cycle:.9f} {ts}\n")
        pod_mem.append(f"pod_memory_working_set_bytes{pod_labels} {1.3e8 + i * 40960:e} {ts}\n")
    parts = ["# TYPE container_cpu_usage_seconds_total counter\n", *cpu]
    parts += ["# TYPE container_memory_working_set_bytes gauge\n", *mem]
    parts += ["# TYPE container_start_time_seconds gauge\n", *start]
    parts.append(f"node_cpu_usage_seconds_total {50000 + cycle * 20.5:.9f} {ts}\n")
    parts.append(f"node_memory_working_set_bytes {8.1e9 + cycle * 1e6:e} {ts}\n")
    parts += pod_cpu + pod_mem
    parts.append("resource_scrape_error 0\n")
    return "".join(parts).encode()


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nodes", type=int, default=5000)
    parser.add_argument("--pods", type=int, default=30)
    parser.add_argument("--cycles", type=int, default=4)
    parser.add_argument("--rss", action="store_true", help="measure RSS instead of tracemalloc")
    parser.add_argument("--keep-previous", action="store_true", help="also hold the previous snapshot")
    args = parser.parse_args()
    rng = random.Random(1)
    templates = [node_template(rng, args.pods) for _ in range(args.nodes)]
    containers = sum(len(c) for t in templates for _, c in t)
    print(f"{args.nodes} nodes x {args.pods} pods, {containers} containers")
    gc.collect()
    gc.freeze()  # what app.py does once the caches have synced: the templates are not ours
    if not args.rss:
        tracemalloc.start()
    base = rss_bytes() if args.rss else tracemalloc.get_traced_memory()[0]
    tracked_base = len(gc.get_objects())
    storage = Storage(staleness_ns=2 * RESOLUTION, resolution_ns=RESOLUTION)
    previous: DictSnapshot | None = None
    for c in range(args.cycles):
        now = (T0_MS + c * 15_000 + 5_000) * 1_000_000
        if not args.rss:
            tracemalloc.reset_peak()
        cpu = 0.0
        cycle = storage.begin(now)
        for i, template in enumerate(templates):
            body = render(template, c, i)
            t0 = time.process_time()
            cycle.add(parse_resource_metrics(body, node=f"node-{i}", request_time_ns=now))
            cpu += time.process_time() - t0
        if args.keep_previous:
            previous = storage.snapshot()
        t0 = time.process_time()
        cycle.publish(())
        cpu += time.process_time() - t0
        nodes, served = storage.points()
        pods = len(storage.snapshot().pods)
        if args.rss:
            held, peak = rss_bytes() - base, 0
        else:
            current, peak = tracemalloc.get_traced_memory()
            held, peak = current - base, peak - base
        tracked = len(gc.get_objects()) - tracked_base
        t0 = time.process_time()
        gc.collect()
        full = time.process_time() - t0
        per = f"{held / max(served, 1):.0f} B/container, {held / max(pods, 1):.0f} B/pod"
        print(
            f"cycle {c}: parse+store CPU {cpu:.2f} s; {nodes} nodes, {pods} pods, {served} containers "
            f"served; held {held / 2**20:.1f} MiB ({per})"
            + (f", peak {peak / 2**20:.1f} MiB" if not args.rss else "")
            + f"; gc tracks {tracked} objects, full collection {full * 1e3:.0f} ms CPU",
            flush=True,
        )
    del previous


if __name__ == "__main__":
    main()
