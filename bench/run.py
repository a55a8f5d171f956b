"""Run one scale scenario: simulator and metrics server in their own processes, measured from outside.

With `--reference PATH` (metrics-server v0.8.0, `../shared/reference/bin/metrics-server-v0.8.0`),
the same simulator instance serves three servers one after the other: ours, the reference, ours
again (so drift of the machine or the simulator shows), each started with the same flags on the
same port and measured the same way; the result holds all three and the ratios ours / reference.

Sequence: start `python -m kubesim` (N nodes x M pods, aggregator pointed at the server's port),
start the real server with the flags the simulator prints (plus `--metric-resolution=R`), wait
for `/readyz`, wait for one more tick (the first is cold: TLS handshakes), then record K cycles
while the API load (bench.load) runs. Per cycle (one line printed each):

* duration: from the server's `metrics_server_manager_tick_duration_seconds` (the `_sum` delta
  over the `_count` delta between two polls of `/metrics`, so each cycle's own duration);
* server CPU (cores), RSS and PSS from /proc for the server and its children (scrape workers,
  `ProcSample.read_tree`); the simulator's and this harness's CPU too, as
  they share the machine;
* kubelet requests ok/failed and stored points from the same `/metrics`.

`/metrics` is read with the simulator's admin bearer token directly from the server (the server
authenticates it with a TokenReview and authorizes it with a SubjectAccessReview against the
simulator; the aggregator only proxies metrics.k8s.io). Failure modes: a process that exits
early, or a timeout waiting for readiness, raises `BenchError` with the tail of its log.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import platform
import re
import shutil
import socket
import ssl
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import orjson
import trio
import yaml

from bench.load import API, LoadConfig, LoadGenerator, percentile
from bench.procstat import (
    ProcSample,
    cores,
    machine_busy_s,
    machine_steal_s,
    raise_nofile_limit,
    run_queue_s,
)
from bench.promtext import ServerCounters, WantedLines, bucket_delta, bucket_quantile, parse

SERVER_MAIN = "import sys; from metrics_server.cli import main; sys.exit(main())"
TRACED_SERVER_MAIN = """
import os, sys, threading, time, tracemalloc
out, every = os.environ["BENCH_TRACEMALLOC_DIR"], float(os.environ["BENCH_TRACEMALLOC_EVERY"])
tracemalloc.start(int(os.environ.get("BENCH_TRACEMALLOC_FRAMES", "1")))
def dump():
    for n in range(1, 1_000_000):
        time.sleep(every)
        tracemalloc.take_snapshot().dump(os.path.join(out, f"serving-{n:03d}.snap"))
threading.Thread(target=dump, daemon=True).start()
from metrics_server.cli import main
sys.exit(main())
"""
"""With `BENCH_TRACEMALLOC_DIR` set: the server with tracemalloc on, dumping a snapshot every
`BENCH_TRACEMALLOC_EVERY` seconds (`bench.tracediff` compares them). Taking one holds the GIL for
a while: latencies of such a run are not results."""
PERSISTENT = httpx.Limits(max_connections=100, max_keepalive_connections=100, keepalive_expiry=60.0)
"""The harness's connection pools: like kube-aggregator's client (Go, idle connections kept 90 s),
connections idle for seconds stay open, so no recorded request pays a TLS handshake. (httpx keeps
20 idle connections for 5 s by default: 1.5 % of the gets of a run then opened a connection.) 60 s
stays under the servers' idle timeout (90 s, as the apiserver's)."""
_READY_LINE = re.compile(r"kubesim ready in ([\d.]+)s")
_APISERVER_LINE = re.compile(r"apiserver:\s+(https://\S+)")
_KUBELET_LINE = re.compile(r"kubelets:\s+https://[^\s,]+:(\d+)")


SLOW_STEPS_SERVER_MAIN = """
import gc, os, sys, time, trio
import metrics_server.app as app
limit = float(os.environ["BENCH_SLOW_STEP_MS"]) / 1000

def where(task):
    # The innermost frame outside trio's own code (trio's traps are where every task suspends).
    found, coro = "?", task.coro
    while coro is not None:
        frame = getattr(coro, "cr_frame", None) or getattr(coro, "gi_frame", None)
        if frame is not None and "/trio/" not in frame.f_code.co_filename:
            found = f"{frame.f_code.co_filename.rsplit('/', 2)[-1]}:{frame.f_lineno}"
        coro = getattr(coro, "cr_await", None) or getattr(coro, "gi_yieldfrom", None)
    return found

