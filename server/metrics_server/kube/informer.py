"""A small generic informer: list (paginated), then watch from the list's resourceVersion, forever.

Contract:
- `run()` never returns and never raises on apiserver trouble. Every failure (connection refused,
  TLS, 4xx/5xx, a broken stream, malformed JSON) is logged, recorded in `last_error`, and retried
  after an exponential backoff with jitter (the random source is injectable; sleeping goes through
  trio, so a `MockClock` drives it in tests). Only cancellation ends it.
- `has_synced` turns True after the first complete list has been committed to the store, and
  stays True: on later failures the store keeps serving what it last knew, as client-go does.
- A list collects every page (`limit`/`continue`) into a fresh generation of the store and swaps
  it in at the end, so readers never see a half-listed cache.
- The watch resumes from the last resourceVersion seen (objects and BOOKMARK events advance it):
  a dropped stream or a server-side timeout re-watches from there without relisting. A 410 Gone
  (as the HTTP status or as an ERROR event), any other ERROR event, and 4xx answers to the watch
  request (other than 429) relist.
- A 403 on list logs which RBAC permission the server's service account lacks.
"""

from __future__ import annotations

import logging
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple, NoReturn, Protocol

import httpx
import orjson
import trio

from k8s_metrics.selectors import parse_label_selector
from metrics_server.flagset import KUBELET_CLIENT, STRING, flag
from metrics_server.kube.backoff import Backoff
from metrics_server.kube.errors import (
    ApiError,
    KubeError,
    KubeTransportError,
    OptionsError,
    describe_exception,
)
from metrics_server.kube.rest import request_json

logger = logging.getLogger(__name__)

_MALFORMED = (KeyError, TypeError, ValueError, AttributeError)


class Replacement(Protocol):
    """A fresh generation of a store being filled by a list; invisible until `commit()`."""

    def add(self, obj: Mapping[str, Any]) -> None: ...

    def commit(self) -> None: ...


class Store(Protocol):
    """Where an informer puts what it learns. Methods raise KeyError/TypeError/ValueError on a
    malformed object; the informer logs and skips that object."""

    def begin_replace(self) -> Replacement: ...

    def upsert(self, obj: Mapping[str, Any]) -> None: ...

    def delete(self, obj: Mapping[str, Any]) -> None: ...


class InformerEvent(NamedTuple):
    """What the informer just did, for self-metrics and tests.

    kind: "listed" (detail = object count), "list-failed", "watching", "event" (detail = the
    watch event type), "watch-ended" (detail = "closed", "dropped", "expired", "error", "failed").
    """

    kind: str
    resource_version: str
    detail: str


@dataclass(frozen=True, slots=True)
class InformerConfig:
    """Options shared by the node and pod informers."""

    node_selector: str = flag(
        "--node-selector",
        STRING,
        "",
        (
            "Selector (label query) to filter on, not including uninitialized ones, supports '=', '==', "
            "and '!='.(e.g. -l key1=value1,key2=value2)."
        ),
        group=KUBELET_CLIENT,
        shorthand="l",
    )
    """`--node-selector` (`-l`): label selector passed to the node list and watch."""
    page_size: int = 500
    min_watch_timeout: float = 300.0
    """Each watch asks for a `timeoutSeconds` drawn from [min, 2*min), like client-go."""
    list_timeout: float = 60.0
    """Read timeout of one list page."""
    backoff_initial: float = 0.8
    backoff_max: float = 30.0

    def validate(self) -> None:
        """Raise `OptionsError` naming the flag when a value is unusable."""
        try:
            parse_label_selector(self.node_selector)
        except ValueError as exc:
            raise OptionsError("--node-selector", str(exc)) from exc
        if self.page_size < 1:
            raise OptionsError("page_size", "must be positive")
        if self.min_watch_timeout < 1:
            raise OptionsError("min_watch_timeout", "must be at least 1 second")
        if self.list_timeout <= 0:
            raise OptionsError("list_timeout", "must be positive")
        if not 0 < self.backoff_initial <= self.backoff_max:
            raise OptionsError("backoff_initial", "must be positive and at most backoff_max")


@dataclass(frozen=True, slots=True)
class ResourceSpec:
    """Which collection an informer mirrors."""

    path: str
    """Collection path, e.g. `/api/v1/pods` or `/api/v1/namespaces/kube-system/configmaps`."""
    resource: str
    """Plural resource name, for messages ("pods")."""
    namespace: str = ""
    field_selector: str = ""
    label_selector: str = ""
    accept: str = "application/json"
    rbac_note: str = ""
    """Appended to the missing-permission message (e.g. the Role that grants it)."""

    def describe(self) -> str:
        return f'{self.resource} in the namespace "{self.namespace}"' if self.namespace else self.resource

    def missing_permission(self) -> str:
        where = f' in the namespace "{self.namespace}"' if self.namespace else ""
        note = f" ({self.rbac_note})" if self.rbac_note else ""
        return f'the server\'s service account needs "list" and "watch" on "{self.resource}"{where}{note}'


