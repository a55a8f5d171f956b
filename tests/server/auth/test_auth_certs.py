"""The self-signed serving certificate: its shape, the files, reuse, and serving with it."""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
import stat
import tempfile
from pathlib import Path

import pytest
import trio
from auth_testkit import HOST, Pki, echo_app
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from metrics_server.auth import certs
from metrics_server.auth.errors import ServingOptionsError
from metrics_server.auth.serving import ServingConfig, serve_https

NOW = dt.datetime(2026, 3, 1, 12, 0, 0, tzinfo=dt.UTC)


def cn(cert: x509.Certificate) -> str:
    return str(cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value)


def sans(cert: x509.Certificate) -> tuple[list[str], list[str]]:
    ext = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return ext.get_values_for_type(x509.DNSName), [str(ip) for ip in ext.get_values_for_type(x509.IPAddress)]


def test_generated_pair_is_shaped_like_the_librarys() -> None:
    ips, dns = certs.serving_alternates("127.0.0.61")
    cert_pem, key_pem = certs.generate_self_signed("localhost", ips, dns, now=NOW)
    leaf, ca = x509.load_pem_x509_certificates(cert_pem)
    stamp = int(NOW.timestamp())
    assert (cn(leaf), cn(ca)) == (f"localhost@{stamp}", f"localhost-ca@{stamp}")
    assert (leaf.serial_number, ca.serial_number) == (2, 1)
    assert leaf.issuer == ca.subject == ca.issuer
    leaf.verify_directly_issued_by(ca)
    assert sans(leaf) == (["localhost"], ["127.0.0.1", "127.0.0.61"])
    for c in (leaf, ca):
        assert c.not_valid_before_utc == NOW - dt.timedelta(hours=1)
        assert c.not_valid_after_utc == NOW - dt.timedelta(hours=1) + dt.timedelta(days=365)
    assert list(leaf.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value) == [
        ExtendedKeyUsageOID.SERVER_AUTH
    ]
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert not leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert key_pem.startswith(b"-----BEGIN RSA PRIVATE KEY-----\n")
    assert certs.pair_problem(cert_pem, key_pem, NOW) is None


def test_unspecified_bind_address_adds_localhost_not_the_address() -> None:
    ips, dns = certs.serving_alternates("0.0.0.0")
    assert ([str(i) for i in ips], dns) == (["127.0.0.1"], ["localhost"])
    cert_pem, _ = certs.generate_self_signed("localhost", ips, dns, now=NOW)
    assert sans(x509.load_pem_x509_certificates(cert_pem)[0]) == (["localhost"], ["127.0.0.1"])
    ips6, _ = certs.serving_alternates("fd00::1")
    assert ips6 == [ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("fd00::1")]


def test_pair_is_written_then_reused_then_replaced_when_expired(tmp_path: Path) -> None:
    directory = tmp_path / "certs" / "nested"
    cert, key = certs.ensure_serving_pair(directory, "127.0.0.61", now=NOW)
    assert (cert, key) == (directory / "apiserver.crt", directory / "apiserver.key")
    assert (stat.S_IMODE(cert.stat().st_mode), stat.S_IMODE(key.stat().st_mode)) == (0o644, 0o600)
    first = cert.read_bytes()

    assert certs.ensure_serving_pair(directory, "127.0.0.61", now=NOW + dt.timedelta(days=200)) == (cert, key)
    assert cert.read_bytes() == first  # reused

    later = NOW + dt.timedelta(days=400)
    certs.ensure_serving_pair(directory, "127.0.0.61", now=later)
    assert cert.read_bytes() != first  # the old one had expired
    assert certs.pair_problem(cert.read_bytes(), key.read_bytes(), later) is None
    assert sorted(p.name for p in directory.iterdir()) == ["apiserver.crt", "apiserver.key"]


def test_pair_problems(tmp_path: Path) -> None:
    cert_pem, key_pem = certs.generate_self_signed("localhost", [], [], now=NOW)
    _, other_key = certs.generate_self_signed("localhost", [], [], now=NOW)
    assert certs.pair_problem(cert_pem, other_key, NOW) == "the private key does not match the certificate"
    assert certs.pair_problem(b"junk", key_pem, NOW) is not None
    assert (certs.pair_problem(cert_pem, key_pem, NOW - dt.timedelta(hours=2)) or "").startswith(
        "the certificate is not valid now"
    )


def test_half_a_pair_is_refused(tmp_path: Path) -> None:
    (tmp_path / "apiserver.crt").write_bytes(b"x")
    with pytest.raises(ServingOptionsError) as info:
        certs.ensure_serving_pair(tmp_path, "127.0.0.61")
    assert info.value.flag == "--cert-dir"
    assert str(info.value) == (
        f"--cert-dir: error reading {tmp_path / 'apiserver.key'}, "
        "certificate and key must be supplied as a pair"
    )


async def _served_certificate(port: int, ctx: ssl.SSLContext) -> x509.Certificate:
    stream = await trio.open_ssl_over_tcp_stream(HOST, port, ssl_context=ctx)
    await stream.do_handshake()
    der = stream.getpeercert(binary_form=True)
    await stream.aclose()
    assert der is not None
    return x509.load_der_x509_certificate(der)


async def test_serving_with_a_generated_certificate_in_cert_dir(
    nursery: trio.Nursery, tmp_path: Path
) -> None:
    serving = ServingConfig(bind_address=HOST, secure_port=0, cert_dir=str(tmp_path))
    urls = await nursery.start(lambda task_status: serve_https(echo_app, serving, task_status=task_status))
    leaf, ca = x509.load_pem_x509_certificates((tmp_path / "apiserver.crt").read_bytes())
    # a client trusting the generated CA verifies the server for 127.0.0.61 (the bind address)
    ctx = ssl.create_default_context(cadata=ca.public_bytes(Encoding.PEM).decode())
    served = await _served_certificate(int(urls[0].rsplit(":", 1)[1]), ctx)
    assert served == leaf
    assert sans(leaf) == (["localhost"], ["127.0.0.1", HOST])


async def test_in_memory_certificate_when_cert_dir_is_empty(
    pki: Pki, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[Path] = []

    def mkdtemp(prefix: str) -> str:
        made.append(tmp_path / f"{prefix}x")
        made[-1].mkdir()
        return str(made[-1])

    monkeypatch.setattr(tempfile, "mkdtemp", mkdtemp)
    serving = ServingConfig(bind_address=HOST, secure_port=0, cert_dir="")
    stop = trio.Event()
    async with trio.open_nursery() as nursery:
        urls = await nursery.start(
            lambda task_status: serve_https(
                echo_app, serving, shutdown_trigger=stop.wait, task_status=task_status
            )
        )
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        served = await _served_certificate(int(urls[0].rsplit(":", 1)[1]), ctx)
        assert cn(served).startswith("localhost@")
        assert made and made[0].name.startswith("metrics-server-cert-")
        assert sorted(p.name for p in made[0].iterdir()) == ["apiserver.crt", "apiserver.key"]
        stop.set()
    assert not made[0].exists()  # removed on exit
