"""One scrape cycle: every node's kubelet, concurrently, under one nursery and one deadline.

`Scraper.scrape(nodes, deadline, on_batch)` returns a `ScrapeResult`: the batches of the nodes
that answered (in arrival order; the first node of a name is scraped, later ones are ignored)
and, for every other node, the `ScrapeError` saying why. `on_batch`, when given, receives each
batch as soon as it arrives, so that storing it is spread over the cycle instead of done in one
go at its end. It never raises for a node's failure: a kubelet that errors, hangs or sends
garbage costs only its own node, and batches already received are kept when the deadline cuts
the cycle short. Each failure is logged exactly once, here (NotReady nodes at debug level,
as metrics-server v0.9 does), with metrics-server's message and the fields `node`, `err` (and
`timeout`) in `extra`, which the formatters of `metrics_server.logs` render as `key="value"`.

Like metrics-server, each node's request starts after a random stagger in
[0, min(8 ms x nodes, 4 s)) to spread connection bursts; unlike it, at most `max_concurrency`
requests are in flight at once. A node's task is started when its stagger is over, not at the
beginning of the cycle: starting 5000 tasks at once holds the event loop for ~100 ms.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from typing import Protocol

import trio

from metrics_server.kube.objects import NodeInfo
from metrics_server.scrape.batch import NodeBatch, ScrapeError
from metrics_server.scrape.kubelet import KubeletTimeoutError, describe_cause
from metrics_server.selfmetrics import SelfMetrics

logger = logging.getLogger(__name__)

STAGGER_PER_NODE_S = 0.008
STAGGER_MAX_S = 4.0


class NodeClient(Protocol):
    """What the scraper needs from `KubeletClient`."""

    async def scrape(self, node: NodeInfo) -> NodeBatch: ...

    async def retain(self, names: Collection[str]) -> list[str]: ...


class InternalScrapeError(ScrapeError):
    """Scraping a node raised something that is not a ScrapeError (a bug); logged with traceback."""


@dataclass(frozen=True, slots=True)
class ScrapeResult:
    batches: list[NodeBatch]
    """One per node that answered, in arrival order, node names unique."""
    failed: dict[str, ScrapeError]
    """Every other node: why it has no batch this cycle."""


@dataclass(slots=True)
class _Cycle:
    on_batch: Callable[[NodeBatch], None] | None = None
    batches: dict[str, NodeBatch] = field(default_factory=dict)
    failed: dict[str, ScrapeError] = field(default_factory=dict)
    requested: set[str] = field(default_factory=set)


def stagger_bound(node_count: int) -> float:
    """metrics-server's stagger window: min(8 ms x nodes, 4 s)."""
    return min(STAGGER_PER_NODE_S * node_count, STAGGER_MAX_S)


class Scraper:
    """Fans one cycle out over the nodes.

    `jitter(bound)` returns a node's start delay in [0, bound); the default draws from a private
    `random.Random`. Tests pass a deterministic function. `wall_clock` stamps the
    last-request-time gauge (Unix seconds); durations use trio's clock.
    """

    def __init__(
        self,
        client: NodeClient,
        *,
        request_timeout: float,
        max_concurrency: int,
        metrics: SelfMetrics | None = None,
        jitter: Callable[[float], float] | None = None,
        wall_clock: Callable[[], float] = time.time,
    ) -> None:
        self._client = client
        self._request_timeout = request_timeout
        self._limiter = trio.CapacityLimiter(max_concurrency)
        self._metrics = metrics
        if jitter is None:
            rng = random.Random()
            jitter = lambda bound: rng.uniform(0.0, bound)  # noqa: E731
        self._jitter = jitter
        self._wall_clock = wall_clock

    async def scrape(
        self,
        nodes: Iterable[NodeInfo],
        deadline: float,
        on_batch: Callable[[NodeBatch], None] | None = None,
    ) -> ScrapeResult:
        """Scrape every node (the first of duplicate names) until done or until `deadline`
        (trio clock); nodes unfinished at the deadline fail with `KubeletTimeoutError`.

        `on_batch(batch)` is called once per node that answered, in the node's task as its
        batch arrives (never for a failed node, never after `scrape` returned), and must not
        block. If it raises, that node fails this cycle with an `InternalScrapeError` (logged with
        the traceback, like a parser bug) and is not in `batches`; the other nodes go on.
        """
        unique: dict[str, NodeInfo] = {}
        for node in nodes:
            unique.setdefault(node.name, node)
        gone = await self._client.retain(unique.keys())
        if self._metrics is not None:
            self._metrics.forget_nodes(gone)
        cycle = _Cycle(on_batch)
        if unique:
            bound = stagger_bound(len(unique))
            start = trio.current_time()
            # Sorting by start time; the index keeps equal times in node order.
            schedule = sorted(
                (start + self._jitter(bound), index, node) for index, node in enumerate(unique.values())
            )
            with trio.move_on_at(deadline):
                async with trio.open_nursery() as nursery:
                    for at, _, node in schedule:
                        await trio.sleep_until(at)
                        nursery.start_soon(self._scrape_node, node, cycle)
        for name in unique:
            if name in cycle.batches or name in cycle.failed:
                continue
            if name in cycle.requested:
                reason = "scrape cycle deadline passed before the kubelet answered"
            else:
                reason = "scrape cycle deadline passed before the request was sent"
                self._record(name, success=False, duration=None)
            cycle.failed[name] = KubeletTimeoutError(reason)
        for name, error in cycle.failed.items():
            self._log_failure(unique[name], error)
        return ScrapeResult(list(cycle.batches.values()), cycle.failed)

    async def _scrape_node(self, node: NodeInfo, cycle: _Cycle) -> None:
        async with self._limiter:
            cycle.requested.add(node.name)
            start = trio.current_time()
            success = False
            try:
                batch = await self._client.scrape(node)
                success = True
            except ScrapeError as exc:
                cycle.failed[node.name] = exc
                return
            except Exception as exc:
                # A parser bug must cost this node only, never the nursery and the other nodes.
                error = InternalScrapeError(f"internal error: {describe_cause(exc)}")
                error.__cause__ = exc
                cycle.failed[node.name] = error
                return
            finally:
                # Also runs when the cycle deadline cancels the request.
                self._record(node.name, success=success, duration=trio.current_time() - start)
        # No checkpoint since the batch arrived: the deadline cannot separate it from its delivery.
        if cycle.on_batch is not None:
            try:
                cycle.on_batch(batch)
            except Exception as exc:
                # The request succeeded; storing its batch failed (a bug): this node only.
                error = InternalScrapeError(f"internal error storing the batch: {describe_cause(exc)}")
                error.__cause__ = exc
                cycle.failed[node.name] = error
                return
        cycle.batches[node.name] = batch

    def _record(self, node: str, *, success: bool, duration: float | None) -> None:
        if self._metrics is not None:
            self._metrics.record_kubelet_request(
                node, success=success, duration_s=duration, now_unix_s=self._wall_clock()
            )

    def _log_failure(self, node: NodeInfo, error: ScrapeError) -> None:
        fields: dict[str, object] = {"node": node.name, "err": str(error)}
        if not node.ready:
            logger.debug("Failed to scrape node, node is not ready", extra=fields)
        elif isinstance(error, KubeletTimeoutError):
            fields["timeout"] = f"{self._request_timeout:g}s"
            logger.error("Failed to scrape node, timeout to access kubelet", extra=fields)
        else:
            internal = error.__cause__ if isinstance(error, InternalScrapeError) else None
            logger.error("Failed to scrape node", extra=fields, exc_info=internal)
