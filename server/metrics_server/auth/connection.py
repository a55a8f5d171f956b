"""What one connection of the secure port may do: its protocol, its limits, and its failure.

The serving layer (`auth.peercert.PeerCertTCPServer`, the connection task) takes from here:

* **The protocol, chosen by ALPN only** (`make_protocol`): `h2` when the TLS handshake selected
  it, else `TLSH11Protocol`. hypercorn's own `ProtocolWrapper` also switches an HTTP/1.1
  connection to HTTP/2 on `Upgrade: h2c` (after sending `101`) and on a `PRI * HTTP/2.0`
  request line; h2c is HTTP/2 over cleartext TCP (RFC 7540 §3.2) and has no business on a TLS
  port. Go's `net/http` never upgrades a TLS connection: it serves such a request as plain
  HTTP/1.1 (observed on metrics-server v0.8.0: `Upgrade: h2c` with any `HTTP2-Settings` gets
  `200 ok` for `/healthz`; `PRI * HTTP/2.0` goes through authentication and authorization like
  any request, anonymous gets `403`). So `--disable-http2-serving` (ALPN `http/1.1` only) now
  really means no HTTP/2, and the malformed-`HTTP2-Settings` crash has no path left.
* **Go's limits and error answers for HTTP/1.1** (`TLSH11Protocol`): a request line plus header
  block over `MAX_HEADER_BYTES` (+ Go's 4096 bytes of slack) is answered
  `431 Request Header Fields Too Large`, a malformed request `400 Bad Request`, each with Go's
  plain-text body and `Connection: close` (Go answers an over-long request line with 431 too,
  never 414); the connection then lingers (`linger`: Go's `closeWriteAndWait`) so a client
  still sending reads the answer instead of a reset. A websocket `Upgrade` is not taken either:
  the request is served as plain HTTP, as by the apiserver.
* **The header-read timeout** (`ConnectionPolicy.read_header_timeout`, the apiserver's
  `ReadHeaderTimeout` of 32 s): the request head must be complete within it, counted from the
  end of the TLS handshake for the first request and from the first byte of each later one; an
  idle keep-alive connection is closed after the keep-alive timeout (90 s) as before. A request
  line still incomplete at that point is answered `400 Bad Request` first (what Go does).
* **Containment** (`ConnectionPolicy.connection_failed`): whatever a connection raises is caught
  at the connection task (never in hypercorn's server nursery, where it would end `trio.run` and
  the process): the connection is closed, one log line names the peer and the cause (the
  traceback at debug level: a peer can provoke these at will), and
  `serving_connection_errors_total{stage,error}` counts it. Failed TLS handshakes count in Go's
  `apiserver_tls_handshake_errors_total`. Exceptions of the ASGI app are counted
  (`stage="app"`, `contain_app`) and left to hypercorn, which logs them once and answers `500`
  (or ends the stream if the response had started).

Why containment at the connection task and not in each protocol: the protocol stack is
hypercorn's, h11's and h2's code, and any of them may raise on input nobody thought of; one
`except` around the whole connection covers them all, including the ones not found yet, while
the targeted fixes above (no h2c, no PRI switch) stop the known crash from reaching even that.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

import h11
import trio
from hypercorn.config import Config
from hypercorn.events import Closed, Event, RawData
from hypercorn.protocol.h2 import H2Protocol
from hypercorn.protocol.h11 import H11Protocol
from hypercorn.typing import ConnectionState
from prometheus_client.core import CounterMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from metrics_server.asgi import ASGIApp, Receive, Scope, Send

logger = logging.getLogger(__name__)

MAX_HEADER_BYTES = 1 << 20
"""The apiserver's `MaxHeaderBytes` (Go's `http.DefaultMaxHeaderBytes`)."""
HEADER_SLACK = 4096
"""What Go's `net/http` reads beyond `MaxHeaderBytes` before it answers 431."""
READ_HEADER_TIMEOUT = 32.0
"""The apiserver's `ReadHeaderTimeout` (seconds)."""
LINGER_SECONDS = 0.5
"""Go's `rstAvoidanceDelay`: how long a connection closed after an error answer keeps reading."""
LINGER_MAX_BYTES = 4 << 20
"""At most this much is read (and dropped) while lingering."""
_RECEIVE = 1 << 16
_HEAD_END = re.compile(rb"\n\r?\n")

