"""A minimal HTTP/1.1 server on trio + h11, shared by the kubelets and the apiserver.

Why not hypercorn: thousands of simulated kubelets must live in one process, so each connection
costs one task and one h11 state machine, nothing more. Handlers get a fully-read `Request` and
return a `Response`: a body, a streaming producer (for watches and proxying; chunked, or with a
fixed `content_length`), or `hang` (the connection stays open, unanswered, until the client gives
up). For simulated faults a response can also be `raw` bytes that are not HTTP at all, or end in a
TCP reset after `reset_after` body bytes. A handler exception becomes a 500 for that request only;
a broken connection only ends its own task.
"""

from __future__ import annotations

import logging
import socket
import ssl
import struct
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from urllib.parse import parse_qs, unquote

import h11
import trio

log = logging.getLogger(__name__)

Send = Callable[[bytes], Awaitable[None]]
Producer = Callable[[Send], Awaitable[None]]

MAX_BODY = 16 << 20
IDLE_TIMEOUT_S = 120.0


@dataclass(frozen=True, slots=True)
class Peer:
    """Who is on the other end: address and, for TLS with a verified client cert, its subject."""

    address: str
    cert_common_name: str | None = None
    cert_organizations: tuple[str, ...] = ()


@dataclass(slots=True)
class Request:
    method: str
    path: str
    """Percent-decoded path, without the query."""
    raw_query: str
    headers: list[tuple[bytes, bytes]]
    """Header names are lower-case (h11 normalises them); order and repeats are kept."""
    body: bytes
    peer: Peer
    _query: dict[str, list[str]] | None = None

    def header(self, name: str) -> str | None:
        key = name.lower().encode()
        for k, v in self.headers:
            if k == key:
                return v.decode("latin-1")
        return None

    @property
    def query(self) -> dict[str, list[str]]:
        """The query decoded as form-urlencoded (`+` is a space), as Go's ParseQuery does."""
        if self._query is None:
            self._query = parse_qs(self.raw_query, keep_blank_values=True)
        return self._query

    def param(self, name: str, default: str = "") -> str:
        values = self.query.get(name)
        return values[0] if values else default


@dataclass(slots=True)
class Response:
    status: int
    headers: list[tuple[str, str]] = field(default_factory=list)
    body: bytes = b""
    producer: Producer | None = None
    """When set, the body is streamed by calling producer(send): chunked, or with `content_length`."""
    content_length: int | None = None
    """With a producer: send this `Content-Length` instead of chunked encoding."""
    hang: bool = False
    raw: bytes | None = None
    """Sent as they are instead of an HTTP response; then the connection closes."""
    reset_after: int | None = None
    """Send the head (with the full `Content-Length`) and this many body bytes, then reset the
    connection (TCP RST)."""


class _Reset(Exception):
    """Raised by `_respond` to make `serve_connection` reset the connection."""


Handler = Callable[[Request], Awaitable[Response]]


def _peer_from_ssl(stream: trio.SSLStream[trio.SocketStream], address: str) -> Peer:
    cert = stream.getpeercert()
    if not cert:
        return Peer(address)
    cn, orgs = None, []
    for rdn in cert.get("subject", ()):
        for key, value in rdn:
            if key == "commonName":
                cn = value
            elif key == "organizationName":
                orgs.append(value)
    return Peer(address, cn, tuple(orgs))


async def _next_event(conn: h11.Connection, stream: trio.abc.Stream) -> h11.Event | None:
    """The next h11 event; None when h11 pauses (the peer pipelined past the current cycle)."""
    while True:
        event = conn.next_event()
        if event is h11.PAUSED:
            return None
        if event is not h11.NEED_DATA:
            assert isinstance(event, h11.Event)
            return event
        data = await stream.receive_some(65536)
        conn.receive_data(bytes(data))


async def _send(conn: h11.Connection, stream: trio.abc.Stream, event: h11.Event) -> None:
    data = conn.send(event)
    if data:
        await stream.send_all(data)


async def _wait_for_eof(stream: trio.abc.Stream) -> None:
    """Return when the peer closes (or the connection breaks); discards anything it sends."""
    try:
        while await stream.receive_some(65536):
            pass
    except (trio.BrokenResourceError, trio.ClosedResourceError):
        pass


async def serve_connection(
    raw: trio.SocketStream, handler: Handler, ssl_context: ssl.SSLContext | None
) -> None:
    """Serve HTTP/1.1 requests on one connection until it closes; never raises."""
    try:
        address = str(raw.socket.getpeername()[0])
    except OSError:
        return
    stream: trio.abc.Stream = raw
    try:
        if ssl_context is not None:
            tls = trio.SSLStream(raw, ssl_context, server_side=True, https_compatible=True)
            shaken = False
            with trio.move_on_after(10):  # a client that never finishes the handshake must not pin the task
                await tls.do_handshake()
                shaken = True
            if not shaken:
                await trio.aclose_forcefully(raw)
                return
            stream = tls
            peer = _peer_from_ssl(tls, address)
        else:
            peer = Peer(address)
        await _serve_h11(stream, handler, peer)
    except _Reset:
        # SO_LINGER 0: close() sends RST instead of FIN; the TLS layer is closed without close_notify.
        raw.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        raw.socket.close()
        return
    except (trio.BrokenResourceError, trio.ClosedResourceError, h11.ProtocolError, ssl.SSLError, OSError):
        pass
    except Exception:  # a handler bug must not take the listener (or other nodes) down
        log.exception("connection from %s failed", address)
    finally:
        await trio.aclose_forcefully(stream)


