"""A scrape worker: scrapes its share of the nodes and sends their usages, one cycle at a time.

Run by the serving process (`shard.pool`) as `python -m metrics_server.shard.worker`: messages
come in on standard input and go out on standard output (`shard.protocol`); logs go to standard
error, in the server's format. `serve_worker(receive, send)` is the same loop over any pair of
byte streams.

Per `Scrape`: the worker's `scrape.scraper.Scraper` fans out over the assigned nodes (its own
kept-alive kubelet connections, `--kubelet-max-concurrency` in flight), each batch goes into the
worker's `storage.store.Storage` (the two-point store of these nodes only) as it arrives, and its
usages are sent in `Results` frames of `RESULTS_PER_FRAME` nodes; then `Done` lists the nodes that
failed, the per-request records for the server's self-metrics, and the worker's CPU and memory.
The worker never holds the API, the informers or the merged snapshot.

Lifetime: the worker exits when its input ends (the server closed it: drain), when the server
sends something invalid (exit code 3), or on SIGTERM. SIGINT is ignored: a terminal's Ctrl-C
reaches the whole process group, and the server, which owns the worker, stops it itself.
Configuration problems (an unreadable kubeconfig) are reported with `Fatal` and exit code 2.
"""

from __future__ import annotations

import gc
import logging
import math
import os
import resource
import signal
import sys
import time
from collections.abc import Iterable
from dataclasses import replace
from typing import cast

import trio

from metrics_server import memory
from metrics_server.kube.objects import NodeAddress, NodeInfo
from metrics_server.logs import configure_logging
from metrics_server.scrape.batch import NodeBatch, PodKey
from metrics_server.scrape.config import ConfigError, kubelet_ssl_context
from metrics_server.scrape.kubelet import KubeletClient
from metrics_server.scrape.scraper import Scraper
from metrics_server.shard import protocol as p
from metrics_server.storage.snapshot import PodUsageTuple
from metrics_server.storage.store import Cycle, Storage

log = logging.getLogger(__name__)

RESULTS_PER_FRAME = 5
"""Nodes per `Results` frame: ~13 KB at 30 pods per node, which the serving process decodes and
stores in one event-loop step. Steps are what a request waits behind: 20 nodes per frame were
steps of ~4 ms under the bench's load at 5000 x 30 (slow-step log, docs/performance.md round 6);
`bench/micro/shard_protocol.py` found 250 frames at 5000 nodes to cost the same in all as 100
frames of 50 nodes."""
EXIT_CONFIG = 2
EXIT_PROTOCOL = 3


class _Requests:
    """A `scrape.scraper.RequestRecorder` that keeps one cycle's records for `Done`."""

    def __init__(self) -> None:
        self.records: list[tuple[str, bool, float | None, float]] = []

    def record_kubelet_request(
        self, node: str, *, success: bool, duration_s: float | None, now_unix_s: float
    ) -> None:
        self.records.append((node, success, duration_s, now_unix_s))

    def forget_nodes(self, nodes: Iterable[str]) -> None:
        return None  # the server forgets nodes that left the cluster itself

    def take(self) -> list[tuple[str, bool, float | None, float]]:
        records, self.records = self.records, []
        return records


def node_info(spec: p.NodeSpec) -> NodeInfo:
    return NodeInfo(
        name=spec.name,
        uid=spec.uid,
        labels={},
        addresses=tuple(NodeAddress(t, a) for t, a in spec.addresses),
        kubelet_port=spec.kubelet_port,
        metrics_path=spec.metrics_path,
        ready=spec.ready,
    )


def memory_bytes() -> tuple[int, int]:
    """(resident, proportional) bytes of this process; PSS 0 where /proc does not tell."""
    resident = pss = 0
    try:
        with open("/proc/self/smaps_rollup", "rb") as f:
            for line in f:
                if line.startswith(b"Rss:"):
                    resident = int(line.split()[1]) * 1024
                elif line.startswith(b"Pss:"):
                    pss = int(line.split()[1]) * 1024
    except OSError:
        resident = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    return resident, pss


