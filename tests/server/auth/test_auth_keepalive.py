"""Keep-alive of served connections: the idle timer of the peer-certificate shim (`_IdleTimer`
replaces hypercorn's per-request idle task and must behave like it). Real TLS on 127.0.0.61,
virtual time (MockClock autojump) for the timeouts."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import pytest
import trio
import trio.testing
from auth_testkit import HOST, Pki

from metrics_server.asgi import Receive, Scope, Send
from metrics_server.auth.serving import ServingConfig, serve_https

KEEP_ALIVE = 30.0
AUTOJUMP_THRESHOLD = 0.1  # real seconds without activity before the clock jumps (as tests/server/scrape)
REQUEST = b"GET /%s HTTP/1.1\r\nHost: " + HOST.encode() + b"\r\n\r\n"
RESPONSE_END = b"\r\n\r\nok"


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    """`/slow` answers after 2 x KEEP_ALIVE (virtual) seconds, anything else at once; always `ok`."""
    if scope["type"] == "lifespan":
        while (await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    if scope["path"] == "/slow":
        await trio.sleep(2 * KEEP_ALIVE)
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})


@dataclass
class Served:
    port: int
    stop: trio.Event


@pytest.fixture
async def served(nursery: trio.Nursery, pki: Pki) -> AsyncIterator[Served]:
    """The server; each test takes `mock_clock` itself (pytest-trio picks the clock from the
    test's own arguments) and sets its autojump threshold first."""
    cert, key = pki.serving_files()
    serving = ServingConfig(
        bind_address=HOST,
        secure_port=0,
        tls_cert_file=str(cert),
        tls_private_key_file=str(key),
        keep_alive_timeout=KEEP_ALIVE,
        graceful_timeout=10 * KEEP_ALIVE,
    )
    stop = trio.Event()
    urls = await nursery.start(
        lambda task_status: serve_https(app, serving, shutdown_trigger=stop.wait, task_status=task_status)
    )
    yield Served(int(urls[0].rsplit(":", 1)[1]), stop)
    stop.set()


@pytest.fixture
def clock(mock_clock: trio.testing.MockClock) -> trio.testing.MockClock:
    mock_clock.autojump_threshold = AUTOJUMP_THRESHOLD
    return mock_clock


@asynccontextmanager
async def connect(pki: Pki, served: Served) -> AsyncIterator[trio.SSLStream[trio.SocketStream]]:
    stream = await trio.open_ssl_over_tcp_stream(HOST, served.port, ssl_context=pki.client_context())
    async with stream:
        await stream.do_handshake()
        yield stream


async def read_response(stream: trio.SSLStream[trio.SocketStream]) -> bytes:
    data = b""
    with trio.fail_after(5 * KEEP_ALIVE):  # virtual time: a hang fails at once
        while not data.endswith(RESPONSE_END):
            chunk = await stream.receive_some()
            assert chunk, f"connection closed after {data!r}"
            data += chunk
    return data


async def closed_by_server(stream: trio.SSLStream[trio.SocketStream]) -> bool:
    """True when the server closed the connection (EOF or an abrupt close), False on data."""
    try:
        with trio.fail_after(5 * KEEP_ALIVE):  # virtual time: a hang fails at once
            return await stream.receive_some() == b""
    except trio.BrokenResourceError:
        return True


async def test_idle_connection_is_closed_after_the_keep_alive_timeout(
    clock: trio.testing.MockClock, pki: Pki, served: Served
) -> None:
    async with connect(pki, served) as stream:
        await stream.send_all(REQUEST % b"a")
        assert (await read_response(stream)).startswith(b"HTTP/1.1 200 ")
        idle_since = trio.current_time()
        with trio.move_on_after(KEEP_ALIVE - 1):
            await stream.receive_some()
            raise AssertionError("closed before the keep-alive timeout")
        assert await closed_by_server(stream)
        assert trio.current_time() - idle_since >= KEEP_ALIVE


async def test_connection_without_request_is_closed_after_the_keep_alive_timeout(
    clock: trio.testing.MockClock, pki: Pki, served: Served
) -> None:
    async with connect(pki, served) as stream:
        connected = trio.current_time()
        assert await closed_by_server(stream)
        assert trio.current_time() - connected >= KEEP_ALIVE


async def test_each_request_restarts_the_keep_alive_timeout(
    clock: trio.testing.MockClock, pki: Pki, served: Served
) -> None:
    async with connect(pki, served) as stream:
        start = trio.current_time()
        for path in (b"a", b"b", b"c", b"d"):
            await stream.send_all(REQUEST % path)
            assert (await read_response(stream)).startswith(b"HTTP/1.1 200 ")
            await trio.sleep(KEEP_ALIVE * 0.6)
        assert trio.current_time() - start > 2 * KEEP_ALIVE  # the connection outlived one timeout
        await stream.send_all(REQUEST % b"e")
        assert (await read_response(stream)).startswith(b"HTTP/1.1 200 ")


async def test_a_busy_connection_is_not_closed_by_the_keep_alive_timeout(
    clock: trio.testing.MockClock, pki: Pki, served: Served
) -> None:
    async with connect(pki, served) as stream:
        await stream.send_all(REQUEST % b"slow")
        sent = trio.current_time()
        assert (await read_response(stream)).startswith(b"HTTP/1.1 200 ")
        assert trio.current_time() - sent >= 2 * KEEP_ALIVE
        idle_since = trio.current_time()
        assert await closed_by_server(stream)
        assert trio.current_time() - idle_since >= KEEP_ALIVE


async def test_shutdown_closes_idle_connections_at_once_and_busy_ones_after_their_response(
    clock: trio.testing.MockClock, pki: Pki, served: Served
) -> None:
    async with connect(pki, served) as idle, connect(pki, served) as busy:
        await idle.send_all(REQUEST % b"a")
        await read_response(idle)
        await busy.send_all(REQUEST % b"slow")
        await trio.sleep(1)  # virtual time: the slow request is in the app now
        stopped = trio.current_time()
        served.stop.set()
        assert await closed_by_server(idle)
        assert trio.current_time() - stopped < KEEP_ALIVE  # not closed by the idle timeout
        assert (await read_response(busy)).startswith(b"HTTP/1.1 200 ")
        assert await closed_by_server(busy)


async def test_a_connection_closed_by_the_client_mid_request_does_not_delay_shutdown(
    clock: trio.testing.MockClock, pki: Pki
) -> None:
    cert, key = pki.serving_files()
    serving = ServingConfig(
        bind_address=HOST,
        secure_port=0,
        tls_cert_file=str(cert),
        tls_private_key_file=str(key),
        keep_alive_timeout=KEEP_ALIVE,
        graceful_timeout=10 * KEEP_ALIVE,
    )
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        urls = await nursery.start(
            lambda task_status: serve_https(app, serving, shutdown_trigger=stop.wait, task_status=task_status)
        )
        served = Served(int(urls[0].rsplit(":", 1)[1]), stop)
        async with connect(pki, served) as stream:
            await stream.send_all(REQUEST % b"slow")
            await trio.sleep(1)  # virtual time: the slow request is in the app now
        await trio.sleep(4 * KEEP_ALIVE)  # the slow request has finished long ago
        stopped = trio.current_time()
        stop.set()
    assert trio.current_time() - stopped < KEEP_ALIVE  # not held until the graceful timeout
