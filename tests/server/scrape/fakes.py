"""A fake kubelet: a real TLS server (trio + h11) on its own 127.0.0.x address.

Each path maps to an action, and tests may change the map between cycles:
`Serve` (status, body, chunked or sized), `Hang` (read the request, never answer), `Drip`
(headers, then the body a few bytes per interval), `Reset` (TCP RST after the request).
Unknown paths get a 404. The fake counts accepted TCP connections and records every request's
target and headers, and the client certificate's common name when one was presented.
"""

from __future__ import annotations

import socket
import ssl
import struct
from dataclasses import dataclass, field
from http import HTTPStatus
from pathlib import Path

import h11
import trio
import trustme

from metrics_server.kube.objects import NodeAddress, NodeInfo

SAMPLES = Path(__file__).resolve().parents[2] / "data" / "kubelet-samples"
SAMPLE_70_PODS = (SAMPLES / "resource" / "metrics-server-kind-v1.21-70pods.txt").read_bytes()
SUMMARY_SAMPLE = (SAMPLES / "summary" / "nri-k8s-1.24-minikube-containerd.json").read_bytes()


@dataclass(frozen=True)
class Serve:
    status: int = 200
    body: bytes = b""
    chunked: bool = False
    reason: bytes | None = None
    """None: the standard phrase, as Go's server sends."""
    headers: tuple[tuple[bytes, bytes], ...] = ()
    """Extra response headers (Set-Cookie, Content-Encoding, Connection: close, Location...)."""


@dataclass(frozen=True)
class Hang:
    pass


@dataclass(frozen=True)
class Drip:
    body: bytes
    chunk: int = 1
    interval: float = 1.0


@dataclass(frozen=True)
class Reset:
    pass


@dataclass(frozen=True)
class ResetIfReused:
    """Serve `then` on a fresh connection; reset a connection that already served a request
    (what a kubelet closing an idle kept-alive connection looks like to the next request)."""

    then: Serve


@dataclass(frozen=True)
class RequireAuth:
    """Serve `then` to a request whose Authorization header is `authorization`; others get a
    401 with a small body (what a kubelet answers to a stale token)."""

    authorization: str
    then: Serve


Action = Serve | Hang | Drip | Reset | ResetIfReused | RequireAuth

RESOURCE = "/metrics/resource"
SUMMARY = "/stats/summary?only_cpu_and_memory=true"


@dataclass
class SeenRequest:
    target: str
    headers: dict[str, str]
    client_cn: str | None


