"""The server's TLS context: built from files and the client CAs, swapped when either changes.

Python's `ssl` cannot "request a client certificate but not verify it" (Go's
`RequestClientCert`): `CERT_OPTIONAL` asks for a certificate and lets a connection without one
through, but verifies one that is presented against the loaded CAs during the handshake. So the
context trusts the union of the client CA and the front-proxy CA, and a certificate from neither
(or expired) ends the handshake with a TLS alert where the library would answer 401. With no CA
configured the context does not ask for certificates at all (`CERT_NONE`).

An `SSLContext` cannot forget a CA once loaded, so a change is never applied in place: a new
context is built and swapped in (`ServerTLS.context()` is what each new connection uses;
connections already open keep theirs, as in Go). Two triggers:

* client CAs: `context()` compares the provider's current `AuthenticationConfig` (an immutable
  object replaced on every change) by identity, and rebuilds when the CA union differs, so the
  first connection after a rotation already sees the new CAs;
* certificate files: `watch(trigger)` stats the files after each `await trigger()` (a sleep of a
  few seconds in production) and rebuilds when size, mtime or inode changed.

A rebuild that fails (e.g. a half-written pair) is logged and the previous context kept; file
changes are retried at the next poll.
"""

from __future__ import annotations

import logging
import os
import ssl
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import NamedTuple, NoReturn, Protocol

from metrics_server.auth.authconfig import AuthenticationConfig
from metrics_server.auth.errors import ServingOptionsError

logger = logging.getLogger(__name__)

TLS_MIN_VERSIONS = {"VersionTLS12": ssl.TLSVersion.TLSv1_2, "VersionTLS13": ssl.TLSVersion.TLSv1_3}
REFUSED_TLS_VERSIONS = ("VersionTLS10", "VersionTLS11")
"""Go accepts them; refused here: TLS 1.0 and 1.1 are deprecated (RFC 8996)."""
CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20"
"""TLS 1.2 suites without `--tls-cipher-suites`: the ECDHE AEAD suites of Go's default list (Go
also enables the ECDHE CBC-SHA1 suites by default; they are left out here)."""

CIPHER_SUITES: dict[str, str] = {
    "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA": "ECDHE-ECDSA-AES128-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256": "ECDHE-ECDSA-AES128-GCM-SHA256",
    "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA": "ECDHE-ECDSA-AES256-SHA",
    "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384": "ECDHE-ECDSA-AES256-GCM-SHA384",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305": "ECDHE-ECDSA-CHACHA20-POLY1305",
    "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-ECDSA-CHACHA20-POLY1305",
    "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA": "ECDHE-RSA-AES128-SHA",
    "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256": "ECDHE-RSA-AES128-GCM-SHA256",
    "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA": "ECDHE-RSA-AES256-SHA",
    "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384": "ECDHE-RSA-AES256-GCM-SHA384",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305": "ECDHE-RSA-CHACHA20-POLY1305",
    "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256": "ECDHE-RSA-CHACHA20-POLY1305",
}
"""Go's names of its secure TLS 1.2 suites (`tls.CipherSuites()`, with the legacy CHACHA20 aliases)
and the OpenSSL names of the same suites."""

TLS13_SUITES = frozenset(("TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"))
"""Accepted, and without effect, as in Go: TLS 1.3 suites are not configurable, all three are on."""

INSECURE_CIPHER_SUITES = frozenset(
    (
        "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256",
        "TLS_ECDHE_ECDSA_WITH_RC4_128_SHA",
        "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA",
        "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256",
        "TLS_ECDHE_RSA_WITH_RC4_128_SHA",
        "TLS_RSA_WITH_3DES_EDE_CBC_SHA",
        "TLS_RSA_WITH_AES_128_CBC_SHA",
        "TLS_RSA_WITH_AES_128_CBC_SHA256",
        "TLS_RSA_WITH_AES_128_GCM_SHA256",
        "TLS_RSA_WITH_AES_256_CBC_SHA",
        "TLS_RSA_WITH_AES_256_GCM_SHA384",
        "TLS_RSA_WITH_RC4_128_SHA",
    )
)
"""Go's `tls.InsecureCipherSuites()`: known to Go, refused here (RC4, 3DES, CBC with SHA-256, or
no forward secrecy)."""

