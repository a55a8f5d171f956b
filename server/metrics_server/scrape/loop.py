"""The tick loop: scrape every node into a storage cycle, publish it, repeat every resolution.

The first tick starts at once, later ones every `resolution` seconds of trio's clock. Ticks
never overlap: a tick that overruns its slot delays the next one, which then starts as soon as
the late one finishes. Each tick's scrape starts no kubelet request after `cycle_timeout`
(default: resolution) from its start; requests in flight then may still finish within
--kubelet-request-timeout (see `scraper`), so a tick may run over by up to that much. An
exception inside a tick (storage, the node lister, a bug) is logged and counted and the loop goes
on; only cancellation stops it.

Storage work never holds the event loop for the whole cluster: a tick begins a storage cycle,
adds each node's batch as its scrape finishes (one node's worth of work per task step), then
publishes it in steps with a checkpoint between each (`Cycle.publish_steps`), passing the nodes
that failed and the wall clock at that moment. Readers see the previous cycle until the publish
step swaps the snapshot, once per tick; a tick that fails before then publishes nothing.

`collection_timely()` is metrics-server's `metric-collection-timely` liveness check: healthy
before the first tick and while the last tick started at most 1.5 x resolution ago.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable, Collection, Iterable, Iterator
from typing import Any, Protocol

import trio

from metrics_server.kube.objects import NodeInfo, NodeLister
from metrics_server.priority import defer
from metrics_server.scrape.batch import NodeBatch
from metrics_server.scrape.scraper import ScrapeResult
from metrics_server.selfmetrics import SelfMetrics

logger = logging.getLogger(__name__)

TIMELY_FACTOR = 1.5
TIMELY_FAILURE_MESSAGE = "metric collection didn't finish on time"


class StorageCycle(Protocol):
    """What the loop needs from `storage.store.Cycle`."""

    def add(self, batch: NodeBatch) -> object: ...

    def publish_steps(
        self, failed_nodes: Collection[str], *, now_ns: int | None = None
    ) -> Iterator[None]: ...


class Storage(Protocol):
    def begin(self, now_ns: int) -> StorageCycle: ...

    def points(self) -> tuple[int, int]:
        """(servable node points, servable container points)."""
        ...


class CycleScraper(Protocol):
    """`scrape.scraper.Scraper`, or anything that scrapes a cycle elsewhere (scrape workers) and
    hands each node's result to `on_batch` (what `ingest` makes of the storage cycle)."""

    async def scrape(
        self,
        nodes: Iterable[NodeInfo],
        deadline: float,
        on_batch: Callable[[Any], object] | None = None,
    ) -> ScrapeResult: ...


def _add_batches(cycle: StorageCycle) -> Callable[[NodeBatch], object]:
    return cycle.add


class ScrapeLoop:
    """Runs ticks until cancelled. Read-only state for health and tests:
    `last_tick_start` (trio time, None before the first tick), `last_tick_duration`, `ticks`
    (finished ticks), `failed_ticks` (ticks that raised), `first_tick_done` (an Event)."""

    def __init__(
        self,
        *,
        scraper: CycleScraper,
        nodes: NodeLister,
        storage: Storage,
        resolution: float,
        metrics: SelfMetrics | None = None,
        cycle_timeout: float | None = None,
        node_filter: Callable[[NodeInfo], bool] | None = None,
        time_ns: Callable[[], int] = time.time_ns,
        ingest: Callable[[Any], Callable[[Any], object]] | None = None,
        after_publish: Callable[[], Awaitable[object]] | None = None,
    ) -> None:
        """`ingest(storage_cycle)` is the `on_batch` given to the scraper for that cycle (default:
        its `add`, for `NodeBatch`es). `after_publish()` runs after each tick's publish (the
        wiring releases freed memory there, `metrics_server.memory`)."""
        if resolution <= 0:
            raise ValueError(f"resolution must be positive, got {resolution}")
        self.resolution = resolution
        self.cycle_timeout = resolution if cycle_timeout is None else cycle_timeout
        self._scraper = scraper
        self._nodes = nodes
        self._storage = storage
        self._metrics = metrics
        self._node_filter = node_filter
        self._time_ns = time_ns
        self._ingest = _add_batches if ingest is None else ingest
        self._after_publish = after_publish
        self.last_tick_start: float | None = None
        self.last_tick_duration: float | None = None
        self.ticks = 0
        self.failed_ticks = 0
        self.first_tick_done = trio.Event()

    def collection_timely(self, now: float | None = None) -> bool:
        """False once the last tick started more than 1.5 x resolution ago (trio clock)."""
        if self.last_tick_start is None:
            return True
        if now is None:
            now = trio.current_time()
        return now - self.last_tick_start <= TIMELY_FACTOR * self.resolution

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Tick forever. `task_status.started()` is called before the first tick."""
        task_status.started()
        next_start = trio.current_time()
        while True:
            await trio.sleep_until(next_start)
            start = trio.current_time()
            await self.tick(start)
            next_start = start + self.resolution
            now = trio.current_time()
            if now > next_start:
                logger.warning(
                    "Scrape tick overran the resolution; starting the next one now",
                    extra={"duration": f"{now - start:.3f}s", "resolution": f"{self.resolution:g}s"},
                )
                next_start = now

    async def tick(self, start: float | None = None) -> None:
        """One tick: list nodes, scrape (deadline start + cycle_timeout) into a storage cycle, publish
        it. Raises only Cancelled."""
        if start is None:
            start = trio.current_time()
        self.last_tick_start = start
        try:
            nodes = list(self._nodes.list())
            if self._node_filter is not None:
                nodes = [node for node in nodes if self._node_filter(node)]
            cycle = self._storage.begin(self._time_ns())
            deadline = start + self.cycle_timeout
            result = await self._scraper.scrape(nodes, deadline, on_batch=self._ingest(cycle))
            # Staleness of failed nodes' points is judged when the snapshot becomes visible.
            for _ in cycle.publish_steps(frozenset(result.failed), now_ns=self._time_ns()):
                await defer()
            if self._after_publish is not None:
                await self._after_publish()
            node_points, container_points = self._storage.points()
            if self._metrics is not None:
                self._metrics.set_storage_points(node_points, container_points)
        except Exception:
            self.failed_ticks += 1
            logger.exception("Scrape tick failed; the next tick runs as scheduled")
        finally:
            duration = trio.current_time() - start
            self.last_tick_duration = duration
            if self._metrics is not None:
                self._metrics.observe_tick_duration(duration)
        self.ticks += 1
        self.first_tick_done.set()
