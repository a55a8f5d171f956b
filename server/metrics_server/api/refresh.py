"""Rebuilding the cached lists of a new snapshot before they are asked for (`ListRefresher`).

A JSON list without selectors is cached per snapshot (`api.listcache`); the first request for it
after a new snapshot pays for encoding every object again (~1 s of CPU for 150,000 pods), and
requests arriving meanwhile wait behind its steps. Clients that list repeatedly (`kubectl top`
in a watch loop, the VerticalPodAutoscaler's recommender, dashboards) ask for the same lists
snapshot after snapshot, so the lists requested during one snapshot are rebuilt for the next as
soon as it is first seen, in a task of its own: the request then finds its list warm, and
selector lists (the HPA's) find the fragments encoded.

Only what was asked for during the previous snapshot is rebuilt, so a list nobody asks for any
more costs nothing after one snapshot, and the API still learns of a new snapshot only through
the `snapshot()` it reads per request (it knows nothing about scraping).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

import trio

log = logging.getLogger(__name__)

ListKey = tuple[str, str | None]
"""(resource, namespace or None), as `ResourceApi.lists` keys its cached lists."""


class ListRefresher:
    """`seen(snapshot, key)` from every request (`key` when it asks for a cached list, else None);
    when `snapshot` is new, the keys asked for during the previous one are rebuilt with
    `build(snapshot, key)` in a trio system task, one after the other, newest snapshot first.

    `build` must not raise for bad data (a failure is logged, the next key is tried: the request
    for it then builds it itself). A refresh still running when another snapshot is seen goes on
    with the new snapshot's keys."""

    def __init__(self, build: Callable[[object, ListKey], Awaitable[object]]) -> None:
        self._build = build
        self._snapshot: object | None = None
        self._wanted: dict[ListKey, None] = {}
        """Keys asked for during `_snapshot`, in the order first asked."""
        self._pending: list[ListKey] = []
        self.running = False
        self.built = 0
        """Lists rebuilt so far (for tests and logs)."""

    def seen(self, snapshot: object, key: ListKey | None) -> None:
        if snapshot is not self._snapshot:
            previous = self._wanted
            self._snapshot, self._wanted = snapshot, {}
            self._pending = list(previous)
            if self._pending and not self.running:
                self.running = True
                trio.lowlevel.spawn_system_task(self._run, name="api-list-refresher")
        if key is not None:
            self._wanted[key] = None

    async def _run(self) -> None:
        try:
            while self._pending:
                key = self._pending.pop(0)
                try:
                    await self._build(self._snapshot, key)
                except Exception:
                    # A system task must not raise (it would end the run): the request for this
                    # list builds it itself, and says what went wrong.
                    log.exception("Rebuilding a cached list failed", extra={"list": key})
                    continue
                self.built += 1
        finally:
            self.running = False