HTTP2_REQUIRED_SUITES = ("TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256")


class TLSSettings(NamedTuple):
    """What `--tls-min-version` and `--tls-cipher-suites` make of a server context."""

    min_version: ssl.TLSVersion
    ciphers: str
    """The OpenSSL cipher list for TLS 1.2 (ignored when `min_version` is TLS 1.3)."""


def tls_settings(min_version: str, cipher_suites: Sequence[str], *, http2: bool) -> TLSSettings:
    """Translate the two flags as Go's `crypto/tls` and `net/http2` apply them.

    Raises `ServingOptionsError` naming the flag: a version that is unknown or refused, an unknown
    suite name (Go's wording), an insecure suite, or, with HTTP/2 and TLS 1.2 allowed, a list
    without the suite HTTP/2 requires (the check `http2.ConfigureServer` makes). A list of TLS 1.3
    suites only leaves TLS 1.2 no suite, so TLS 1.3 becomes the minimum (Go's handshake fails the
    same way).
    """
    if min_version in REFUSED_TLS_VERSIONS:
        raise ServingOptionsError(
            "--tls-min-version", f"{min_version} is refused: TLS 1.2 is the minimum (RFC 8996)"
        )
    if min_version not in TLS_MIN_VERSIONS:
        raise ServingOptionsError(
            "--tls-min-version",
            f"unsupported version {min_version!r}: use one of {', '.join(TLS_MIN_VERSIONS)}",
        )
    version = TLS_MIN_VERSIONS[min_version]
    if not cipher_suites:
        return TLSSettings(version, CIPHERS)
    for name in cipher_suites:
        if name in INSECURE_CIPHER_SUITES:
            raise ServingOptionsError(
                "--tls-cipher-suites",
                f"cipher suite {name} is insecure (Go lists it in tls.InsecureCipherSuites); remove it",
            )
        if name not in CIPHER_SUITES and name not in TLS13_SUITES:
            raise ServingOptionsError(
                "--tls-cipher-suites", f"Cipher suite {name} not supported or doesn't exist"
            )
    if http2 and version < ssl.TLSVersion.TLSv1_3 and not set(HTTP2_REQUIRED_SUITES) & set(cipher_suites):
        raise ServingOptionsError(
            "--tls-cipher-suites",
            "HTTP/2 requires one of " + " or ".join(HTTP2_REQUIRED_SUITES) + " (or --disable-http2-serving)",
        )
    tls12 = list(dict.fromkeys(CIPHER_SUITES[n] for n in cipher_suites if n in CIPHER_SUITES))
    if not tls12:
        return TLSSettings(ssl.TLSVersion.TLSv1_3, CIPHERS)
    return TLSSettings(version, ":".join(tls12))


ALPN_H2 = ("h2", "http/1.1")
ALPN_HTTP1 = ("http/1.1",)


class AuthenticationConfigProvider(Protocol):
    """What `auth.authconfig.AuthenticationConfigSource` offers: the settings in force now."""

    def current(self) -> AuthenticationConfig: ...


def client_ca_union(config: AuthenticationConfig | None) -> bytes:
    """The PEM of every CA a client certificate may chain to (client CA, then front-proxy CA)."""
    if config is None:
        return b""
    parts = [config.client_ca_pem or b""]
    if config.request_header is not None:
        parts.append(config.request_header.ca_pem)
    return b"\n".join(dict.fromkeys(p.strip() for p in parts if p.strip()))