_HANDSHAKE_HELP = "[ALPHA] Number of requests dropped with 'TLS handshake error from' error"
_ERRORS_HELP = (
    "[ALPHA] Number of connections of the secure port closed because handling them raised, "
    "by stage (tls, http/1.1, h2, app) and exception type"
)


class ConnectionMetrics(Collector):
    """The serving layer's two counters (not `metrics_server_*`: metrics-server has exactly six).

    Call from the trio thread only. Registers itself on `registry` when one is given."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.handshake_errors = 0
        self.errors: dict[tuple[str, str], int] = {}
        if registry is not None:
            registry.register(self)

    def handshake_failed(self) -> None:
        self.handshake_errors += 1

    def failed(self, stage: str, error: str) -> None:
        key = (stage, error)
        self.errors[key] = self.errors.get(key, 0) + 1

    def total(self) -> int:
        """Connection errors of every stage and type (not handshake errors)."""
        return sum(self.errors.values())

    def describe(self) -> Iterable[Metric]:
        return self._families()

    def collect(self) -> Iterable[Metric]:
        return self._families()

    def _families(self) -> list[Metric]:
        handshakes = CounterMetricFamily("apiserver_tls_handshake_errors", _HANDSHAKE_HELP)
        handshakes.add_metric([], self.handshake_errors)
        errors = CounterMetricFamily("serving_connection_errors", _ERRORS_HELP, labels=["stage", "error"])
        for (stage, error), n in sorted(self.errors.items()):
            errors.add_metric([stage, error], n)
        return [handshakes, errors]


@dataclass(frozen=True, slots=True)
class ConnectionPolicy:
    """The per-connection settings the connection task reads from hypercorn's config."""

    read_header_timeout: float = READ_HEADER_TIMEOUT
    metrics: ConnectionMetrics = field(default_factory=ConnectionMetrics)

    def connection_failed(self, peer: str, stage: str, error: BaseException) -> None:
        """Log (once) and count a connection that raised `error` (an exception or a group)."""
        leaves = list(_leaves(error))
        first = leaves[0] if leaves else error
        name = type(first).__name__
        self.metrics.failed(stage, name)
        logger.warning("Connection from %s closed: %s failed with %s: %s", peer, stage, name, first)
        logger.debug("Connection from %s: traceback", peer, exc_info=error)

    def handshake_failed(self) -> None:
        self.metrics.handshake_failed()


def _leaves(error: BaseException) -> Iterable[BaseException]:
    if isinstance(error, BaseExceptionGroup):
        for inner in error.exceptions:
            yield from _leaves(inner)
    else:
        yield error


def go_error_response(status: int) -> bytes:
    """The answer Go's `net/http` writes for a request it cannot read (`431`, `400`): status line,
    headers and body as Go's, plus `Content-Length`. Go's body ends with the connection (it
    half-closes TLS, then waits); here the connection lingers before closing (`linger`), so the
    length tells the client the answer is complete without waiting for that."""
    text = f"{status} {HTTPStatus(status).phrase}"
    return (
        f"HTTP/1.1 {text}\r\nContent-Type: text/plain; charset=utf-8\r\nConnection: close\r\n"
        f"Content-Length: {len(text)}\r\n\r\n{text}"
    ).encode()


