"""CPU and event-loop stalls of serving big lists through the app (not a test; run by hand).

    .venv/bin/python -m bench.micro.api_encode [pods] [--nodes N] [--no-gc] [--gets]

Builds the real node and pod caches (`NodeCache`/`PodCache`, filled as the informers do; 2
containers and 3 labels per pod, 50 namespaces) and serves, by calling the ASGI app as hypercorn
does (Quart's test client re-joins and copies the body, which is not the server's cost):

* `pods cold`: `GET .../pods` right after a new snapshot (new usage objects, as storage publishes);
* `pods warm`: the same list again (same snapshot, same pod cache);
* `pods 1 changed`: after one pod was updated in the pod cache (an informer event);
* `ns cold` / `ns warm`: `GET .../namespaces/ns-7/pods` after a new snapshot, then again;
* `nodes cold` / `nodes warm`: `GET .../nodes`, likewise.

For each: the CPU time of the request (`time.process_time`), its wall time, the longest gap
between the turns of a probe task that yields in a loop (how long any other request waits behind
the list), and then the CPU time of the cache's sweeper task freeing what the request dropped
(`steps.Sweeper`, waited for before the next scenario, so that no request is charged for it).
Replaced snapshots are kept alive, as the server's storage frees their usages itself. `--gets`
also sends single pod gets back to back meanwhile and reports the slowest (its CPU is then
included in the figure). The collector is tuned as the server does (`app._tune_gc`: the caches
frozen, its thresholds); `--no-gc` disables it instead.
"""

from __future__ import annotations

import gc
import sys
import time
from collections.abc import Callable
from pathlib import Path

import prometheus_client
import trio
import trio.lowlevel
import trio.testing

if __package__ in (None, ""):  # run by path: the repository root makes `tests` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from bench.micro import loop_gaps
from metrics_server.api import refresh
from metrics_server.app import _tune_gc
from metrics_server.kube.nodes import NodeCache
from metrics_server.kube.pods import PodCache
from metrics_server.selfmetrics import SelfMetrics
from metrics_server.storage.snapshot import ContainerUsage, NodeUsage, PodUsage
from tests.server.api.conftest import TS, Asgi, FakeSnapshot, World, make_app

API = "/apis/metrics.k8s.io/v1beta1"


def pod_object(i: int, extra: dict[str, str] | None = None) -> dict[str, object]:
    ns, name = f"ns-{i % 50}", f"deploy-{i:06d}-abcde"
    labels = {"app": f"app-{i % 300}", "pod-template-hash": "5d9c7b8f6", "tier": "web", **(extra or {})}
    return {
        "metadata": {"namespace": ns, "name": name, "uid": f"uid-{i}", "labels": labels},
        "spec": {"nodeName": f"node-{i % 5000:04d}"},
        "status": {"phase": "Running"},
    }


def usage(n: int, nodes: int, shift: int) -> FakeSnapshot:
    """A new snapshot: new usage objects with new values, as each published cycle has."""
    pods = {}
    for i in range(n):
        pods[(f"ns-{i % 50}", f"deploy-{i:06d}-abcde")] = PodUsage(
            TS + shift,
            15_012_000_000,
            (
                ContainerUsage("app", 2_460_574 + i + shift, 12_533_760 + 4096 * i),
                ContainerUsage("istio-proxy", 5_000_000 + shift, 41_943_040),
            ),
        )
    node_usage = {
        f"node-{i:04d}": NodeUsage(TS + shift, 15_000_000_000, 1_000_000_000 + i + shift, 4_000_000_000 + i)
        for i in range(nodes)
    }
    return FakeSnapshot(node_usage, pods)


def build(n: int, nodes: int) -> World:
    node_cache, pod_cache = NodeCache(), PodCache()
    for i in range(nodes):
        name = f"node-{i:04d}"
        labels = {"kubernetes.io/hostname": name, "kubernetes.io/os": "linux"}
        node_cache.upsert({"metadata": {"name": name, "uid": f"uid-{name}", "labels": labels}})
    for i in range(n):
        pod_cache.upsert(pod_object(i))
    return World(node_cache, pod_cache, usage(n, nodes, 0))  # type: ignore[arg-type]


