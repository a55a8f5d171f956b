"""The serving process's side of scrape workers: start them, share the nodes out, run cycles.

`WorkerPool(count, ...)` is a `scrape.loop.CycleScraper`: `scrape(nodes, deadline, on_batch)`
splits the nodes over the workers with a `ring.HashRing`, sends each worker its share when it
changed (`Assign`) and a `Scrape`, hands every `protocol.NodeResult` to `on_batch` as its frame
arrives (in the frame reader's task, one frame per event-loop step), and returns once every
worker has sent `Done` or the cycle's hard end (`deadline + request_timeout + done_grace`) has
passed, with every node that has no result in `failed`. It never parses a kubelet body.

Structured concurrency across processes: `run()` (in the server's nursery) owns one supervisor
task per worker; each starts its process (`python -m metrics_server.shard.worker`, pipes on
stdin/stdout, stderr shared with the server's), lowers its CPU priority by `niceness`
(`--scrape-worker-niceness`: when the CPUs are busy, API requests go first and scraping takes what
is left), configures it and reads its frames. Failure modes:

* a worker that exits, or sends something invalid (its stream is closed, the process killed), is
  restarted after `restart_delay` (doubling up to `MAX_RESTART_DELAY_S` while it keeps failing
  before finishing a cycle); its nodes fail for the cycles it misses, and the store keeps their
  last usages until --metric-staleness (and through its restarted store's first cycle, whose
  results are `first`);
* a worker that has not sent `Done` by the cycle's hard end (stuck: its own scraper cuts every
  request at `deadline + request_timeout`) is killed and restarted; a hung kubelet does not get
  there, since the worker's request timeout fails that node alone;
* `Fatal` at start-up (an unusable configuration) is logged and retried with the same back-off;
* cancellation (server shutdown) closes each worker's pipes, so the worker stops its cycle and
  exits; one still running after `stop_timeout` is killed. Nothing is left behind.

Self-metrics per worker (`metrics_server_scrape_worker_*{worker="i"}`, registered by `collector()`):
up, restarts, nodes assigned, CPU seconds and memory (RSS and PSS) as the worker reports them
with each `Done`, its last cycle's duration, and bytes received from it.
"""

from __future__ import annotations

import contextlib
import logging
import os
import subprocess
import sys
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field

import trio
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from metrics_server.kube.objects import NodeInfo
from metrics_server.priority import defer
from metrics_server.scrape.batch import ScrapeError
from metrics_server.scrape.kubelet import describe_cause
from metrics_server.scrape.scraper import InternalScrapeError, RequestRecorder, ScrapeResult
from metrics_server.shard import protocol as p
from metrics_server.shard.config import NICENESS_MAX
from metrics_server.shard.ring import HashRing

log = logging.getLogger(__name__)

WORKER_COMMAND: tuple[str, ...] = (sys.executable, "-m", "metrics_server.shard.worker")
MAX_RESTART_DELAY_S = 30.0
RECORDS_PER_STEP = 1000
"""Kubelet request records put into the self-metrics per event-loop step (~1 ms)."""


class WorkerUnavailableError(ScrapeError):
    """The node's worker is not running (starting, restarting) or was lost during the cycle."""


class WorkerReportedError(ScrapeError):
    """The worker failed the node; the message is the worker's (metrics-server's wording)."""


def node_spec(node: NodeInfo) -> p.NodeSpec:
    return p.NodeSpec(
        node.name,
        node.uid,
        tuple((a.type, a.address) for a in node.addresses),
        node.kubelet_port,
        node.metrics_path,
        node.ready,
    )


@dataclass(eq=False)
class _Cycle:
    number: int
    names: frozenset[str]
    on_batch: Callable[[p.NodeResult], object] | None
    received: set[str] = field(default_factory=set)
    done: trio.Event = field(default_factory=trio.Event)
    failed: list[tuple[str, str]] | None = None
    """The worker's `Done.failed`; None while no `Done` came."""
    lost: str = ""
    """Why the cycle ended without `Done` (the worker exited or was killed)."""
    errors: dict[str, ScrapeError] = field(default_factory=dict)
    """Nodes whose result arrived but could not be stored."""
    open: bool = True


@dataclass(eq=False)
class _Handle:
    index: int
    process: trio.Process | None = None
    stdin: trio.abc.SendStream | None = None
    ready: bool = False
    failed_start: bool = False
    """The last start attempt failed (`Fatal`, no `Ready`): waiting for it is pointless."""
    send_lock: trio.Lock = field(default_factory=trio.Lock)
    assigned: tuple[NodeInfo, ...] | None = None
    cycle: _Cycle | None = None
    restarts: int = 0
    nodes: int = 0
    received_bytes: int = 0
    stats: p.WorkerStats | None = None


