"""TLS serving: the hypercorn peer-certificate shim, protocol versions, ALPN, refused client
certificates, certificate reload and client-CA rotation. Real TLS on 127.0.0.61."""

from __future__ import annotations

import gc
import importlib.metadata
import inspect
import logging
import os
import ssl
import weakref
from pathlib import Path

import httpx
import hypercorn.trio.run
import pytest
import trio
import trio.testing
from auth_testkit import HOST, Pki, Poke, echo_app, get, start_server
from cryptography import x509
from cryptography.x509.oid import NameOID
from hypercorn.trio.tcp_server import TCPServer

from metrics_server.asgi import Receive, Scope, Send
from metrics_server.auth import peercert
from metrics_server.auth.authconfig import AuthenticationConfig
from metrics_server.auth.errors import ServingOptionsError, ShimError
from metrics_server.auth.serving import ServingConfig, serve_https

PROXY_BOB = (("X-Remote-User", "bob"),)
HANDSHAKE_LOGGER = "metrics_server.auth.peercert"


async def handshake(pki: Pki, port: int, ctx: ssl.SSLContext) -> trio.SSLStream[trio.SocketStream]:
    stream = await trio.open_ssl_over_tcp_stream(HOST, port, ssl_context=ctx)
    await stream.do_handshake()
    return stream


async def refused(pki: Pki, port: int, ctx: ssl.SSLContext) -> BaseException:
    """Handshake and send a request; return the error the client sees (asserting there is one)."""
    stream = await trio.open_ssl_over_tcp_stream(HOST, port, ssl_context=ctx)
    try:
        with pytest.raises(trio.BrokenResourceError) as info:
            await stream.do_handshake()
            # TLS 1.3: the server checks the client certificate after the client's handshake ends.
            await stream.send_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            await stream.receive_some(1)
            await stream.receive_some(1)
        return info.value.__cause__ or info.value
    finally:
        await trio.aclose_forcefully(stream)


def handshake_failures(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == HANDSHAKE_LOGGER]


def served_common_name(stream: trio.SSLStream[trio.SocketStream]) -> str:
    der = stream.getpeercert(binary_form=True)
    assert der is not None
    cert = x509.load_der_x509_certificate(der)
    return str(cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)


# --- the shim ------------------------------------------------------------------------------------


def test_hypercorn_internals_the_shim_relies_on() -> None:
    """If this fails, hypercorn changed: re-check `auth.peercert` before changing the pin."""
    assert importlib.metadata.version("hypercorn") == "0.18.0"
    assert hypercorn.trio.run.TCPServer in (TCPServer, peercert.PeerCertTCPServer)  # type: ignore[attr-defined]
    assert tuple(inspect.signature(TCPServer.__init__).parameters) == (
        "self",
        "app",
        "config",
        "context",
        "state",
        "stream",
    )
    source = inspect.getsource(TCPServer.run)
    assert "self.stream.do_handshake()" in source
    assert "ConnectionState(self.state)" in source
    peercert.install()
    peercert.install()  # idempotent
    assert hypercorn.trio.run.TCPServer is peercert.PeerCertTCPServer  # type: ignore[attr-defined]


def test_install_refuses_an_unknown_tcp_server(monkeypatch: pytest.MonkeyPatch) -> None:
    class Other:
        pass

    monkeypatch.setattr(hypercorn.trio.run, "TCPServer", Other)
    with pytest.raises(ShimError, match="expected hypercorn's TCPServer"):
        peercert.install()


BIG_BODY = bytes(range(256)) * 4096 * 3
"""3 MiB, a /metrics body at a few thousand nodes."""


async def big_app(scope: Scope, receive: Receive, send: Send) -> None:
    if scope["type"] == "lifespan":
        await echo_app(scope, receive, send)
        return
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-length", b"%d" % len(BIG_BODY))],
        }
    )
    await send({"type": "http.response.body", "body": BIG_BODY})


