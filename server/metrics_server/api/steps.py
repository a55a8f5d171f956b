"""Work split into event-loop steps, so that one huge list does not hold the loop.

Loops yield after every ~`STEP_S` of work (`Pacer`), keeping the collector's young generation
near its threshold meanwhile (`YoungBound`); fragments are materialised so (`chunked`), pods are
sorted in runs of `SORT_RUN` merged lazily (`sorted_by_name`, `sorted_pods`), and a large body is
handed to the server as up to `BODY_MESSAGES` parts (`Pieces`). Dropped caches are freed by a
task of their own (`Sweeper`). Every checkpoint here is `priority.defer()`: while a single-object
get is in flight, these steps wait for it (bounded, see `metrics_server.priority`).
"""

from __future__ import annotations

import gc
import heapq
import time
from collections.abc import AsyncIterator, Callable, Iterable, Sequence
from itertools import islice
from operator import attrgetter
from typing import Any

import trio
from quart import Response, request
from quart.wrappers.response import ResponseBody

from metrics_server.api import render
from metrics_server.asgi import STREAMED_BODY
from metrics_server.kube.objects import PodInfo
from metrics_server.priority import defer

STEP_S = 0.001
"""Longest run of fragment encoding between checkpoints. A get takes several event-loop steps and
waits behind one step of a concurrent list at each, so list steps must be short, not just bounded
(measured at 5000 x 30: docs/performance.md, round 6)."""
BACKGROUND_STEP_S = 0.0005
"""`STEP_S` for work no request waits for (the list refresher's rebuilds while requests are served
the previous snapshot): each request's step waits behind at most this much of it; a checkpoint
costs ~10-20 us, so the work takes a few percent more CPU."""
CLOCK_EVERY = 8
"""Items between clock readings of a `Pacer` loop: a cold fragment can take ~100 us on a loaded
machine (the slow-step log at 5000 x 30 found steps of 3-4 ms of CPU with 32), a clock reading
~0.1 us."""
NAME = attrgetter("name")


YOUNG_ITEMS = 4000
"""Items a loop may make between young collections (`YoungBound`): a cold fragment is ~2 tracked
objects, so about the collector's gen0 threshold (10,000, `app._tune_gc`)."""


def _young_collections() -> int:
    """Collections so far of any generation (each one collects the young generation too)."""
    return sum(int(generation["collections"]) for generation in gc.get_stats())


class YoungBound:
    """Bounds the collector's young generation while a loop makes many objects (a cold list).

    CPython 3.11 counts the young generation down for every tracked object freed, whatever its
    generation, so while other tasks free old objects in bulk (the fragment cache's sweeper, the
    storage's reaping of a replaced snapshot) a list being encoded fills the young generation far
    past its threshold before a collection runs, and that collection then walks it all in one
    step: 50-160 ms at 5000 x 30 (bench slow-step log, docs/performance.md round 5). `step(n)` at
    each of the loop's checkpoints runs a young collection itself once the loop has made
    `YOUNG_ITEMS` items with none run meanwhile (~1-3 ms each: what the threshold would have
    cost), so no young collection walks more than about that."""

    __slots__ = ("_items", "_seen")

    def __init__(self) -> None:
        self._seen = _young_collections()
        self._items = 0

    def step(self, items: int) -> None:
        """`items` more were made since the last call."""
        seen = _young_collections()
        if seen != self._seen:
            self._seen, self._items = seen, items
            return
        self._items += items
        if self._items >= YOUNG_ITEMS:
            gc.collect(0)
            self._seen, self._items = _young_collections(), 0


class Pacer:
    """Yields to the event loop once ~`step_s` (`STEP_S`) of work has passed since the last yield.

    By time, not count: a cached fragment costs ~0.3 us, a cold encode 10-25 us (1000 cold encodes
    held the loop for 10-25 ms), a cached list's piece ~0.2 ms; and every step of a request waits
    behind one step of each other runnable task, so a loop should take few steps, each short.
    `pace(made)`, with a loop's running count of the objects it made, also keeps the young
    generation bounded at each yield (`YoungBound`)."""

    __slots__ = ("_made", "_step_s", "_until", "_young")

    def __init__(self, step_s: float = STEP_S) -> None:
        self._step_s = step_s
        self._until = time.perf_counter() + step_s
        self._young = YoungBound()
        self._made = 0

    async def pace(self, made: int = 0) -> None:
        if time.perf_counter() < self._until:
            return
        if made:
            self._young.step(made - self._made)
            self._made = made
        await defer()
        self._until = time.perf_counter() + self._step_s


async def chunked(fragments: Iterable[Any]) -> list[Any]:
    """Materialise fragments, yielding to the event loop every ~`STEP_S` (`Pacer`; the clock is
    read every `CLOCK_EVERY` fragments)."""
    out: list[Any] = []
    pacer = Pacer()
    for f in fragments:
        out.append(f)
        if len(out) % CLOCK_EVERY == 0:
            await pacer.pace(len(out))
    await defer()
    return out


SORT_RUN = 8 * render.CHUNK
"""Pods sorted in one step (~2-3 ms); a larger namespace is sorted in runs and merged lazily."""


