"""The connection task of the secure port: hypercorn 0.18.0's, with client certificates for the
ASGI app (which hypercorn does not expose) and the connection rules of `auth.connection`.

hypercorn's trio worker accepts each connection through `hypercorn.trio.run.TCPServer`, whose
`run()` does the TLS handshake and then builds the ASGI scopes, each with `"state"` = a copy of
the connection's `self.state` dict. `PeerCertTCPServer` replaces that class (looked up as a module
global by `worker_serve`, so the patch has to be on the module, see `install()`); for a config
carrying a `TLSContextSource` under `CONFIG_ATTR` it:

1. wraps the raw TCP stream in a fresh `trio.SSLStream` made from `source.context()`, so every new
   connection uses the newest certificate and client CAs (the listener's own context is unused);
2. does the handshake itself (hypercorn's later `do_handshake()` is then a no-op) and logs a
   failure, e.g. a client certificate from an unknown CA;
3. gives the connection its own state dict holding a `PeerTLS` under `PEER_STATE_KEY`;
4. writes large responses in pieces of `MAX_TLS_WRITE`, and frees what the connection held when
   it ends (`_let_go`; both for memory the collector does not see);
5. makes two per-request costs of hypercorn's connection handling per-connection ones (same
   behaviour, measured with bench/micro/auth_request.py):
   * the keep-alive (idle) timer: hypercorn cancels its idle task when a request starts and
     spawns a new one (lock, cancel scope, `nursery.start`) when it ends, ~150 us of CPU per
     request; `_IdleTimer` keeps ONE task per connection and moves its deadline instead;
   * the empty write hypercorn makes for the end of every fixed-length HTTP/1.1 body (a
     `send_all(b"")` under the send lock in a shielded cancel scope: a no-op but ~30 us) is
     skipped;
5. runs the connection itself (hypercorn's `TCPServer.run` re-done): the protocol is chosen by
   ALPN alone (`auth.connection.make_protocol`: no h2c upgrade, no `PRI` switch), the idle timer
   also enforces the header-read timeout, a connection closed after an HTTP/1.1 error answer
   lingers, and any exception of the connection (handshake, h11, h2, this shim) is contained:
   logged once, counted, the connection closed, never raised into hypercorn's server nursery.

`tls_extension(app)` then moves that entry into the standard ASGI TLS extension,
`scope["extensions"]["tls"]` (`client_cert_chain` = [leaf PEM], `tls_version`), which is all the
auth middleware reads. For any other config the class behaves exactly like hypercorn's, so the
patch is harmless to other hypercorn servers in the process.

Internals relied on (checked by `install()`, and end to end by tests/server/auth): the module
attribute `hypercorn.trio.run.TCPServer`, its constructor signature, its `stream`, `config`,
`state`, `context`, `idle_task`, `send_lock` and `protocol` attributes (and that it, like trio's
SSLStream, keeps its state in its instance `__dict__`: `_let_go`) (the idle task is only ever
driven through `restart(task_group, action)` and `stop()`), `protocol_send` (whose `RawData`
branch `_send_in_pieces` repeats), `_initiate_server_close`, `_close`, `_read_data`, `MAX_RECV`,
the task group's `spawn` and `_nursery`, and the `H11Protocol`/`H2Protocol` constructors
(`auth.connection`).
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import math
import ssl
from collections.abc import Awaitable, Callable
from typing import Any, NamedTuple, Protocol

import hypercorn.trio.run as hypercorn_run
import trio
from hypercorn.events import Closed, Event, RawData
from hypercorn.trio.task_group import TaskGroup
from hypercorn.trio.tcp_server import MAX_RECV, TCPServer
from hypercorn.typing import ConnectionState
from hypercorn.utils import parse_socket_addr

from metrics_server.asgi import ASGIApp, Receive, Scope, Send
from metrics_server.auth.connection import (
    ConnectionPolicy,
    TLSH11Protocol,
    go_error_response,
    linger,
    make_protocol,
)
from metrics_server.auth.errors import ShimError

logger = logging.getLogger(__name__)

CONFIG_ATTR = "metrics_server_tls"
"""Attribute of a hypercorn `Config` holding the `TLSContextSource` (opt-in to this behaviour)."""
POLICY_ATTR = "metrics_server_connection_policy"
"""Attribute of a hypercorn `Config` holding the `auth.connection.ConnectionPolicy` (optional)."""
PEER_STATE_KEY = "metrics_server.peer_tls"
_EXPECTED_INIT = ("self", "app", "config", "context", "state", "stream")
_EXPECTED_METHODS = (
    (TCPServer, "protocol_send"),
    (TCPServer, "_idle_timeout"),
    (TCPServer, "_initiate_server_close"),
    (TCPServer, "_close"),
    (TCPServer, "_read_data"),
    (TaskGroup, "spawn"),
)
_TLS_VERSIONS = {"TLSv1.2": 0x0303, "TLSv1.3": 0x0304}
_TASK_GROUP_NURSERY = "_nursery"
"""hypercorn's `TaskGroup` keeps its trio nursery here (checked by `install()`)."""
MAX_TLS_WRITE = 512 * 1024
"""Largest piece of a response written to the TLS stream at once (~0.5 ms of encryption: one
event-loop step, which every other runnable task's step waits for).

OpenSSL's outgoing memory BIO (trio's SSLStream) grows to the largest single write and never
shrinks, in native memory the garbage collector does not see. With whole responses written at
once, each connection kept a buffer as large as its largest response (a 1-6 MB /metrics body, a
7 MB part of a pod list); closed connections held theirs until a full collection, and the serving
process grew ~4.5 KB per node per cycle from /metrics reads alone (docs/performance.md, "The RSS
growth: found and fixed"; a finished connection now lets go of its stream at once, `_let_go`).
So a connection holds at most this much. Every write is an event-loop step of its own, and every
runnable task's step waits for it: at 128 KB a 55 MB list was ~420 writes, seconds under load at
5000 x 30 (docs/performance.md, round 5, when other steps were longer); 1 MiB writes were steps
long enough to lengthen a concurrent get (512 KiB, with 1 ms list steps: get p99 40-50 -> 27 ms,
round 6)."""


