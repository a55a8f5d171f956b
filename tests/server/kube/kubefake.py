"""A fake kube-apiserver for tests: raw trio + h11 over real TLS (trustme) on 127.0.0.x.

What it serves, with kubesim's apiserver semantics (`kubesim.store`, `kubesim.listwatch`):
- get, list and watch of `/api/v1/nodes`, pods and configmaps (cluster-wide or in a namespace):
  selectors, limit/continue over a consistent snapshot, one shared resourceVersion counter,
  watches that replay the history after the requested resourceVersion (or start with the
  current state for "" and "0") and then push changes as they happen; an object leaving the
  selector is sent as DELETED with its previous content and the new resourceVersion. Watches do
  not time out or send bookmarks on their own: the test does that through the `WatchHandle`;
- POST tokenreviews / subjectaccessreviews, answered by a test-supplied handler and counted.

How a test drives it:
- `coll.put(obj)` / `coll.remove(name)` change objects (bumping the resourceVersion) and
  notify open watches; `coll.compact()` makes older resourceVersions answer 410 Expired, as an
  ERROR event (`coll.expired_as_event`, the watch cache's way) or as a plain 410 reply;
- `await coll.next_watch()` returns the `WatchHandle` of the next watch request, whose methods
  push one event (`event`, `bookmark`, `error`) or end the stream (`drop` = connection cut
  mid-stream, `close` = clean end);
- `coll.fail_lists` / `coll.fail_watches` are queues of (status, Status-body) answers consumed by
  the next requests (gets count as lists); `server.requests` records every request.
- `server.start_listening()` is separate from binding: until it is called, connections to the
  (already known) address are refused, as with an apiserver that is down.
"""

from __future__ import annotations

import math
import ssl
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

import h11
import orjson
import trio
import trustme

from kubesim import listwatch, objects
from kubesim.apiserver import request_attributes
from kubesim.httpserver import Peer, Request, Response
from kubesim.policy import ANONYMOUS_USER
from kubesim.responses import JSON, UNAUTHORIZED, json_response, status, status_doc
from kubesim.store import ExpiredError, ResourceStore, Store
from kubesim.store import Obj as StoredObj

HOST = "127.0.0.47"

Obj = dict[str, Any]


@dataclass
class Recorded:
    method: str
    path: str
    query: dict[str, str]
    headers: dict[str, str]
    body: bytes


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

    def _push(self, etype: str, obj_json: bytes) -> None:
        self.sent.append((etype, orjson.loads(obj_json)))
        self._send.send_nowait(listwatch.event_line(etype, obj_json))

    def event(self, etype: str, obj: Obj) -> None:
        self._push(etype, orjson.dumps(obj))

    def bookmark(self, rv: int | str, kind: str = "Pod") -> None:
        self.event("BOOKMARK", {"kind": kind, "apiVersion": "v1", "metadata": {"resourceVersion": str(rv)}})

    def error(self, code: int, reason: str, message: str) -> None:
        self.event("ERROR", status_doc(code, message, reason))

    def drop(self) -> None:
        """Cut the connection mid-stream (no terminating chunk)."""
        self._send.send_nowait(_DROP)

    def close(self) -> None:
        """End the stream cleanly, as the server does at timeoutSeconds."""
        self._send.send_nowait(_CLOSE)


@dataclass
class _StoreEvents:
    """The store's side of a `WatchHandle` (a `kubesim.store.Sink`): its events, in store order."""

    handle: WatchHandle
    rs: ResourceStore

    def send_nowait(self, value: tuple[str, StoredObj], /) -> None:
        etype, obj = value
        self.handle._push(etype, self.rs.full_json(obj.body))

    def close(self) -> None:
        """The store unsubscribed; the stream's end is the handle's."""


def _field(obj: Obj, path: str) -> str:
    """The value of a field label (`status.phase`) as a field selector compares it."""
    cur: Any = obj
    for part in path.split("."):
        if not isinstance(cur, dict):
            return ""
        cur = cur.get(part)
    if isinstance(cur, bool):
        return "true" if cur else "false"
    return "" if cur is None else str(cur)


