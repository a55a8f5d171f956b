"""One connection cannot end the server (`auth.connection`, `auth.peercert`): real TLS on
127.0.0.61, raw bytes from the client, the server's own counters.

* the h2c upgrades that ended the process (issue 13), one test per malformed `HTTP2-Settings`,
  and prior-knowledge `PRI` over TLS: served as HTTP/1.1, never switched, as Go does;
* containment: an exception in the h11 or h2 protocol, in the shim's TLS set-up or in the app
  closes (or answers 500 on) its connection only, is logged once and counted;
* Go's limits: 431 past 1 MiB + 4 KiB of request head (readable by a client still sending),
  400 for a malformed request, the 32 s header-read timeout (virtual time).
"""

from __future__ import annotations

import base64
import logging
import ssl
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest
import trio
import trio.testing
from auth_testkit import HOST, Pki
from hypercorn.protocol.h2 import H2Protocol

from metrics_server.asgi import Receive, Scope, Send
from metrics_server.auth import connection
from metrics_server.auth.connection import ConnectionMetrics, TLSH11Protocol
from metrics_server.auth.serving import ServingConfig, serve_https
from metrics_server.auth.tls import ServerTLS

KEEP_ALIVE = 90.0
HEADER_TIMEOUT = 32.0
AUTOJUMP_THRESHOLD = 0.1


@dataclass
class Pending:
    """`/pending` requests: started when they reach the app, cancelled when the app was cancelled."""

    started: trio.Event
    cancelled: trio.Event