class TLSContextSource(Protocol):
    def context(self) -> ssl.SSLContext: ...


class PeerTLS(NamedTuple):
    client_cert_pem: str | None
    tls_version: int | None


class _IdleTimer:
    """Stands in for hypercorn's `TrioSingleTask` as a connection's `idle_task`, with the same
    behaviour as hypercorn's `TCPServer._idle_timeout` run in it: while the connection is idle
    (from the first `restart` and after each request), close it after `keep_alive_timeout`, or
    at once when the server is terminating; while busy (`stop`), never. Plus the header-read
    timeout (`auth.connection`): from the first `restart` (the end of the handshake) and from
    the first byte of each later request (`head_started`), the head must be complete (`stop`)
    within `read_header_timeout`.

    hypercorn cancels the task on `stop()` and spawns a new one on every `restart()`; here one
    task lives as long as the connection and each call only moves its cancel scope's deadline."""

    __slots__ = ("_busy", "_closed", "_first", "_head", "_header_timeout", "_scope", "_server")

    def __init__(self, server: PeerCertTCPServer, header_timeout: float | None) -> None:
        self._server = server
        self._scope: trio.CancelScope | None = None
        self._busy = False
        self._closed = False
        self._first = True
        self._head = False
        self._header_timeout = header_timeout

    async def restart(self, task_group: TaskGroup, action: Callable[[], Awaitable[None]]) -> None:
        server = self._server
        self._busy = False
        self._head = False
        if server.context.terminated.is_set():
            deadline = -math.inf
        else:
            deadline = trio.current_time() + server.config.keep_alive_timeout
            if self._first or server.head_in_progress():
                deadline = self._head_deadline(deadline)
        self._first = False
        if self._scope is None:
            self._scope = trio.CancelScope(deadline=deadline)
            task_group.spawn(self._watch, self._scope)
        else:
            self._scope.deadline = deadline

    def head_started(self) -> None:
        """Bytes arrived: if the connection was idle, a request head has begun, and from now on
        the header-read timeout applies instead of the keep-alive timeout (as in Go)."""
        if self._busy or self._head or self._scope is None or self._header_timeout is None:
            return
        if self._server.context.terminated.is_set():
            return
        self._head = True
        self._scope.deadline = trio.current_time() + self._header_timeout

    def _head_deadline(self, deadline: float) -> float:
        if self._header_timeout is None:
            return deadline
        self._head = True
        return min(deadline, trio.current_time() + self._header_timeout)

    async def stop(self) -> None:
        self._busy = True
        if self._scope is not None:
            self._scope.deadline = math.inf

    def closed(self) -> None:
        """The connection was closed: end the task without closing again. (hypercorn has no idle
        task while busy, so a connection closed then must not keep one waiting either.)"""
        self._closed = True
        if self._scope is not None:
            self._scope.cancel()

    async def _watch(self, scope: trio.CancelScope) -> None:
        with scope:
            await self._server.context.terminated.wait()
            if self._busy:  # terminating: close when the request has finished (`restart`)
                await trio.sleep_forever()
        if self._closed:
            return
        with trio.CancelScope(shield=True):
            await self._server.timed_out()


