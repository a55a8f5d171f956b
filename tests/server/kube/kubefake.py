"""A fake kube-apiserver for tests: raw trio + h11 over real TLS (trustme) on 127.0.0.x.

What it serves:
- collections `/api/v1/nodes`, `/api/v1/pods`, `/api/v1/namespaces/<ns>/configmaps` with
  list (limit/continue, labelSelector/fieldSelector, `metadata.resourceVersion`) and chunked
  watch (`?watch=true`): history after the requested resourceVersion is replayed, later changes
  are pushed as they happen, with the apiserver's selector semantics (an object leaving the
  selector is sent as DELETED with its previous content and the new resourceVersion);
- single-object GET of configmaps;
- POST tokenreviews / subjectaccessreviews, answered by a test-supplied handler and counted.

How a test drives it:
- `coll.put(obj)` / `coll.remove(name)` change objects (bumping the resourceVersion) and
  notify open watches; `coll.compact()` makes older resourceVersions answer 410;
- `await coll.next_watch()` returns the `WatchHandle` of the next watch request, whose methods
  push one event (`event`, `bookmark`, `error`) or end the stream (`drop` = connection cut
  mid-stream, `close` = clean end);
- `coll.fail_lists` / `coll.fail_watches` are queues of (status, Status-body) answers consumed by
  the next requests; `server.requests` records every request.
- `server.start_listening()` is separate from binding: until it is called, connections to the
  (already known) address are refused, as with an apiserver that is down.
"""

from __future__ import annotations

import base64
import copy
import math
import ssl
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import h11
import orjson
import trio
import trustme

from k8s_metrics.fieldselectors import parse_field_selector
from k8s_metrics.selectors import parse_label_selector

HOST = "127.0.0.47"

Obj = dict[str, Any]


def status_body(code: int, reason: str, message: str) -> Obj:
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "code": code,
    }


def _field(obj: Obj, path: str) -> Any:
    cur: Any = obj
    for part in path.split("."):
        if not isinstance(cur, dict):
            return None
        cur = cur.get(part)
    return cur


def matches(obj: Obj, params: dict[str, str]) -> bool:
    """The apiserver's label and field selector semantics, parsed by the client's selector modules."""
    fields = parse_field_selector(params.get("fieldSelector", ""))
    if not fields.matches(lambda path: str(_field(obj, path) or "")):
        return False
    labels = (obj.get("metadata") or {}).get("labels") or {}
    return parse_label_selector(params.get("labelSelector", "")).matches(labels)


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes


@dataclass
class _Change:
    rv: int
    type: str
    obj: Obj
    prev: Obj | None


_DROP = object()
_CLOSE = object()


class WatchHandle:
    """One open watch stream, as seen by the fake server."""

    def __init__(self, params: dict[str, str]) -> None:
        self.params = params
        self._send, self._receive = trio.open_memory_channel[Any](math.inf)
        self.sent: list[tuple[str, Obj]] = []
        self.closed = False

    @property
    def resource_version(self) -> str:
        return self.params.get("resourceVersion", "")

    def _push(self, etype: str, obj: Obj) -> None:
        self.sent.append((etype, obj))
        self._send.send_nowait(orjson.dumps({"type": etype, "object": obj}) + b"\n")

    def event(self, etype: str, obj: Obj) -> None:
        self._push(etype, obj)

    def bookmark(self, rv: int | str, kind: str = "Pod") -> None:
        self._push(
            "BOOKMARK",
            {"kind": kind, "apiVersion": "v1", "metadata": {"resourceVersion": str(rv)}},
        )

    def error(self, code: int, reason: str, message: str) -> None:
        self._push("ERROR", status_body(code, reason, message))

    def drop(self) -> None:
        """Cut the connection mid-stream (no terminating chunk)."""
        self._send.send_nowait(_DROP)

    def close(self) -> None:
        """End the stream cleanly, as the server does at timeoutSeconds."""
        self._send.send_nowait(_CLOSE)