def _cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


class _Worker:
    def __init__(
        self, config: p.Configure, client: KubeletClient, out: trio.MemorySendChannel[bytes]
    ) -> None:
        kubelet = config.kubelet
        self.config = config
        self.requests = _Requests()
        self.scraper = Scraper(
            client,
            request_timeout=kubelet.request_timeout,
            max_concurrency=kubelet.max_concurrency,
            metrics=self.requests,
        )
        self.storage = Storage(
            staleness_ns=config.staleness_ns, resolution_ns=config.resolution_ns, serves=False
        )
        self.nodes: list[NodeInfo] = []
        self.out = out

    async def cycle(self, message: p.Scrape) -> None:
        started = time.monotonic()
        deadline = trio.current_time() + message.deadline_s
        storage_cycle = self.storage.begin(time.time_ns())
        pending: list[p.NodeResult] = []
        number = message.cycle

        def on_batch(batch: NodeBatch) -> None:
            result = storage_cycle.add(batch)
            if result is None:
                return
            # The store never mutates a published node's usages: sent as they are, no copy.
            pods = cast("dict[PodKey, PodUsageTuple]", result.pod_usage)
            pending.append(p.NodeResult(batch.node, result.first, result.node_usage, pods))
            if len(pending) >= RESULTS_PER_FRAME:
                self.out.send_nowait(p.encode(p.Results(number, pending[:])))
                pending.clear()

        result = await self.scraper.scrape(self.nodes, deadline, on_batch)
        if pending:
            self.out.send_nowait(p.encode(p.Results(number, pending)))
        await _publish(storage_cycle, result.failed.keys())
        memory.trim()  # the freed cycle back to the system (see `metrics_server.memory`)
        resident, pss = memory_bytes()
        stats = p.WorkerStats(
            cpu_seconds=_cpu_seconds(),
            resident_bytes=resident,
            proportional_bytes=pss,
            duration_s=time.monotonic() - started,
            nodes=len(self.nodes),
        )
        failed = [(name, str(error)) for name, error in result.failed.items()]
        self.out.send_nowait(p.encode(p.Done(number, failed, self.requests.take(), stats)))


async def _publish(cycle: Cycle, failed: Iterable[str]) -> None:
    for _ in cycle.publish_steps(frozenset(failed)):
        await trio.lowlevel.checkpoint()


async def serve_worker(receive: trio.abc.ReceiveStream, send: trio.abc.SendStream) -> int:
    """Run the worker conversation over `receive`/`send`; the exit code when it ends."""
    reader = p.FrameReader(receive)
    payload = await reader.receive()
    if payload is None:
        return 0
    try:
        config = p.decode_from_server(payload)
    except p.ProtocolError as exc:
        log.error("Scrape worker: bad first message", extra={"err": str(exc)})
        return EXIT_PROTOCOL
    if not isinstance(config, p.Configure) or config.version != p.PROTOCOL_VERSION:
        await send.send_all(p.encode(p.Fatal(f"expected Configure version {p.PROTOCOL_VERSION}")))
        return EXIT_PROTOCOL
    configure_logging(config.log_format, config.verbosity)
    try:
        kubelet = p.kubelet_config(config.kubelet)
        kubelet.validate()
        ssl_context = None
        if not kubelet.deprecated_completely_insecure:
            # Deferred: the kube package (httpx client set-up) is needed only for credentials.
            from metrics_server.kube.connection import load_connection

            apiserver = await trio.to_thread.run_sync(load_connection, config.kubeconfig)
            if kubelet.auth is None:
                kubelet = replace(kubelet, auth=apiserver.auth)
            ssl_context = kubelet_ssl_context(kubelet, apiserver)
    except (ConfigError, ValueError, OSError) as exc:
        await send.send_all(p.encode(p.Fatal(str(exc))))
        return EXIT_CONFIG
    out, pending = trio.open_memory_channel[bytes](math.inf)
    async with KubeletClient(kubelet, ssl_context=ssl_context) as client:
        worker = _Worker(config, client, out)
        await send.send_all(p.encode(p.Ready(p.PROTOCOL_VERSION, os.getpid())))
        _settle_gc()
        async with trio.open_nursery() as nursery:
            nursery.start_soon(_send_all, pending, send)
            code = await _conversation(reader, worker, nursery)
            # Whatever was queued (a last Done) goes out before the streams close.
            out.close()
            if code != 0:
                nursery.cancel_scope.cancel()
        return code