class PeerCertTCPServer(TCPServer):
    """hypercorn's TCPServer, plus per-connection SSL context and peer certificate, cheaper
    idle timer and writes (module doc), and the connection rules of `auth.connection`."""

    async def protocol_send(self, event: Event) -> None:
        timer = self.idle_task
        if type(timer) is not _IdleTimer:  # hypercorn's own path (`run` did not take ours)
            await super().protocol_send(event)
            return
        if type(event) is RawData:
            if not event.data:
                return
            if len(event.data) > MAX_TLS_WRITE:
                await self._send_in_pieces(event.data)
                return
        await super().protocol_send(event)
        if type(event) is Closed:
            timer.closed()

    async def _send_in_pieces(self, data: bytes) -> None:
        """hypercorn's `RawData` branch of `protocol_send`, writing at most `MAX_TLS_WRITE` bytes
        at a time (under the send lock throughout, so that HTTP/2 frames never interleave)."""
        view = memoryview(data)
        async with self.send_lock:
            try:
                with trio.CancelScope(shield=True):
                    for start in range(0, len(view), MAX_TLS_WRITE):
                        await self.stream.send_all(view[start : start + MAX_TLS_WRITE])
            except (trio.BrokenResourceError, trio.ClosedResourceError):
                await self.protocol.handle(Closed())

    async def run(self) -> None:
        source: TLSContextSource | None = getattr(self.config, CONFIG_ATTR, None)
        if source is None or not isinstance(self.stream, trio.SSLStream):
            await super().run()
            return
        policy: ConnectionPolicy = getattr(self.config, POLICY_ATTR, None) or ConnectionPolicy()
        transport = self.stream.transport_stream
        peer = _peer(transport)  # now: a closed socket no longer knows it
        self._stage = "tls"
        listener_stream = self.stream
        try:
            await self._serve(source, transport, policy)
        except* Exception as group:
            # Containment (auth.connection): this connection ends here, nothing else does.
            policy.connection_failed(peer, self._stage, group)
            await trio.aclose_forcefully(self.stream)
        finally:
            ours = vars(self).get("stream")
            _let_go(self, *([ours] if ours is not None and ours is not listener_stream else []))

    async def _serve(
        self, source: TLSContextSource, transport: trio.SocketStream, policy: ConnectionPolicy
    ) -> None:
        stream = trio.SSLStream(transport, source.context(), server_side=True, https_compatible=True)
        self.stream = stream
        try:
            with trio.fail_after(self.config.ssl_handshake_timeout):
                await stream.do_handshake()
        except (trio.BrokenResourceError, trio.TooSlowError) as exc:
            _log_handshake_failure(transport, exc)
            policy.handshake_failed()
            await trio.aclose_forcefully(stream)
            return
        der = stream.getpeercert(binary_form=True)
        peer = PeerTLS(
            ssl.DER_cert_to_PEM_cert(der) if der else None,
            _TLS_VERSIONS.get(stream.version() or ""),
        )
        self.state = ConnectionState({**self.state, PEER_STATE_KEY: peer})
        self.idle_task: Any = _IdleTimer(self, policy.read_header_timeout)
        alpn = stream.selected_alpn_protocol()
        self._stage = "h2" if alpn == "h2" else "http/1.1"
        # hypercorn's TCPServer.run from here on, with the protocol chosen by ALPN alone.
        try:
            sock = transport.socket
            client = parse_socket_addr(sock.family, sock.getpeername())
            server = parse_socket_addr(sock.family, sock.getsockname())
            async with TaskGroup() as task_group:
                self._task_group = task_group
                self.protocol: Any = make_protocol(
                    alpn,
                    self.app,
                    self.config,
                    self.context,
                    task_group,
                    ConnectionState(self.state),
                    client,
                    server,
                    self.protocol_send,
                )
                await self.protocol.initiate()
                await self.idle_task.restart(task_group, self._idle_timeout)
                await self._read_data()
                # Nothing more comes in: the peer is gone or the connection closed. Whatever still
                # runs for it (requests, the idle timer) has nobody to answer: end it, as Go cancels
                # a request's context when its connection closes. (hypercorn's h2 would otherwise
                # wait forever for a response finished after the close to drain, holding the
                # task and the socket: `_TASK_GROUP_NURSERY`.)
                getattr(task_group, _TASK_GROUP_NURSERY).cancel_scope.cancel()
        except OSError:
            pass
        finally:
            await self._close()

    async def _read_data(self) -> None:
        timer = self.idle_task
        if type(timer) is not _IdleTimer:
            await super()._read_data()
            return
        h11 = isinstance(self.protocol, TLSH11Protocol)
        while True:
            try:
                data = await self.stream.receive_some(MAX_RECV)
            except (trio.ClosedResourceError, trio.BrokenResourceError):
                break
            if h11 and data:
                timer.head_started()
            await self.protocol.handle(RawData(bytes(data)))
            if not data:
                break
        await self.protocol.handle(Closed())

    def head_in_progress(self) -> bool:
        protocol = getattr(self, "protocol", None)
        return isinstance(protocol, TLSH11Protocol) and protocol.head_in_progress()

    async def timed_out(self) -> None:
        """The idle or header-read timeout passed (or the server terminates): close, after Go's
        400 if a request line was cut short."""
        protocol = getattr(self, "protocol", None)
        if isinstance(protocol, TLSH11Protocol) and protocol.partial_request_line():
            with contextlib.suppress(trio.BrokenResourceError, trio.ClosedResourceError):
                await self.stream.send_all(go_error_response(400))
        await self._initiate_server_close()

    async def _close(self) -> None:
        protocol = getattr(self, "protocol", None)
        if isinstance(protocol, TLSH11Protocol) and protocol.failed:
            await linger(self.stream)
        await super()._close()