async def sorted_by_name(pods: list[PodInfo]) -> Iterable[PodInfo]:
    """`pods` in name order, after at least one checkpoint. Up to `SORT_RUN` pods: sorted in place.
    More (one sort of 36,000 pods is ~10 ms): sorted runs with checkpoints between them, then a
    lazy merge that the caller consumes in chunks."""
    if len(pods) <= SORT_RUN:
        pods.sort(key=NAME)
        await defer()
        return pods
    runs: list[list[PodInfo]] = []
    for start in range(0, len(pods), SORT_RUN):
        run = pods[start : start + SORT_RUN]
        run.sort(key=NAME)
        runs.append(run)
        await defer()
    return heapq.merge(*runs, key=NAME)


async def sorted_pods(pods: Sequence[PodInfo]) -> list[PodInfo]:
    """`pods` in (namespace, name) order, sorted in steps (see `sorted_by_name`)."""
    by_namespace: dict[str, list[PodInfo]] = {}
    for start in range(0, len(pods), render.CHUNK):
        for info in pods[start : start + render.CHUNK]:
            group = by_namespace.get(info.namespace)
            if group is None:
                group = by_namespace[info.namespace] = []
            group.append(info)
        await defer()
    out: list[PodInfo] = []
    for ns in sorted(by_namespace):
        ordered = iter(await sorted_by_name(by_namespace[ns]))
        while True:
            before = len(out)
            out += islice(ordered, SORT_RUN)
            if len(out) - before < SORT_RUN:
                break
            await defer()
    return out


class Sweeper:
    """Empties a `render.FragmentCache`'s trash in a trio system task of its own, `step` items per
    event-loop step, so that no request pays for what an earlier one dropped (a list used to sweep
    the whole trash before serving: a warm list of one namespace paid ~150 ms of CPU for the
    generation the previous cold list had dropped). Pass `wake` as the cache's `on_trash`.

    The task starts when the trash stops being empty and ends when it is empty again; it is
    cancelled with the run (what it has not freed yet is then just garbage)."""

    def __init__(self, step: int) -> None:
        self.step = step
        self.running = False

    def wake(self, sweep: Callable[[int], bool]) -> None:
        """Start sweeping with `sweep` (`FragmentCache.sweep`) unless a sweep is running."""
        if not self.running:
            self.running = True
            trio.lowlevel.spawn_system_task(self._run, sweep, name="api-cache-sweeper")

    async def _run(self, sweep: Callable[[int], bool]) -> None:
        try:
            swept = 0
            while not sweep(self.step):
                swept += 1
                if swept % SWEEPS_PER_YOUNG_COLLECTION == 0:
                    gc.collect(0)
                await defer()
        finally:
            self.running = False


SWEEPS_PER_YOUNG_COLLECTION = 4
"""Sweeper steps between two young collections run by the sweeper itself: what it frees counts as
allocations less towards the young generation's threshold, so other tasks' new objects (a
worker's frames being stored) would pile up in the young generation past it while it runs, to be
walked in one long collection (the storage's freeing of dropped snapshots had the same effect:
`storage.store.YOUNG_EVERY`)."""


BODY_MESSAGES = 8
"""At most this many body messages per response when the server does not stream them (no
`asgi.STREAMED_BODY`). Quart's test client buffers 10 messages and reads them only once the app
returns (more would deadlock it); for 55 MB that is ~7 MB per message, each one join."""


STREAM_MESSAGE_BYTES = 512 * 1024
"""About this much per body message when the server streams them (`Pieces`): a 55 MB list is ~110
event-loop steps (each waits for every other runnable task's step), each join short enough that a
concurrent get waits little behind it (~0.2 ms)."""


def pieces_response(pieces: list[bytes], content_type: str) -> Response:
    """A 200 response of `pieces` (`Pieces`, streamed when the server streams bodies) with its
    Content-Length, for the current request."""
    streamed = request.scope.get(STREAMED_BODY) is True
    response = Response(Pieces(pieces, streamed=streamed), status=200, content_type=content_type)
    response.headers["Content-Length"] = str(sum(map(len, pieces)))
    return response


class Pieces(ResponseBody, AsyncIterator[bytes]):
    """A response body already in memory as pieces, sent one message per event-loop step: pieces
    joined into messages of about `STREAM_MESSAGE_BYTES` when the server streams them (`streamed`,
    `asgi.STREAMED_BODY`), else into up to `BODY_MESSAGES` messages.

    Joined into 8 messages, at 150,000 pods each step copied ~7 MB into fresh memory and held the
    loop for ~17 ms of CPU (bench slow-step log at 5000 x 30, docs/performance.md round 5); one
    message per piece (~0.3 MB, `render.CHUNK` objects) made ~150 steps, each waiting behind the
    other tasks' steps.

    An explicit iterator rather than an async generator: a body abandoned half-way (client gone)
    leaves no generator to finalise.
    """

    def __init__(self, pieces: list[bytes], *, streamed: bool = False) -> None:
        self.pieces = pieces
        if streamed:
            size = max(1, sum(map(len, pieces)) // max(1, len(pieces)))
            self.step = max(1, STREAM_MESSAGE_BYTES // size)  # pieces per message
        else:
            self.step = -(-len(pieces) // BODY_MESSAGES)
        self.next = 0

    async def __aenter__(self) -> Pieces:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    def __aiter__(self) -> Pieces:
        return self

    async def __anext__(self) -> bytes:
        if self.next >= len(self.pieces):
            raise StopAsyncIteration
        await defer()
        start = self.next
        self.next += self.step
        return b"".join(self.pieces[start : self.next])