async def main(n: int, nodes: int, gets: bool) -> None:
    world = build(n, nodes)
    if gc.isenabled():
        _tune_gc()  # as the server does once the informers have listed: caches frozen
    # The server's real observer (a Python histogram), not the test fixture's `list.append`.
    world.observe_freshness = SelfMetrics(prometheus_client.CollectorRegistry(), 15.0).observe_freshness  # type: ignore[method-assign]
    # Cold means cold: requests wait for the encodings measured, not served the previous snapshot
    # meanwhile (the switch-over of `api.refresh`).
    refresh.HOLD_AT = sys.maxsize
    app = make_app(world)
    shift = 0

    retired: list[FakeSnapshot] = []

    def new_snapshot() -> None:
        nonlocal shift
        shift += 1_000_000_000
        # Kept alive: the server's storage frees a dropped snapshot's usages in its own steps
        # (`storage.store._Snapshot`), whereas this fake would free them in whichever step of
        # the API let go of it last.
        retired.append(world.snapshot)
        world.snapshot = usage(n, nodes, shift)

    def change_one_pod() -> None:
        world.pods.upsert(pod_object(7, {"changed": str(shift)}))  # type: ignore[attr-defined]

    def nothing() -> None:
        pass

    scenarios: list[tuple[str, str, Callable[[], None]]] = [
        ("pods cold", f"{API}/pods", new_snapshot),
        ("pods warm", f"{API}/pods", nothing),
        ("pods warm", f"{API}/pods", nothing),
        ("pods 1 changed", f"{API}/pods", change_one_pod),
        ("ns cold", f"{API}/namespaces/ns-7/pods", new_snapshot),
        ("ns warm", f"{API}/namespaces/ns-7/pods", nothing),
        ("nodes cold", f"{API}/nodes", new_snapshot),
        ("nodes warm", f"{API}/nodes", nothing),
        ("pods cold", f"{API}/pods", new_snapshot),
        ("pods warm", f"{API}/pods", nothing),
    ]
    async with app.test_app():
        asgi = Asgi(app)
        await asgi.request(f"{API}/pods")  # first request: the app's own lazy set-up
        for label, path, prepare in scenarios:
            prepare()
            gaps: list[float] = []
            latencies: list[float] = []
            done = trio.Event()

            async def getter(done: trio.Event = done, latencies: list[float] = latencies) -> None:
                getter_asgi = Asgi(app)
                while not done.is_set():
                    start = time.perf_counter()
                    status, _ = await getter_asgi.request(f"{API}/namespaces/ns-7/pods/deploy-000007-abcde")
                    assert status == 200
                    latencies.append(time.perf_counter() - start)

            async with trio.open_nursery() as nursery:
                nursery.start_soon(loop_gaps, done, gaps)
                if gets:
                    nursery.start_soon(getter)
                await trio.lowlevel.checkpoint()
                cpu0, start = time.process_time(), time.perf_counter()
                status, parts = await asgi.request(path)
                cpu, total = time.process_time() - cpu0, time.perf_counter() - start
                done.set()
            # What the request left for the cache's sweeper task (freed generations and lists).
            swept = time.process_time()
            await trio.testing.wait_all_tasks_blocked()
            swept = time.process_time() - swept
            assert status == 200
            size = sum(map(len, parts))
            line = (
                f"{label:15s}: {size / 1e6:5.1f} MB, CPU {cpu * 1000:6.0f} ms, wall {total * 1000:6.0f} ms, "
                f"longest loop stall {max(gaps) * 1000:5.1f} ms, probe turns {len(gaps)}, "
                f"then swept {swept * 1000:4.0f} ms"
            )
            if gets:
                line += (
                    f", {len(latencies)} gets meanwhile, slowest {max(latencies, default=0) * 1000:.1f} ms"
                )
            print(line, flush=True)


if __name__ == "__main__":
    if "--no-gc" in sys.argv:
        gc.disable()
    args = [a for a in sys.argv[1:] if not a.startswith("--")]
    node_count = 5000
    if "--nodes" in sys.argv:
        node_count = int(sys.argv[sys.argv.index("--nodes") + 1])
        args.remove(str(node_count))
    trio.run(main, int(args[0]) if args else 150_000, node_count, "--gets" in sys.argv)
