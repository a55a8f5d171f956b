"""CPU cost of scrape cycles: N fake kubelets (another process) serving the 70-pod sample over TLS.

Run: `python -m bench.micro.scrape [--nodes 200] [--cycles 5]` from the repository
root. The fakes run in a child process so that only the scraper's CPU is measured
(`time.process_time()` of this process). Prints the cold cycle (TLS handshakes) and each warm
cycle (kept-alive connections), plus the parse-only share. Not a test.

`--loop` runs each cycle as the server does: `ScrapeLoop.tick()` into a real `Storage` (batches
added as they arrive, published in steps), with `SelfMetrics` recording every request and the
server's bearer-token-file auth (`TokenFileAuth`). `--stagger` uses metrics-server's random
stagger (min(8 ms x nodes, 4 s)) instead of none. `--profile` runs the warm cycles under cProfile
(CPU-time timer) and prints the split of their CPU by component: request (kubelet client, http1,
h11, ssl, httpx auth), trio (scheduler, IO waits, cancel scopes), scraper/loop bookkeeping,
selfmetrics, logging, parse, store. Builtins are charged to their callers' component; cProfile
inflates call-heavy code about 2.5x, so `--split-spy` reads a sampled profile instead:
`py-spy record -r 200 -f raw -o spy.txt -- python -m bench.micro.scrape ...`, then
`python -m bench.micro.scrape --split-spy spy.txt`. Each cycle line also gives the CPU spent in the
cyclic GC (`gc.callbacks`). `--no-parse` (an empty batch per node) leaves only the request, trio,
scraper, loop and selfmetrics; `--no-gc` and `--freeze` show the GC's share.

Figures: docs/performance.md ("Measurement notes by module", scrape/ kubelet client).
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import json
import math
import pstats
import random
import re
import subprocess
import sys
import tempfile
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from pathlib import Path

import trio
import trustme
from prometheus_client.registry import CollectorRegistry

if __package__ in (None, ""):  # run by path: the repository root makes `tests` importable
    sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from k8s_metrics.kubeconfig import TokenFileAuth
from metrics_server.kube.objects import NodeInfo
from metrics_server.scrape.batch import NodeBatch
from metrics_server.scrape.config import KubeletClientConfig
from metrics_server.scrape.kubelet import KubeletClient
from metrics_server.scrape.loop import ScrapeLoop
from metrics_server.scrape.prometheus import parse_resource_metrics
from metrics_server.scrape.scraper import Scraper
from metrics_server.selfmetrics import SelfMetrics
from metrics_server.storage.store import Storage
from tests.server.scrape.fakes import RESOURCE, SAMPLE_70_PODS, FakeKubelet, Serve, make_node, server_context


def hosts(count: int) -> list[str]:
    return [f"127.0.{10 + i // 250}.{1 + i % 250}" for i in range(count)]


_TIMESTAMP = re.compile(rb" (\d{13})$", re.MULTILINE)
_SAMPLE_T0 = min(int(t) for t in _TIMESTAMP.findall(SAMPLE_70_PODS))


def _template(host: str) -> list[bytes | int]:
    """The 70-pod sample with this node's own pod names, split at its timestamps (kept as offsets
    in ms from the earliest one), so that every node reports distinct pods at times that advance."""
    body = SAMPLE_70_PODS.replace(b'pod="', f'pod="{host}-'.encode())
    out: list[bytes | int] = []
    last = 0
    for match in _TIMESTAMP.finditer(body):
        out.append(body[last : match.start(1)])
        out.append(int(match.group(1)) - _SAMPLE_T0)
        last = match.end(1)
    out.append(body[last:])
    return out


def _render(template: list[bytes | int], base_ms: int) -> bytes:
    return b"".join(p if isinstance(p, bytes) else str(base_ms + p).encode() for p in template)


async def serve(count: int, ca_path: str) -> None:
    ca = trustme.CA()
    ca.cert_pem.write_to_path(ca_path)
    fakes = [FakeKubelet(host, server_context(ca, host)) for host in hosts(count)]
    templates = [_template(fake.host) for fake in fakes]
    async with trio.open_nursery() as nursery:
        for fake in fakes:
            await nursery.start(fake.serve)
        print(json.dumps([[f.host, f.port] for f in fakes]), flush=True)
        while True:
            # Fresh sample times every second (the newest about 1 s old), as a kubelet reports.
            base_ms = time.time_ns() // 1_000_000 - 17_000
            for fake, template in zip(fakes, templates, strict=True):
                fake.routes[RESOURCE] = Serve(body=_render(template, base_ms))
            await trio.sleep(1)


class _Nodes:
    def __init__(self, nodes: list[NodeInfo]) -> None:
        self._nodes = nodes

    def get(self, name: str) -> NodeInfo | None:
        return next((n for n in self._nodes if n.name == name), None)

    def list(self) -> Iterable[NodeInfo]:
        return self._nodes


# (component, path fragments of the code's file), first match wins.
_COMPONENTS = (
    (
        "parse",
        (
            "scrape/prometheus.py",
            "scrape/assemble.py",
            "scrape/canonical.py",
            "scrape/lines.py",
            "scrape/summary.py",
        ),
    ),
    ("store", ("metrics_server/storage/",)),
    ("selfmetrics", ("metrics_server/selfmetrics.py", "prometheus_client/")),
    ("scraper+loop", ("scrape/scraper.py", "scrape/loop.py")),
    ("request", ("scrape/kubelet.py", "scrape/http1.py", "/h11/", "/ssl.py", "/httpx/", "/kubeconfig/")),
    ("logging", ("/logging/", "metrics_server/logs")),
    ("trio", ("/trio/", "/outcome/", "/sniffio/", "/selectors.py", "/contextvars")),
)


def _component(func: tuple[str, int, str]) -> str | None:
    filename = func[0]
    if filename == "~":
        return None  # a builtin: charged to its callers
    for name, fragments in _COMPONENTS:
        if any(fragment in filename for fragment in fragments):
            return name
    return "other"


def split(profile: cProfile.Profile, nodes: int) -> None:
    """Print own CPU time per component, builtins charged to their callers' component."""
    stats = pstats.Stats(profile).stats  # type: ignore[attr-defined]
    totals: dict[str, float] = defaultdict(float)
    for func, (_, _, tottime, _, callers) in stats.items():
        component = _component(func)
        if component is not None:
            totals[component] += tottime
            continue
        if not callers:
            totals["other"] += tottime
            continue
        for caller, (_, _, caller_tt, _) in callers.items():
            totals[_component(caller) or "other"] += caller_tt
    total = sum(totals.values())
    for component, seconds in sorted(totals.items(), key=lambda kv: -kv[1]):
        print(f"  {component:13s} {seconds / nodes * 1e3:6.3f} ms/node-cycle  {seconds / total:6.1%}")
    print(f"  {'total':13s} {total / nodes * 1e3:6.3f} ms/node-cycle (under cProfile)")


