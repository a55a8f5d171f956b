"""The apiserver's object store: versioned objects, list snapshots, and watch fan-out.

One global resourceVersion counter (like an etcd revision) is shared by all resources. Every
write renders the object's JSON once, with its new resourceVersion in it; lists and watches
only concatenate those bytes. Watchers are filtered at dispatch time with the watch cache's
rules: an object that stops matching a watcher's selector is sent as DELETED carrying its
previous content and the new resourceVersion.

Limits (both counted in events, per resource): `history` events are kept for watches that
resume from a resourceVersion; older resourceVersions get 410 Expired. A watcher whose
`watcher_buffer` fills up (it is not reading) is closed, as kube-apiserver does.
"""

from __future__ import annotations

import base64
import bisect
from collections import OrderedDict, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple, Protocol

import orjson
import trio

from k8s_metrics.fieldselectors import EVERY_FIELD, FieldSelector
from k8s_metrics.selectors import EVERYTHING, LabelSelector

Key = tuple[str, str]
"""(namespace, name); namespace is "" for cluster-scoped objects."""


class Obj(NamedTuple):
    """One stored version of an object. `body` is its JSON without kind/apiVersion (list form)."""

    namespace: str
    name: str
    rv: int
    labels: Mapping[str, str]
    fields: Mapping[str, str]
    body: bytes


class Event(NamedTuple):
    type: str
    obj: Obj
    prev: Obj | None
    rv: int


class ExpiredError(Exception):
    """A resourceVersion or continue token older than the retained history (HTTP 410, reason Expired)."""


def restamp(body: bytes, old_rv: int, new_rv: int) -> bytes:
    """The same object JSON with another metadata.resourceVersion."""
    return body.replace(b'"resourceVersion":"%d"' % old_rv, b'"resourceVersion":"%d"' % new_rv, 1)


@dataclass(slots=True)
class Filter:
    namespace: str = ""
    labels: LabelSelector = EVERYTHING
    fields: FieldSelector = EVERY_FIELD

    def matches(self, obj: Obj) -> bool:
        if self.namespace and obj.namespace != self.namespace:
            return False
        return self.labels.matches(obj.labels) and self.fields.matches(lambda name: obj.fields.get(name, ""))


class Sink(Protocol):
    """Where a watcher's events go: a trio memory channel, or anything with its two methods
    (`send_nowait` may raise `trio.WouldBlock`: the watcher is then closed as too slow)."""

    def send_nowait(self, value: tuple[str, Obj], /) -> None: ...

    def close(self) -> None: ...


@dataclass(slots=True, eq=False)
class Watcher:
    filter: Filter
    send: Sink
    closed: bool = False


@dataclass(slots=True)
class ListPage:
    rv: int
    items: list[Obj]
    continue_token: str
    remaining: int | None


