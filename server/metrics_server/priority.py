"""Short requests ahead of bulk work in the serving process's one event loop.

Every step of a request waits for one step of each other runnable task; at 5000 x 30 a single get
took ~15 event-loop steps and, during HPA lists, all-pods lists and the storing of scrape results,
waited behind 10-25 ms of their steps (server-side get p99 ~19-25 ms, docs/performance.md round 9).
So while a single-object get is in flight (`urgent_gets`, around the app), bulk work (list
encoding and sending, sorting, storing worker results, rebuilding and sweeping caches) waits at its
checkpoints (`defer()`) until no such get is left, and the get's steps run alone.

Bounded: a busy period (from the first urgent request until none is left) holds bulk work back for
at most `MAX_DEFER_S` in all; once a deferral times out, bulk work runs normally until the busy
period ends, so steady gets cannot starve lists or scraping. An urgent task's own checkpoints never
defer (it would wait for itself).

State is per trio run (a `RunVar`), created on first use: nothing is shared between runs.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager

import trio

from metrics_server.asgi import ASGIApp, Receive, Scope, Send

MAX_DEFER_S = 0.025
"""Longest total hold of bulk work per busy period of urgent requests."""

URGENT_PATH = re.compile(r"^/apis/metrics\.k8s\.io/v1beta1/(?:namespaces/[^/]+/pods|nodes)/[^/]+/?$")
"""A single NodeMetrics or PodMetrics: what an HPA-like client or `kubectl top pod NAME` waits for."""


class Priority:
    """Who is urgent now, and the bulk work's wait for them (see the module docstring)."""

    __slots__ = ("_clear", "_deadline", "_expired", "_urgent")

    def __init__(self) -> None:
        self._urgent: set[trio.lowlevel.Task] = set()
        self._clear = trio.Event()
        self._clear.set()
        self._deadline = 0.0
        self._expired = False

    @property
    def busy(self) -> bool:
        """An urgent request is in flight."""
        return bool(self._urgent)

    @contextmanager
    def urgent(self) -> Iterator[None]:
        """The current task is urgent inside the block."""
        task = trio.lowlevel.current_task()
        if not self._urgent:
            self._clear = trio.Event()
            self._deadline = trio.current_time() + MAX_DEFER_S
            self._expired = False
        self._urgent.add(task)
        try:
            yield
        finally:
            self._urgent.discard(task)
            if not self._urgent:
                self._clear.set()

    async def defer(self) -> None:
        """A checkpoint of bulk work: first wait (bounded) while urgent requests are in flight."""
        if self._urgent and not self._expired and trio.lowlevel.current_task() not in self._urgent:
            with trio.move_on_at(self._deadline) as scope:
                await self._clear.wait()
            if scope.cancelled_caught:
                self._expired = True
            return
        await trio.lowlevel.checkpoint()


_CURRENT: trio.lowlevel.RunVar[Priority] = trio.lowlevel.RunVar("metrics_server.priority")


def current() -> Priority:
    """This trio run's `Priority`."""
    try:
        return _CURRENT.get()
    except LookupError:
        priority = Priority()
        _CURRENT.set(priority)
        return priority


async def defer() -> None:
    """`Priority.defer` of this run: the checkpoint bulk work uses instead of a plain one."""
    await current().defer()


def urgent_gets(app: ASGIApp) -> ASGIApp:
    """`app` with single-object metric gets urgent (`URGENT_PATH`) until their response is sent."""

    async def with_urgent_gets(scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") == "http" and scope.get("method") == "GET" and URGENT_PATH.match(scope["path"]):
            with current().urgent():
                await app(scope, receive, send)
        else:
            await app(scope, receive, send)

    return with_urgent_gets