class TLSH11Protocol(H11Protocol):
    """hypercorn's HTTP/1.1 protocol without its protocol switches, with Go's limit and answers.

    The head limit: h11 measures only an incomplete head (`h11_max_incomplete_size`, which
    `serve_https` sets to Go's limit), so a head that arrives complete in one read of up to
    64 KiB could pass it by that much. Go counts every byte up to the blank line; so does this
    class, for each head as its bytes arrive (a head already complete in the buffer behind a
    pipelined request is left to h11's measure)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_limit: int = self.config.h11_max_incomplete_size
        self._in_head = True
        self._head_bytes = 0
        self._head_tail = b""
        self._rejected = False

    async def handle(self, event: Event) -> None:
        if type(event) is RawData and self._in_head and event.data and self._head_exceeds(event.data):
            self._rejected = True
            await self._send_error_response(431)
            await self.send(Closed())
            return
        await super().handle(event)

    def _head_exceeds(self, data: bytes) -> bool:
        """Count `data` into the current head; True once the head is longer than the limit."""
        window = self._head_tail + data
        end = _HEAD_END.search(window)
        if end is not None:
            self._in_head = False
            return self._head_bytes + end.end() - len(self._head_tail) > self._head_limit
        self._head_bytes += len(data)
        self._head_tail = window[-2:]
        return self._head_bytes > self._head_limit

    async def _maybe_recycle(self) -> None:
        await super()._maybe_recycle()
        if self.connection.their_state is h11.IDLE:  # kept alive: the next head starts
            pending = self.connection.trailing_data[0]
            self._in_head, self._head_bytes, self._head_tail = True, 0, b""
            if pending:
                self._head_exceeds(pending)

    async def _check_protocol(self, event: h11.Request) -> None:
        """hypercorn answers `Upgrade: h2c` with 101 and switches on `PRI * HTTP/2.0`; a TLS
        connection takes HTTP/2 from ALPN only (module docstring), so both are plain requests."""

    async def _create_stream(self, request: h11.Request) -> None:
        """A websocket `Upgrade` would make hypercorn hand the app a websocket scope; the API has
        no websocket endpoint and the apiserver serves such a request as plain HTTP."""
        if any(name == b"upgrade" for name, _ in request.headers):
            headers = [(n, v) for n, v in request.headers if n != b"upgrade"]
            request = h11.Request(
                method=request.method,
                target=request.target,
                headers=headers,
                http_version=request.http_version,
            )
        await super()._create_stream(request)

    async def _send_error_response(self, status_code: int) -> None:
        """Go's answer to an unreadable request (h11's hint: 431 too long, 400 otherwise).

        Written as raw bytes: h11 is in its error state and the connection closes next."""
        if status_code not in (400, 431):
            status_code = 400
        await self.send(RawData(data=go_error_response(status_code)))

    @property
    def failed(self) -> bool:
        """The peer sent a head too long or something h11 could not parse (an error answer went out)."""
        return self._rejected or self.connection.their_state is h11.ERROR

    def head_in_progress(self) -> bool:
        """Bytes of a request head are buffered while no request is being handled."""
        return self.connection.their_state is h11.IDLE and bool(self.connection.trailing_data[0])

    def partial_request_line(self) -> bool:
        """A request line has begun but not ended (Go answers 400 when the header timeout hits)."""
        buffered = self.connection.trailing_data[0]
        return self.connection.their_state is h11.IDLE and bool(buffered.strip()) and b"\n" not in buffered


def make_protocol(
    alpn: str | None,
    app: Any,
    config: Config,
    context: Any,
    task_group: Any,
    state: ConnectionState,
    client: tuple[str, int] | None,
    server: tuple[str, int] | None,
    send: Callable[[Event], Awaitable[None]],
) -> H11Protocol | H2Protocol:
    """The protocol of a TLS connection: HTTP/2 when ALPN chose `h2`, else HTTP/1.1."""
    kind = H2Protocol if alpn == "h2" else TLSH11Protocol
    return kind(app, config, context, task_group, state, True, client, server, send)


async def linger(stream: trio.abc.ReceiveStream) -> None:
    """Read and drop what the peer still sends, for at most `LINGER_SECONDS` and
    `LINGER_MAX_BYTES`, so that closing does not reset a connection whose peer has not read the
    error answer yet (Go's `closeWriteAndWait`). Stops at end of stream or any stream error."""
    received = 0
    with trio.move_on_after(LINGER_SECONDS):
        while received < LINGER_MAX_BYTES:
            try:
                data = await stream.receive_some(_RECEIVE)
            except (trio.BrokenResourceError, trio.ClosedResourceError, trio.BusyResourceError):
                return
            if not data:
                return
            received += len(data)


def contain_app(app: ASGIApp, metrics: ConnectionMetrics) -> ASGIApp:
    """Wrap the ASGI app: count its exceptions (`stage="app"`) before hypercorn logs and answers
    them, and refuse websocket scopes (only HTTP/2 extended CONNECT can still produce one) with
    a close, which hypercorn answers 403."""

    async def contained(scope: Scope, receive: Receive, send: Send) -> None:
        if scope.get("type") == "websocket":
            await receive()
            await send({"type": "websocket.close", "code": 1008})
            return
        try:
            await app(scope, receive, send)
        except Exception as exc:
            metrics.failed("app", type(next(iter(_leaves(exc)), exc)).__name__)
            raise

    return contained