collections = []  # (generation, seconds) of the collector's runs during the current step
collecting = [0.0]
def on_gc(phase, info):
    if phase == "start":
        collecting[0] = time.perf_counter()
    else:
        collections.append((info["generation"], time.perf_counter() - collecting[0]))
gc.callbacks.append(on_gc)

class SlowSteps(trio.abc.Instrument):
    started, cpu, resumed = 0.0, 0.0, "?"  # the first hook after add_instrument is an after_task_step
    mark = 0.0  # the end of the last step or wait for I/O: the time since is the scheduler's own
    def gap(self):
        took = time.perf_counter() - self.mark
        if took >= limit and self.mark:
            gcs = ",".join(f"gen{g}:{s * 1000:.1f}" for g, s in collections) or "none"
            print(f"SLOW-GAP {took * 1000:.1f} ms outside any step gc={gcs} at={time.time():.3f}",
                  file=sys.stderr, flush=True)
    def before_io_wait(self, timeout):
        self.gap()
    def after_io_wait(self, timeout):
        collections.clear()
        self.mark = time.perf_counter()
    def before_task_step(self, task):
        self.gap()
        self.resumed = where(task)
        collections.clear()
        self.cpu = time.thread_time()
        self.started = time.perf_counter()
    def after_task_step(self, task):
        took = time.perf_counter() - self.started
        if took >= limit and self.started:
            gcs = ",".join(f"gen{g}:{s * 1000:.1f}" for g, s in collections) or "none"
            line = (f"SLOW-STEP {took * 1000:.1f} ms task={task.name} resumed at {self.resumed} "
                    f"suspended at {where(task)} gc={gcs} cpu={(time.thread_time() - self.cpu) * 1000:.1f} "
                    f"at={time.time():.3f}")
            print(line, file=sys.stderr, flush=True)
        collections.clear()
        self.mark = time.perf_counter()

PEAK_BLOCKS = int(os.environ.get("BENCH_PEAK_BLOCKS", "0"))

def census():
    # What the collector tracks, by type: the 12 commonest, and every type of ours (one walk of
    # every tracked object, ~0.1-0.3 s at 5000 x 30: only when blocks pass BENCH_PEAK_BLOCKS).
    counts = {}
    for obj in gc.get_objects():
        kind = type(obj)
        counts[kind] = counts.get(kind, 0) + 1
    ours = {f"{k.__module__}.{k.__qualname__}": n for k, n in counts.items()
            if k.__module__.startswith("metrics_server")}
    common = sorted(((n, k.__qualname__) for k, n in counts.items()), reverse=True)[:12]
    return common, dict(sorted(ours.items()))

async def memory_probe():
    # Every 5 s: live pymalloc blocks and resident pages, to tell live objects from held memory.
    page = os.sysconf("SC_PAGE_SIZE")
    while True:
        with open("/proc/self/statm") as statm:
            rss = int(statm.read().split()[1]) * page
        blocks = sys.getallocatedblocks()
        print(f"MEMORY blocks={blocks} rss_mib={rss / 2**20:.1f} at={time.time():.3f}",
              file=sys.stderr, flush=True)
        if PEAK_BLOCKS and blocks > PEAK_BLOCKS:
            common, ours = census()
            print(f"CENSUS common={common} ours={ours} at={time.time():.3f}", file=sys.stderr, flush=True)
        await trio.sleep(5)

serve = app.serve
async def traced(*args, **kwargs):
    trio.lowlevel.add_instrument(SlowSteps())
    trio.lowlevel.spawn_system_task(memory_probe)
    await serve(*args, **kwargs)