PENDING = Pending(trio.Event(), trio.Event())


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """Echoes `<method> <path> <http version>`; `/boom` raises; `/pending` never answers."""
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    if scope["path"] == "/boom":
        raise RuntimeError("the app broke")
    if scope["path"] == "/pending":
        PENDING.started.set()
        try:
            await trio.sleep_forever()
        finally:
            PENDING.cancelled.set()
    body = f"{scope['method']} {scope['path']} {scope['http_version']}".encode()
    headers = [(b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


@dataclass
class Served:
    port: int
    metrics: ConnectionMetrics
    pki: Pki

    @property
    def url(self) -> str:
        return f"https://{HOST}:{self.port}"


async def start(nursery: trio.Nursery, pki: Pki, **serving: object) -> Served:
    cert, key = pki.serving_files()
    config = ServingConfig(
        bind_address=HOST,
        secure_port=0,
        tls_cert_file=str(cert),
        tls_private_key_file=str(key),
        keep_alive_timeout=KEEP_ALIVE,
        **serving,  # type: ignore[arg-type]
    )
    metrics = ConnectionMetrics()
    urls = await nursery.start(
        lambda task_status: serve_https(app, config, connection_metrics=metrics, task_status=task_status)
    )
    return Served(int(urls[0].rsplit(":", 1)[1]), metrics, pki)


@pytest.fixture
async def served(nursery: trio.Nursery, pki: Pki) -> Served:
    return await start(nursery, pki)


async def connect(
    served: Served, alpn: tuple[str, ...] | None = ("http/1.1",)
) -> trio.SSLStream[trio.SocketStream]:
    ctx = served.pki.client_context()
    if alpn:
        ctx.set_alpn_protocols(list(alpn))
    stream = await trio.open_ssl_over_tcp_stream(HOST, served.port, ssl_context=ctx)
    await stream.do_handshake()
    return stream


async def read_response(stream: trio.SSLStream[trio.SocketStream]) -> bytes:
    """One response with a Content-Length (the head, a blank line, the body)."""
    data = b""
    with trio.fail_after(60):  # a hang fails the test rather than the run
        while b"\r\n\r\n" not in data:
            chunk = await stream.receive_some()
            assert chunk, f"connection closed after {data!r}"
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = next(
            int(line.split(b":", 1)[1])
            for line in head.split(b"\r\n")
            if line.lower().startswith(b"content-length:")
        )
        while len(body) < length:
            chunk = await stream.receive_some()
            assert chunk, f"connection closed after {data!r}"
            body += chunk
    return head + b"\r\n\r\n" + body


async def read_to_end(stream: trio.SSLStream[trio.SocketStream]) -> bytes:
    """Everything until the server closes (EOF or an abrupt close)."""
    data = b""
    with trio.fail_after(3 * KEEP_ALIVE):
        while True:
            try:
                chunk = await stream.receive_some()
            except trio.BrokenResourceError:
                return data
            if not chunk:
                return data
            data += chunk


async def healthy(served: Served) -> bool:
    """The same server answers a fresh connection."""
    stream = await connect(served)
    async with stream:
        await stream.send_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        return (await read_response(stream)).endswith(b"\r\n\r\nGET /healthz 1.1")


def settings(*pairs: tuple[int, int]) -> bytes:
    return base64.urlsafe_b64encode(b"".join(struct.pack(">HI", k, v) for k, v in pairs)).rstrip(b"=")


H2C_SETTINGS = {
    "invalid-setting": settings((0x2, 5)),  # ENABLE_PUSH must be 0 or 1
    "bad-base64-padding": b"AAMAAABkAAQAAP__=",
    "not-a-multiple-of-6": base64.urlsafe_b64encode(b"\x00\x03\x00\x00\x00").rstrip(b"="),
    "window-2^31": settings((0x4, 2**31)),  # INITIAL_WINDOW_SIZE above 2^31 - 1
    "frame-size-1": settings((0x5, 1)),  # MAX_FRAME_SIZE below 2^14
    "valid": settings((0x3, 100), (0x4, 65535)),
}


def h2c_request(value: bytes, path: bytes = b"/healthz") -> bytes:
    return (
        b"GET " + path + b" HTTP/1.1\r\nHost: x\r\nUpgrade: h2c\r\n"
        b"Connection: Upgrade, HTTP2-Settings\r\nHTTP2-Settings: " + value + b"\r\n\r\n"
    )


@pytest.mark.parametrize("variant", list(H2C_SETTINGS))
async def test_h2c_upgrade_over_tls_is_served_as_http1(served: Served, variant: str) -> None:
    stream = await connect(served)
    async with stream:
        await stream.send_all(h2c_request(H2C_SETTINGS[variant]))
        response = await read_response(stream)
        assert response.startswith(b"HTTP/1.1 200 \r\n")
        assert response.endswith(b"\r\n\r\nGET /healthz 1.1")
        # still HTTP/1.1 on the same connection: nothing was switched
        await stream.send_all(b"GET /again HTTP/1.1\r\nHost: x\r\n\r\n")
        assert (await read_response(stream)).endswith(b"\r\n\r\nGET /again 1.1")
    assert await healthy(served)
    assert (served.metrics.total(), served.metrics.handshake_errors) == (0, 0)


@pytest.mark.parametrize("variant", list(H2C_SETTINGS))
async def test_h2c_upgrade_with_http2_serving_disabled(nursery: trio.Nursery, pki: Pki, variant: str) -> None:
    served = await start(nursery, pki, disable_http2_serving=True)
    stream = await connect(served, alpn=("h2", "http/1.1"))
    assert stream.selected_alpn_protocol() == "http/1.1"
    async with stream:
        await stream.send_all(h2c_request(H2C_SETTINGS[variant]))
        assert (await read_response(stream)).endswith(b"\r\n\r\nGET /healthz 1.1")
    assert await healthy(served)
    assert served.metrics.total() == 0


PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"
EMPTY_SETTINGS = b"\x00\x00\x00\x04\x00\x00\x00\x00\x00"


@pytest.mark.parametrize("alpn", [("http/1.1",), None], ids=["alpn-http1", "no-alpn"])
async def test_http2_prior_knowledge_over_tls_is_an_http1_request(
    served: Served, alpn: tuple[str, ...] | None
) -> None:
    """Go serves `PRI * HTTP/2.0` as a request (its auth answers 403 or 400): never HTTP/2 frames.
    Here the app sees it; the `SM` line that follows is not a request line: 400, then close."""
    stream = await connect(served, alpn)
    async with stream:
        await stream.send_all(PREFACE + EMPTY_SETTINGS)
        first = await read_response(stream)
        assert first.startswith(b"HTTP/1.1 200 \r\n")
        assert first.endswith(b"\r\n\r\nPRI * 2.0")
        assert await read_to_end(stream) == connection.go_error_response(400)
    assert await healthy(served)
    assert served.metrics.total() == 0


async def test_alpn_h2_is_still_http2(served: Served) -> None:
    async with httpx.AsyncClient(verify=served.pki.client_context(), http2=True, trust_env=False) as client:
        response = await client.get(served.url + "/x")
    assert (response.http_version, response.text) == ("HTTP/2", "GET /x 2")


async def test_disabled_http2_serving_negotiates_http1_only(nursery: trio.Nursery, pki: Pki) -> None:
    served = await start(nursery, pki, disable_http2_serving=True)
    async with httpx.AsyncClient(verify=served.pki.client_context(), http2=True, trust_env=False) as client:
        response = await client.get(served.url + "/x")
    assert (response.http_version, response.text) == ("HTTP/1.1", "GET /x 1.1")


@pytest.mark.parametrize("http2", [False, True], ids=["http1", "h2"])
async def test_a_request_whose_client_left_is_cancelled(served: Served, http2: bool) -> None:
    """Go cancels a request's context when its connection closes. Without that, hypercorn's h2
    kept the connection task (and socket) forever once a response finished after the close."""
    PENDING.started, PENDING.cancelled = trio.Event(), trio.Event()
    ctx = served.pki.client_context()
    async with (
        httpx.AsyncClient(verify=ctx, http2=http2, trust_env=False) as client,
        trio.open_nursery() as nursery,
    ):
        nursery.start_soon(client.get, served.url + "/pending")
        await PENDING.started.wait()
        nursery.cancel_scope.cancel()  # the client gives up: httpx closes the connection
    with trio.fail_after(30):  # guards a hang; the cancellation follows the close at once
        await PENDING.cancelled.wait()
    assert await healthy(served)


# --- containment ---------------------------------------------------------------------------------


def raising_on(marker: bytes, original: object) -> object:
    async def handle(self: object, event: object) -> None:
        if marker in getattr(event, "data", b""):
            raise ValueError("injected protocol failure")
        await original(self, event)  # type: ignore[operator]

    return handle


def warnings_of(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.name == connection.__name__ and r.levelno >= logging.WARNING
    ]


async def test_an_http1_protocol_exception_closes_only_its_connection(
    served: Served, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(TLSH11Protocol, "handle", raising_on(b"BOOM", TLSH11Protocol.handle))
    bystander = await connect(served)
    async with bystander:
        stream = await connect(served)
        async with stream:
            await stream.send_all(b"GET /BOOM HTTP/1.1\r\nHost: x\r\n\r\n")
            assert await read_to_end(stream) == b""
        await bystander.send_all(b"GET /still HTTP/1.1\r\nHost: x\r\n\r\n")
        assert (await read_response(bystander)).endswith(b"GET /still 1.1")
    assert await healthy(served)
    assert served.metrics.errors == {("http/1.1", "ValueError"): 1}
    [line] = warnings_of(caplog)
    assert line.endswith("closed: http/1.1 failed with ValueError: injected protocol failure")


async def test_an_h2_protocol_exception_closes_only_its_connection(
    served: Served, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(H2Protocol, "handle", raising_on(b"", H2Protocol.handle))  # any bytes
    with pytest.raises(httpx.TransportError):
        async with httpx.AsyncClient(
            verify=served.pki.client_context(), http2=True, trust_env=False
        ) as client:
            await client.get(served.url + "/x")
    assert await healthy(served)
    assert served.metrics.errors == {("h2", "ValueError"): 1}
    [line] = warnings_of(caplog)
    assert line.startswith("Connection from ('127.")


async def test_a_failure_of_the_tls_set_up_closes_only_its_connection(
    served: Served, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    original = ServerTLS.context
    calls = 0

    def context(self: ServerTLS) -> ssl.SSLContext:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise OSError("injected: certificate unreadable")
        return original(self)

    monkeypatch.setattr(ServerTLS, "context", context)
    ctx = served.pki.client_context()
    stream = await trio.open_ssl_over_tcp_stream(HOST, served.port, ssl_context=ctx)
    async with stream:
        with pytest.raises(trio.BrokenResourceError):
            await stream.do_handshake()
    assert await healthy(served)
    assert served.metrics.errors == {("tls", "OSError"): 1}
    assert len(warnings_of(caplog)) == 1


async def test_a_failed_handshake_is_counted_as_go_counts_it(served: Served) -> None:
    async with await trio.open_tcp_stream(HOST, served.port) as plain:
        await plain.send_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")  # HTTP on the TLS port
        with trio.fail_after(60):
            while await plain.receive_some():
                pass
    assert await healthy(served)
    assert (served.metrics.handshake_errors, served.metrics.total()) == (1, 0)


async def test_an_app_exception_is_a_500_and_counted(served: Served) -> None:
    stream = await connect(served)
    async with stream:
        await stream.send_all(b"GET /boom HTTP/1.1\r\nHost: x\r\n\r\n")
        assert (await read_response(stream)).startswith(b"HTTP/1.1 500 \r\n")
    assert await healthy(served)
    assert served.metrics.errors == {("app", "RuntimeError"): 1}


async def test_counters_are_exposed_with_go_names() -> None:
    import prometheus_client

    registry = prometheus_client.CollectorRegistry()
    metrics = ConnectionMetrics(registry)
    metrics.handshake_failed()
    metrics.failed("h2", "ProtocolError")
    metrics.failed("h2", "ProtocolError")
    text = prometheus_client.generate_latest(registry).decode()
    assert "apiserver_tls_handshake_errors_total 1.0\n" in text
    assert 'serving_connection_errors_total{error="ProtocolError",stage="h2"} 2.0\n' in text


# --- Go's limits ---------------------------------------------------------------------------------

LIMIT = connection.MAX_HEADER_BYTES + connection.HEADER_SLACK


def request_of_size(size: int, *, in_header: bool) -> bytes:
    """A GET whose request line plus headers is exactly `size` bytes."""
    base = b"GET /x HTTP/1.1\r\nHost: x\r\n\r\n"
    if in_header:
        pad = size - len(base) - len(b"X-Pad: \r\n")
        return b"GET /x HTTP/1.1\r\nHost: x\r\nX-Pad: " + b"p" * pad + b"\r\n\r\n"
    pad = size - len(base) - len(b"?q=")
    return b"GET /x?q=" + b"q" * pad + b" HTTP/1.1\r\nHost: x\r\n\r\n"


@pytest.mark.parametrize("in_header", [False, True], ids=["request-line", "header"])
async def test_a_head_within_the_limit_is_served(served: Served, in_header: bool) -> None:
    stream = await connect(served)
    async with stream:
        await stream.send_all(request_of_size(connection.MAX_HEADER_BYTES, in_header=in_header))
        assert (await read_response(stream)).startswith(b"HTTP/1.1 200 ")


@pytest.mark.parametrize("size", [LIMIT + 1, 2 * LIMIT, 4 * LIMIT])
@pytest.mark.parametrize("in_header", [False, True], ids=["request-line", "header"])
async def test_a_head_over_the_limit_is_431_even_for_a_client_still_sending(
    served: Served, size: int, in_header: bool
) -> None:
    """The client sends the whole request before it reads: the server lingers, reading what
    still comes, so the answer is there when the client looks (instead of a reset)."""
    stream = await connect(served)
    async with stream:
        await stream.send_all(request_of_size(size, in_header=in_header))
        assert await read_to_end(stream) == connection.go_error_response(431)
    assert await healthy(served)
    assert served.metrics.total() == 0


def test_go_error_answers_are_byte_exact() -> None:
    assert connection.go_error_response(431) == (
        b"HTTP/1.1 431 Request Header Fields Too Large\r\nContent-Type: text/plain; charset=utf-8\r\n"
        b"Connection: close\r\nContent-Length: 35\r\n\r\n431 Request Header Fields Too Large"
    )
    assert connection.go_error_response(400).endswith(b"\r\n\r\n400 Bad Request")


@pytest.mark.parametrize(
    "garbage",
    [b"\x16\x03\x01 not http\r\n\r\n", b"GET /x HTTP/1.1\r\nBad Header\r\n\r\n", b"GET\r\n\r\n"],
    ids=["binary", "header-without-colon", "no-target"],
)
async def test_a_malformed_request_is_400(served: Served, garbage: bytes) -> None:
    stream = await connect(served)
    async with stream:
        await stream.send_all(garbage)
        assert await read_to_end(stream) == connection.go_error_response(400)
    assert served.metrics.total() == 0


# --- the header-read timeout (virtual time) ------------------------------------------------------


@pytest.fixture
def clock(mock_clock: trio.testing.MockClock) -> trio.testing.MockClock:
    mock_clock.autojump_threshold = AUTOJUMP_THRESHOLD
    return mock_clock


@pytest.fixture
async def timed(clock: trio.testing.MockClock, nursery: trio.Nursery, pki: Pki) -> AsyncIterator[Served]:
    """The server under virtual time: each test takes `clock` itself too (pytest-trio picks the
    clock from the test's own arguments)."""
    yield await start(nursery, pki)


async def closed_after(stream: trio.SSLStream[trio.SocketStream]) -> tuple[float, bytes]:
    start = trio.current_time()
    data = await read_to_end(stream)
    return trio.current_time() - start, data


@pytest.mark.parametrize(
    ("sent", "answer"),
    [
        (b"", b""),
        (b"GET /heal", connection.go_error_response(400)),
        (b"GET /healthz HTTP/1.1\r\nHost: x\r\n", b""),
    ],
    ids=["nothing", "partial-request-line", "partial-headers"],
)
async def test_a_first_request_head_must_arrive_within_32s(
    clock: trio.testing.MockClock, timed: Served, sent: bytes, answer: bytes
) -> None:
    """What metrics-server v0.8.0 does: closed after 32 s, with 400 for a cut request line."""
    stream = await connect(timed)
    async with stream:
        await stream.send_all(sent)
        waited, data = await closed_after(stream)
    assert HEADER_TIMEOUT <= waited < HEADER_TIMEOUT + 1
    assert data == answer


async def test_a_later_request_has_32s_from_its_first_byte(
    clock: trio.testing.MockClock, timed: Served
) -> None:
    stream = await connect(timed)
    async with stream:
        await stream.send_all(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
        await read_response(stream)
        await trio.sleep(KEEP_ALIVE - 10)  # idle, within the keep-alive timeout
        await stream.send_all(b"GET /b HTTP/1.1\r\n")
        waited, data = await closed_after(stream)
    assert HEADER_TIMEOUT <= waited < HEADER_TIMEOUT + 1
    assert data == b""


async def test_an_idle_keep_alive_connection_lasts_the_keep_alive_timeout(
    clock: trio.testing.MockClock, timed: Served
) -> None:
    stream = await connect(timed)
    async with stream:
        await stream.send_all(b"GET /a HTTP/1.1\r\nHost: x\r\n\r\n")
        await read_response(stream)
        waited, data = await closed_after(stream)
    assert KEEP_ALIVE <= waited < KEEP_ALIVE + 1
    assert data == b""


async def test_a_slow_body_is_not_a_slow_head(clock: trio.testing.MockClock, timed: Served) -> None:
    """The header timeout ends with the head: a request whose body is slow is the app's business."""
    stream = await connect(timed)
    async with stream:
        await stream.send_all(b"POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n")
        await trio.sleep(2 * HEADER_TIMEOUT)
        await stream.send_all(b"{}")
        assert (await read_response(stream)).endswith(b"POST /a 1.1")