@dataclass
class FakeKubelet:
    host: str
    server_ctx: ssl.SSLContext | None
    """None: plain HTTP."""
    routes: dict[str, Action] = field(default_factory=lambda: {RESOURCE: Serve(body=SAMPLE_70_PODS)})
    port: int = 0
    accepted: int = 0
    requests: list[SeenRequest] = field(default_factory=list)
    request_seen: trio.Event = field(default_factory=trio.Event)
    """Set once the first request has been read."""

    async def serve(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(0, host=self.host)
        self.port = listeners[0].socket.getsockname()[1]
        async with trio.open_nursery() as nursery:
            nursery.start_soon(trio.serve_listeners, self._handle, listeners)
            task_status.started()

    async def _handle(self, tcp: trio.SocketStream) -> None:
        self.accepted += 1
        try:
            if self.server_ctx is None:
                await self._serve_connection(tcp, tcp, None)
                return
            stream = trio.SSLStream(tcp, self.server_ctx, server_side=True)
            await stream.do_handshake()
            cert = stream.getpeercert()
            cn = None
            if cert:
                cn = next(v for rdn in cert["subject"] for (k, v) in rdn if k == "commonName")
            await self._serve_connection(stream, tcp, cn)
        except (trio.BrokenResourceError, trio.ClosedResourceError, h11.ProtocolError):
            pass
        finally:
            with trio.CancelScope(shield=True):
                await tcp.aclose()

    async def _serve_connection(
        self, stream: trio.abc.Stream, tcp: trio.SocketStream, cn: str | None
    ) -> None:
        conn = h11.Connection(h11.SERVER)
        served = 0
        while True:
            request = await _next_request(stream, conn)
            if request is None:
                return
            target = request.target.decode()
            headers = {k.decode().lower(): v.decode() for k, v in request.headers}
            self.requests.append(SeenRequest(target, headers, cn))
            self.request_seen.set()
            action = self.routes.get(target, Serve(status=404, body=b"404 page not found\n"))
            if isinstance(action, ResetIfReused):
                action = Reset() if served else action.then
            if isinstance(action, RequireAuth):
                authorized = headers.get("authorization") == action.authorization
                action = action.then if authorized else Serve(status=401, body=b"Unauthorized\n")
            served += 1
            if isinstance(action, Hang):
                await trio.sleep_forever()
            if isinstance(action, Reset):
                tcp.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                await tcp.aclose()
                return
            if isinstance(action, Drip):
                head = [(b"content-length", str(len(action.body)).encode()), (b"content-type", b"text/plain")]
                await stream.send_all(conn.send(h11.Response(status_code=200, headers=head)) or b"")
                for i in range(0, len(action.body), action.chunk):
                    await stream.send_all(conn.send(h11.Data(data=action.body[i : i + action.chunk])) or b"")
                    await trio.sleep(action.interval)
                await stream.send_all(conn.send(h11.EndOfMessage()) or b"")
            else:
                head = [(b"content-type", b"text/plain; version=0.0.4; charset=utf-8"), *action.headers]
                if action.chunked:
                    head.append((b"transfer-encoding", b"chunked"))
                else:
                    head.append((b"content-length", str(len(action.body)).encode()))
                reason = action.reason
                if reason is None:
                    reason = HTTPStatus(action.status).phrase.encode()
                response = h11.Response(status_code=action.status, headers=head, reason=reason)
                if action.chunked:
                    # Several chunks, so that a streaming reader sees more than one piece.
                    await stream.send_all(conn.send(response) or b"")
                    step = max(1, len(action.body) // 4)
                    for i in range(0, len(action.body), step):
                        await stream.send_all(conn.send(h11.Data(data=action.body[i : i + step])) or b"")
                    await stream.send_all(conn.send(h11.EndOfMessage()) or b"")
                else:
                    # One write, as a kubelet sends a buffered body.
                    wire = (conn.send(response) or b"") + (conn.send(h11.Data(data=action.body)) or b"")
                    await stream.send_all(wire + (conn.send(h11.EndOfMessage()) or b""))
            if conn.our_state is h11.MUST_CLOSE:
                return
            conn.start_next_cycle()


async def _next_request(stream: trio.abc.Stream, conn: h11.Connection) -> h11.Request | None:
    request: h11.Request | None = None
    while True:
        event = conn.next_event()
        if event is h11.NEED_DATA:
            data = await stream.receive_some(65536)
            if not data and request is None:
                return None
            conn.receive_data(bytes(data))
        elif isinstance(event, h11.Request):
            request = event
        elif isinstance(event, h11.EndOfMessage):
            return request
        elif isinstance(event, h11.ConnectionClosed):
            return None


def server_context(ca: trustme.CA, *names: str, client_ca: trustme.CA | None = None) -> ssl.SSLContext:
    """A server context with a leaf from `ca` for `names` (IPs become IP SANs, others DNS SANs)."""
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(*names).configure_cert(ctx)
    if client_ca is not None:
        client_ca.configure_trust(ctx)
        ctx.verify_mode = ssl.CERT_OPTIONAL
    return ctx


def make_node(
    name: str,
    host: str | None = None,
    port: int = 0,
    *,
    ready: bool = True,
    metrics_path: str | None = None,
    addresses: tuple[NodeAddress, ...] | None = None,
) -> NodeInfo:
    """A node whose InternalIP is `host` and whose reported kubelet port is `port`."""
    if addresses is None:
        addresses = (NodeAddress("InternalIP", host),) if host else ()
    return NodeInfo(
        name=name,
        uid=f"uid-{name}",
        labels={"kubernetes.io/hostname": name},
        addresses=addresses,
        kubelet_port=port,
        metrics_path=metrics_path,
        ready=ready,
    )


def node_for(name: str, fake: FakeKubelet, **kwargs: object) -> NodeInfo:
    return make_node(name, fake.host, fake.port, **kwargs)  # type: ignore[arg-type]


async def start(nursery: trio.Nursery, *fakes: FakeKubelet) -> None:
    for fake in fakes:
        await nursery.start(fake.serve)
