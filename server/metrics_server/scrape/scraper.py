"""One scrape cycle: every node's kubelet, by a fixed pool of workers, under one nursery.

`Scraper.scrape(nodes, deadline, on_batch)` returns a `ScrapeResult`: the batches of the nodes
that answered (in arrival order; the first node of a name is scraped, later ones are ignored)
and, for every other node, the `ScrapeError` saying why. `on_batch`, when given, receives each
batch as soon as it arrives, so that storing it is spread over the cycle instead of done in one
go at its end. It never raises for a node's failure: a kubelet that errors, hangs or sends
garbage costs only its own node.

Scheduling. Like metrics-server, each node becomes eligible after a random stagger in
[0, min(8 ms x nodes, 4 s)) to spread connection bursts; unlike it, at most `max_concurrency`
requests are in flight at once. `min(max_concurrency, nodes)` worker tasks take the nodes in
stagger order; a worker waits for its node's stagger time, scrapes it, and takes the next one.
So a cycle spawns a few hundred tasks, not one per node (5000 tasks each sleeping for its stagger
and then queueing on a limiter cost ~7 % of the CPU at 5000 nodes, mostly in trio's cancellation
when the deadline hit them all).

Waking up. A worker sleeps until its node's stagger time only if that time is still ahead; a node
whose time has already come (a worker was busy past it: under load, most nodes) starts at once
instead of through `trio.sleep_until` in the past, which still costs a cancel scope whose deadline
fires at once (25 us against 6 us for a checkpoint, measured on a 2-core shared machine). A node
that fails without waiting (no address) is followed by a checkpoint, so a worker never runs through
many nodes in one step.

The deadline. `deadline` stops STARTING requests: nodes not started by then fail with
"scrape cycle deadline passed before the request was sent". A request already in flight is not
cancelled at the deadline: it may finish within its own --kubelet-request-timeout (the client
bounds each request by it), and its batch is delivered and kept. Cancelling it would close its
kept-alive connection, so that under overload every cycle ends with a burst of lost connections
and starts the next one with as many TLS handshakes, falling further behind. The cost is that a
cycle may outlast its deadline by up to one request timeout (a request started just before the
deadline); the scrape is cut, and the remaining requests cancelled, at `deadline +
request_timeout` in any case, so a scrape always ends by then. metrics-server instead cancels
everything at the tick's deadline (= the resolution). In a healthy cluster the difference does
not show: requests start within the 4 s stagger and end within their timeout, which
metrics-server's validation keeps at most 90 % of the resolution.

Logging, once per change rather than once per tick: a node's failure is logged when it first
fails and again only when its error text changes (NotReady nodes at debug level, as
metrics-server v0.9 does), with metrics-server's message and the fields `node`, `err` (and
`timeout`) in `extra`, which the formatters of `metrics_server.logs` render as `key="value"`.
A node that answers again after a logged failure is logged once at info ("Scraping node
again"). Each cycle with a failure ends with one warning, "Scrape cycle finished", carrying
`ok`, `failed`, `duration` and the first `SUMMARY_NODES` failed node names (`failed_nodes`);
cycles without failures log it at debug level. Nodes left unsent at the deadline are not logged
one by one: that is the server falling behind, not the node failing, and the set changes every
cycle (28,000 flapping lines in 12 overloaded ticks at 5000 nodes); the summary counts them as
`not_sent`.
"""

from __future__ import annotations

import itertools
import logging
import random
import time
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Protocol

import trio

from metrics_server.kube.objects import NodeInfo
from metrics_server.scrape.batch import NodeBatch, ScrapeError
from metrics_server.scrape.kubelet import KubeletTimeoutError, describe_cause

logger = logging.getLogger(__name__)

STAGGER_PER_NODE_S = 0.008
STAGGER_MAX_S = 4.0
SUMMARY_NODES = 10
"""Failed node names listed in a cycle's summary line."""

NOT_SENT = "scrape cycle deadline passed before the request was sent"
NOT_ANSWERED = "scrape cycle deadline passed before the kubelet answered"


class NodeClient(Protocol):
    """What the scraper needs from `KubeletClient`."""

    async def scrape(self, node: NodeInfo) -> NodeBatch: ...

    async def retain(self, names: Collection[str]) -> list[str]: ...


class RequestRecorder(Protocol):
    """What the scraper reports per kubelet request (`selfmetrics.SelfMetrics` has these)."""

    def record_kubelet_request(
        self, node: str, *, success: bool, duration_s: float | None, now_unix_s: float
    ) -> None: ...

    def forget_nodes(self, nodes: Iterable[str]) -> None: ...


