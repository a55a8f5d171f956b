"""Rebuilding the cached lists of a new snapshot before they are served (`ListRefresher`).

A JSON list without selectors is cached per snapshot (`api.listcache`); building it for a new
snapshot encodes every object again (~1 s of CPU for 150,000 pods). Clients that list repeatedly
(`kubectl top` in a watch loop, the VerticalPodAutoscaler's recommender, dashboards) ask for the
same lists snapshot after snapshot, so the lists requested during one snapshot are rebuilt for the
next as soon as it is first seen, in a task of its own.

Switch-over: while those lists are rebuilt, requests are still served from the previous snapshot
when the rebuild is large (the lists hold `hold_at` objects or more together, default
`HOLD_AT`), and from the new one as soon as the rebuild is done. A request then never waits for
a cold encoding of a large list, nor for the steps of one, and every request still sees one
snapshot from start to end; the cost is that a new cycle reaches large-list clients a rebuild's
time later (~1-2 s at 150,000 pods, against a 15 s resolution; each object's `timestamp` says
which sample it is). Small rebuilds (a test, a small cluster) switch at once. A snapshot is
never held back behind more than one newer one: a rebuild overtaken by a newer snapshot is
served as it is and the newer one is rebuilt. Since no request waits for a held rebuild, it runs
in steps of `steps.BACKGROUND_STEP_S` (`ResourceApi`), half a request's. Once a switch is done
(`on_switch`), the caches of older snapshots are dropped.

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

HOLD_AT = 10_000
"""Objects in the lists to rebuild from which requests stay on the previous snapshot meanwhile
(a cold encoding of 10,000 pods is ~70 ms of CPU)."""


class ListRefresher:
    """Per request: `serving(latest)` gives the snapshot to serve from, `latest` being the newest
    published; `want(key)` records a cached list asked for. When `latest` is new, the keys asked
    for since the previous new snapshot are rebuilt with `build(snapshot, key)` in a trio system
    task, one after the other; `sized(key, objects)` (from whoever builds a list) tells how large
    each is, which decides whether requests are held on the previous snapshot meanwhile (see the
    module notes).

    `build` must not raise for bad data (a failure is logged, the next key is tried: the request
    for it then builds it itself)."""

    def __init__(
        self,
        build: Callable[[object, ListKey], Awaitable[object]],
        *,
        hold_at: int | None = None,
        on_switch: Callable[[object, object], None] | None = None,
    ) -> None:
        """`hold_at`: `HOLD_AT` unless given. `on_switch(serving, latest)` is called whenever
        requests start being served another snapshot: nothing older than those two is served
        from then on (whoever caches per snapshot may drop the rest)."""
        self._build = build
        self.hold_at = HOLD_AT if hold_at is None else hold_at
        self._on_switch = on_switch
        self.latest: object | None = None
        """The newest snapshot seen."""
        self._serving: object | None = None
        self._wanted: dict[ListKey, None] = {}
        """Keys asked for since `latest` was first seen, in the order first asked."""
        self._sizes: dict[ListKey, int] = {}
        self._pending: list[ListKey] = []
        self.running = False
        self.built = 0
        """Lists rebuilt so far (for tests and logs)."""

    def serving(self, latest: object) -> object:
        """The snapshot a request is served from: `latest`, or the previous one while a large
        rebuild for `latest` runs."""
        if latest is not self.latest:
            self._new_snapshot(latest)
        return self._serving

    @property
    def holding(self) -> bool:
        """Whether requests are served a snapshot older than the newest meanwhile."""
        return self._serving is not self.latest

    def want(self, key: ListKey) -> None:
        self._wanted[key] = None

    def sized(self, key: ListKey, objects: int) -> None:
        """The list `key` was built with `objects` objects."""
        self._sizes[key] = objects

    def _new_snapshot(self, latest: object) -> None:
        overtaken = self.latest if self.running else None  # served as it is from now on
        self.latest = latest
        keys = list(self._wanted)
        self._wanted = {}
        self._sizes = {key: self._sizes[key] for key in keys if key in self._sizes}
        self._pending = keys
        if self._serving is None or sum(self._sizes.values()) < self.hold_at:
            self._serve(latest)
        elif overtaken is not None:
            self._serve(overtaken)
        if keys and not self.running:
            self.running = True
            trio.lowlevel.spawn_system_task(self._run, name="api-list-refresher")

    async def _run(self) -> None:
        try:
            while self._pending:
                key = self._pending.pop(0)
                try:
                    await self._build(self.latest, key)
                except Exception:
                    # A system task must not raise (it would end the run): the request for this
                    # list builds it itself, and says what went wrong.
                    log.exception("Rebuilding a cached list failed", extra={"list": key})
                    continue
                self.built += 1
        finally:
            self.running = False
            self._serve(self.latest)

    def _serve(self, snapshot: object) -> None:
        if snapshot is not self._serving:
            self._serving = snapshot
            if self._on_switch is not None:
                self._on_switch(snapshot, self.latest)