class WorkerPool:
    """`count` scrape workers and the ring that shares the nodes out (see the module docstring).

    `configure(index)` is each worker's `Configure` message. `metrics`, when given, receives the
    workers' kubelet request records and forgets nodes that left. `command` starts one worker
    (tests substitute their own). `niceness` is added to each worker's nice value (see the module
    docstring).
    """

    def __init__(
        self,
        count: int,
        configure: Callable[[int], p.Configure],
        *,
        request_timeout: float,
        metrics: RequestRecorder | None = None,
        command: Sequence[str] = WORKER_COMMAND,
        start_timeout: float = 60.0,
        stop_timeout: float = 5.0,
        done_grace: float = 2.0,
        restart_delay: float = 0.5,
        niceness: int = 0,
    ) -> None:
        if count < 1:
            raise ValueError(f"a worker pool needs at least one worker, got {count}")
        self.count = count
        self._configure = configure
        self._request_timeout = request_timeout
        self._metrics = metrics
        self._command = tuple(command)
        self._start_timeout = start_timeout
        self._stop_timeout = stop_timeout
        self._done_grace = done_grace
        self._restart_delay = restart_delay
        self._niceness = niceness
        self._ring = HashRing(count)
        self._handles = [_Handle(i) for i in range(count)]
        self._known: set[str] = set()
        self._number = 0
        self._changed = trio.Event()
        """Set (and replaced) whenever a worker becomes ready or stops."""

    # -- supervision ----------------------------------------------------------------------------

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Start every worker and keep them running until cancelled."""
        async with trio.open_nursery() as nursery:
            for handle in self._handles:
                nursery.start_soon(self._supervise, handle)
            task_status.started()

    def ready(self) -> bool:
        return all(h.ready for h in self._handles)

    async def wait_started(self) -> None:
        """Until every worker is ready, or its last start attempt failed."""
        while not all(h.ready or h.failed_start for h in self._handles):
            await self._changed.wait()

    def _state_changed(self) -> None:
        self._changed.set()
        self._changed = trio.Event()

    async def _supervise(self, handle: _Handle) -> None:
        delay = self._restart_delay
        while True:
            finished_a_cycle = await self._run_once(handle)
            handle.restarts += 1
            delay = self._restart_delay if finished_a_cycle else min(delay * 2, MAX_RESTART_DELAY_S)
            log.warning(
                "Scrape worker stopped; restarting",
                extra={"worker": handle.index, "restarts": handle.restarts, "delay": f"{delay:g}s"},
            )
            await trio.sleep(delay)

    async def _run_once(self, handle: _Handle) -> bool:
        """Run one worker process to its end; whether it finished at least one cycle."""
        cycles = 0
        process = await trio.lowlevel.open_process(
            self._command, stdin=subprocess.PIPE, stdout=subprocess.PIPE
        )
        assert process.stdin is not None and process.stdout is not None
        if self._niceness:
            _lower_priority(process.pid, self._niceness, handle.index)
        handle.process, handle.stdin, handle.assigned = process, process.stdin, None
        try:
            reader = p.FrameReader(process.stdout)
            await process.stdin.send_all(p.encode(self._configure(handle.index)))
            first: p.ToServer | None = None
            with trio.move_on_after(self._start_timeout):
                first = await self._receive(handle, reader)
            if not isinstance(first, p.Ready) or first.version != p.PROTOCOL_VERSION:
                why = first.message if isinstance(first, p.Fatal) else f"bad first message {first!r}"
                log.error("Scrape worker failed to start", extra={"worker": handle.index, "err": why})
                handle.failed_start = True
                return False
            handle.ready = True
            handle.failed_start = False
            self._state_changed()
            log.info("Scrape worker ready", extra={"worker": handle.index, "pid": first.pid})
            while True:
                message = await self._receive(handle, reader)
                if message is None:
                    return cycles > 0
                if isinstance(message, p.Results):
                    await defer()  # storing waits while a get is in flight (`priority`)
                    self._results(handle, message)
                elif isinstance(message, p.Done):
                    await self._done(handle, message)
                    cycles += 1
                else:
                    log.error("Scrape worker sent an unexpected message", extra={"worker": handle.index})
                    return cycles > 0
        except (p.ProtocolError, trio.BrokenResourceError, trio.ClosedResourceError, OSError) as exc:
            log.error("Scrape worker stream failed", extra={"worker": handle.index, "err": str(exc)})
            return cycles > 0
        finally:
            handle.ready = False
            self._state_changed()
            self._lose_cycle(handle, f"scrape worker {handle.index} exited")
            with trio.CancelScope(shield=True):
                await _stop(process, self._stop_timeout)
            handle.process = handle.stdin = None
            if process.returncode not in (0, None):
                log.warning(
                    "Scrape worker exited", extra={"worker": handle.index, "code": process.returncode}
                )

    async def _receive(self, handle: _Handle, reader: p.FrameReader) -> p.ToServer | None:
        payload = await reader.receive()
        if payload is None:
            return None
        handle.received_bytes += len(payload) + 4
        return p.decode_from_worker(payload)

    def _results(self, handle: _Handle, message: p.Results) -> None:
        cycle = handle.cycle
        if cycle is None or not cycle.open or cycle.number != message.cycle:
            return  # a late frame of a cycle already closed
        for result in message.nodes:
            name = result.node
            if name not in cycle.names or name in cycle.received:
                continue  # not this worker's node this cycle, or a second result: ignored
            cycle.received.add(name)
            if cycle.on_batch is None:
                continue
            try:
                cycle.on_batch(result)
            except Exception as exc:
                # Storing the node's usages failed (a bug): this node only, as in `Scraper`.
                log.exception("Storing a scrape worker's result failed", extra={"node": name})
                error = InternalScrapeError(f"internal error storing the result: {describe_cause(exc)}")
                error.__cause__ = exc
                cycle.errors[name] = error

    async def _done(self, handle: _Handle, message: p.Done) -> None:
        handle.stats = message.stats
        cycle = handle.cycle
        if cycle is None or cycle.number != message.cycle:
            return
        cycle.failed = message.failed
        cycle.done.set()
        metrics = self._metrics
        if metrics is not None:
            known = self._known
            for i, (node, success, duration, unix_s) in enumerate(message.requests, 1):
                if node in known:
                    metrics.record_kubelet_request(
                        node, success=success, duration_s=duration, now_unix_s=unix_s
                    )
                if i % RECORDS_PER_STEP == 0:
                    await defer()

    def _lose_cycle(self, handle: _Handle, why: str) -> None:
        cycle = handle.cycle
        if cycle is not None and cycle.failed is None:
            cycle.lost = cycle.lost or why
            cycle.done.set()

    # -- cycles ---------------------------------------------------------------------------------

    async def scrape(
        self,
        nodes: Iterable[NodeInfo],
        deadline: float,
        on_batch: Callable[[p.NodeResult], object] | None = None,
    ) -> ScrapeResult:
        """One cycle over every worker (see the module docstring). Never raises for a worker's
        failure: its nodes fail this cycle."""
        unique: dict[str, NodeInfo] = {}
        for node in nodes:
            unique.setdefault(node.name, node)
        if self._metrics is not None:
            self._metrics.forget_nodes(self._known - unique.keys())
        self._known = set(unique)
        self._number += 1
        number = self._number
        failed: dict[str, ScrapeError] = {}
        running: list[tuple[_Handle, _Cycle]] = []
        for handle, share in zip(self._handles, self._ring.shares(unique), strict=True):
            handle.nodes = len(share)
            # A worker that is not ready (restarting) is not waited for: that would delay the
            # others' cycles; its nodes fail this cycle and keep their values until stale.
            cycle = _Cycle(number, frozenset(share), on_batch)
            specs = tuple(unique[name] for name in share)
            if handle.ready and await self._start_cycle(handle, cycle, specs, deadline):
                running.append((handle, cycle))
                continue
            for name in share:
                failed[name] = WorkerUnavailableError(f"scrape worker {handle.index} is not running")
        with trio.move_on_at(deadline + self._request_timeout + self._done_grace):
            for _, cycle in running:
                await cycle.done.wait()
        for handle, cycle in running:
            cycle.open = False
            if handle.cycle is cycle:
                handle.cycle = None
            if cycle.failed is not None:
                for name, text in cycle.failed:
                    if name in cycle.names and name not in cycle.received:
                        failed[name] = WorkerReportedError(text)
                why = f"scrape worker {handle.index} did not report the node"
            else:
                why = cycle.lost or self._stuck(handle)
            for name in cycle.names - cycle.received:
                failed.setdefault(name, WorkerUnavailableError(why))
            failed.update(cycle.errors)
        return ScrapeResult([], failed)

    async def _start_cycle(
        self, handle: _Handle, cycle: _Cycle, specs: tuple[NodeInfo, ...], deadline: float
    ) -> bool:
        stdin = handle.stdin
        if stdin is None:
            return False
        try:
            async with handle.send_lock:
                if specs != handle.assigned:
                    await stdin.send_all(p.encode(p.Assign([node_spec(n) for n in specs])))
                    handle.assigned = specs
                handle.cycle = cycle
                left = max(0.0, deadline - trio.current_time())
                await stdin.send_all(p.encode(p.Scrape(cycle.number, left)))
        except (trio.BrokenResourceError, trio.ClosedResourceError, OSError):
            handle.cycle = None
            return False
        return True

    def _stuck(self, handle: _Handle) -> str:
        """A worker without `Done` at the cycle's hard end: killed (its supervisor restarts it)."""
        why = f"scrape worker {handle.index} did not finish the cycle in time"
        log.error("Scrape worker stuck; killing it", extra={"worker": handle.index})
        handle.ready = False
        self._state_changed()
        if handle.process is not None and handle.process.returncode is None:
            handle.process.kill()
        return why

    # -- state, for health, tests and operators ------------------------------------------------

    def worker_pids(self) -> list[int | None]:
        return [h.process.pid if h.process is not None else None for h in self._handles]

    def processes(self) -> list[trio.Process | None]:
        return [h.process for h in self._handles]

    def restarts(self) -> list[int]:
        return [h.restarts for h in self._handles]

    def assignments(self) -> list[list[str]]:
        """Each worker's nodes as last sent to it, sorted."""
        return [sorted(n.name for n in h.assigned or ()) for h in self._handles]

    # -- self-metrics ---------------------------------------------------------------------------

    def collector(self) -> Collector:
        """The `metrics_server_scrape_worker_*` families, for the server's registry."""
        return _WorkerCollector(self._handles)


