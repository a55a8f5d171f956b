"""One persistent HTTP/1.1 client connection, over a non-blocking stdlib socket driven by trio.

Kubelets are many hosts with one request each per cycle, so the client needs no pool, no
redirects, no proxies and no cookies: just a connection per kubelet, kept alive across cycles.
`Connection.open()` connects (trio's `open_tcp_stream`: its happy eyeballs and its error messages),
then takes the file descriptor over as a plain `socket.socket`, wrapped in an `ssl.SSLSocket` for
HTTPS. OpenSSL then reads and writes the socket itself (no MemoryBIO copies as with
`trio.SSLStream`), and CPython's `SSL_MODE_RELEASE_BUFFERS` frees its record buffers while the
connection is idle. The request is sent as prebuilt bytes; `h11` parses the response. The `h11`
state lives only for the duration of one exchange, so an idle connection holds nothing but the
socket.

Use: `send(wire)`, `receive_head()`, then `receive_body(limit)`; `reusable` tells whether the
exchange left the connection ready for another one (response complete, keep-alive, no stray
bytes). Any error or cancellation in between leaves the connection unusable: the caller closes it.
Errors are `OSError` (connect, reset, TLS: `ssl.SSLError` is one), `h11.RemoteProtocolError` (a
malformed response, or EOF: "Server disconnected without sending a response.", as httpx says),
and `trio.ClosedResourceError` if `close()` raced a waiting call.

Cancellation: every wait is `trio.lowlevel.wait_readable/wait_writable`, so an enclosing trio
scope (the per-node request timeout) cancels at any point.
"""

from __future__ import annotations

import contextlib
import errno
import os
import socket
import ssl
import zlib
from collections.abc import Sequence

import h11
import trio

MAX_HEAD_BYTES = 100 * 1024
"""Largest response head accepted (httpcore's limit: h11 raises RemoteProtocolError past it)."""

RECEIVE_SIZE = 65536
"""Bytes asked for per read: a TLS record carries at most 16 KiB, a plain socket may give more."""

_FORMAT = h11.Request(method="GET", target="/", headers=[("Host", "kubelet")])
"""Stands for the real request in h11's state machine (the wire bytes are prebuilt elsewhere); h11
only needs to know that a GET went out (a HEAD would change how the response is framed)."""
_END = h11.EndOfMessage()


class DecodingError(Exception):
    """A Content-Encoding'd body could not be decoded (the message is zlib's, as in httpx)."""


class Connection:
    """One open connection (TLS or plain). Not for concurrent use by several tasks."""

    __slots__ = ("_h11", "_sock", "exchanges")

    def __init__(self, sock: socket.socket) -> None:
        self._sock = sock
        self._h11: h11.Connection | None = None
        self.exchanges = 0
        """Responses completely received on this connection (0: fresh, so a failure is not a
        stale kept-alive connection)."""

    @classmethod
    async def open(
        cls, host: str, port: int, ssl_context: ssl.SSLContext | None, server_hostname: str | None
    ) -> Connection:
        """Connect to `host:port`; with `ssl_context`, handshake and verify against
        `server_hostname` (an IP address there means an IP SAN check)."""
        stream = await trio.open_tcp_stream(host, port)
        # trio set TCP_NODELAY; the option stays with the descriptor.
        sock = socket.socket(fileno=stream.socket.detach())
        try:
            sock.setblocking(False)
            if ssl_context is not None:
                sock = ssl_context.wrap_socket(
                    sock, server_hostname=server_hostname, do_handshake_on_connect=False
                )
                await _handshake(sock)
        except BaseException:
            _close(sock)
            raise
        return cls(sock)

    @property
    def reusable(self) -> bool:
        """The last exchange completed and the connection may carry another one."""
        conn = self._h11
        return (
            conn is not None
            and conn.our_state is h11.DONE
            and conn.their_state is h11.DONE
            and not conn.trailing_data[0]
        )

    async def send(self, wire: bytes) -> None:
        """Start an exchange: send a complete GET request (prebuilt bytes)."""
        await trio.lowlevel.checkpoint_if_cancelled()
        conn = self._h11 = h11.Connection(h11.CLIENT, max_incomplete_event_size=MAX_HEAD_BYTES)
        conn.send(_FORMAT)
        conn.send(_END)
        sock = self._sock
        view = memoryview(wire)
        while view:
            try:
                # An SSLSocket writes all of it or nothing (no partial-write mode).
                view = view[sock.send(view) :]
            except (BlockingIOError, ssl.SSLWantWriteError):
                await trio.lowlevel.wait_writable(sock)
            except ssl.SSLWantReadError:
                await trio.lowlevel.wait_readable(sock)

    async def receive_head(self) -> h11.Response:
        """The final response's status line and headers (1xx responses are skipped)."""
        conn = self._h11
        assert conn is not None, "send() first"
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                data = await self._receive()
                if not data and conn.their_state is h11.SEND_RESPONSE:
                    raise h11.RemoteProtocolError("Server disconnected without sending a response.")
                conn.receive_data(data)
            elif type(event) is h11.Response:
                return event
            elif not isinstance(event, h11.InformationalResponse):  # pragma: no cover (h11 yields no other)
                raise h11.RemoteProtocolError(f"unexpected {type(event).__name__} before the response")

    async def receive_body(self, limit: int) -> list[bytes] | None:
        """The raw (still content-encoded) body pieces, or None as soon as they exceed `limit`
        bytes (the rest is not read, so the connection is then unusable)."""
        conn = self._h11
        assert conn is not None, "receive_head() first"
        pieces: list[bytes] = []
        size = 0
        while True:
            event = conn.next_event()
            if event is h11.NEED_DATA:
                conn.receive_data(await self._receive())
            elif type(event) is h11.Data:
                size += len(event.data)
                if size > limit:
                    return None
                pieces.append(event.data)
            elif type(event) is h11.EndOfMessage:
                self.exchanges += 1
                return pieces

    async def _receive(self) -> bytes:
        sock = self._sock
        while True:
            try:
                data = sock.recv(RECEIVE_SIZE)
                if not data and isinstance(sock, ssl.SSLSocket) and _was_reset(sock):
                    raise ConnectionResetError(errno.ECONNRESET, os.strerror(errno.ECONNRESET))
                return data
            except (BlockingIOError, ssl.SSLWantReadError):
                await trio.lowlevel.wait_readable(sock)
            except ssl.SSLWantWriteError:
                await trio.lowlevel.wait_writable(sock)

    def release(self) -> None:
        """Drop the finished exchange's parser state, so an idle connection holds only its socket."""
        self._h11 = None

    def close(self) -> None:
        """Close at once (no TLS close_notify): after an error, a cancellation or an abandoned body."""
        _close(self._sock)

    def close_gracefully(self) -> None:
        """Close an idle connection, telling a TLS peer with close_notify when it can be sent
        without waiting (best effort: the peer may already be gone)."""
        sock = self._sock
        if isinstance(sock, ssl.SSLSocket) and sock.fileno() != -1:
            # SSLWantReadError once close_notify is out: the peer's answer is not awaited.
            with contextlib.suppress(OSError, ValueError):
                sock.unwrap()
        _close(sock)