@pytest.mark.parametrize("http2", [False, True], ids=["http1.1", "h2"])
async def test_large_responses_are_written_in_pieces(
    http2: bool, nursery: trio.Nursery, pki: Pki, monkeypatch: pytest.MonkeyPatch
) -> None:
    """OpenSSL's outgoing buffer grows to the largest single write, and a closed connection's
    stream is freed only by a full collection (issue 15: the serving process's RSS growth): no
    write is larger than `MAX_TLS_WRITE`, and the bodies arrive whole (over HTTP/2 too, where
    the pieces of one frame write must not interleave with another's)."""
    writes: list[int] = []
    send_all = trio.SSLStream.send_all

    async def recording(self: trio.SSLStream[trio.abc.Stream], data: bytes | memoryview) -> None:
        if self.server_side:
            writes.append(len(data))
        await send_all(self, data)

    monkeypatch.setattr(trio.SSLStream, "send_all", recording)
    server = await start_server(nursery, pki, inner=big_app)
    ctx = pki.client_context(pki.proxy)
    responses: list[httpx.Response] = []
    async with (
        httpx.AsyncClient(verify=ctx, http2=http2, trust_env=False) as client,
        trio.open_nursery() as requests,
    ):

        async def fetch() -> None:
            responses.append(await client.get(server.url + "/big", headers=PROXY_BOB))

        for _ in range(3):  # concurrent, on one connection with HTTP/2
            requests.start_soon(fetch)
    assert [(r.status_code, r.content == BIG_BODY) for r in responses] == [(200, True)] * 3
    assert max(writes) <= peercert.MAX_TLS_WRITE  # HTTP/2 writes frames of 16 KB anyway
    assert sum(writes) > 3 * len(BIG_BODY)


async def test_a_finished_connection_lets_go_without_the_garbage_collector(
    nursery: trio.Nursery, pki: Pki, monkeypatch: pytest.MonkeyPatch
) -> None:
    """hypercorn's per-connection server object and trio's TLS stream are each in a reference
    cycle; once the connection has ended they hold nothing (OpenSSL's objects, the protocol,
    tasks), so that is freed by refcount at once, not at the next full collection. (Other servers
    of the test process may have connections open: only this server's objects are looked at.)"""
    let_go: list[list[weakref.ref[object]]] = []
    original = peercert._let_go

    def recording(*finished: object) -> None:
        let_go.append([weakref.ref(obj) for obj in finished])
        original(*finished)

    monkeypatch.setattr(peercert, "_let_go", recording)
    server = await start_server(nursery, pki, inner=big_app)
    gc.collect()
    gc.disable()
    try:
        for _ in range(2):
            # `Connection: close`: the server ends the connection itself (one the client just
            # drops lingers until the keep-alive timeout).
            headers = (*PROXY_BOB, ("Connection", "close"))
            response = await get(server, pki, "/big", cert=pki.proxy, headers=headers)
            assert (response.status_code, response.content == BIG_BODY) == (200, True)
        # Until the server has seen both connections end (I/O included, hence the cushion).
        await trio.testing.wait_all_tasks_blocked(cushion=0.05)
        kinds = [[type(ref()) for ref in refs] for refs in let_go]
        holding = [vars(obj) for refs in let_go for ref in refs if (obj := ref()) is not None and vars(obj)]
    finally:
        gc.enable()
    # Each connection let go of its server object and its TLS stream (dead, or alive in a cycle
    # but empty), with the collector off.
    assert len(kinds) == 2
    assert all(
        kind in ([peercert.PeerCertTCPServer, trio.SSLStream], [type(None), type(None)]) for kind in kinds
    )
    assert holding == []


@pytest.mark.parametrize("http2", [False, True], ids=["http1.1", "h2"])
async def test_client_certificate_reaches_the_app(http2: bool, nursery: trio.Nursery, pki: Pki) -> None:
    server = await start_server(nursery, pki)
    response = await get(
        server, pki, "/apis/metrics.k8s.io/v1beta1", cert=pki.proxy, headers=PROXY_BOB, http2=http2
    )
    seen = response.json()
    assert response.http_version == ("HTTP/2" if http2 else "HTTP/1.1")
    assert seen["http_version"] == ("2" if http2 else "1.1")
    sent = x509.load_pem_x509_certificate(pki.proxy.cert_pem)
    assert [x509.load_pem_x509_certificate(p.encode()) for p in seen["client_cert_chain"]] == [sent]
    assert seen["tls_version"] == 0x0304
    assert seen["user"]["name"] == "bob"