async def _serve_h11(stream: trio.abc.Stream, handler: Handler, peer: Peer) -> None:
    conn = h11.Connection(h11.SERVER)
    while True:
        event: h11.Event | None = None
        with trio.move_on_after(IDLE_TIMEOUT_S):
            event = await _next_event(conn, stream)
        if event is None or isinstance(event, h11.ConnectionClosed):
            return
        if not isinstance(event, h11.Request):
            return
        target = event.target.decode("latin-1")
        path, _, query = target.partition("?")
        chunks: list[bytes] = []
        size = 0
        while True:
            ev = await _next_event(conn, stream)
            if isinstance(ev, h11.Data):
                size += len(ev.data)
                if size > MAX_BODY:
                    await _respond(
                        conn, stream, Response(413, [("Content-Type", "text/plain")], b"body too large\n")
                    )
                    return
                chunks.append(bytes(ev.data))
            elif isinstance(ev, h11.EndOfMessage):
                break
            else:
                return
        request = Request(
            event.method.decode("ascii"), unquote(path), query, list(event.headers), b"".join(chunks), peer
        )
        try:
            response = await handler(request)
        except Exception:
            log.exception("handler failed for %s %s", request.method, target)
            response = Response(500, [("Content-Type", "text/plain; charset=utf-8")], b"internal error\n")
        if response.hang:
            await _wait_for_eof(stream)
            return
        if response.raw is not None:
            await stream.send_all(response.raw)
            return
        if not await _respond(conn, stream, response):
            return
        if conn.our_state is h11.MUST_CLOSE or conn.their_state is h11.MUST_CLOSE:
            return
        try:
            conn.start_next_cycle()
        except h11.LocalProtocolError:
            return


async def _respond(conn: h11.Connection, stream: trio.abc.Stream, response: Response) -> bool:
    """Send one response; False when the connection cannot carry another request."""
    headers = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in response.headers]
    if response.producer is None:
        headers.append((b"content-length", str(len(response.body)).encode()))
        await _send(conn, stream, h11.Response(status_code=response.status, headers=headers))
        if response.reset_after is not None:
            await _send(conn, stream, h11.Data(data=response.body[: response.reset_after]))
            raise _Reset
        if response.body:
            await _send(conn, stream, h11.Data(data=response.body))
        await _send(conn, stream, h11.EndOfMessage())
        return True
    if response.content_length is not None:
        headers.append((b"content-length", str(response.content_length).encode()))
    else:
        headers.append((b"transfer-encoding", b"chunked"))
    await _send(conn, stream, h11.Response(status_code=response.status, headers=headers))

    async def send(data: bytes) -> None:
        if data:
            await _send(conn, stream, h11.Data(data=data))

    producer = response.producer
    finished = False
    async with trio.open_nursery() as nursery:

        async def produce() -> None:
            nonlocal finished
            try:
                await producer(send)
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                pass  # the peer went away mid-stream
            else:
                finished = True
            nursery.cancel_scope.cancel()

        async def watch_peer() -> None:
            # The client hanging up ends the stream at once, not at the next event we try to send.
            await _wait_for_eof(stream)
            nursery.cancel_scope.cancel()

        nursery.start_soon(produce)
        nursery.start_soon(watch_peer)
    if not finished:
        return False
    await _send(conn, stream, h11.EndOfMessage())
    return True


async def serve_listeners(
    listeners: list[trio.SocketListener],
    handler: Handler,
    ssl_context: ssl.SSLContext | None,
    *,
    task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Accept forever on `listeners`; each connection runs in its own task. Closes them on exit."""

    async def on_connection(raw: trio.SocketStream) -> None:
        await serve_connection(raw, handler, ssl_context)

    async with trio.open_nursery() as nursery:
        for listener in listeners:
            nursery.start_soon(_accept_loop, listener, on_connection, nursery)
        task_status.started()


async def _accept_loop(
    listener: trio.SocketListener,
    on_connection: Callable[[trio.SocketStream], Awaitable[None]],
    nursery: trio.Nursery,
) -> None:
    async with listener:
        while True:
            try:
                raw = await listener.accept()
            except OSError as exc:  # EMFILE and friends: back off instead of spinning
                log.warning("accept failed on %s: %s", listener.socket.getsockname(), exc)
                await trio.sleep(0.1)
                continue
            nursery.start_soon(on_connection, raw)