def split_spy(path: str) -> None:
    """Print the split of a `py-spy record -f raw` profile of this benchmark by the component of
    each sample's innermost frame, leaving out start-up, TLS handshakes (the cold cycle) and the
    parse-only loop."""
    totals: dict[str, int] = defaultdict(int)
    for line in Path(path).read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        if "Scraper." not in stack and "ScrapeLoop." not in stack:
            continue  # start-up, the fakes' set-up, the parse-only loop
        if "Connection.open" in stack:
            continue  # connecting: the cold cycle
        leaf = frames[-1]
        filename = leaf[leaf.rfind("(") + 1 : leaf.rfind(":")]
        component = _component(("/" + filename, 0, leaf)) or "other"
        if component == "other" and "/" not in filename:
            component = "trio"  # the run loop's own frames (selectors, heapq) show without a package
        totals[component] += int(count)
    total = sum(totals.values())
    for component, samples in sorted(totals.items(), key=lambda kv: -kv[1]):
        print(f"  {component:13s} {samples:6d} samples  {samples / total:6.1%}")


def _jitter(args: argparse.Namespace) -> Callable[[float], float] | None:
    """None (the scraper's own uniform draw) with --stagger, else no stagger; with --stagger-grid G,
    the uniform draw rounded up to a multiple of G seconds (nodes of one slot start together)."""
    if args.stagger_grid:
        grid, rng = args.stagger_grid, random.Random()
        return lambda bound: math.ceil(rng.uniform(0.0, bound) / grid) * grid
    return None if args.stagger else lambda bound: 0.0


def _empty_batch(body: bytes, *, node: str, request_time_ns: int) -> NodeBatch:
    """A parser that keeps nothing: with it the cycle costs everything but parsing and storing."""
    return NodeBatch(node)


class GcTimer:
    """CPU time spent in the cyclic GC, per generation (via `gc.callbacks`)."""

    def __init__(self) -> None:
        self.seconds = [0.0, 0.0, 0.0]
        self.counts = [0, 0, 0]
        self._start = 0.0
        gc.callbacks.append(self._callback)

    def _callback(self, phase: str, info: dict[str, int]) -> None:
        if phase == "start":
            self._start = time.process_time()
        else:
            self.seconds[info["generation"]] += time.process_time() - self._start
            self.counts[info["generation"]] += 1

    def reset(self) -> None:
        self.seconds = [0.0, 0.0, 0.0]
        self.counts = [0, 0, 0]