async def _conversation(reader: p.FrameReader, worker: _Worker, nursery: trio.Nursery) -> int:
    running: trio.CancelScope | None = None
    done = trio.Event()
    done.set()
    while True:
        try:
            payload = await reader.receive()
            if payload is None:
                log.info("Scrape worker: input closed, stopping", extra={"worker": worker.config.worker})
                if running is not None:
                    running.cancel()
                await done.wait()
                return 0
            message = p.decode_from_server(payload)
        except p.ProtocolError as exc:
            log.error("Scrape worker: bad message", extra={"err": str(exc)})
            return EXIT_PROTOCOL
        if isinstance(message, p.Assign):
            if not done.is_set():
                log.error("Scrape worker: Assign during a cycle")
                return EXIT_PROTOCOL
            worker.nodes = [node_info(spec) for spec in message.nodes]
        elif isinstance(message, p.Scrape):
            if not done.is_set():
                log.error("Scrape worker: Scrape during a cycle")
                return EXIT_PROTOCOL
            done = trio.Event()
            running = await nursery.start(_run_cycle, worker, message, done)
        else:
            log.error("Scrape worker: unexpected message", extra={"type": type(message).__name__})
            return EXIT_PROTOCOL


async def _run_cycle(
    worker: _Worker, message: p.Scrape, done: trio.Event, task_status: trio.TaskStatus[trio.CancelScope]
) -> None:
    with trio.CancelScope() as scope:
        task_status.started(scope)
        try:
            await worker.cycle(message)
        finally:
            done.set()


async def _send_all(frames: trio.MemoryReceiveChannel[bytes], send: trio.abc.SendStream) -> None:
    """Write the queued frames in order. Once the server has closed its end (it is stopping, or
    restarting this worker) the rest are dropped, not raised: the conversation ends when the
    input closes too, with code 0."""
    open_ = True
    async with frames:
        async for frame in frames:
            if not open_:
                continue
            try:
                await send.send_all(frame)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                open_ = False
                log.info("Scrape worker: output closed, dropping what is left to send")


def _settle_gc() -> None:
    # What is alive now (imports, the client) lives as long as the process: out of every
    # collection. The store's tuples are untracked on their first collection (`Storage._made`).
    gc.collect()
    gc.freeze()
    gc.set_threshold(10_000, 10, 100)


def main() -> int:
    """Process entry point: the protocol on fds 0 and 1; fd 1 then points at stderr, so that
    nothing printed by accident can corrupt the stream."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    proto_out = os.dup(1)
    os.dup2(2, 1)
    sys.stdout = sys.stderr

    async def run() -> int:
        receive = trio.lowlevel.FdStream(os.dup(0))
        send = trio.lowlevel.FdStream(proto_out)
        async with receive, send:
            with trio.open_signal_receiver(signal.SIGTERM) as signals:
                async with trio.open_nursery() as nursery:
                    code = 0

                    async def on_signal() -> None:
                        async for _ in signals:
                            log.info("Scrape worker: SIGTERM, stopping")
                            nursery.cancel_scope.cancel()
                            return

                    async def converse() -> None:
                        nonlocal code
                        code = await serve_worker(receive, send)
                        nursery.cancel_scope.cancel()

                    nursery.start_soon(on_signal)
                    nursery.start_soon(converse)
        return code

    try:
        return trio.run(run)
    except (trio.BrokenResourceError, trio.ClosedResourceError, BrokenPipeError):
        return 0  # the server went away while we were writing


if __name__ == "__main__":
    raise SystemExit(main())
