"""`--tls-cipher-suites` and `--tls-min-version` on real handshakes: the suites named (by Go's names)
are the only TLS 1.2 suites the server agrees to, TLS 1.3 stays as Go has it, and the default
leaves out what Go's default has beyond the ECDHE AEAD suites."""

from __future__ import annotations

import ssl

import pytest
import trio
from auth_testkit import HOST, Pki, start_server

from metrics_server.auth.serving import ServingConfig
from metrics_server.auth.tls import CIPHER_SUITES, CIPHERS, tls_settings


def serving(pki: Pki, **changes: object) -> ServingConfig:
    cert, key = pki.serving_files()  # trustme issues ECDSA keys: the ECDSA suites apply
    return ServingConfig(
        bind_address=HOST,
        secure_port=0,
        tls_cert_file=str(cert),
        tls_private_key_file=str(key),
        **changes,  # type: ignore[arg-type]
    )


async def negotiated(pki: Pki, port: int, *, ciphers: str = "", tls12: bool = True) -> tuple[str, str] | None:
    """(protocol, cipher) of a handshake offering `ciphers` (TLS 1.2 only with `tls12`), or None
    when the server refuses it."""
    ctx = pki.client_context(maximum=ssl.TLSVersion.TLSv1_2 if tls12 else None)
    if ciphers:
        ctx.set_ciphers(ciphers)
    stream = await trio.open_ssl_over_tcp_stream(HOST, port, ssl_context=ctx)
    try:
        await stream.do_handshake()
    except trio.BrokenResourceError:
        return None
    finally:
        await trio.aclose_forcefully(stream)
    cipher, version = stream.cipher(), stream.version()
    assert cipher is not None and version is not None
    return version, cipher[0]


async def test_only_the_named_tls12_suites_are_agreed(nursery: trio.Nursery, pki: Pki) -> None:
    config = serving(
        pki,
        tls_cipher_suites=("TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", "TLS_AES_128_GCM_SHA256"),
        disable_http2_serving=True,
    )
    server = await start_server(nursery, pki, serving=config)
    assert await negotiated(pki, server.port, ciphers="ECDHE-ECDSA-AES128-GCM-SHA256") is None
    assert await negotiated(pki, server.port, ciphers="ECDHE-ECDSA-CHACHA20-POLY1305") is None
    assert await negotiated(pki, server.port) == ("TLSv1.2", "ECDHE-ECDSA-AES256-GCM-SHA384")
    # TLS 1.3 suites are not configurable (as in Go): all three stay on.
    assert await negotiated(pki, server.port, tls12=False) == ("TLSv1.3", "TLS_AES_256_GCM_SHA384")


async def test_tls13_suites_only_leave_tls12_without_a_suite(nursery: trio.Nursery, pki: Pki) -> None:
    config = serving(pki, tls_cipher_suites=("TLS_AES_128_GCM_SHA256",), disable_http2_serving=True)
    server = await start_server(nursery, pki, serving=config)
    assert await negotiated(pki, server.port) is None
    result = await negotiated(pki, server.port, tls12=False)
    assert result is not None and result[0] == "TLSv1.3"


async def test_a_cbc_suite_go_calls_secure_can_be_chosen(nursery: trio.Nursery, pki: Pki) -> None:
    config = serving(
        pki, tls_cipher_suites=("TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA",), disable_http2_serving=True
    )
    server = await start_server(nursery, pki, serving=config)
    assert await negotiated(pki, server.port, ciphers="ECDHE-ECDSA-AES128-SHA") == (
        "TLSv1.2",
        "ECDHE-ECDSA-AES128-SHA",
    )


async def test_default_suites_are_the_ecdhe_aead_ones(nursery: trio.Nursery, pki: Pki) -> None:
    server = await start_server(nursery, pki, serving=serving(pki))
    assert (
        await negotiated(pki, server.port, ciphers="ECDHE-ECDSA-AES128-SHA") is None
    )  # CBC: in Go's default
    assert await negotiated(pki, server.port, ciphers="ECDHE-ECDSA-CHACHA20-POLY1305") == (
        "TLSv1.2",
        "ECDHE-ECDSA-CHACHA20-POLY1305",
    )


async def test_min_version_13_refuses_tls12(nursery: trio.Nursery, pki: Pki) -> None:
    server = await start_server(nursery, pki, serving=serving(pki, tls_min_version="VersionTLS13"))
    assert await negotiated(pki, server.port) is None
    result = await negotiated(pki, server.port, tls12=False)
    assert result is not None and result[0] == "TLSv1.3"


def test_every_go_name_maps_to_a_cipher_openssl_has() -> None:
    for name in set(CIPHER_SUITES.values()):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.set_ciphers(name)  # raises SSLError for a name OpenSSL does not know
        assert [c["name"] for c in ctx.get_ciphers() if not c["name"].startswith("TLS_")] == [name]
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.set_ciphers(CIPHERS)
    tls12 = {c["name"] for c in ctx.get_ciphers() if c["protocol"] == "TLSv1.2"}
    assert tls12 == {
        "ECDHE-ECDSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305",
        "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-RSA-CHACHA20-POLY1305",
    }


@pytest.mark.parametrize(
    ("suites", "http2", "expected"),
    [
        (
            ("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",),
            True,
            (ssl.TLSVersion.TLSv1_2, "ECDHE-RSA-AES128-GCM-SHA256"),
        ),
        (
            ("TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305", "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256"),
            False,
            (ssl.TLSVersion.TLSv1_2, "ECDHE-ECDSA-CHACHA20-POLY1305"),
        ),
        (("TLS_CHACHA20_POLY1305_SHA256",), False, (ssl.TLSVersion.TLSv1_3, CIPHERS)),
    ],
)
def test_settings(suites: tuple[str, ...], http2: bool, expected: tuple[ssl.TLSVersion, str]) -> None:
    assert tuple(tls_settings("VersionTLS12", suites, http2=http2)) == expected