def _lower_priority(pid: int, niceness: int, index: int) -> None:
    """Add `niceness` to the nice value of process `pid` (at most `NICENESS_MAX`). Lowering a
    priority needs no privilege; a failure (the process already gone) is logged, not raised: the
    worker then runs at the server's priority, or its exit is seen on its pipe."""
    try:
        current = os.getpriority(os.PRIO_PROCESS, pid)
        os.setpriority(os.PRIO_PROCESS, pid, min(NICENESS_MAX, current + niceness))
    except OSError as exc:
        log.warning("Could not lower a scrape worker's priority", extra={"worker": index, "err": str(exc)})


async def _stop(process: trio.Process, grace: float) -> None:
    """Close the worker's pipes (it drains and exits), wait up to `grace` seconds, then kill."""
    for stream in (process.stdin, process.stdout):
        if stream is not None:
            with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError, OSError):
                await stream.aclose()
    with trio.move_on_after(grace):
        await process.wait()
    if process.returncode is None:
        process.kill()
        await process.wait()


class _WorkerCollector(Collector):
    def __init__(self, handles: Sequence[_Handle]) -> None:
        self._handles = handles

    def collect(self) -> Iterable[Metric]:
        families = []
        for kind, suffix, text, value in _WORKER_FAMILIES:
            family = kind(f"metrics_server_scrape_worker_{suffix}", text, labels=["worker"])
            for handle in self._handles:
                number = value(handle)
                if number is not None:
                    family.add_metric([str(handle.index)], number)
            families.append(family)
        return families