class FakeCollection:
    """One resource of the fake server: a `kubesim.store.ResourceStore` plus the test's hooks."""

    def __init__(self, rs: ResourceStore) -> None:
        self.rs = rs
        self._watch_send, self._watch_receive = trio.open_memory_channel[WatchHandle](math.inf)
        self.fail_lists: list[tuple[int, Obj]] = []
        self.fail_watches: list[tuple[int, Obj]] = []
        self.expired_as_event = True
        """Watch from a compacted resourceVersion: 200 + ERROR event (True, like the watch cache)
        or a plain 410 response (False)."""
        self.list_count = 0

    def put(self, obj: Obj) -> int:
        """Create or replace an object (its kind and apiVersion are the resource's); returns its
        new resourceVersion."""
        body = {k: v for k, v in obj.items() if k not in ("kind", "apiVersion")}
        meta = body["metadata"]

        def render(rv: int) -> bytes:
            return orjson.dumps({**body, "metadata": {**meta, "resourceVersion": str(rv)}})

        labels = meta.get("labels") or {}
        fields = {name: _field(obj, name) for name in self.rs.field_names}
        return self.rs.put(meta.get("namespace", ""), meta["name"], labels, fields, render).rv

    def remove(self, name: str, namespace: str = "") -> int:
        gone = self.rs.delete(namespace, name)
        assert gone is not None, f"no {namespace}/{name} to remove"
        return gone.rv

    def compact(self) -> None:
        """Forget history: watches from any resourceVersion seen so far get 410 Expired."""
        self.rs.compact()

    async def next_watch(self) -> WatchHandle:
        return await self._watch_receive.receive()


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


_REVIEWS = {
    "/apis/authentication.k8s.io/v1/tokenreviews": "token_reviews",
    "/apis/authorization.k8s.io/v1/subjectaccessreviews": "access_reviews",
}