class InternalScrapeError(ScrapeError):
    """Scraping a node raised something that is not a ScrapeError (a bug); logged with traceback."""


@dataclass(frozen=True, slots=True)
class ScrapeResult:
    batches: list[NodeBatch]
    """One per node that answered, in arrival order, node names unique."""
    failed: dict[str, ScrapeError]
    """Every other node: why it has no batch this cycle."""


_Slot = tuple[float, int, NodeInfo]
"""(eligible at, index in node order, node): the schedule's entries, sorted."""


@dataclass(slots=True)
class _Cycle:
    schedule: Iterator[_Slot]
    """Shared by the workers: each `next()` hands the next node to exactly one of them."""
    deadline: float
    on_batch: Callable[[NodeBatch], object] | None = None
    batches: dict[str, NodeBatch] = field(default_factory=dict)
    failed: dict[str, ScrapeError] = field(default_factory=dict)
    requested: set[str] = field(default_factory=set)


def stagger_bound(node_count: int) -> float:
    """metrics-server's stagger window: min(8 ms x nodes, 4 s)."""
    return min(STAGGER_PER_NODE_S * node_count, STAGGER_MAX_S)


class Scraper:
    """Fans one cycle out over the nodes; remembers each failing node's last logged error.

    `jitter(bound)` returns a node's start delay in [0, bound); the default draws from a private
    `random.Random`. Tests pass a deterministic function. `wall_clock` stamps the
    last-request-time gauge (Unix seconds); durations use trio's clock. `request_timeout` is
    --kubelet-request-timeout: the client bounds each request by it; the scraper uses it for the
    hard end of a cycle (deadline + request_timeout) and in log lines.
    """

    def __init__(
        self,
        client: NodeClient,
        *,
        request_timeout: float,
        max_concurrency: int,
        metrics: RequestRecorder | None = None,
        jitter: Callable[[float], float] | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        if max_concurrency < 1:
            raise ValueError(f"max_concurrency must be positive, got {max_concurrency}")
        self._client = client
        self._request_timeout = request_timeout
        self._max_concurrency = max_concurrency
        self._metrics = metrics
        if jitter is None:
            rng = random.Random()
            jitter = lambda bound: rng.uniform(0.0, bound)  # noqa: E731
        self._jitter = jitter
        self._wall_clock = wall_clock
        self._logged_errors: dict[str, str] = {}
        """Node -> the error text last logged for it; dropped when it answers or leaves."""

    async def scrape(
        self,
        nodes: Iterable[NodeInfo],
        deadline: float,
        on_batch: Callable[[NodeBatch], object] | None = None,
    ) -> ScrapeResult:
        """Scrape every node (the first of duplicate names): no request starts after `deadline`
        (trio clock), and requests in flight then may finish within their own timeout, up to
        `deadline + request_timeout` at most. Nodes unfinished fail with `KubeletTimeoutError`.

        `on_batch(batch)` is called once per node that answered, in the worker's task as its
        batch arrives (never for a failed node, never after `scrape` returned), and must not
        block. If it raises, that node fails this cycle with an `InternalScrapeError` (logged with
        the traceback, like a parser bug) and is not in `batches`; the other nodes go on.
        """
        started = trio.current_time()
        unique: dict[str, NodeInfo] = {}
        for node in nodes:
            unique.setdefault(node.name, node)
        gone = await self._client.retain(unique.keys())
        if self._metrics is not None:
            self._metrics.forget_nodes(gone)
        for name in [name for name in self._logged_errors if name not in unique]:
            del self._logged_errors[name]
        cycle = _Cycle(iter(()), deadline, on_batch)
        if unique:
            bound = stagger_bound(len(unique))
            start = trio.current_time()
            # Sorting by start time; the index keeps equal times in node order.
            cycle.schedule = iter(
                sorted(
                    (start + self._jitter(bound), index, node) for index, node in enumerate(unique.values())
                )
            )
            with trio.move_on_at(deadline + self._request_timeout):
                async with trio.open_nursery() as nursery:
                    for _ in range(min(self._max_concurrency, len(unique))):
                        nursery.start_soon(self._worker, cycle)
        for name in unique:
            if name in cycle.batches or name in cycle.failed:
                continue
            if name in cycle.requested:
                reason = NOT_ANSWERED
            else:
                reason = NOT_SENT
                self._record(name, success=False, duration=None)
            cycle.failed[name] = KubeletTimeoutError(reason)
        self._log_cycle(unique, cycle, trio.current_time() - started)
        return ScrapeResult(list(cycle.batches.values()), cycle.failed)

    async def _worker(self, cycle: _Cycle) -> None:
        """Scrape nodes from the shared schedule until it is empty or the deadline has passed."""
        deadline = cycle.deadline
        for at, _, node in cycle.schedule:
            if at >= deadline:
                return  # this node, and every later one, is left unsent
            now = trio.current_time()
            if now < at:
                await trio.sleep_until(at)
                now = trio.current_time()
            # else: its time came while this worker was busy (under load, most nodes). No
            # sleep_until in the past: it costs a cancel scope whose deadline fires at once
            # (25 us against 6 us for a bare checkpoint), and a request waits for its answer anyway.
            if now >= deadline:
                return  # waited for a free worker past the deadline
            if not await self._scrape_node(node, cycle):
                # A node may fail without ever waiting (no address): still let others run, and
                # the hard end of the cycle in, between nodes.
                await trio.lowlevel.checkpoint()

    async def _scrape_node(self, node: NodeInfo, cycle: _Cycle) -> bool:
        """Whether the node's batch was delivered."""
        cycle.requested.add(node.name)
        start = trio.current_time()
        success = False
        try:
            batch = await self._client.scrape(node)
            success = True
        except ScrapeError as exc:
            cycle.failed[node.name] = exc
            return False
        except Exception as exc:
            # A parser bug must cost this node only, never the nursery and the other nodes.
            error = InternalScrapeError(f"internal error: {describe_cause(exc)}")
            error.__cause__ = exc
            cycle.failed[node.name] = error
            return False
        finally:
            # Also runs when the hard end of the cycle cancels the request.
            self._record(node.name, success=success, duration=trio.current_time() - start)
        # No checkpoint since the batch arrived: the cycle's end cannot separate it from its delivery.
        if cycle.on_batch is not None:
            try:
                cycle.on_batch(batch)
            except Exception as exc:
                # The request succeeded; storing its batch failed (a bug): this node only.
                error = InternalScrapeError(f"internal error storing the batch: {describe_cause(exc)}")
                error.__cause__ = exc
                cycle.failed[node.name] = error
                return False
        cycle.batches[node.name] = batch
        return True

    def _record(self, node: str, *, success: bool, duration: float | None) -> None:
        if self._metrics is not None:
            self._metrics.record_kubelet_request(
                node, success=success, duration_s=duration, now_unix_s=self._wall_clock()
            )

    def _log_cycle(self, nodes: dict[str, NodeInfo], cycle: _Cycle, duration: float) -> None:
        logged = self._logged_errors
        not_sent = 0
        for name, error in cycle.failed.items():
            text = str(error)
            if text == NOT_SENT:
                # A cycle-level condition (the server is behind), not the node's: which nodes
                # miss their turn changes every cycle, so per-node lines would flap. Counted in
                # the summary; the node's last logged error, if any, stays as it was.
                not_sent += 1
                continue
            if logged.get(name) != text:
                logged[name] = text
                self._log_failure(nodes[name], error, text)
        for name in [name for name in logged if name in cycle.batches]:
            logger.info("Scraping node again", extra={"node": name, "previous_err": logged.pop(name)})
        fields: dict[str, object] = {
            "ok": len(cycle.batches),
            "failed": len(cycle.failed),
            "duration": f"{duration:.3f}s",
        }
        if not_sent:
            fields["not_sent"] = not_sent
        if cycle.failed:
            fields["failed_nodes"] = ",".join(itertools.islice(cycle.failed, SUMMARY_NODES))
            logger.warning("Scrape cycle finished", extra=fields)
        else:
            logger.debug("Scrape cycle finished", extra=fields)

    def _log_failure(self, node: NodeInfo, error: ScrapeError, text: str) -> None:
        fields: dict[str, object] = {"node": node.name, "err": text}
        if not node.ready:
            logger.debug("Failed to scrape node, node is not ready", extra=fields)
        elif isinstance(error, KubeletTimeoutError):
            fields["timeout"] = f"{self._request_timeout:g}s"
            logger.error("Failed to scrape node, timeout to access kubelet", extra=fields)
        else:
            internal = error.__cause__ if isinstance(error, InternalScrapeError) else None
            logger.error("Failed to scrape node", extra=fields, exc_info=internal)