def _stat(field: str) -> Callable[[_Handle], float | None]:
    return lambda h: None if h.stats is None else float(getattr(h.stats, field))


_WORKER_FAMILIES: tuple[
    tuple[type[GaugeMetricFamily | CounterMetricFamily], str, str, Callable[[_Handle], float | None]], ...
] = (
    (GaugeMetricFamily, "up", "Whether the scrape worker is running.", lambda h: 1.0 if h.ready else 0.0),
    (CounterMetricFamily, "restarts", "Times the scrape worker was restarted.", lambda h: h.restarts),
    (GaugeMetricFamily, "nodes", "Nodes assigned to the scrape worker.", lambda h: h.nodes),
    (
        CounterMetricFamily,
        "cpu_seconds",
        "User and system CPU time of the scrape worker process, as of its last cycle.",
        _stat("cpu_seconds"),
    ),
    (
        GaugeMetricFamily,
        "resident_memory_bytes",
        "Resident memory of the scrape worker.",
        _stat("resident_bytes"),
    ),
    (
        GaugeMetricFamily,
        "proportional_memory_bytes",
        "Proportional set size of the scrape worker (shared pages divided among their users).",
        _stat("proportional_bytes"),
    ),
    (
        GaugeMetricFamily,
        "cycle_duration_seconds",
        "Time the scrape worker took for its last cycle.",
        _stat("duration_s"),
    ),
    (
        CounterMetricFamily,
        "received_bytes",
        "Bytes of messages received from the scrape worker.",
        lambda h: h.received_bytes,
    ),
)
"""(family type, name after `metrics_server_scrape_worker_`, help, value of a worker or None)."""
