"""The result of every loader, :class:`ClusterConnection`, its errors, and the TLS set-up they share.

TLS: at least TLS 1.2; ALPN offers ``http/1.1`` only. A cluster with a CA trusts only that CA (like
kubectl); one without uses the system trust store (certifi's bundle if the system store is empty).
"""

from __future__ import annotations

import os
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

__all__ = [
    "ClusterConnection",
    "ConfigError",
    "ExecPluginError",
    "ca_context",
    "load_client_certificate",
]


class ConfigError(Exception):
    """The connection cannot be configured; the message names the file and field at fault."""


class ExecPluginError(ConfigError):
    """An exec credential plugin could not be run or returned an unusable ExecCredential."""


# --------------------------------------------------------------------------------------------------
# The result
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ClusterConnection:
    """Everything needed to talk to one kube-apiserver.

    ``server`` is the base URL without a trailing slash (it may carry a path prefix). ``ssl_context`` has the
    trust anchors, ``insecure-skip-tls-verify`` and the client certificate applied. ``tls_server_name``, when
    set, is the name to send as SNI and to verify the server certificate against; pass
    :meth:`request_extensions` with each request, or use :meth:`httpx_client` which does it for you.
    ``namespace`` is the context's namespace (or the in-cluster namespace file), if any. ``proxy`` is the
    kubeconfig's ``proxy-url``; :meth:`httpx_client` routes through it.
    """

    server: str
    ssl_context: ssl.SSLContext
    auth: httpx.Auth | None
    tls_server_name: str | None
    namespace: str | None = None
    proxy: str | None = None
    """The cluster's ``proxy-url`` (``http``, ``https`` or ``socks5``), or None to connect directly."""

    def request_extensions(self) -> dict[str, Any]:
        """httpx request extensions that apply ``tls_server_name`` (empty when it is not set)."""
        return {"sni_hostname": self.tls_server_name} if self.tls_server_name else {}

    def httpx_client(self, **kwargs: Any) -> httpx.Client:
        """A new ``httpx.Client`` with ``base_url``, ``verify``, ``auth`` and the server name applied.

        ``kwargs`` are passed to ``httpx.Client`` and may override anything except ``verify``.
        """
        hooks = kwargs.pop("event_hooks", {})
        if self.tls_server_name:
            hooks = {**hooks, "request": [self._set_sni, *hooks.get("request", [])]}
        kwargs.setdefault("base_url", self.server)
        kwargs.setdefault("auth", self.auth)
        if self.proxy is not None:
            kwargs.setdefault("proxy", self.proxy)
        return httpx.Client(verify=self.ssl_context, event_hooks=hooks, **kwargs)

    def httpx_async_client(self, **kwargs: Any) -> httpx.AsyncClient:
        """Like :meth:`httpx_client`, for ``httpx.AsyncClient`` (trio or asyncio)."""
        hooks = kwargs.pop("event_hooks", {})
        if self.tls_server_name:
            hooks = {**hooks, "request": [self._aset_sni, *hooks.get("request", [])]}
        kwargs.setdefault("base_url", self.server)
        kwargs.setdefault("auth", self.auth)
        if self.proxy is not None:
            kwargs.setdefault("proxy", self.proxy)
        return httpx.AsyncClient(verify=self.ssl_context, event_hooks=hooks, **kwargs)

    def _set_sni(self, request: httpx.Request) -> None:
        request.extensions.update(self.request_extensions())

    async def _aset_sni(self, request: httpx.Request) -> None:
        request.extensions.update(self.request_extensions())


# --------------------------------------------------------------------------------------------------
# TLS
# --------------------------------------------------------------------------------------------------


def _new_ssl_context(ca_pem: str | None, insecure: bool) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    # Offering h2 would make httpcore switch to HTTP/2 whenever the server picks it, even for a client
    # created without http2=True; callers who want h2 can widen this on their own context.
    ctx.set_alpn_protocols(["http/1.1"])
    if insecure:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    elif ca_pem is not None:
        ctx.load_verify_locations(cadata=ca_pem)
    else:
        ctx.load_default_certs(ssl.Purpose.SERVER_AUTH)
        if not ctx.cert_store_stats().get("x509_ca"):
            import certifi  # an httpx dependency; used only where the platform has no usable trust store

            ctx.load_verify_locations(cafile=certifi.where())
    return ctx


def ca_context(ca: bytes | None, insecure: bool, where: str) -> ssl.SSLContext:
    """A client ``SSLContext`` trusting the PEM ``ca`` (or the system store when None), or verifying
    nothing when ``insecure``. Raises :class:`ConfigError` naming ``where``."""
    ca_pem = None
    if ca is not None:
        try:
            ca_pem = ca.decode("ascii")
        except UnicodeDecodeError:
            raise ConfigError(f"{where}: not a PEM certificate (non-ASCII data)") from None
        if "-----BEGIN CERTIFICATE-----" not in ca_pem:
            raise ConfigError(f"{where}: no PEM certificate found")
    try:
        return _new_ssl_context(ca_pem, insecure)
    except ssl.SSLError as exc:
        raise ConfigError(f"{where}: cannot load the CA certificate: {exc}") from exc


def _no_password() -> bytes:
    # Without a callback OpenSSL would prompt on the terminal for an encrypted key's passphrase.
    return b""


def load_client_certificate(ctx: ssl.SSLContext, cert_pem: bytes, key_pem: bytes, where: str) -> None:
    """Load a PEM certificate chain and key held in memory into ``ctx``.

    The ssl module loads certificates only from files, so both are written to a private temporary directory
    (mode 0700) that is removed before returning. Raises :class:`ConfigError` naming ``where``.
    """
    with tempfile.TemporaryDirectory(prefix="k8s-metrics-tls-") as tmp:
        cert_file = Path(tmp, "tls.crt")
        key_file = Path(tmp, "tls.key")
        cert_file.write_bytes(cert_pem)
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(key_pem)
        try:
            ctx.load_cert_chain(cert_file, key_file, password=_no_password)
        except ssl.SSLError as exc:
            raise ConfigError(
                f"{where}: cannot load the client certificate and key ({exc.reason or exc}); "
                "they must be PEM, match each other, and the key must not be encrypted"
            ) from exc


def normalise_server(server: str, where: str) -> str:
    if "://" not in server:
        server = "https://" + server  # client-go's default for a bare host:port
    try:
        url = httpx.URL(server)
    except httpx.InvalidURL as exc:
        raise ConfigError(f"{where}.server: invalid URL {server!r}: {exc}") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise ConfigError(f"{where}.server: {server!r} is not an http(s) URL")
    return server.rstrip("/")