class ResourceStore:
    """All objects of one resource type (pods, nodes, ...)."""

    def __init__(
        self,
        store: Store,
        *,
        kind: str,
        api_version: str,
        namespaced: bool,
        field_names: frozenset[str],
        history: int,
        watcher_buffer: int,
    ) -> None:
        self._store = store
        self.kind = kind
        self.api_version = api_version
        self.namespaced = namespaced
        self.field_names = field_names
        self._objects: dict[Key, Obj] = {}
        self._history: deque[Event] = deque()
        self._history_max = history
        self.floor_rv = store.rv
        """Every event with rv > floor_rv is still in the history."""
        self._watchers: set[Watcher] = set()
        self._watcher_buffer = watcher_buffer
        self._snapshots: OrderedDict[int, tuple[list[str], list[Obj]]] = OrderedDict()
        self._head = b'{"kind":"%s","apiVersion":"%s",' % (kind.encode(), api_version.encode())

    def __len__(self) -> int:
        return len(self._objects)

    @property
    def store_rv(self) -> int:
        """The shared resourceVersion counter's current value."""
        return self._store.rv

    def get(self, namespace: str, name: str) -> Obj | None:
        return self._objects.get((namespace, name))

    def objects(self) -> Iterable[Obj]:
        return self._objects.values()

    def full_json(self, body: bytes) -> bytes:
        """Object JSON with kind and apiVersion in front, as get and watch send it."""
        return self._head + body[1:]

    def put(
        self,
        namespace: str,
        name: str,
        labels: Mapping[str, str],
        fields: Mapping[str, str],
        render: Callable[[int], bytes],
    ) -> Obj:
        """Create or replace an object; `render(rv)` returns its list-form JSON carrying that rv."""
        rv = self._store.next_rv()
        obj = Obj(namespace, name, rv, labels, fields, render(rv))
        prev = self._objects.get((namespace, name))
        self._objects[(namespace, name)] = obj
        self._record(Event("MODIFIED" if prev else "ADDED", obj, prev, rv))
        return obj

    def delete(self, namespace: str, name: str) -> Obj | None:
        prev = self._objects.pop((namespace, name), None)
        if prev is None:
            return None
        rv = self._store.next_rv()
        gone = prev._replace(rv=rv, body=restamp(prev.body, prev.rv, rv))
        self._record(Event("DELETED", gone, prev, rv))
        return gone

    def compact(self) -> None:
        """Forget all history, as an etcd compaction would: older resourceVersions get 410."""
        self._history.clear()
        self.floor_rv = self._store.rv
        self._snapshots.clear()

    def _record(self, event: Event) -> None:
        self._history.append(event)
        while len(self._history) > self._history_max:
            self.floor_rv = self._history.popleft().rv
        for w in list(self._watchers):
            out = convert(event, w.filter)
            if out is None:
                continue
            try:
                w.send.send_nowait(out)
            except trio.WouldBlock:  # a watcher that does not read is dropped, like a slow apiserver watcher
                self._close_watcher(w)

    # --- lists -------------------------------------------------------------------------

    def _snapshot(self, rv: int) -> tuple[list[str], list[Obj]]:
        snap = self._snapshots.get(rv)
        if snap is None:
            # Sorted like etcd keys (".../<namespace>/<name>"): one namespace is a contiguous run.
            objs = sorted(self._objects.values(), key=lambda o: f"{o.namespace}/{o.name}")
            snap = ([f"{o.namespace}/{o.name}" for o in objs], objs)
            self._snapshots[rv] = snap
            while len(self._snapshots) > 4:
                self._snapshots.popitem(last=False)
        return snap

    def list(self, flt: Filter, limit: int = 0, continue_token: str = "") -> ListPage:
        """A consistent page: continue tokens refer to the snapshot taken by the first page."""
        if continue_token:
            rv, start = _decode_continue(continue_token)
            snap = self._snapshots.get(rv)
            if snap is None:
                raise ExpiredError(
                    "The provided continue parameter is too old to display a consistent list result. "
                    "You can start a new list without the continue parameter."
                )
        else:
            rv, start = self._store.rv, ""
            snap = self._snapshot(rv)
        keys, objs = snap
        i = bisect.bisect_left(keys, start) if start else 0
        if flt.namespace:
            i = max(i, bisect.bisect_left(keys, flt.namespace + "/"))
        items: list[Obj] = []
        while i < len(objs):
            obj = objs[i]
            if flt.namespace and obj.namespace != flt.namespace:
                break
            i += 1
            if flt.matches(obj):
                items.append(obj)
                if limit and len(items) >= limit:
                    break
        more = i < len(objs) and not (flt.namespace and objs[i].namespace != flt.namespace)
        token = _encode_continue(rv, keys[i - 1] + "\x00") if limit and more and items else ""
        remaining = None
        if token and not flt.labels.requirements and not flt.fields.requirements and not flt.namespace:
            remaining = len(objs) - i
        return ListPage(rv, items, token, remaining)

    # --- watches -----------------------------------------------------------------------

    def replay(self, flt: Filter, since_rv: int | None) -> Sequence[tuple[str, Obj]]:
        """The events a new watch starts with: those after `since_rv`, or the current state as
        ADDED when None. Raises ExpiredError when `since_rv` is older than the history.
        """
        if since_rv is None:
            return [("ADDED", o) for o in self._snapshot(self._store.rv)[1] if flt.matches(o)]
        if since_rv < self.floor_rv:
            raise ExpiredError(f"too old resource version: {since_rv} ({self.floor_rv})")
        later = (convert(event, flt) for event in self._history if event.rv > since_rv)
        return [out for out in later if out is not None]

    def subscribe(self, flt: Filter, sink: Sink) -> Watcher:
        """Send every later change that `flt` sees (as `convert` gives it) to `sink`."""
        watcher = Watcher(flt, sink)
        self._watchers.add(watcher)
        return watcher

    def watch(
        self, flt: Filter, since_rv: int | None
    ) -> tuple[Watcher, trio.MemoryReceiveChannel[tuple[str, Obj]]]:
        """`replay` then `subscribe` through a channel of `watcher_buffer` events (more when the
        replay alone needs more). Raises ExpiredError as `replay` does.
        """
        backlog = self.replay(flt, since_rv)
        size = self._watcher_buffer
        if len(backlog) >= size:
            size += len(backlog)
        send, receive = trio.open_memory_channel[tuple[str, Obj]](size)
        for item in backlog:
            send.send_nowait(item)
        return self.subscribe(flt, send), receive

    def unwatch(self, watcher: Watcher) -> None:
        self._close_watcher(watcher)

    def _close_watcher(self, watcher: Watcher) -> None:
        self._watchers.discard(watcher)
        if not watcher.closed:
            watcher.closed = True
            watcher.send.close()

    @property
    def watcher_count(self) -> int:
        return len(self._watchers)