class FakeCollection:
    def __init__(self, server: FakeApiServer, kind: str, namespaced: bool) -> None:
        self.server = server
        self.kind = kind
        self.namespaced = namespaced
        self.objects: dict[tuple[str, str], Obj] = {}
        self.history: list[_Change] = []
        self.compacted_rv = 0
        self.watches: list[WatchHandle] = []
        self._watch_send, self._watch_receive = trio.open_memory_channel[WatchHandle](math.inf)
        self.fail_lists: list[tuple[int, Obj]] = []
        self.fail_watches: list[tuple[int, Obj]] = []
        self.expired_as_event = True
        """Watch from a compacted resourceVersion: 200 + ERROR event (True, like the watch cache)
        or a plain 410 response (False)."""
        self.list_count = 0

    @staticmethod
    def _key(obj: Obj) -> tuple[str, str]:
        meta = obj["metadata"]
        return meta.get("namespace", ""), meta["name"]

    def put(self, obj: Obj) -> int:
        """Create or replace an object; returns its new resourceVersion."""
        obj = copy.deepcopy(obj)
        rv = self.server.next_rv()
        obj["metadata"]["resourceVersion"] = str(rv)
        key = self._key(obj)
        prev = self.objects.get(key)
        self.objects[key] = obj
        self._record(_Change(rv, "MODIFIED" if prev else "ADDED", obj, prev))
        return rv

    def remove(self, name: str, namespace: str = "") -> int:
        prev = self.objects.pop((namespace, name))
        rv = self.server.next_rv()
        gone = copy.deepcopy(prev)
        gone["metadata"]["resourceVersion"] = str(rv)
        self._record(_Change(rv, "DELETED", gone, prev))
        return rv

    def compact(self) -> None:
        """Forget history: watches from any resourceVersion seen so far get 410 Gone."""
        self.compacted_rv = self.server.rv
        self.history.clear()

    def _record(self, change: _Change) -> None:
        self.history.append(change)
        for watch in list(self.watches):
            event = self._convert(change, watch.params)
            if event is not None:
                watch.event(*event)

    def _convert(self, change: _Change, params: dict[str, str]) -> tuple[str, Obj] | None:
        ns = params.get("_namespace", "")
        if ns and change.obj["metadata"].get("namespace") != ns:
            return None
        now = change.type != "DELETED" and matches(change.obj, params)
        before = change.prev is not None and matches(change.prev, params)
        if change.type == "DELETED":
            return ("DELETED", change.obj) if before else None
        if now and before:
            return "MODIFIED", change.obj
        if now:
            return "ADDED", change.obj
        if before:
            assert change.prev is not None
            gone = copy.deepcopy(change.prev)
            gone["metadata"]["resourceVersion"] = str(change.rv)
            return "DELETED", gone
        return None

    async def next_watch(self) -> WatchHandle:
        return await self._watch_receive.receive()

    def list_items(self, params: dict[str, str]) -> list[Obj]:
        ns = params.get("_namespace", "")
        items = [o for k, o in sorted(self.objects.items()) if (not ns or k[0] == ns) and matches(o, params)]
        return items


class ReviewEndpoint:
    """A TokenReview or SubjectAccessReview endpoint answered by `handler(request_body)`."""

    def __init__(self, handler: Callable[[Obj], tuple[int, Obj]]) -> None:
        self.handler = handler
        self.calls: list[Obj] = []
        self.raw_bodies: list[bytes] = []
        self.gate: trio.Event | None = None
        """When set, answers wait for this event (to hold lookups in flight)."""
        self.arrived = trio.Event()
        """Set when a request arrives (replace it to wait for the next one)."""