async def _handshake(sock: ssl.SSLSocket) -> None:
    while True:
        try:
            sock.do_handshake()
            return
        except ssl.SSLWantReadError:
            await trio.lowlevel.wait_readable(sock)
        except ssl.SSLWantWriteError:
            await trio.lowlevel.wait_writable(sock)


_TCP_CLOSE = 7
"""Linux's TCP_CLOSE state: where a reset leaves a socket (a peer's FIN leaves CLOSE_WAIT)."""


def _was_reset(sock: socket.socket) -> bool:
    """Whether the peer reset the connection. CPython's SSLSocket reports a reset as an EOF (and,
    with `suppress_ragged_eofs`, returns b"" as it does for a peer that closed without
    close_notify, which httpx also takes for an EOF); the TCP state tells them apart."""
    tcp_info = getattr(socket, "TCP_INFO", None)
    if tcp_info is None:  # pragma: no cover (not Linux)
        return False
    try:
        return sock.getsockopt(socket.IPPROTO_TCP, tcp_info, 1)[0] == _TCP_CLOSE
    except OSError:  # pragma: no cover
        return False


def _close(sock: socket.socket) -> None:
    if sock.fileno() != -1:
        # Wakes a task still waiting on the descriptor (ClosedResourceError) before it is reused.
        trio.lowlevel.notify_closing(sock)
    sock.close()


# -- Content-Encoding -----------------------------------------------------------------------------


class _Decoder:
    """gzip or deflate (zlib-wrapped, or raw as some servers send it), as httpx decodes them."""

    __slots__ = ("_deflate", "_zlib")

    def __init__(self, coding: str) -> None:
        self._deflate = coding == "deflate"
        self._zlib = zlib.decompressobj(zlib.MAX_WBITS if self._deflate else zlib.MAX_WBITS | 16)

    def decode(self, data: bytes, limit: int) -> bytes | None:
        """All of `data` decoded, or None once the output would exceed `limit` bytes (a small
        compressed body must not be able to inflate past the cap in memory)."""
        try:
            try:
                out = self._zlib.decompress(data, limit + 1)
            except zlib.error:
                if not self._deflate:
                    raise
                self._deflate = False  # retry once as raw deflate, then errors are errors
                self._zlib = zlib.decompressobj(-zlib.MAX_WBITS)
                out = self._zlib.decompress(data, limit + 1)
            if len(out) > limit or self._zlib.unconsumed_tail:
                return None
            out += self._zlib.flush()
        except zlib.error as exc:
            raise DecodingError(str(exc)) from exc
        return None if len(out) > limit else out


def content_decoders(headers: Sequence[tuple[bytes, bytes]]) -> list[_Decoder]:
    """Decoders for the response's Content-Encoding, in the order to apply them (identity and
    codings we never ask for are skipped, as httpx does). Empty for a plain body."""
    codings: list[str] = []
    for name, value in headers:
        if name == b"content-encoding":
            codings.extend(part.strip().lower() for part in value.decode("latin-1").split(","))
    return [_Decoder(coding) for coding in reversed(codings) if coding in ("gzip", "deflate")]


def decode_capped(pieces: list[bytes], decoders: list[_Decoder], limit: int) -> bytes | None:
    """The decoded body, or None when it would exceed `limit` bytes. Raises `DecodingError`."""
    data: bytes | None = b"".join(pieces)
    for decoder in decoders:
        assert data is not None
        data = decoder.decode(data, limit)
        if data is None:
            return None
    return data