async def test_several_requests_on_one_http2_connection_keep_the_certificate(
    nursery: trio.Nursery, pki: Pki
) -> None:
    server = await start_server(nursery, pki)
    ctx = pki.client_context(pki.proxy)
    async with httpx.AsyncClient(verify=ctx, http2=True, trust_env=False) as client:
        responses = [await client.get(server.url + "/metrics", headers=PROXY_BOB) for _ in range(3)]
    assert [(r.http_version, r.json()["user"]["name"]) for r in responses] == [("HTTP/2", "bob")] * 3


async def test_disable_http2_serving(nursery: trio.Nursery, pki: Pki) -> None:
    cert, key = pki.serving_files()
    serving = ServingConfig(
        bind_address=HOST,
        secure_port=0,
        tls_cert_file=str(cert),
        tls_private_key_file=str(key),
        disable_http2_serving=True,
    )
    server = await start_server(nursery, pki, serving=serving)
    response = await get(server, pki, "/healthz", http2=True)
    assert (response.http_version, response.json()["http_version"]) == ("HTTP/1.1", "1.1")


# --- protocol versions -----------------------------------------------------------------------------


async def test_tls12_minimum_refuses_tls11(
    nursery: trio.Nursery, pki: Pki, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=HANDSHAKE_LOGGER)
    server = await start_server(nursery, pki)
    old = pki.client_context(minimum=ssl.TLSVersion.TLSv1_1, maximum=ssl.TLSVersion.TLSv1_1)
    await refused(pki, server.port, old)
    [failure] = handshake_failures(caplog)
    assert "UNSUPPORTED_PROTOCOL" in failure
    stream = await handshake(pki, server.port, pki.client_context(maximum=ssl.TLSVersion.TLSv1_2))
    assert stream.version() == "TLSv1.2"
    await stream.aclose()


async def test_tls13_minimum_refuses_tls12(
    nursery: trio.Nursery, pki: Pki, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger=HANDSHAKE_LOGGER)
    cert, key = pki.serving_files()
    serving = ServingConfig(
        bind_address=HOST,
        secure_port=0,
        tls_cert_file=str(cert),
        tls_private_key_file=str(key),
        tls_min_version="VersionTLS13",
    )
    server = await start_server(nursery, pki, serving=serving)
    await refused(pki, server.port, pki.client_context(maximum=ssl.TLSVersion.TLSv1_2))
    [failure] = handshake_failures(caplog)
    assert "UNSUPPORTED_PROTOCOL" in failure
    stream = await handshake(pki, server.port, pki.client_context())
    assert stream.version() == "TLSv1.3"
    await stream.aclose()


# --- refused client certificates --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("cert", "reason"),
    [("rogue", "unable to get local issuer certificate"), ("expired_proxy", "certificate has expired")],
)
@pytest.mark.parametrize("tls", ["1.2", "1.3"])
async def test_untrusted_or_expired_certificate_is_refused_at_the_handshake(
    cert: str, reason: str, tls: str, nursery: trio.Nursery, pki: Pki, caplog: pytest.LogCaptureFixture
) -> None:
    """Python's ssl verifies a presented certificate during the handshake (no RequestClientCert
    mode): where the library would answer 401, the connection is refused."""
    caplog.set_level(logging.INFO, logger=HANDSHAKE_LOGGER)
    server = await start_server(nursery, pki)
    version = ssl.TLSVersion.TLSv1_2 if tls == "1.2" else ssl.TLSVersion.TLSv1_3
    await refused(pki, server.port, pki.client_context(getattr(pki, cert), maximum=version))
    [failure] = handshake_failures(caplog)
    assert reason in failure
    assert server.access.calls == []


async def test_without_client_cas_no_certificate_is_requested(nursery: trio.Nursery, pki: Pki) -> None:
    server = await start_server(
        nursery, pki, config=AuthenticationConfig(client_ca_pem=None, request_header=None)
    )
    response = await get(server, pki, "/metrics", cert=pki.rogue, headers=PROXY_BOB)
    seen = response.json()
    assert (seen["client_cert_chain"], seen["user"]["name"]) == ([], "system:anonymous")