class FakeApiServer:
    def __init__(self, ca: trustme.CA, host: str = HOST, cert_names: tuple[str, ...] = ()) -> None:
        self.host = host
        self.ca = ca
        cert = ca.issue_cert(*(cert_names or (host,)))
        self._ssl = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(self._ssl)
        self.rv = 100
        self.nodes = FakeCollection(self, "Node", namespaced=False)
        self.pods = FakeCollection(self, "Pod", namespaced=True)
        self.configmaps = FakeCollection(self, "ConfigMap", namespaced=True)
        self.token_reviews = ReviewEndpoint(
            lambda body: (500, status_body(500, "InternalError", "no handler"))
        )
        self.access_reviews = ReviewEndpoint(
            lambda body: (500, status_body(500, "InternalError", "no handler"))
        )
        self.requests: list[Recorded] = []
        self.required_token: str | None = None
        self._sock = trio.socket.socket()
        self.port = 0
        self._nursery: trio.Nursery | None = None

    @property
    def url(self) -> str:
        return f"https://{self.host}:{self.port}"

    def next_rv(self) -> int:
        self.rv += 1
        return self.rv

    def client_ssl_context(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context()
        self.ca.configure_trust(ctx)
        return ctx

    async def bind(self) -> None:
        await self._sock.bind((self.host, 0))
        self.port = self._sock.getsockname()[1]

    def close(self) -> None:
        self._sock.close()

    def start_listening(self, nursery: trio.Nursery) -> None:
        self._sock.listen(64)
        listener = trio.SocketListener(self._sock)
        nursery.start_soon(trio.serve_listeners, self._handle_conn, [listener])

    # --- HTTP plumbing -------------------------------------------------------------------------

    async def _handle_conn(self, tcp: trio.SocketStream) -> None:
        stream = trio.SSLStream(tcp, self._ssl, server_side=True)
        conn = h11.Connection(h11.SERVER)
        try:
            while True:
                request, body = await self._read_request(stream, conn)
                if request is None:
                    return
                keep = await self._dispatch(stream, conn, request, body)
                if not keep or conn.our_state is not h11.DONE:
                    return
                conn.start_next_cycle()
        except (trio.BrokenResourceError, trio.ClosedResourceError, h11.RemoteProtocolError):
            return
        finally:
            with trio.CancelScope(shield=True):
                await trio.aclose_forcefully(stream)

    async def _read_request(self, stream: trio.SSLStream[Any], conn: h11.Connection) -> tuple[Any, bytes]:
        request = None
        body = b""
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                data = await stream.receive_some(65536)
                conn.receive_data(data)
                continue
            if isinstance(event, h11.ConnectionClosed):
                return None, b""
            if isinstance(event, h11.Request):
                request = event
            elif isinstance(event, h11.Data):
                body += bytes(event.data)
            elif isinstance(event, h11.EndOfMessage):
                return request, body

    async def _send(self, stream: trio.SSLStream[Any], conn: h11.Connection, event: Any) -> None:
        data = conn.send(event)
        if data:
            await stream.send_all(data)

    async def _respond(self, stream: trio.SSLStream[Any], conn: h11.Connection, code: int, body: Obj) -> None:
        payload = orjson.dumps(body)
        headers = [("Content-Type", "application/json"), ("Content-Length", str(len(payload)))]
        await self._send(stream, conn, h11.Response(status_code=code, headers=headers))
        await self._send(stream, conn, h11.Data(data=payload))
        await self._send(stream, conn, h11.EndOfMessage())

    async def _dispatch(
        self, stream: trio.SSLStream[Any], conn: h11.Connection, request: Any, body: bytes
    ) -> bool:
        target = request.target.decode()
        parts = urlsplit(target)
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        headers = {k.decode().lower(): v.decode() for k, v in request.headers}
        method = request.method.decode()
        self.requests.append(Recorded(method, parts.path, query, headers, body))
        if (
            self.required_token is not None
            and headers.get("authorization") != f"Bearer {self.required_token}"
        ):
            await self._respond(stream, conn, 401, status_body(401, "Unauthorized", "Unauthorized"))
            return True
        segments = parts.path.strip("/").split("/")
        if method == "POST" and parts.path == "/apis/authentication.k8s.io/v1/tokenreviews":
            await self._review(stream, conn, self.token_reviews, body)
            return True
        if method == "POST" and parts.path == "/apis/authorization.k8s.io/v1/subjectaccessreviews":
            await self._review(stream, conn, self.access_reviews, body)
            return True
        coll: FakeCollection | None = None
        params = dict(query)
        name = ""
        if segments == ["api", "v1", "nodes"]:
            coll = self.nodes
        elif segments == ["api", "v1", "pods"]:
            coll = self.pods
        elif (
            len(segments) in (5, 6)
            and segments[:3] == ["api", "v1", "namespaces"]
            and segments[4] == "configmaps"
        ):
            coll = self.configmaps
            params["_namespace"] = segments[3]
            name = segments[5] if len(segments) == 6 else ""
        if coll is None or method != "GET":
            await self._respond(
                stream, conn, 404, status_body(404, "NotFound", f"the server could not find {target}")
            )
            return True
        if name:
            obj = coll.objects.get((params["_namespace"], name))
            if coll.fail_lists:
                code, status = coll.fail_lists.pop(0)
                await self._respond(stream, conn, code, status)
            elif obj is None:
                msg = f'configmaps "{name}" not found'
                await self._respond(stream, conn, 404, status_body(404, "NotFound", msg))
            else:
                await self._respond(stream, conn, 200, obj)
            return True
        if query.get("watch") in ("true", "1"):
            return await self._watch(stream, conn, coll, params)
        await self._list(stream, conn, coll, params)
        return True

    async def _review(
        self, stream: trio.SSLStream[Any], conn: h11.Connection, ep: ReviewEndpoint, body: bytes
    ) -> None:
        decoded = orjson.loads(body)
        ep.calls.append(decoded)
        ep.raw_bodies.append(body)
        ep.arrived.set()
        if ep.gate is not None:
            await ep.gate.wait()
        code, answer = ep.handler(decoded)
        await self._respond(stream, conn, code, answer)

    async def _list(
        self, stream: trio.SSLStream[Any], conn: h11.Connection, coll: FakeCollection, params: dict[str, str]
    ) -> None:
        coll.list_count += 1
        if coll.fail_lists:
            code, status = coll.fail_lists.pop(0)
            await self._respond(stream, conn, code, status)
            return
        items = coll.list_items(params)
        offset = 0
        rv = self.rv
        token = params.get("continue")
        if token:
            rv_text, offset_text = base64.b64decode(token).decode().split(":")
            rv, offset = int(rv_text), int(offset_text)
            if rv < coll.compacted_rv:
                msg = "The provided continue parameter is too old to display a consistent list result."
                await self._respond(stream, conn, 410, status_body(410, "Expired", msg))
                return
        limit = int(params.get("limit") or 0) or len(items) or 1
        page = items[offset : offset + limit]
        metadata: Obj = {"resourceVersion": str(rv)}
        if offset + limit < len(items):
            metadata["continue"] = base64.b64encode(f"{rv}:{offset + limit}".encode()).decode()
        await self._respond(
            stream,
            conn,
            200,
            {"kind": f"{coll.kind}List", "apiVersion": "v1", "metadata": metadata, "items": page},
        )

    async def _watch(
        self, stream: trio.SSLStream[Any], conn: h11.Connection, coll: FakeCollection, params: dict[str, str]
    ) -> bool:
        """Serve one watch; False when the connection must be cut (a drop)."""
        handle = WatchHandle(params)
        if coll.fail_watches:
            code, status = coll.fail_watches.pop(0)
            await self._respond(stream, conn, code, status)
            coll._watch_send.send_nowait(handle)
            return True
        since = int(params.get("resourceVersion") or 0)
        expired = since < coll.compacted_rv
        if expired and not coll.expired_as_event:
            msg = f"too old resource version: {since} ({coll.compacted_rv})"
            await self._respond(stream, conn, 410, status_body(410, "Expired", msg))
            coll._watch_send.send_nowait(handle)
            return True
        headers = [("Content-Type", "application/json"), ("Transfer-Encoding", "chunked")]
        await self._send(stream, conn, h11.Response(status_code=200, headers=headers))
        if expired:
            handle.error(410, "Expired", f"too old resource version: {since} ({coll.compacted_rv})")
        else:
            for change in coll.history:
                if change.rv > since:
                    event = coll._convert(change, params)
                    if event is not None:
                        handle.event(*event)
            coll.watches.append(handle)
        coll._watch_send.send_nowait(handle)
        try:
            while True:
                item = await handle._receive.receive()
                if item is _DROP:
                    return False  # the caller closes the connection without a terminating chunk
                if item is _CLOSE:
                    await self._send(stream, conn, h11.EndOfMessage())
                    return True  # like Go's server, keep the connection alive
                await self._send(stream, conn, h11.Data(data=item))
        finally:
            handle.closed = True
            if handle in coll.watches:
                coll.watches.remove(handle)


@dataclass(frozen=True)
class Connection:
    """Stands in for `k8s_metrics.kubeconfig.ClusterConnection` (same fields)."""

    server: str
    ssl_context: ssl.SSLContext
    auth: Any = None
    tls_server_name: str | None = None
    proxy: str | None = None


@dataclass
class Recorder:
    """Collects informer events into a channel the test can wait on."""

    events: list[Any] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._send, self._receive = trio.open_memory_channel[Any](math.inf)

    def __call__(self, event: Any) -> None:
        self.events.append(event)
        self._send.send_nowait(event)

    async def wait_for(self, kind: str, detail: str | None = None) -> Any:
        """The next recorded event of this kind (and detail), skipping others."""
        while True:
            event = await self._receive.receive()
            if event.kind == kind and (detail is None or event.detail == detail):
                return event


def make_node(
    name: str,
    *,
    labels: dict[str, str] | None = None,
    address: str = "10.0.0.1",
    port: int = 10250,
    ready: bool = True,
    metrics_path: str | None = None,
) -> Obj:
    annotations = {"node.alpha.kubernetes.io/ttl": "0"}
    if metrics_path is not None:
        annotations["metrics.k8s.io/resource-metrics-path"] = metrics_path
    return {
        "kind": "Node",
        "apiVersion": "v1",
        "metadata": {
            "name": name,
            "uid": f"uid-{name}",
            "labels": labels or {"kubernetes.io/hostname": name},
            "annotations": annotations,
        },
        "spec": {"podCIDR": "10.244.0.0/24"},
        "status": {
            "addresses": [{"type": "InternalIP", "address": address}, {"type": "Hostname", "address": name}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": port}},
            "conditions": [
                {"type": "MemoryPressure", "status": "False"},
                {"type": "Ready", "status": "True" if ready else "False"},
            ],
            "images": [{"names": ["registry.k8s.io/pause:3.9"], "sizeBytes": 321520}],
        },
    }


def make_pod(
    namespace: str,
    name: str,
    *,
    node: str = "node-1",
    phase: str = "Running",
    labels: dict[str, str] | None = None,
) -> Obj:
    return {
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": {
            "name": name,
            "namespace": namespace,
            "uid": f"uid-{namespace}-{name}",
            "labels": labels if labels is not None else {"app": name.rsplit("-", 1)[0]},
        },
        "spec": {"nodeName": node, "containers": [{"name": "c", "image": "nginx"}]},
        "status": {"phase": phase, "podIP": "10.244.0.5"},
    }