def build_server_context(
    cert_file: Path,
    key_file: Path,
    *,
    min_version: ssl.TLSVersion,
    alpn: Sequence[str],
    client_ca_pem: bytes = b"",
    ciphers: str = CIPHERS,
) -> ssl.SSLContext:
    """A server context. Raises `OSError`/`ssl.SSLError` when the files or CAs cannot be loaded."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = min_version
    ctx.options |= ssl.OP_NO_COMPRESSION | ssl.OP_NO_RENEGOTIATION
    ctx.set_ciphers(ciphers)
    ctx.set_alpn_protocols(list(alpn))
    ctx.load_cert_chain(cert_file, key_file)
    if client_ca_pem:
        ctx.load_verify_locations(cadata=client_ca_pem.decode("ascii", "replace"))
        ctx.verify_mode = ssl.CERT_OPTIONAL
    else:
        ctx.verify_mode = ssl.CERT_NONE
    return ctx


def _file_key(*paths: Path) -> tuple[tuple[int, int, int], ...]:
    out = []
    for p in paths:
        st = os.stat(p)
        out.append((st.st_mtime_ns, st.st_size, st.st_ino))
    return tuple(out)


class ServerTLS:
    """Owns the `SSLContext` new connections get (see the module docstring).

    The constructor loads everything once and raises `ServingOptionsError(flag, ...)` if the
    certificate pair (named by `flag`) or the initial client CAs cannot be loaded.
    """

    def __init__(
        self,
        cert_file: Path,
        key_file: Path,
        *,
        min_version: ssl.TLSVersion,
        alpn: Sequence[str],
        client_cas: AuthenticationConfigProvider | None = None,
        flag: str = "--tls-cert-file",
        ciphers: str = CIPHERS,
    ) -> None:
        self.cert_file = cert_file
        self.key_file = key_file
        self._min_version = min_version
        self._ciphers = ciphers
        self._alpn = tuple(alpn)
        self._client_cas = client_cas
        self._seen_config = client_cas.current() if client_cas is not None else None
        self._ca_pem = client_ca_union(self._seen_config)
        try:
            self._files = _file_key(cert_file, key_file)
            self._context = self._build()
        except (OSError, ssl.SSLError) as exc:
            raise ServingOptionsError(flag, f"unable to load {cert_file} / {key_file}: {exc}") from exc
        self.generation = 0
        """Bumped on every swap (for tests and logs)."""

    def _build(self) -> ssl.SSLContext:
        return build_server_context(
            self.cert_file,
            self.key_file,
            min_version=self._min_version,
            alpn=self._alpn,
            client_ca_pem=self._ca_pem,
            ciphers=self._ciphers,
        )

    def _swap(self, why: str) -> bool:
        try:
            context = self._build()
        except (OSError, ssl.SSLError) as exc:
            logger.error("TLS context not reloaded after %s, keeping the previous one: %s", why, exc)
            return False
        self._context = context
        self.generation += 1
        logger.info("TLS context reloaded after %s", why)
        return True

    def context(self) -> ssl.SSLContext:
        """The context for a new connection (rebuilt first if the client CAs changed)."""
        if self._client_cas is not None:
            config = self._client_cas.current()
            if config is not self._seen_config:
                self._seen_config = config
                pem = client_ca_union(config)
                if pem != self._ca_pem:
                    previous, self._ca_pem = self._ca_pem, pem
                    if not self._swap("a client CA change"):
                        self._ca_pem = previous
        return self._context

    def reload_if_changed(self) -> bool:
        """Rebuild if the certificate files changed since the last successful load; True if swapped."""
        try:
            files = _file_key(self.cert_file, self.key_file)
        except OSError as exc:
            logger.error("cannot stat the serving certificate files: %s", exc)
            return False
        if files == self._files:
            return False
        if not self._swap(f"a change of {self.cert_file}"):
            return False
        self._files = files
        return True

    async def watch(self, trigger: Callable[[], Awaitable[None]]) -> NoReturn:
        """Forever: `await trigger()`, then `reload_if_changed()`."""
        while True:
            await trigger()
            self.reload_if_changed()