def convert(event: Event, flt: Filter) -> tuple[str, Obj] | None:
    """The watch cache's per-watcher view of an event (cacheWatcher.convertToWatchEvent)."""
    cur = event.type != "DELETED" and flt.matches(event.obj)
    old = event.prev is not None and flt.matches(event.prev)
    if cur and not old:
        return ("ADDED", event.obj)
    if cur and old:
        return ("MODIFIED", event.obj)
    if old and event.prev is not None:
        if event.type == "DELETED":
            return ("DELETED", event.obj)
        return (
            "DELETED",
            event.prev._replace(rv=event.rv, body=restamp(event.prev.body, event.prev.rv, event.rv)),
        )
    return None


def _encode_continue(rv: int, start: str) -> str:
    raw = orjson.dumps({"v": "meta.k8s.io/v1", "rv": rv, "start": start})
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode_continue(token: str) -> tuple[int, str]:
    try:
        doc = orjson.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        return int(doc["rv"]), str(doc["start"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"continue key is not valid: {exc}") from exc


class Store:
    """The shared resourceVersion counter and the per-resource stores."""

    def __init__(self, *, history: int = 10_000, watcher_buffer: int = 1_000) -> None:
        self.rv = 1
        self._history = history
        self._watcher_buffer = watcher_buffer
        self.resources: dict[str, ResourceStore] = {}

    def next_rv(self) -> int:
        self.rv += 1
        return self.rv

    def add_resource(
        self, name: str, *, kind: str, api_version: str, namespaced: bool, field_names: Iterable[str]
    ) -> ResourceStore:
        rs = ResourceStore(
            self,
            kind=kind,
            api_version=api_version,
            namespaced=namespaced,
            field_names=frozenset(field_names),
            history=self._history,
            watcher_buffer=self._watcher_buffer,
        )
        self.resources[name] = rs
        return rs

    def compact(self) -> None:
        for rs in self.resources.values():
            rs.compact()
