"""Per-request CPU of single gets, and of HPA-style selector lists, through the app (not a test).

    .venv/bin/python -m bench.micro.api_get [--nodes N] [--pods-per-node M] [--requests R]
                                                   [--profile get|hpa]

Builds a cluster like the simulator's (5 namespaces, 10 apps, `app`/`pod-template-hash`/`tier`
labels with a unique hash per pod, as `kubesim.model` makes them), then calls the ASGI app
directly, the way hypercorn does (scope/receive/send; no auth middleware, no TLS, no HTTP
parsing), so the figures are the app's own cost: Quart's request handling plus ours.

Reports, per pattern, CPU microseconds per request (`time.process_time`) and the mean wall time:

* `get pod` / `get node`: `GET .../namespaces/<ns>/pods/<name>` and `GET .../nodes/<name>`;
* `hpa list`: `GET .../namespaces/<ns>/pods?labelSelector=app=<app>,tier=<tier>`, the load the
  benchmark's 100 HPAs send.

`--profile get|hpa` runs that pattern under cProfile and prints the top functions by own time.
"""

from __future__ import annotations

import argparse
import cProfile
import pstats
import random
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import trio

if __package__ in (None, ""):  # run by path: the repository root makes `tests` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from metrics_server.kube.nodes import NodeCache
from metrics_server.kube.pods import PodCache
from metrics_server.storage.snapshot import ContainerUsage, NodeUsage, PodUsage
from tests.server.api.conftest import TS, Asgi, FakeSnapshot, World, make_app

API = "/apis/metrics.k8s.io/v1beta1"
NAMESPACES = ("default", "kube-system", "team-a", "team-b", "monitoring")
APPS = ("web", "api", "worker", "cache", "frontend", "payments", "search", "batch", "auth", "queue")
_CHARS = "bcdfghjklmnpqrstvwxz2456789"


def build(nodes: int, per_node: int, seed: int = 1) -> World:
    """The real node and pod caches (interned labels, tuples from `list`), filled as informers do."""
    rng = random.Random(seed)
    node_cache, pod_cache = NodeCache(), PodCache()
    node_usage = {}
    usage = {}
    for i in range(nodes):
        name = f"sim-node-{i:04d}"
        labels = {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux"}
        node_cache.upsert({"metadata": {"name": name, "uid": f"uid-{name}", "labels": labels}})
        node_usage[name] = NodeUsage(TS, 15_000_000_000, 1_000_000_000 + i, 4_000_000_000 + i)
        for j in range(per_node):
            if j == 0:
                ns, labels = "kube-system", {"app": "kube-proxy"}
                pod_name = f"kube-proxy-{i:05d}"
            else:
                ns, app = rng.choice(NAMESPACES[:1] + NAMESPACES[2:]), rng.choice(APPS)
                rs_hash = "".join(rng.choice(_CHARS) for _ in range(10))
                pod_name = f"{app}-{rs_hash}-{i:05d}{j:02d}"
                labels = {
                    "app": app,
                    "pod-template-hash": rs_hash,
                    "tier": rng.choice(("frontend", "backend")),
                }
            meta = {"namespace": ns, "name": pod_name, "uid": f"uid-{pod_name}", "labels": labels}
            pod_cache.upsert({"metadata": meta, "spec": {"nodeName": name}, "status": {"phase": "Running"}})
            usage[(ns, pod_name)] = PodUsage(
                TS, 15_000_000_000, (ContainerUsage("app", 2_460_574 + j, 12_533_760 + 4096 * j),)
            )
    return World(node_cache, pod_cache, FakeSnapshot(node_usage, usage))  # type: ignore[arg-type]


async def measure(label: str, n: int, call: Callable[[int], Awaitable[tuple[int, bytes]]]) -> None:
    for i in range(min(n, 200)):  # warm: fragments encoded, caches filled
        await call(i)
    cpu0, wall0 = time.process_time(), time.perf_counter()
    size = 0
    for i in range(n):
        status, body = await call(i)
        assert status == 200, (status, body[:200])
        size += len(body)
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    print(
        f"{label:9s}: {n} requests, CPU {cpu / n * 1e6:7.0f} us/request, "
        f"wall {wall / n * 1e6:7.0f} us/request, {size / n:8.0f} bytes/response"
    )


async def main(args: argparse.Namespace) -> None:
    world = build(args.nodes, args.pods_per_node)
    app = make_app(world)
    pods = list(world.pods.list())
    rng = random.Random(2)
    picks = [rng.choice(pods) for _ in range(997)]
    node_names = [n.name for n in world.nodes.list()]
    selectors = [
        (ns, f"app={app},tier={tier}")
        for ns in ("default", "team-a", "team-b", "monitoring")
        for app in APPS
        for tier in ("frontend", "backend")
    ]
    async with app.test_app():
        asgi = Asgi(app)

        async def get_pod(i: int) -> tuple[int, bytes]:
            p = picks[i % len(picks)]
            return await asgi.get(f"{API}/namespaces/{p.namespace}/pods/{p.name}")

        async def get_node(i: int) -> tuple[int, bytes]:
            return await asgi.get(f"{API}/nodes/{node_names[i % len(node_names)]}")

        async def hpa(i: int) -> tuple[int, bytes]:
            ns, selector = selectors[i % len(selectors)]
            return await asgi.get(f"{API}/namespaces/{ns}/pods", f"labelSelector={selector}")

        patterns = {"get pod": get_pod, "get node": get_node, "hpa list": hpa}
        hpa_n = max(20, args.requests // 20)
        if args.profile:
            name = {"get": "get pod", "hpa": "hpa list"}[args.profile]
            n = args.requests if args.profile == "get" else hpa_n
            profiler = cProfile.Profile()
            profiler.enable()
            await measure(name, n, patterns[name])
            profiler.disable()
            pstats.Stats(profiler).sort_stats("tottime").print_stats(25)
            return
        print(f"{args.nodes} nodes x {args.pods_per_node} pods/node = {len(pods)} pods")
        await measure("get pod", args.requests, get_pod)
        await measure("get node", args.requests, get_node)
        await measure("hpa list", hpa_n, hpa)


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", type=int, default=5000)
    parser.add_argument("--pods-per-node", type=int, default=30)
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--profile", choices=("get", "hpa"))
    trio.run(main, parser.parse_args())
