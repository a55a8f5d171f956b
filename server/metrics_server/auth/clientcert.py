"""Verifying a client certificate against a CA bundle, as Go's `x509.Certificate.Verify` would
for the apiserver's authenticators (`KeyUsages: [ClientAuth]`).

The TLS layer (`auth.tls`) already made OpenSSL verify the certificate against the union of the
client CA and the front-proxy CA during the handshake; each authenticator must still know *which*
bundle it chains to. Checks, with Go's error wording (it only reaches the log):

* the leaf is within its validity period;
* it is the bundle certificate itself, or is directly signed by a bundle certificate (same issuer
  name, valid signature) that is within its validity;
* ExtKeyUsage, where present on the leaf or that CA, includes clientAuth (or any).

Limitation: Python 3.11's `ssl` exposes only the leaf, so a chain through an intermediate that the
client sends but the bundle does not contain is rejected (put the intermediate in the bundle).
"""

from __future__ import annotations

import datetime as dt
from collections import OrderedDict
from typing import NamedTuple

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from metrics_server.auth.errors import CertificateRejected

_CLIENT_USAGES = (ExtendedKeyUsageOID.CLIENT_AUTH, ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE)
_MEMO_SIZE = 256
_SHA256 = hashes.SHA256()


def _go_time(t: dt.datetime) -> str:
    return t.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _check_time(cert: x509.Certificate, now: dt.datetime) -> None:
    if now < cert.not_valid_before_utc:
        raise CertificateRejected(
            "x509: certificate has expired or is not yet valid: "
            f"current time {_go_time(now)} is before {_go_time(cert.not_valid_before_utc)}"
        )
    if now > cert.not_valid_after_utc:
        raise CertificateRejected(
            "x509: certificate has expired or is not yet valid: "
            f"current time {_go_time(now)} is after {_go_time(cert.not_valid_after_utc)}"
        )


def _allows_client_auth(cert: x509.Certificate) -> bool:
    try:
        usages = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    except x509.ExtensionNotFound:
        return True
    return any(u in usages for u in _CLIENT_USAGES)


def common_name(cert: x509.Certificate) -> str:
    """Go's `Subject.CommonName`: the last CN attribute, "" when there is none."""
    names = cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)
    value = names[-1].value if names else ""
    return value if isinstance(value, str) else value.decode("utf-8", "replace")


def organizations(cert: x509.Certificate) -> tuple[str, ...]:
    """Go's `Subject.Organization`: every O attribute, in order."""
    out = []
    for attr in cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME):
        value = attr.value
        out.append(value if isinstance(value, str) else value.decode("utf-8", "replace"))
    return tuple(out)


def _hex_colon(data: bytes | None) -> str:
    return ":".join(f"{b:02X}" for b in data) if data else ""


def certificate_identifier(cert: x509.Certificate) -> str:
    """The library's `SN=…, SKID=…, AKID=…` naming of a certificate in log messages."""
    try:
        skid: bytes | None = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    except x509.ExtensionNotFound:
        skid = None
    try:
        akid = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier
    except x509.ExtensionNotFound:
        akid = None
    return f"SN={cert.serial_number}, SKID={_hex_colon(skid)}, AKID={_hex_colon(akid)}"


def fingerprint(cert: x509.Certificate) -> str:
    """`X509SHA256=<hex>`: the library's credential id of a client certificate."""
    return "X509SHA256=" + cert.fingerprint(_SHA256).hex()


class ClientLeaf(NamedTuple):
    """A client certificate with the facts authentication reads, computed once."""

    cert: x509.Certificate
    digest: bytes
    common_name: str
    organizations: tuple[str, ...]
    credential_id: str

    @classmethod
    def from_pem(cls, pem: str) -> ClientLeaf:
        """Raises ValueError when `pem` is not a certificate."""
        cert = x509.load_pem_x509_certificate(pem.encode("ascii", "replace"))
        digest = cert.fingerprint(_SHA256)
        return cls(cert, digest, common_name(cert), organizations(cert), "X509SHA256=" + digest.hex())


class TrustBundle:
    """A parsed CA bundle. Remembers, per leaf, which CA signed it and whether the key usages
    allow client authentication (signature checks are the expensive part and never change for a
    given leaf and bundle); time checks run on every call."""

    def __init__(self, pem: bytes) -> None:
        """Raises ValueError when `pem` holds no parseable certificate."""
        self.pem = pem
        self.certs = tuple(x509.load_pem_x509_certificates(pem))
        self._memo: OrderedDict[bytes, tuple[x509.Certificate | None, bool]] = OrderedDict()

    def _issuer(self, leaf: x509.Certificate, digest: bytes) -> tuple[x509.Certificate | None, bool]:
        if digest in self._memo:
            self._memo.move_to_end(digest)
            return self._memo[digest]
        found: x509.Certificate | None = None
        for ca in self.certs:
            if ca == leaf:
                found = ca
                break
            if ca.subject != leaf.issuer:
                continue
            try:
                leaf.verify_directly_issued_by(ca)
            except (ValueError, TypeError, InvalidSignature):
                continue
            found = ca
            break
        usable = found is not None and _allows_client_auth(leaf) and _allows_client_auth(found)
        self._memo[digest] = (found, usable)
        if len(self._memo) > _MEMO_SIZE:
            self._memo.popitem(last=False)
        return found, usable

    def verify(self, leaf: x509.Certificate, now: dt.datetime, digest: bytes | None = None) -> None:
        """Raise `CertificateRejected` unless `leaf` is a valid client certificate of this bundle.

        `digest` is the leaf's SHA-256 fingerprint if the caller already has it."""
        _check_time(leaf, now)
        issuer, usable = self._issuer(leaf, digest or leaf.fingerprint(_SHA256))
        if issuer is None:
            raise CertificateRejected("x509: certificate signed by unknown authority")
        _check_time(issuer, now)
        if not usable:
            raise CertificateRejected("x509: certificate specifies an incompatible key usage")