class FakeApiServer:
    def __init__(self, ca: trustme.CA, host: str = HOST, cert_names: tuple[str, ...] = ()) -> None:
        self.host = host
        self.ca = ca
        cert = ca.issue_cert(*(cert_names or (host,)))
        self._ssl = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        cert.configure_cert(self._ssl)
        self.store = Store()
        self._collections: dict[str, FakeCollection] = {}
        self.nodes = self._collection("nodes", "Node", False, objects.NODE_FIELDS)
        self.pods = self._collection("pods", "Pod", True, objects.POD_FIELDS)
        self.configmaps = self._collection("configmaps", "ConfigMap", True, objects.CONFIGMAP_FIELDS)
        no_handler = (500, status_doc(500, "no handler"))
        self.token_reviews = ReviewEndpoint(lambda body: no_handler)
        self.access_reviews = ReviewEndpoint(lambda body: no_handler)
        self.requests: list[Recorded] = []
        self.required_token: str | None = None
        self._sock = trio.socket.socket()
        self.port = 0

    def _collection(
        self, name: str, kind: str, namespaced: bool, field_names: tuple[str, ...]
    ) -> FakeCollection:
        rs = self.store.add_resource(
            name, kind=kind, api_version="v1", namespaced=namespaced, field_names=field_names
        )
        self._collections[name] = FakeCollection(rs)
        return self._collections[name]

    @property
    def url(self) -> str:
        return f"https://{self.host}:{self.port}"

    @property
    def rv(self) -> int:
        """The latest resourceVersion."""
        return self.store.rv

    def next_rv(self) -> int:
        return self.store.next_rv()

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

    async def _respond(self, stream: trio.SSLStream[Any], conn: h11.Connection, response: Response) -> None:
        headers = [*response.headers, ("Content-Length", str(len(response.body)))]
        await self._send(stream, conn, h11.Response(status_code=response.status, headers=headers))
        await self._send(stream, conn, h11.Data(data=response.body))
        await self._send(stream, conn, h11.EndOfMessage())

    async def _dispatch(
        self, stream: trio.SSLStream[Any], conn: h11.Connection, event: Any, body: bytes
    ) -> bool:
        target = event.target.decode()
        parts = urlsplit(target)
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        headers = {k.decode().lower(): v.decode() for k, v in event.headers}
        method = event.method.decode()
        self.requests.append(Recorded(method, parts.path, query, headers, body))
        request = Request(
            method, unquote(parts.path), parts.query, list(event.headers), body, Peer(self.host)
        )
        if (
            self.required_token is not None
            and headers.get("authorization") != f"Bearer {self.required_token}"
        ):
            await self._respond(stream, conn, Response(401, list(JSON), orjson.dumps(UNAUTHORIZED)))
            return True
        review = _REVIEWS.get(parts.path)
        if method == "POST" and review is not None:
            await self._respond(stream, conn, await self._review(getattr(self, review), body))
            return True
        a = request_attributes(request, ANONYMOUS_USER)
        coll = self._collections.get(a.resource)
        if (
            coll is None
            or a.api_group
            or a.subresource
            or a.verb not in ("get", "list", "watch")
            or (a.namespace and not coll.rs.namespaced)
        ):
            not_found = status(404, "the server could not find the requested resource", details={})
            await self._respond(stream, conn, not_found)
            return True
        if a.verb == "watch":
            return await self._watch(stream, conn, coll, request, query, a.namespace)
        if a.verb == "list":
            coll.list_count += 1
        if coll.fail_lists:
            code, doc = coll.fail_lists.pop(0)
            response = json_response(doc, code)
        elif a.verb == "get":
            response = listwatch.get(coll.rs, a.resource, a.namespace, a.name)
        else:
            response = listwatch.list_objects(request, coll.rs, a.namespace, time.time_ns())
        await self._respond(stream, conn, response)
        return True

    async def _review(self, ep: ReviewEndpoint, body: bytes) -> Response:
        decoded = orjson.loads(body)
        ep.calls.append(decoded)
        ep.raw_bodies.append(body)
        ep.arrived.set()
        if ep.gate is not None:
            await ep.gate.wait()
        code, answer = ep.handler(decoded)
        return json_response(answer, code)

    async def _watch(
        self,
        stream: trio.SSLStream[Any],
        conn: h11.Connection,
        coll: FakeCollection,
        request: Request,
        params: dict[str, str],
        namespace: str,
    ) -> bool:
        """Serve one watch; False when the connection must be cut (a drop)."""
        handle = WatchHandle(params)
        rs = coll.rs
        w = listwatch.watch_request(request, rs, namespace)
        failure: Response | None = w if isinstance(w, Response) else None
        if coll.fail_watches:
            code, doc = coll.fail_watches.pop(0)
            failure = json_response(doc, code)
        watcher = None
        if failure is None and isinstance(w, listwatch.WatchRequest):
            try:
                backlog = rs.replay(w.filter, w.since)
            except ExpiredError as exc:
                if not coll.expired_as_event:
                    failure = json_response(listwatch.expired_status(exc), 410)
                else:  # the watch cache's way: 200, one ERROR event, the end
                    handle.event("ERROR", listwatch.expired_status(exc))
                    handle.close()
            else:
                sink = _StoreEvents(handle, rs)
                for item in backlog:
                    sink.send_nowait(item)
                watcher = rs.subscribe(w.filter, sink)
        if failure is not None:
            await self._respond(stream, conn, failure)
            coll._watch_send.send_nowait(handle)
            return True
        try:
            headers = [*JSON, ("Transfer-Encoding", "chunked")]
            await self._send(stream, conn, h11.Response(status_code=200, headers=headers))
            coll._watch_send.send_nowait(handle)
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
            if watcher is not None:
                rs.unwatch(watcher)


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