# --- reloads ------------------------------------------------------------------------------------------


def _replace(path: Path, data: bytes) -> None:
    before = path.stat().st_mtime_ns
    path.write_bytes(data)
    os.utime(path, ns=(before + 10**9, before + 10**9))  # a visible change even on coarse clocks


async def test_certificate_files_are_reloaded(nursery: trio.Nursery, pki: Pki, tmp_path: Path) -> None:
    first = pki.server_ca.issue_cert(HOST, common_name="first")
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    cert.write_bytes(first.cert_chain_pems[0].bytes())
    key.write_bytes(first.private_key_pem.bytes())
    poke = Poke()
    serving = ServingConfig(
        bind_address=HOST, secure_port=0, tls_cert_file=str(cert), tls_private_key_file=str(key)
    )
    server = await start_server(nursery, pki, serving=serving, reload_trigger=poke)
    old = await handshake(pki, server.port, pki.client_context())
    assert served_common_name(old) == "first"

    await poke.poke()  # nothing changed
    second = pki.server_ca.issue_cert(HOST, common_name="second")
    _replace(key, second.private_key_pem.bytes())
    await poke.poke()  # key changed, certificate not yet: keeps the old context
    new = await handshake(pki, server.port, pki.client_context())
    assert served_common_name(new) == "first"
    await new.aclose()

    _replace(cert, second.cert_chain_pems[0].bytes())
    await poke.poke()
    new = await handshake(pki, server.port, pki.client_context())
    assert served_common_name(new) == "second"
    await new.aclose()
    # the connection opened before the reload still works, with its old certificate
    await old.send_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
    assert (await old.receive_some(100)).startswith(b"HTTP/1.1 200")
    await old.aclose()


async def test_client_ca_rotation_applies_to_new_connections(nursery: trio.Nursery, pki: Pki) -> None:
    server = await start_server(nursery, pki)
    ok = await get(server, pki, "/metrics", cert=pki.proxy, headers=PROXY_BOB)
    assert ok.json()["user"]["name"] == "bob"

    # rotate the front-proxy CA to the "rogue" one: old proxy certificates stop working at once
    server.source.config = pki.auth_config(front_proxy_ca=pki.rogue_ca, allowed_names=())
    with pytest.raises(httpx.RemoteProtocolError):
        await get(server, pki, "/metrics", cert=pki.proxy, headers=PROXY_BOB)
    rotated = await get(server, pki, "/metrics", cert=pki.rogue, headers=PROXY_BOB)
    assert rotated.json()["user"]["name"] == "bob"
    # the client CA is still trusted
    alice = await get(server, pki, "/metrics", cert=pki.alice)
    assert alice.json()["user"]["name"] == "alice"


async def test_unloadable_certificate_fails_start_up(nursery: trio.Nursery, pki: Pki, tmp_path: Path) -> None:
    cert, key = tmp_path / "tls.crt", tmp_path / "tls.key"
    cert.write_bytes(b"not a certificate")
    key.write_bytes(b"nor a key")
    serving = ServingConfig(
        bind_address=HOST, secure_port=0, tls_cert_file=str(cert), tls_private_key_file=str(key)
    )
    with pytest.raises(ServingOptionsError) as info:
        await nursery.start(lambda task_status: serve_https(_never_called, serving, task_status=task_status))
    assert info.value.flag == "--tls-cert-file"


async def _never_called(*_: object) -> None:
    raise AssertionError("no request expected")


async def test_shutdown_trigger_stops_serving(pki: Pki) -> None:
    cert, key = pki.serving_files()
    serving = ServingConfig(
        bind_address=HOST, secure_port=0, tls_cert_file=str(cert), tls_private_key_file=str(key)
    )
    stop = trio.Event()
    with trio.fail_after(30):
        async with trio.open_nursery() as nursery:
            urls = await nursery.start(
                lambda task_status: serve_https(
                    echo_app, serving, shutdown_trigger=stop.wait, task_status=task_status
                )
            )
            assert urls[0].startswith(f"https://{HOST}:")
            stop.set()
    # the nursery exited: serve_https returned (its file watcher was cancelled with it)