def _let_go(*finished: object) -> None:
    """Drop every attribute of a finished connection's objects (the hypercorn server object and
    our TLS stream), so that what they hold is freed now, by refcount. (The stream hypercorn made,
    unused, is closed by trio's listener code after this; it never held buffers.)

    Each is in a reference cycle: hypercorn's TCPServer through its protocol (which holds its
    bound `protocol_send`) and its idle task, trio's SSLStream through its handshake `_Once`
    (which holds its bound `_do_handshake`). Unreachable cycles wait for a full collection, which
    the server's thresholds make rare, and a TLS stream holds native memory the collector does not
    see (OpenSSL's SSL object and memory BIOs): without this the serving process grows ~4.5 KB per
    node per cycle from /metrics reads over new connections (docs/performance.md, "The RSS growth:
    found and fixed").
    """
    for obj in finished:
        vars(obj).clear()


def _peer(transport: trio.SocketStream) -> str:
    try:
        return str(transport.socket.getpeername())
    except OSError:
        return "?"


def _log_handshake_failure(transport: trio.SocketStream, exc: BaseException) -> None:
    reason = exc.__cause__ or exc
    logger.info("TLS handshake with %s failed: %s", _peer(transport), reason or type(exc).__name__)


def install() -> None:
    """Make hypercorn's trio worker use `PeerCertTCPServer`. Idempotent.

    Raises `ShimError` if hypercorn's internals differ from what the shim was written against
    (rather than serving with client certificates silently ignored).
    """
    current = getattr(hypercorn_run, "TCPServer", None)
    if current is PeerCertTCPServer:
        return
    if current is not TCPServer:
        raise ShimError(f"hypercorn.trio.run.TCPServer is {current!r}, expected hypercorn's TCPServer")
    params = tuple(inspect.signature(TCPServer.__init__).parameters)
    if params != _EXPECTED_INIT:
        raise ShimError(f"hypercorn TCPServer.__init__{params} differs from {_EXPECTED_INIT}")
    for owner, name in _EXPECTED_METHODS:
        if not callable(getattr(owner, name, None)):
            raise ShimError(f"hypercorn {owner.__name__}.{name} is missing")
    if _TASK_GROUP_NURSERY not in TaskGroup().__dict__:
        raise ShimError(f"hypercorn TaskGroup has no {_TASK_GROUP_NURSERY} attribute")
    hypercorn_run.TCPServer = PeerCertTCPServer  # type: ignore[attr-defined]


def tls_extension(app: ASGIApp) -> ASGIApp:
    """Wrap `app` so that the connection's `PeerTLS` appears as the ASGI TLS extension."""

    async def with_tls(scope: Scope, receive: Receive, send: Send) -> None:
        state = scope.get("state")
        peer = state.pop(PEER_STATE_KEY, None) if isinstance(state, dict) else None
        if isinstance(peer, PeerTLS):
            scope.setdefault("extensions", {})["tls"] = {
                "server_cert": None,
                "client_cert_chain": [peer.client_cert_pem] if peer.client_cert_pem else [],
                "client_cert_name": None,
                "client_cert_error": None,
                "tls_version": peer.tls_version,
                "cipher_suite": None,
            }
        await app(scope, receive, send)

    return with_tls
