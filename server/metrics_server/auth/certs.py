"""The serving certificate when none is given: a self-signed pair, as the apiserver library makes it.

`generate_self_signed(...)` mirrors client-go's `certutil.GenerateSelfSignedCertKeyWithFixtures`:
a throw-away RSA-2048 CA `<host>-ca@<unix-ts>` (serial 1) signs a serving certificate
`<host>@<unix-ts>` (serial 2, ExtKeyUsage serverAuth), both valid from one hour ago for one year.
The certificate file holds the leaf followed by the CA; the key file is a PKCS#1 `RSA PRIVATE KEY`.

`ensure_serving_pair(...)` mirrors `SecureServingOptions.MaybeDefaultWithSelfSignedCerts` with
metrics-server's arguments (public address `localhost`, alternate IP `127.0.0.1`): the pair lives
in `<cert-dir>/<pair>.crt|.key`; an existing pair is reused when it loads, its key matches and it
is within its validity (the library reuses any readable pair; we also replace an unusable one,
with a warning). Only one of the two files present is refused, as the library does.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import logging
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from metrics_server.auth.errors import ServingOptionsError

logger = logging.getLogger(__name__)

PUBLIC_ADDRESS = "localhost"
"""The `host` metrics-server passes to the library's self-signed helper."""
DEFAULT_ALTERNATE_IPS = ("127.0.0.1",)
VALIDITY = dt.timedelta(days=365)
BACKDATE = dt.timedelta(hours=1)

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=True,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )


def generate_self_signed(
    host: str,
    alternate_ips: Sequence[IPAddress],
    alternate_dns: Sequence[str],
    *,
    now: dt.datetime,
) -> tuple[bytes, bytes]:
    """(certificate PEM = leaf then CA, PKCS#1 key PEM) for `host` plus the alternate names.

    `host` becomes an IP SAN if it parses as an IP, a DNS SAN otherwise; duplicates are dropped.
    """
    valid_from = now - BACKDATE
    stamp = int(now.timestamp())
    ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    ca_name = _name(f"{host}-ca@{stamp}")
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca_cert = (
        x509.CertificateBuilder()
        .subject_name(ca_name)
        .issuer_name(ca_name)
        .public_key(ca_key.public_key())
        .serial_number(1)
        .not_valid_before(valid_from)
        .not_valid_after(valid_from + VALIDITY)
        .add_extension(_key_usage(cert_sign=True), critical=True)
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(ca_ski, critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    ips: list[IPAddress] = []
    dns: list[str] = []
    try:
        ips.append(ipaddress.ip_address(host))
    except ValueError:
        dns.append(host)
    ips.extend(alternate_ips)
    dns.extend(alternate_dns)
    sans: list[x509.GeneralName] = [x509.DNSName(d) for d in dict.fromkeys(dns)]
    sans += [x509.IPAddress(ip) for ip in dict.fromkeys(ips)]
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    leaf = (
        x509.CertificateBuilder()
        .subject_name(_name(f"{host}@{stamp}"))
        .issuer_name(ca_name)
        .public_key(key.public_key())
        .serial_number(2)
        .not_valid_before(valid_from)
        .not_valid_after(valid_from + VALIDITY)
        .add_extension(_key_usage(cert_sign=False), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(sans), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    cert_pem = leaf.public_bytes(pem) + ca_cert.public_bytes(pem)
    key_pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    return cert_pem, key_pem


def pair_problem(cert_pem: bytes, key_pem: bytes, now: dt.datetime) -> str | None:
    """Why a certificate/key pair cannot serve now (unparseable, key mismatch, expired), or None."""
    try:
        certs = x509.load_pem_x509_certificates(cert_pem)
        key = serialization.load_pem_private_key(key_pem, password=None)
    except ValueError as exc:
        return f"cannot be parsed: {exc}"
    leaf = certs[0]
    fmt = serialization.PublicFormat.SubjectPublicKeyInfo
    enc = serialization.Encoding.DER
    if leaf.public_key().public_bytes(enc, fmt) != key.public_key().public_bytes(enc, fmt):
        return "the private key does not match the certificate"
    if not leaf.not_valid_before_utc <= now <= leaf.not_valid_after_utc:
        start, end = leaf.not_valid_before_utc, leaf.not_valid_after_utc
        return f"the certificate is not valid now (valid {start} to {end})"
    return None


def _write_atomically(path: Path, data: bytes, mode: int) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def serving_alternates(
    bind_address: str, alternate_ips: Sequence[str] = DEFAULT_ALTERNATE_IPS, alternate_dns: Sequence[str] = ()
) -> tuple[list[IPAddress], list[str]]:
    """The library's SAN additions: `localhost` for an unspecified bind address, else the bind IP."""
    ips = [ipaddress.ip_address(a) for a in alternate_ips]
    dns = list(alternate_dns)
    bind = ipaddress.ip_address(bind_address)
    if bind.is_unspecified:
        dns.append("localhost")
    else:
        ips.append(bind)
    return ips, dns


def ensure_serving_pair(
    cert_dir: Path,
    bind_address: str,
    *,
    pair_name: str = "apiserver",
    alternate_ips: Sequence[str] = DEFAULT_ALTERNATE_IPS,
    alternate_dns: Sequence[str] = (),
    now: dt.datetime | None = None,
) -> tuple[Path, Path]:
    """The (cert, key) paths in `cert_dir`, generating and writing a pair unless a usable one exists.

    Raises `ServingOptionsError("--cert-dir", ...)` when only one file exists or the directory
    cannot be written. Blocking (key generation and file I/O): call it from a thread.
    """
    when = now or dt.datetime.now(dt.UTC)
    cert_path = cert_dir / f"{pair_name}.crt"
    key_path = cert_dir / f"{pair_name}.key"
    has_cert, has_key = cert_path.exists(), key_path.exists()
    if has_cert != has_key:
        missing = key_path if has_cert else cert_path
        raise ServingOptionsError(
            "--cert-dir", f"error reading {missing}, certificate and key must be supplied as a pair"
        )
    try:
        if has_cert:
            problem = pair_problem(cert_path.read_bytes(), key_path.read_bytes(), when)
            if problem is None:
                logger.info("using the existing serving certificate %s", cert_path)
                return cert_path, key_path
            logger.warning("replacing the serving certificate %s: %s", cert_path, problem)
        ips, dns = serving_alternates(bind_address, alternate_ips, alternate_dns)
        cert_pem, key_pem = generate_self_signed(PUBLIC_ADDRESS, ips, dns, now=when)
        cert_dir.mkdir(mode=0o755, parents=True, exist_ok=True)
        _write_atomically(cert_path, cert_pem, 0o644)
        _write_atomically(key_path, key_pem, 0o600)
    except OSError as exc:
        raise ServingOptionsError("--cert-dir", f"unable to write a self-signed certificate: {exc}") from exc
    logger.info("Generated self-signed cert (%s, %s)", cert_path, key_path)
    return cert_path, key_path
