"""Certificates of the simulated cluster: CAs, serving and client certificates (ECDSA P-256).

ECDSA keeps key generation cheap enough to give each of thousands of kubelets its own key and
serving certificate. Validity is measured against the real wall clock (TLS peers check it),
not the simulated one.
"""

from __future__ import annotations

import datetime as _dt
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from .errors import ConfigError

_VALIDITY = _dt.timedelta(days=365)
_BACKDATE = _dt.timedelta(hours=1)


@dataclass(frozen=True, slots=True)
class CertKey:
    """A certificate with its private key, both PEM-encoded."""

    cert_pem: bytes
    key_pem: bytes

    @property
    def cert(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.cert_pem)

    def write(self, cert_path: Path, key_path: Path) -> None:
        cert_path.write_bytes(self.cert_pem)
        key_path.write_bytes(self.key_pem)
        key_path.chmod(0o600)


def _key_pem(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )


def _name(common_name: str, organizations: Iterable[str] = ()) -> x509.Name:
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, org) for org in organizations]
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    return x509.Name(attrs)


class CertificateAuthority:
    """A CA that signs leaf certificates; created fresh or loaded from PEM files."""

    __slots__ = ("_cert", "_key", "cert_key")

    def __init__(self, cert_key: CertKey) -> None:
        key = serialization.load_pem_private_key(cert_key.key_pem, password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey):
            raise ConfigError("simulated CA keys must be ECDSA keys")
        self._key = key
        self._cert = cert_key.cert
        self.cert_key = cert_key

    @classmethod
    def create(cls, common_name: str) -> CertificateAuthority:
        key = ec.generate_private_key(ec.SECP256R1())
        now = _dt.datetime.now(_dt.UTC)
        name = _name(common_name)
        cert = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _BACKDATE)
            .not_valid_after(now + 10 * _VALIDITY)
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256())
        )
        return cls(CertKey(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key)))

    @classmethod
    def load_or_create(cls, cert_path: Path, key_path: Path, common_name: str) -> CertificateAuthority:
        """Reuse a CA kept in a state directory, so configs written earlier stay valid."""
        if cert_path.exists() and key_path.exists():
            return cls(CertKey(cert_path.read_bytes(), key_path.read_bytes()))
        ca = cls.create(common_name)
        ca.cert_key.write(cert_path, key_path)
        return ca

    @property
    def cert_pem(self) -> bytes:
        return self.cert_key.cert_pem

    def issue(
        self,
        common_name: str,
        *,
        organizations: Iterable[str] = (),
        ip_sans: Iterable[str] = (),
        dns_sans: Iterable[str] = (),
        server: bool = False,
        client: bool = False,
    ) -> CertKey:
        """Sign a leaf certificate; `server`/`client` set the extended key usages."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = _dt.datetime.now(_dt.UTC)
        builder = (
            x509.CertificateBuilder()
            .subject_name(_name(common_name, organizations))
            .issuer_name(self._cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _BACKDATE)
            .not_valid_after(now + _VALIDITY)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=False,
                    crl_sign=False,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
        )
        usages = []
        if server:
            usages.append(ExtendedKeyUsageOID.SERVER_AUTH)
        if client:
            usages.append(ExtendedKeyUsageOID.CLIENT_AUTH)
        if usages:
            builder = builder.add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        sans: list[x509.GeneralName] = [x509.DNSName(d) for d in dns_sans]
        sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ip_sans]
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        cert = builder.sign(self._key, hashes.SHA256())
        return CertKey(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))
