"""Get, list and watch of one `ResourceStore`, from the request's parameters to the reply's bytes.

The apiserver's read semantics live here and in `store`, for the simulated apiserver and for the
tests' fake apiserver (tests/server/kube/kubefake.py) alike:
- selectors: `labelSelector`, and `fieldSelector` limited to the resource's field labels (others
  fail as the core API's field label conversion does: 400 `field label not supported: <field>`);
- lists: `limit` and `continue` over a consistent snapshot, `remainingItemCount` when unfiltered,
  a 410 Expired Status for a continue token whose snapshot is gone;
- watches: `{"type":...,"object":...}` lines; `resourceVersion` "" or "0" (or
  `sendInitialEvents=true`) starts with the current state as ADDED, a resourceVersion older
  than the kept history gets an ERROR event carrying a 410 Expired Status (the watch cache's
  behaviour), `allowWatchBookmarks=true` adds a BOOKMARK every `bookmark_interval_s`, and the
  stream ends cleanly after `timeoutSeconds` (default 1800).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import orjson
import trio

from k8s_metrics.fieldselectors import FieldSelector, parse_field_selector
from k8s_metrics.selectors import SelectorError, parse_label_selector

from . import tables
from .httpserver import Request, Response, Send
from .responses import JSON, TRUE_VALUES, json_response, raw_json, status, status_doc
from .store import ExpiredError, Filter, ResourceStore


def field_selector(text: str, known: Iterable[str]) -> FieldSelector:
    """`fieldSelector` of a core resource: fields outside `known` fail as the core API's field
    label conversion does (`field label not supported: <field>`). Raises `SelectorError`."""
    selector = parse_field_selector(text)
    for r in selector.requirements:
        if r.field not in known:
            raise SelectorError(f"field label not supported: {r.field}")
    return selector


def request_filter(request: Request, rs: ResourceStore, namespace: str) -> Filter:
    """The request's selectors within `namespace` ("" for all). Raises `SelectorError`."""
    labels = parse_label_selector(request.param("labelSelector"))
    fields = field_selector(request.param("fieldSelector"), rs.field_names)
    return Filter(namespace, labels, fields)


def get(rs: ResourceStore, resource: str, namespace: str, name: str) -> Response:
    """One object, or the 404 NotFound Status naming it."""
    obj = rs.get(namespace, name)
    if obj is None:
        return status(404, f'{resource} "{name}" not found', details={"name": name, "kind": resource})
    return raw_json(rs.full_json(obj.body))


def list_objects(request: Request, rs: ResourceStore, namespace: str, now_ns: int) -> Response:
    """A List (or a Table, when the Accept header asks for one) of one page."""
    try:
        flt = request_filter(request, rs, namespace)
        limit = int(request.param("limit") or 0)
        if limit < 0:
            raise ValueError("limit must be >= 0")
        page = rs.list(flt, limit, request.param("continue"))
    except SelectorError as exc:
        return status(400, str(exc))
    except ExpiredError as exc:
        return json_response(expired_status(exc), 410)
    except ValueError as exc:
        return status(400, str(exc))
    if tables.wants_table(request.header("accept")):
        body = tables.table(
            rs.kind.lower() + "s", [o.body for o in page.items], now_ns, str(page.rv), page.continue_token
        )
        return raw_json(body)
    meta = b'"resourceVersion":"%d"' % page.rv
    if page.continue_token:
        meta += b',"continue":"%s"' % page.continue_token.encode()
    if page.remaining is not None:
        meta += b',"remainingItemCount":%d' % page.remaining
    body = b"".join(
        [
            b'{"kind":"%sList","apiVersion":"%s","metadata":{' % (rs.kind.encode(), rs.api_version.encode()),
            meta,
            b'},"items":[',
            b",".join(o.body for o in page.items),
            b"]}",
        ]
    )
    return raw_json(body)


@dataclass(frozen=True, slots=True)
class WatchRequest:
    """A watch's parameters, checked."""

    filter: Filter
    since: int | None
    """The resourceVersion to resume after; None starts with the current state."""
    timeout_s: float
    initial: bool
    """`sendInitialEvents=true`: a BOOKMARK annotated `k8s.io/initial-events-end` follows the state."""
    bookmarks: bool


def watch_request(request: Request, rs: ResourceStore, namespace: str) -> WatchRequest | Response:
    """The watch's parameters, or the 400 Status that refuses them."""
    try:
        flt = request_filter(request, rs, namespace)
        rv_text = request.param("resourceVersion")
        timeout = float(request.param("timeoutSeconds") or 1800)
        since: int | None = None if rv_text in ("", "0") else int(rv_text)
    except SelectorError as exc:
        return status(400, str(exc))
    except ValueError as exc:
        return status(400, f"invalid watch parameter: {exc}")
    initial = request.param("sendInitialEvents").lower() in TRUE_VALUES
    bookmarks = request.param("allowWatchBookmarks").lower() in TRUE_VALUES
    return WatchRequest(flt, None if initial else since, timeout, initial, bookmarks)


def event_line(etype: str, obj_json: bytes) -> bytes:
    """One line of a watch stream."""
    return b'{"type":"%s","object":%s}\n' % (etype.encode(), obj_json)


def expired_status(exc: ExpiredError) -> dict[str, Any]:
    """The 410 Expired Status for a resourceVersion or continue token older than the history."""
    return status_doc(410, str(exc), "Expired")


def expired_line(exc: ExpiredError) -> bytes:
    """The ERROR event that ends a watch from a resourceVersion older than the history."""
    return event_line("ERROR", orjson.dumps(expired_status(exc)))


def bookmark_line(rs: ResourceStore, initial_end: bool = False) -> bytes:
    """A BOOKMARK at the store's current resourceVersion."""
    meta: dict[str, Any] = {"resourceVersion": str(rs.store_rv), "creationTimestamp": None}
    if initial_end:
        meta["annotations"] = {"k8s.io/initial-events-end": "true"}
    return event_line("BOOKMARK", rs.full_json(orjson.dumps({"metadata": meta})))


def watch(rs: ResourceStore, w: WatchRequest, bookmark_interval_s: float) -> Response:
    """The streamed reply to a watch (see the module docstring)."""
    try:
        watcher, events = rs.watch(w.filter, w.since)
    except ExpiredError as exc:
        error = expired_line(exc)

        async def expired(send: Send) -> None:
            await send(error)

        return Response(200, list(JSON), producer=expired)
    backlog = events.statistics().current_buffer_used

    async def produce(send: Send) -> None:
        pending_initial = backlog if w.initial else 0
        try:
            with trio.move_on_after(w.timeout_s):
                while True:
                    if w.initial and pending_initial == 0:
                        pending_initial = -1
                        await send(bookmark_line(rs, initial_end=True))
                    with trio.move_on_after(bookmark_interval_s if w.bookmarks else float("inf")) as wait:
                        try:
                            etype, obj = await events.receive()
                        except trio.EndOfChannel:
                            return  # dropped by the store (too slow)
                    if wait.cancelled_caught:
                        await send(bookmark_line(rs))
                        continue
                    await send(event_line(etype, rs.full_json(obj.body)))
                    pending_initial -= 1
        finally:
            rs.unwatch(watcher)

    return Response(200, list(JSON), producer=produce)