async def scrape(args: argparse.Namespace) -> None:
    count, concurrency = args.nodes, args.concurrency
    with tempfile.TemporaryDirectory() as tmp:
        ca_path = str(Path(tmp) / "ca.pem")
        token_path = Path(tmp) / "token"
        token_path.write_text("bench-token")
        child = subprocess.Popen(  # noqa: ASYNC220 (a benchmark: blocking once at start-up is fine)
            [sys.executable, __file__, "--serve", str(count), ca_path], stdout=subprocess.PIPE, text=True
        )
        try:
            assert child.stdout is not None
            endpoints = json.loads(child.stdout.readline())
            config = KubeletClientConfig(
                use_node_status_port=True,
                preferred_address_types=("InternalIP",),
                certificate_authority=ca_path,
                max_concurrency=concurrency,
                auth=TokenFileAuth(token_path) if args.loop else None,
            )
            config.validate()
            nodes = [make_node(f"node-{i}", host, port) for i, (host, port) in enumerate(endpoints)]
            metrics = SelfMetrics(CollectorRegistry(), 15.0) if args.loop else None
            profile = cProfile.Profile(time.process_time) if args.profile else None
            if args.no_parse:
                client_ = KubeletClient(config, parse_resource=_empty_batch)
            else:
                client_ = KubeletClient(config)
            async with client_ as client:
                scraper = Scraper(
                    client,
                    request_timeout=10,
                    max_concurrency=concurrency,
                    metrics=metrics,
                    jitter=_jitter(args),
                )
                storage = Storage(staleness_ns=30 * 10**9)
                loop = ScrapeLoop(
                    scraper=scraper,
                    nodes=_Nodes(nodes),
                    storage=storage,
                    resolution=15.0,
                    metrics=metrics,
                    cycle_timeout=60.0,
                )
                warm: list[float] = []
                gc_timer = GcTimer()
                for cycle in range(args.cycles + 1):
                    if profile is not None and cycle == 1:
                        profile.enable()
                    cpu0, wall0 = time.process_time(), time.perf_counter()
                    gc_timer.reset()
                    if args.loop:
                        await loop.tick()
                        if args.freeze:
                            gc.freeze()
                        ok, failed = storage.points()[0], count - storage.points()[0]
                    else:
                        result = await scraper.scrape(nodes, trio.current_time() + 60)
                        ok, failed = len(result.batches), len(result.failed)
                    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
                    kind = "cold" if cycle == 0 else "warm"
                    if cycle:
                        warm.append(cpu / count * 1e3)
                    print(
                        f"cycle {cycle} ({kind}): {ok} ok, {failed} failed, "
                        f"wall {wall:.3f} s, CPU {cpu:.3f} s = {cpu / count * 1e3:.3f} ms/node, "
                        f"GC {sum(gc_timer.seconds) / count * 1e3:.3f} ms/node (collections per "
                        f"generation {gc_timer.counts}, CPU {[round(s, 3) for s in gc_timer.seconds]} s), "
                        f"RSS {_rss_mib():.0f} MiB"
                    )
                if profile is not None:
                    profile.disable()
                if warm:
                    warm.sort()
                    print(f"warm cycles: median {warm[len(warm) // 2]:.3f} ms/node, min {warm[0]:.3f}")
                if profile is not None:
                    print(f"split of the {args.cycles} warm cycles' CPU (cProfile, process time):")
                    split(profile, count * args.cycles)
                    if args.profile != "-":
                        profile.dump_stats(args.profile)
        finally:
            child.terminate()
            child.wait()
    runs = 50
    cpu0 = time.process_time()
    for _ in range(runs):
        parse_resource_metrics(SAMPLE_70_PODS, node="n", request_time_ns=0)
    print(f"parse only: {(time.process_time() - cpu0) / runs * 1e3:.2f} ms/node (70-pod sample)")


def _rss_mib() -> float:
    """This process's resident set (VmRSS): steady cycles should not keep growing it."""
    for entry in Path("/proc/self/status").read_text().splitlines():
        if entry.startswith("VmRSS:"):
            return int(entry.split()[1]) / 1024
    return 0.0


def main() -> None:
    if len(sys.argv) == 3 and sys.argv[1] == "--split-spy":
        split_spy(sys.argv[2])
        return
    if len(sys.argv) == 4 and sys.argv[1] == "--serve":
        trio.run(serve, int(sys.argv[2]), sys.argv[3])
        return
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", type=int, default=200)
    parser.add_argument("--cycles", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=256)
    parser.add_argument("--loop", action="store_true", help="ScrapeLoop + Storage + SelfMetrics + token auth")
    parser.add_argument("--stagger", action="store_true", help="metrics-server's random stagger")
    parser.add_argument("--stagger-grid", type=float, metavar="SECONDS", help="stagger rounded up to a grid")
    parser.add_argument("--freeze", action="store_true", help="gc.freeze() after each tick (with --loop)")
    parser.add_argument(
        "--no-parse", action="store_true", help="an empty batch per node (no parse, no store)"
    )
    parser.add_argument("--no-gc", action="store_true", help="disable the cyclic GC (to see its share)")
    parser.add_argument(
        "--profile", metavar="FILE", help="cProfile the warm cycles ('-': print the split only)"
    )
    args = parser.parse_args()
    if args.no_gc:
        gc.disable()
    trio.run(scrape, args)


if __name__ == "__main__":
    main()