class _WatchResult(NamedTuple):
    resource_version: str
    events: int
    relist: bool
    error: KubeError | None


class Informer:
    """Mirrors one collection of the kube-apiserver into a `Store`. See the module docstring."""

    def __init__(
        self,
        client: httpx.AsyncClient,
        spec: ResourceSpec,
        store: Store,
        config: InformerConfig | None = None,
        *,
        rng: random.Random | None = None,
        observer: Callable[[InformerEvent], None] | None = None,
    ) -> None:
        self._client = client
        self._spec = spec
        self._store = store
        self._config = config or InformerConfig()
        self._rng = rng or random.Random()
        self._observer = observer
        self._synced = trio.Event()
        self._resource_version = ""
        self._last_error: str | None = None

    @property
    def has_synced(self) -> bool:
        """True once a complete list has reached the store (stays True afterwards)."""
        return self._synced.is_set()

    @property
    def resource_version(self) -> str:
        """The last resourceVersion applied (from a list, an object or a bookmark)."""
        return self._resource_version

    @property
    def last_error(self) -> str | None:
        """The latest failure, cleared by the next successful list or watch event."""
        return self._last_error

    @property
    def spec(self) -> ResourceSpec:
        return self._spec

    async def wait_synced(self) -> None:
        await self._synced.wait()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> NoReturn:
        """List and watch until cancelled. `task_status.started()` is called at once: use
        `has_synced`/`wait_synced()` to learn when the cache is complete."""
        cfg = self._config
        backoff = Backoff(cfg.backoff_initial, cfg.backoff_max, rng=self._rng)
        task_status.started()
        rv: str | None = None
        while True:
            if rv is None:
                try:
                    rv = await self._list()
                except KubeError as exc:
                    self._list_failed(exc)
                    await trio.sleep(backoff.next())
                    continue
            result = await self._watch(rv)
            if result.events:
                backoff.reset()
            rv = None if result.relist else result.resource_version
            if result.error is not None or result.events == 0:
                await trio.sleep(backoff.next())

    def _params(self) -> dict[str, str]:
        params: dict[str, str] = {}
        if self._spec.field_selector:
            params["fieldSelector"] = self._spec.field_selector
        if self._spec.label_selector:
            params["labelSelector"] = self._spec.label_selector
        return params

    def _observe(self, kind: str, rv: str, detail: str = "") -> None:
        if self._observer is not None:
            self._observer(InformerEvent(kind, rv, detail))

    async def _list(self) -> str:
        """One complete paginated list into a new store generation; returns its resourceVersion."""
        replacement = self._store.begin_replace()
        params = self._params()
        params["limit"] = str(self._config.page_size)
        count = 0
        rv = ""
        while True:
            page = await request_json(
                self._client,
                "GET",
                self._spec.path,
                params=params,
                request_timeout=self._config.list_timeout,
            )
            items = page.get("items") or []
            if not isinstance(items, list):
                raise KubeTransportError(f"list of {self._spec.describe()}: items is not a list")
            for obj in items:
                if self._apply(replacement.add, obj):
                    count += 1
            metadata = page.get("metadata") or {}
            rv = str(metadata.get("resourceVersion") or rv)
            token = metadata.get("continue")
            if not token:
                break
            params["continue"] = str(token)
        if not rv:
            raise KubeTransportError(f"list of {self._spec.describe()} carried no resourceVersion")
        replacement.commit()
        self._resource_version = rv
        self._last_error = None
        if not self._synced.is_set():
            logger.info(
                "cache of %s synced: %d objects at resourceVersion %s", self._spec.describe(), count, rv
            )
        self._synced.set()
        self._observe("listed", rv, str(count))
        return rv

    def _list_failed(self, exc: KubeError) -> None:
        what = f"cannot list {self._spec.describe()}"
        if isinstance(exc, ApiError) and exc.code == 403:
            message = f"{what}: forbidden: {exc.message}; {self._spec.missing_permission()}"
        elif isinstance(exc, ApiError) and exc.code == 401:
            message = f"{what}: unauthorized: {exc.message}; check the server's credentials"
        else:
            message = f"{what}: {exc}"
        self._last_error = message
        logger.error("%s (will retry)", message)
        self._observe("list-failed", self._resource_version, message)

    def _apply(self, op: Callable[[Mapping[str, Any]], None], obj: Any) -> bool:
        try:
            if not isinstance(obj, dict):
                raise TypeError("not an object")
            op(obj)
        except _MALFORMED as exc:
            logger.warning(
                "skipping malformed object in %s: %s", self._spec.describe(), describe_exception(exc)
            )
            return False
        return True

    async def _watch(self, rv: str) -> _WatchResult:
        cfg = self._config
        timeout_seconds = int(cfg.min_watch_timeout * (1.0 + self._rng.random()))
        params = self._params()
        params.update(
            watch="true",
            resourceVersion=rv,
            allowWatchBookmarks="true",
            timeoutSeconds=str(timeout_seconds),
        )
        # The server ends the watch at timeoutSeconds; the read timeout only catches a silent peer.
        timeout = httpx.Timeout(cfg.list_timeout, read=timeout_seconds + 60.0)
        events = 0
        what = self._spec.describe()
        try:
            async with self._client.stream(
                "GET", self._spec.path, params=params, headers={"Accept": self._spec.accept}, timeout=timeout
            ) as response:
                if response.status_code != 200:
                    err = ApiError.from_body(response.status_code, await response.aread())
                    relist = err.is_gone or (400 <= err.code < 500 and err.code != 429)
                    return self._watch_ended(rv, 0, relist, err, "expired" if err.is_gone else "failed")
                self._observe("watching", rv)
                ended: _WatchResult | None = None
                # Early exits cancel this scope instead of leaving the loop: the Cancelled then
                # rises from the socket read through httpx's generator chain and finishes it,
                # where a `return` would abandon half-run async generators to the GC.
                with trio.CancelScope() as reading:
                    async for line in response.aiter_lines():
                        if ended is not None or not line.strip():
                            continue
                        try:
                            event = orjson.loads(line)
                            etype = event["type"]
                            obj = event["object"]
                        except (orjson.JSONDecodeError, KeyError, TypeError) as exc:
                            err2 = KubeTransportError(f"malformed watch event for {what}: {exc}")
                            ended = self._watch_ended(rv, events, False, err2, "dropped")
                            reading.cancel()
                            continue
                        if etype == "ERROR":
                            err = ApiError.from_status(obj)
                            how = "expired" if err.is_gone else "error"
                            ended = self._watch_ended(rv, events, True, err, how)
                            reading.cancel()
                            continue
                        events += 1
                        rv = self._apply_event(etype, obj) or rv
                        self._resource_version = rv
                        self._last_error = None
                        self._observe("event", rv, etype)
                if ended is not None:
                    return ended
        except httpx.HTTPError as exc:
            err3 = KubeTransportError(describe_exception(exc))
            return self._watch_ended(rv, events, False, err3, "dropped" if events else "failed")
        return self._watch_ended(rv, events, False, None, "closed")

    def _apply_event(self, etype: str, obj: Any) -> str | None:
        """Apply one non-ERROR watch event; return the resourceVersion it carries."""
        if not isinstance(obj, dict):
            return None
        meta = obj.get("metadata")
        new_rv = meta.get("resourceVersion") if isinstance(meta, dict) else None
        if etype in ("ADDED", "MODIFIED"):
            self._apply(self._store.upsert, obj)
        elif etype == "DELETED":
            self._apply(self._store.delete, obj)
        elif etype != "BOOKMARK":
            logger.warning("ignoring watch event of unknown type %r for %s", etype, self._spec.describe())
        return str(new_rv) if new_rv else None

    def _watch_ended(
        self, rv: str, events: int, relist: bool, error: KubeError | None, how: str
    ) -> _WatchResult:
        what = self._spec.describe()
        if error is None:
            logger.debug("watch of %s closed at resourceVersion %s", what, rv)
        elif isinstance(error, ApiError) and error.is_gone:
            logger.info("watch of %s expired at resourceVersion %s (%s); relisting", what, rv, error.message)
        else:
            action = "relisting" if relist else f"resuming from resourceVersion {rv}"
            if isinstance(error, ApiError) and error.code == 403:
                message = (
                    f"cannot watch {what}: forbidden: {error.message}; " + self._spec.missing_permission()
                )
            else:
                message = f"watch of {what} {'failed' if how == 'failed' else 'ended'}: {error}"
            self._last_error = message
            logger.warning("%s; %s", message, action)
        self._observe("watch-ended", rv, how)
        return _WatchResult(rv, events, relist, error)