app.serve = traced
from metrics_server.cli import main
sys.exit(main())
"""
"""With `BENCH_SLOW_STEP_MS` set: the server logs every event-loop step of the serving process
that took at least that long (and every stretch that long outside any step and any wait for
I/O: the scheduler's own time, a collection run from it, `SLOW-GAP`), with the task, where it
resumed and suspended (the innermost frame
outside trio), the collector's runs within it (`gc=gen<N>:<ms>`), the thread's CPU time in it (`cpu=`,
ms: on a busy machine a step is also long when the process is not running) and the wall time
(`at=`); run with `--keep` to read the log. A diagnostic: its own overhead is two clock reads and
two walks of the task's await chain per step. Every 5 s it also logs the process's live pymalloc
blocks and resident memory (`MEMORY blocks= rss_mib=`): a step in resident memory without one in
blocks is memory the allocators hold, not live objects. With `BENCH_PEAK_BLOCKS` too, a probe that
finds more blocks than that also logs a census of the tracked objects by type (`CENSUS`)."""


def _server_main() -> str:
    if os.environ.get("BENCH_SLOW_STEP_MS"):
        return SLOW_STEPS_SERVER_MAIN
    return TRACED_SERVER_MAIN if os.environ.get("BENCH_TRACEMALLOC_DIR") else SERVER_MAIN


class BenchError(RuntimeError):
    """The scenario could not run (a process died, readiness timed out); the message says which."""


@dataclass(frozen=True)
class Scenario:
    nodes: int
    pods_per_node: int
    resolution_s: float = 15.0
    cycles: int = 5
    via: str = "direct"
    load: LoadConfig = field(default_factory=LoadConfig)
    poll_s: float = 0.0
    """How often to read /metrics (0: resolution / 3)."""
    address_prefix: int = 70
    ready_timeout_s: float = 900.0
    server_args: tuple[str, ...] = ()
    server_python: str | None = None
    reference: str | None = None
    """metrics-server's binary: measured after ours, on the same simulator, then ours again."""
    """Interpreter for the server (default: the harness's own), e.g. a virtualenv with only the
    runtime dependencies, as a container image has."""
    """Extra server flags (after the harness's own, so they win), e.g. `--kubelet-max-concurrency=64`."""


@dataclass
class Proc:
    """A child process with its log file."""

    name: str
    process: trio.Process
    log: Path

    def tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def check_alive(self) -> None:
        if self.process.returncode is not None:
            raise BenchError(
                f"{self.name} exited with {self.process.returncode}; last lines of {self.log}:\n{self.tail()}"
            )


def machine_info() -> dict[str, Any]:
    model = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem_kib = int(f.readline().split()[1])
    return {
        "nproc": os.cpu_count(),
        "cpu_model": model,
        "mem_total_mib": mem_kib // 1024,
        "python": platform.python_version(),
        "kernel": platform.release(),
        "nofile_limit": list(raise_nofile_limit()),
    }


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return int(s.getsockname()[1])


def duration_flag(seconds: float) -> str:
    return f"{seconds:g}s"


def parse_duration(text: str) -> float:
    m = re.fullmatch(r"(\d+(?:\.\d+)?)(ms|s|m)?", text.strip())
    if not m:
        raise argparse.ArgumentTypeError(f"expected a duration like 15s or 1m, got {text!r}")
    return float(m.group(1)) * {"ms": 0.001, "s": 1.0, "m": 60.0, None: 1.0}[m.group(2)]


class Harness:
    """One scenario's processes, clients and measurements."""

    def __init__(self, scenario: Scenario, workdir: Path, progress: bool = True) -> None:
        self.s = scenario
        self.workdir = workdir
        self.state = workdir / "state"
        self.progress = progress
        self.port = free_port()
        self.sim: Proc | None = None
        self.server: Proc | None = None
        self.api_url = ""
        self.kubelet_port = 0
        self.timings: dict[str, float] = {}
        self.cycles: list[dict[str, Any]] = []
        self.phase = "ours"
        self.binary: str | None = None
        """None: our server; else the reference binary (this phase)."""

    def say(self, text: str) -> None:
        if self.progress:
            print(text, flush=True)

    # --- processes ---------------------------------------------------------------------

    async def _spawn(self, name: str, argv: list[str]) -> Proc:
        log = self.workdir / f"{name}.log"
        handle = log.open("wb")
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        process = await trio.lowlevel.open_process(argv, stdout=handle, stderr=subprocess.STDOUT, env=env)
        handle.close()
        return Proc(name, process, log)

    async def start_simulator(self) -> None:
        s = self.s
        started = time.monotonic()
        self.sim = await self._spawn(
            "kubesim",
            [
                sys.executable,
                "-m",
                "kubesim",
                f"--nodes={s.nodes}",
                f"--pods-per-node={s.pods_per_node}",
                f"--state-dir={self.state}",
                "--port=0",
                "--kubelet-port=0",
                f"--address-prefix=127.{s.address_prefix}",
                f"--metrics-server-url=https://127.0.0.1:{self.port}",
                "--log-level=WARNING",
            ],
        )
        while True:
            self.sim.check_alive()
            text = self.sim.log.read_text(errors="replace")
            ready, url = _READY_LINE.search(text), _APISERVER_LINE.search(text)
            kubelet = _KUBELET_LINE.search(text)
            if ready and url and kubelet:
                self.api_url = url.group(1)
                self.kubelet_port = int(kubelet.group(1))
                break
            if time.monotonic() - started > s.ready_timeout_s:
                raise BenchError(f"kubesim not ready after {s.ready_timeout_s:.0f}s:\n{self.sim.tail()}")
            await trio.sleep(0.5)
        self.timings["simulator_ready_s"] = round(time.monotonic() - started, 2)
        self.timings["simulator_rss_mib_at_ready"] = round(ProcSample.read(self.sim.process.pid).rss_mib, 1)
        self.say(
            f"kubesim ready in {self.timings['simulator_ready_s']:.1f}s "
            f"(rss {self.timings['simulator_rss_mib_at_ready']:.0f} MiB), apiserver {self.api_url}"
        )

    @property
    def cert_dir(self) -> Path:
        return self.state / f"ms-certs-{self.phase}"

    def server_argv(self) -> list[str]:
        kc = self.state / "metrics-server.kubeconfig"
        launcher = (
            [self.binary] if self.binary else [self.s.server_python or sys.executable, "-c", _server_main()]
        )
        return (
            [
                *launcher,
                f"--kubeconfig={kc}",
                f"--authentication-kubeconfig={kc}",
                f"--authorization-kubeconfig={kc}",
                f"--kubelet-certificate-authority={self.state / 'ca.crt'}",
                "--kubelet-preferred-address-types=InternalIP",
                f"--kubelet-port={self.kubelet_port}",
                f"--secure-port={self.port}",
                "--bind-address=127.0.0.1",
                f"--cert-dir={self.cert_dir}",
                f"--metric-resolution={duration_flag(self.s.resolution_s)}",
            ]
            + (
                # The server requires the kubelet timeout (default 10s) to fit in 90% of a cycle.
                [f"--kubelet-request-timeout={duration_flag(round(0.9 * self.s.resolution_s, 1))}"]
                if 0.9 * self.s.resolution_s < 10
                else []
            )
            + (list(self.s.server_args) if not self.binary else [])
        )

    async def start_server(self) -> None:
        self.server = await self._spawn(f"metrics-server-{self.phase}", self.server_argv())
        self.server_started = time.monotonic()

    # --- clients -----------------------------------------------------------------------

    def admin_token(self) -> str:
        config = yaml.safe_load((self.state / "kubeconfig").read_text())
        users = {u["name"]: u["user"] for u in config["users"]}
        return str(users["admin"]["token"])

    def server_client(self, **kwargs: Any) -> httpx.AsyncClient:
        """A client for the server itself, verifying its self-signed serving certificate."""
        ctx = ssl.create_default_context(cafile=str(self.cert_dir / "apiserver.crt"))
        return httpx.AsyncClient(
            base_url=f"https://127.0.0.1:{self.port}",
            verify=ctx,
            # identity: metrics-server writes /metrics as two gzip members, httpx reads the first only
            headers={"Authorization": f"Bearer {self.admin_token()}", "Accept-Encoding": "identity"},
            timeout=60,
            limits=PERSISTENT,
            **kwargs,
        )

    def aggregator_client(self, **kwargs: Any) -> httpx.AsyncClient:
        ctx = ssl.create_default_context(cafile=str(self.state / "ca.crt"))
        return httpx.AsyncClient(
            base_url=self.api_url,
            verify=ctx,
            headers={"Authorization": f"Bearer {self.admin_token()}"},
            timeout=60,
            limits=PERSISTENT,
            **kwargs,
        )

    async def wait_ready(self) -> None:
        assert self.server is not None
        deadline = time.monotonic() + self.s.ready_timeout_s
        client: httpx.AsyncClient | None = None
        try:
            while True:
                self.server.check_alive()
                if time.monotonic() > deadline:
                    raise BenchError(f"metrics server not ready in time:\n{self.server.tail()}")
                if client is None and (self.cert_dir / "apiserver.crt").exists():
                    client = self.server_client()
                if client is not None:
                    try:
                        r = await client.get("/readyz")
                        if r.status_code == 200:
                            break
                    except (httpx.HTTPError, ssl.SSLError):
                        pass
                await trio.sleep(0.25)
        finally:
            if client is not None:
                await client.aclose()
        self.timings["server_ready_s"] = round(time.monotonic() - self.server_started, 2)
        self.say(f"metrics server ready in {self.timings['server_ready_s']:.1f}s (first tick stored)")

    # --- measurement -------------------------------------------------------------------

    async def counters(self, client: httpx.AsyncClient) -> ServerCounters:
        # Streamed and filtered piece by piece: reading a 5000-node exposition (~10 MB) whole
        # stalled this process's loop for tens of ms, delaying the load's requests in flight.
        wanted = WantedLines()
        async with client.stream("GET", "/metrics") as r:
            if r.status_code != 200:
                await r.aread()
                raise BenchError(f"/metrics answered {r.status_code}: {r.text[:300]}")
            async for chunk in r.aiter_text():
                wanted.feed(chunk)
        return parse(wanted.text())

    async def pod_sample(self, client: httpx.AsyncClient, count: int = 500) -> list[tuple[str, str]]:
        r = await client.get(f"{API}/pods")
        r.raise_for_status()
        items = orjson.loads(r.content)["items"]
        step = max(1, len(items) // count)
        return [(i["metadata"]["namespace"], i["metadata"]["name"]) for i in items[::step]]

    async def measure(self) -> dict[str, Any]:
        assert self.server is not None and self.sim is not None
        s = self.s
        poll = s.poll_s or s.resolution_s / 3
        monitor = self.server_client()
        api = monitor if s.via == "direct" else self.aggregator_client()
        async with monitor:
            pods = await self.pod_sample(monitor)
            load = LoadGenerator(api, s.load, pods)
            async with trio.open_nursery() as nursery:
                nursery.start_soon(load.run)
                # Readiness needs two ticks (rates need two points); the first one is cold (TLS
                # handshakes), so recording starts after the second: every recorded cycle is warm.
                # And once every load client has made its first request (`warm_up_s`): no
                # recorded request opens a connection or waits for the first review of the token.
                warm_at = trio.current_time() + s.load.warm_up_s
                now = await self.counters(monitor)
                while now.ticks < 2 or trio.current_time() < warm_at:
                    await trio.sleep(poll)
                    self.server.check_alive()
                    self.sim.check_alive()
                    now = await self.counters(monitor)
                self.say(
                    f"recording {s.cycles} cycles after tick {now.ticks} (poll /metrics every {poll:g}s)"
                )
                prev = first = now
                start = marks = (
                    ProcSample.read_tree(self.server.process.pid),
                    ProcSample.read(self.sim.process.pid),
                    ProcSample.self(),
                )
                busy_start = machine_busy_s()
                steal_start = machine_steal_s()
                queue_start = run_queue_s(self.server.process.pid)
                load.recording = True
                metrics_cost: list[float] = []
                while len(self.cycles) < s.cycles:
                    await trio.sleep(poll)
                    self.server.check_alive()
                    self.sim.check_alive()
                    t0 = time.monotonic()
                    now = await self.counters(monitor)
                    metrics_cost.append(time.monotonic() - t0)
                    if now.ticks == prev.ticks:
                        continue
                    samples = (
                        ProcSample.read_tree(self.server.process.pid),
                        ProcSample.read(self.sim.process.pid),
                        ProcSample.self(),
                    )
                    self._record(prev, now, marks, samples, load)
                    prev, marks = now, samples
                load.recording = False
                busy_end = machine_busy_s()
                steal_end = machine_steal_s()
                queue_end = run_queue_s(self.server.process.pid)
                loadavg = os.getloadavg()[0]
                nursery.cancel_scope.cancel()
            end = marks
            nodes = orjson.loads((await monitor.get(f"{API}/nodes")).content)["items"]
            all_pods = orjson.loads((await monitor.get(f"{API}/pods")).content)["items"]
        if api is not monitor:
            await api.aclose()
        durations = sorted(c["duration_s"] for c in self.cycles)
        return {
            "cycle_s": {
                "p50": round(percentile(durations, 50), 3),
                "p99": round(percentile(durations, 99), 3),
                "max": round(durations[-1], 3),
                "mean": round(sum(durations) / len(durations), 3),
            },
            "server_cores_avg": round(cores(start[0], end[0]), 4),
            "server_cpu_s_per_cycle": round((end[0].cpu_s - start[0].cpu_s) / len(self.cycles), 3),
            "server_rss_mib_max": round(max(c["server_rss_mib"] for c in self.cycles), 1),
            "server_rss_mib_end": round(end[0].rss_mib, 1),
            "server_rss_mib_peak": round(end[0].hwm_mib, 1),
            # The server and its scrape workers together (`ProcSample.read_tree`).
            "server_pss_mib_max": round(max(c["server_pss_mib"] for c in self.cycles), 1),
            "server_pss_mib_end": round(end[0].pss_mib, 1),
            "server_processes": end[0].processes,
            "simulator_cores_avg": round(cores(start[1], end[1]), 4),
            "simulator_rss_mib_end": round(end[1].rss_mib, 1),
            "harness_cores_avg": round(cores(start[2], end[2]), 4),
            # Everything else on the machine while recording (other jobs skew latency and cycles).
            "other_cores_avg": round(
                (busy_end[1] - busy_start[1]) / (busy_end[0] - busy_start[0])
                - sum(cores(a, b) for a, b in zip(start, end, strict=True)),
                3,
            ),
            # Of which stolen by the host (counted in other_cores_avg too).
            "steal_cores_avg": round((steal_end - steal_start) / (busy_end[0] - busy_start[0]), 3),
            # The serving process (ours: nearly all of it the event loop's thread; not the
            # workers): of the time its threads were runnable, the share they waited for a CPU
            # (`run_queue_s`): latency no change to its own code removes.
            "serving_cpu_wait_share": run_queue_share(queue_start, queue_end),
            "loadavg_1m_end": round(loadavg, 2),
            "scrape_requests_ok": sum(c["scrape_ok"] for c in self.cycles),
            "scrape_errors": sum(c["scrape_failed"] for c in self.cycles),
            "nodes_served": len(nodes),
            "pods_served": len(all_pods),
            "containers_served": sum(len(p["containers"]) for p in all_pods),
            "metrics_endpoint_ms_p50": round(percentile(sorted(metrics_cost), 50) * 1e3, 1),
            "measured_wall_s": round(end[0].wall - start[0].wall, 1),
            "api": {name: p.summary() for name, p in load.patterns.items()},
            "harness_loop_lag": load.lag_summary(),
            "api_server_side": server_side(first, now),
        }

    def _record(
        self,
        prev: ServerCounters,
        now: ServerCounters,
        marks: tuple[ProcSample, ProcSample, ProcSample],
        samples: tuple[ProcSample, ProcSample, ProcSample],
        load: LoadGenerator,
    ) -> None:
        ticks = now.ticks - prev.ticks
        duration = (now.tick_seconds - prev.tick_seconds) / ticks
        for _ in range(ticks):
            if len(self.cycles) >= self.s.cycles:
                break
            cycle = {
                "index": len(self.cycles) + 1,
                "duration_s": round(duration, 3),
                "merged_ticks": ticks,
                "server_cores": round(cores(marks[0], samples[0]), 4),
                "server_rss_mib": round(samples[0].rss_mib, 1),
                "server_pss_mib": round(samples[0].pss_mib, 1),
                "server_pss_mib_by_process": list(samples[0].pss_by_process),
                "simulator_cores": round(cores(marks[1], samples[1]), 4),
                "harness_cores": round(cores(marks[2], samples[2]), 4),
                "scrape_ok": (now.requests_ok - prev.requests_ok) // ticks,
                "scrape_failed": (now.requests_failed - prev.requests_failed) // ticks,
                "node_points": now.node_points,
                "container_points": now.container_points,
            }
            self.cycles.append(cycle)
            lat = sorted(load.patterns["get"].latencies)
            kub = sorted(load.patterns["kubectl"].latencies)
            self.say(
                f"cycle {cycle['index']}/{self.s.cycles}: tick {duration:.2f}s | server "
                f"{cycle['server_cores']:.3f} cores {cycle['server_rss_mib']:.0f} MiB "
                f"(PSS {cycle['server_pss_mib']:.0f}) | sim "
                f"{cycle['simulator_cores']:.2f} cores | kubelets ok {cycle['scrape_ok']} "
                f"failed {cycle['scrape_failed']} | points {now.node_points}n/{now.container_points}c | "
                f"get p99 {percentile(lat, 99) * 1e3:.0f}ms, all-pods p99 {percentile(kub, 99) * 1e3:.0f}ms"
            )

    # --- the whole run -----------------------------------------------------------------

    async def run(self) -> dict[str, Any]:
        phases: dict[str, dict[str, Any]] = {}
        order: list[tuple[str, str | None]] = [("ours", None)]
        if self.s.reference:
            order += [("reference", self.s.reference), ("ours_again", None)]
        try:
            await self.start_simulator()
            for phase, binary in order:
                self.phase, self.binary, self.cycles = phase, binary, []
                self.say(f"--- {phase}: {binary or 'this server'}")
                await self.start_server()
                await self.wait_ready()
                summary = await self.measure()
                self.say(latency_line(summary))
                phases[phase] = {
                    "summary": summary,
                    "cycles": self.cycles,
                    "server_ready_s": self.timings["server_ready_s"],
                }
                await self.stop_server()
        finally:
            await self.stop()
        summary, self.cycles = phases["ours"]["summary"], phases["ours"]["cycles"]
        extra: dict[str, Any] = {}
        if self.s.reference:
            # The path of this machine stays out of the result: the binary's name says which.
            extra = {
                "reference_binary": Path(self.s.reference).name,
                "reference": phases["reference"],
                "ours_again": phases["ours_again"],
                "ratios": ratios(summary, phases["reference"]["summary"]),
            }
        return {
            "scenario": {
                **asdict(self.s),
                # The flags as run, with this machine's temporary state path abstracted away.
                "server_argv": [a.replace(str(self.state), "<state>") for a in self._flags()],
            },
            "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "machine": machine_info(),
            "startup": self.timings,
            "summary": summary,
            "cycles": self.cycles,
            **extra,
        }

    def _flags(self) -> list[str]:
        """Our server's flags as run (the reference got the same, without `server_args`)."""
        self.phase, self.binary = "ours", None
        return self.server_argv()[3:]

    async def stop_server(self) -> None:
        proc, self.server = self.server, None
        await _terminate(proc)

    async def stop(self) -> None:
        for proc in (self.server, self.sim):
            await _terminate(proc)


async def _terminate(proc: Proc | None) -> None:
    """SIGTERM, then SIGKILL after 20 s; nothing for a process already gone."""
    if proc is None or proc.process.returncode is not None:
        return
    proc.process.terminate()
    with trio.move_on_after(20):
        await proc.process.wait()
    if proc.process.returncode is None:
        proc.process.kill()
        await proc.process.wait()


SERVER_SIDE = {"hpa": ("LIST", "namespace"), "kubectl": ("LIST", "cluster"), "get": ("GET", "resource")}
"""The load's request patterns by the labels of the server's request duration histogram."""


def run_queue_share(start: tuple[float, float], end: tuple[float, float]) -> float:
    """Of the time between two `run_queue_s` readings that a thread was runnable, the share it
    waited for a CPU."""
    on_cpu, waiting = end[0] - start[0], end[1] - start[1]
    return round(waiting / (on_cpu + waiting), 3) if on_cpu + waiting > 0 else 0.0


def server_side(first: ServerCounters, last: ServerCounters) -> dict[str, dict[str, float | None]]:
    """Per request pattern, the server's own view of the recorded requests' latency: the count and
    the bucket bounds (ms) holding p50 and p99 (`promtext.bucket_quantile`), from its request
    duration histogram between the first and the last reading."""
    out: dict[str, dict[str, float | None]] = {}
    for name, key in SERVER_SIDE.items():
        delta = bucket_delta(first.pod_requests.get(key, ()), last.pod_requests.get(key, ()))
        p50, p99 = (bucket_quantile(delta, q) for q in (0.5, 0.99))
        out[name] = {
            "count": delta[-1][1] if delta else 0.0,
            "p50_le_ms": None if p50 is None else p50 * 1e3,
            "p99_le_ms": None if p99 is None else p99 * 1e3,
        }
    return out


def latency_line(summary: dict[str, Any]) -> str:
    """p50 / p99 per request pattern, as the harness measured them and as the server saw them."""

    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value:g}"

    parts = []
    for name in SERVER_SIDE:
        client, server = summary["api"][name], summary["api_server_side"][name]
        parts.append(
            f"{name} {client['p50_ms']:.1f}/{client['p99_ms']:.1f} ms "
            f"(server <= {ms(server['p50_le_ms'])}/{ms(server['p99_le_ms'])} ms)"
        )
    wait = summary.get("serving_cpu_wait_share")
    tail = "" if wait is None else f"; serving process waited for a CPU {wait:.1%} of its runnable time"
    lag = summary.get("harness_loop_lag")
    if lag is not None:
        tail += f"; harness loop lag p50/p99 {lag['p50_ms']:g}/{lag['p99_ms']:g} ms"
    return "latency p50/p99: " + ", ".join(parts) + tail


def ratios(ours: Any, ref: Any) -> Any:
    """ours / reference for every number of a summary (same shape; None where the reference is 0)."""
    if isinstance(ours, dict) and isinstance(ref, dict):
        return {k: ratios(v, ref[k]) for k, v in ours.items() if k in ref}
    if isinstance(ours, (int, float)) and isinstance(ref, (int, float)) and not isinstance(ours, bool):
        return round(ours / ref, 3) if ref else None
    return None


def result_name(s: Scenario) -> str:
    return f"result-{s.nodes}x{s.pods_per_node}.json"


async def run_scenario(scenario: Scenario, out: Path, *, keep: bool = False, progress: bool = True) -> Path:
    """Run `scenario`, write its JSON result into `out`; returns the result path."""
    raise_nofile_limit()
    await trio.Path(out).mkdir(parents=True, exist_ok=True)
    workdir = Path(tempfile.mkdtemp(prefix=f"bench-{scenario.nodes}x{scenario.pods_per_node}-"))
    harness = Harness(scenario, workdir, progress=progress)
    try:
        result = await harness.run()
    except BaseException:
        print(f"bench: logs kept in {workdir}", file=sys.stderr)
        raise
    path = out / result_name(scenario)
    path.write_bytes(orjson.dumps(result, option=orjson.OPT_INDENT_2) + b"\n")
    if not keep:
        shutil.rmtree(workdir, ignore_errors=True)
    return path


def add_run_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--nodes", type=int, required=True)
    p.add_argument("--pods-per-node", type=int, required=True)
    p.add_argument("--resolution", type=parse_duration, default=15.0, help="--metric-resolution (e.g. 15s)")
    p.add_argument("--cycles", type=int, default=5, help="warm cycles to record")
    p.add_argument("--out", type=Path, default=Path("bench-results"), help="directory for results")
    p.add_argument("--via", choices=("direct", "aggregator"), default="direct", help="API load target")
    p.add_argument(
        "--hpas", type=int, default=100, help="HPA-pattern clients, one request each per resolution"
    )
    p.add_argument(
        "--kubectl-interval", type=parse_duration, default=5.0, help="all-pods list period (0: off)"
    )
    p.add_argument("--get-rate", type=float, default=5.0, help="single pod gets per second (0: off)")
    p.add_argument("--poll", type=parse_duration, default=0.0, help="/metrics poll period (default R/3)")
    p.add_argument("--address-prefix", type=int, default=70, help="kubelets on 127.<P+...>.x.y")
    p.add_argument(
        "--server-python",
        metavar="PATH",
        help="the server's interpreter, e.g. a virtualenv without the dev extra (default: this one)",
    )
    p.add_argument(
        "--server-arg",
        action="append",
        default=[],
        metavar="FLAG",
        help="extra server flag, repeatable (e.g. --server-arg=--kubelet-max-concurrency=64)",
    )
    p.add_argument(
        "--reference",
        metavar="PATH",
        help="also measure this metrics-server binary on the same simulator: ours, it, ours again "
        "(e.g. ../shared/reference/bin/metrics-server-v0.8.0)",
    )
    p.add_argument("--keep", action="store_true", help="keep the state directory and process logs")
    p.add_argument("--no-report", action="store_true", help="do not re-render the table and plot in --out")


def scenario_from(args: argparse.Namespace) -> Scenario:
    if args.nodes < 1 or args.pods_per_node < 0 or args.cycles < 1:
        raise SystemExit("bench: --nodes and --cycles must be >= 1, --pods-per-node >= 0")
    if args.resolution < 10:
        raise SystemExit("bench: --resolution must be >= 10s (the server refuses less)")
    return Scenario(
        nodes=args.nodes,
        pods_per_node=args.pods_per_node,
        resolution_s=args.resolution,
        cycles=args.cycles,
        via=args.via,
        load=LoadConfig(
            hpas=args.hpas,
            hpa_period_s=args.resolution,
            kubectl_interval_s=args.kubectl_interval,
            get_rate=args.get_rate,
        ),
        poll_s=args.poll,
        address_prefix=args.address_prefix,
        server_args=tuple(args.server_arg),
        server_python=args.server_python,
        reference=args.reference,
    )


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="bench/run.py", description=__doc__.split("\n")[0])
    add_run_arguments(p)
    args = p.parse_args(argv)
    scenario = scenario_from(args)
    path = trio.run(partial(run_scenario, scenario, args.out, keep=args.keep))
    print(f"bench: wrote {path}")
    if not args.no_report:
        from bench.report import render_dir

        for written in render_dir(args.out):
            print(f"bench: wrote {written}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
