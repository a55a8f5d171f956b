"""HTTPS serving of an ASGI app with hypercorn under trio, as a library-based apiserver serves.

`serve_https(app, config, ...)`:

* TLS only, on `--bind-address`:`--secure-port` (IPv4 or IPv6; port 0 = any free port, for tests);
* minimum TLS 1.2 (`--tls-min-version=VersionTLS13` raises it), `--tls-cipher-suites` mapped
  from Go's names to OpenSSL's (`auth.tls.tls_settings`), ALPN `h2`,`http/1.1` (only
  `http/1.1` with `--disable-http2-serving`), at most 250 concurrent HTTP/2 streams;
* the certificate from `--tls-cert-file`/`--tls-private-key-file`, else a self-signed pair in
  `--cert-dir` (`auth.certs`), else (empty `--cert-dir`) a self-signed pair kept in a private
  temporary directory that is removed on exit;
* certificate files polled for changes (`reload_trigger`, default: sleep `cert_poll_interval`);
  new handshakes get the new certificate;
* client certificates requested, not required, checked against the CAs of `client_cas` (the
  `AuthenticationConfigSource`), which may change at run time (`auth.tls`);
* the app sees the client certificate through the ASGI TLS extension (`auth.peercert`);
* per connection (`auth.connection`): HTTP/2 by ALPN only (no h2c upgrade), Go's header limit
  (`max_header_bytes`, 431) and header-read timeout (`read_header_timeout`, 32 s), and
  containment: an exception of one connection closes that connection, is logged and counted in
  `connection_metrics`, and never ends the server.

Start-up problems raise `ServingOptionsError` naming the flag, before `task_status.started()`;
`started()` reports the bound URLs (`["https://127.0.0.1:8443"]`). Returns after
`shutdown_trigger()` returns and open requests finished (or `graceful_timeout` passed).
"""

from __future__ import annotations

import ipaddress
import logging
import shutil
import ssl
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import cast

import hypercorn.config
import hypercorn.trio
import trio
from hypercorn.typing import Framework

from metrics_server.asgi import ASGIApp
from metrics_server.auth import certs, peercert
from metrics_server.auth.connection import (
    HEADER_SLACK,
    MAX_HEADER_BYTES,
    READ_HEADER_TIMEOUT,
    ConnectionMetrics,
    ConnectionPolicy,
    contain_app,
)
from metrics_server.auth.errors import ServingOptionsError
from metrics_server.auth.tls import (
    ALPN_H2,
    ALPN_HTTP1,
    AuthenticationConfigProvider,
    ServerTLS,
    TLSSettings,
    tls_settings,
)

logger = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class ServingConfig:
    """The secure-serving flags (same names and defaults as metrics-server) plus server limits."""

    bind_address: str = "0.0.0.0"
    secure_port: int = 443
    cert_dir: str = "apiserver.local.config/certificates"
    tls_cert_file: str = ""
    tls_private_key_file: str = ""
    tls_min_version: str = "VersionTLS12"
    tls_cipher_suites: tuple[str, ...] = ()
    """Go suite names (`auth.tls.tls_settings`); empty: the default suites."""
    disable_http2_serving: bool = False
    pair_name: str = "apiserver"
    cert_poll_interval: float = 5.0
    """Seconds between checks of the certificate files for changes."""
    keep_alive_timeout: float = 90.0
    """Idle connection timeout (the library's `IdleTimeout`)."""
    handshake_timeout: float = 10.0
    graceful_timeout: float = 5.0
    """How long open requests may run on after shutdown is triggered."""
    h2_max_concurrent_streams: int = 250
    read_header_timeout: float = READ_HEADER_TIMEOUT
    """Seconds a request head may take (the apiserver's `ReadHeaderTimeout`)."""
    max_header_bytes: int = MAX_HEADER_BYTES
    """Request line plus headers (HTTP/1.1), header list (HTTP/2): the apiserver's `MaxHeaderBytes`."""

    def validate(self) -> None:
        """Raise `ServingOptionsError` naming the first bad flag."""
        try:
            ipaddress.ip_address(self.bind_address)
        except ValueError:
            raise ServingOptionsError(
                "--bind-address", f"{self.bind_address!r} is not a valid IP address"
            ) from None
        if not 0 <= self.secure_port <= 65535:
            raise ServingOptionsError("--secure-port", f"{self.secure_port} must be between 1 and 65535")
        self.tls()
        if bool(self.tls_cert_file) != bool(self.tls_private_key_file):
            flag = "--tls-private-key-file" if self.tls_cert_file else "--tls-cert-file"
            raise ServingOptionsError(
                flag, "--tls-cert-file and --tls-private-key-file must be given together"
            )
        for name, value in (
            ("cert_poll_interval", self.cert_poll_interval),
            ("keep_alive_timeout", self.keep_alive_timeout),
            ("handshake_timeout", self.handshake_timeout),
            ("read_header_timeout", self.read_header_timeout),
            ("max_header_bytes", self.max_header_bytes),
        ):
            if value <= 0:
                raise ServingOptionsError(name, "must be positive")
        if self.graceful_timeout < 0:
            raise ServingOptionsError("graceful_timeout", "must not be negative")
        if self.h2_max_concurrent_streams < 1:
            raise ServingOptionsError("h2_max_concurrent_streams", "must be positive")

    def tls(self) -> TLSSettings:
        """The minimum version and TLS 1.2 ciphers; raises `ServingOptionsError` naming the flag."""
        return tls_settings(
            self.tls_min_version, self.tls_cipher_suites, http2=not self.disable_http2_serving
        )

    @property
    def bind(self) -> str:
        """hypercorn's bind string (`[::1]:443` for IPv6)."""
        ip = ipaddress.ip_address(self.bind_address)
        host = f"[{ip}]" if ip.version == 6 else str(ip)
        return f"{host}:{self.secure_port}"


class _HypercornConfig(hypercorn.config.Config):
    """A hypercorn config whose TLS comes from a `ServerTLS` (read by `peercert`)."""

    def __init__(self, tls: ServerTLS, policy: ConnectionPolicy) -> None:
        setattr(self, peercert.CONFIG_ATTR, tls)
        setattr(self, peercert.POLICY_ATTR, policy)
        self._tls = tls

    @property
    def ssl_enabled(self) -> bool:
        return True

    def create_ssl_context(self) -> ssl.SSLContext | None:
        return self._tls.context()


@asynccontextmanager
async def _certificate_files(config: ServingConfig) -> AsyncIterator[tuple[Path, Path, str]]:
    """(cert, key, flag naming them) for the serving certificate, per the module docstring.

    Key generation takes a good fraction of a second, so it runs in a thread."""
    if config.tls_cert_file:
        yield Path(config.tls_cert_file), Path(config.tls_private_key_file), "--tls-cert-file"
        return
    ensure = partial(certs.ensure_serving_pair, bind_address=config.bind_address, pair_name=config.pair_name)
    if config.cert_dir:
        cert, key = await trio.to_thread.run_sync(ensure, Path(config.cert_dir))
        yield cert, key, "--cert-dir"
        return
    directory = Path(tempfile.mkdtemp(prefix="metrics-server-cert-"))
    try:
        cert, key = await trio.to_thread.run_sync(ensure, directory)
        logger.info("Generated self-signed cert in-memory")
        yield cert, key, "--cert-dir"
    finally:
        shutil.rmtree(directory, ignore_errors=True)


async def serve_https(
    app: ASGIApp,
    config: ServingConfig,
    *,
    client_cas: AuthenticationConfigProvider | None = None,
    connection_metrics: ConnectionMetrics | None = None,
    shutdown_trigger: Callable[[], Awaitable[None]] | None = None,
    reload_trigger: Callable[[], Awaitable[None]] | None = None,
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Serve `app` over HTTPS until `shutdown_trigger()` returns (or forever); see module docstring."""
    config.validate()
    peercert.install()
    alpn = ALPN_HTTP1 if config.disable_http2_serving else ALPN_H2
    settings = config.tls()
    async with _certificate_files(config) as (cert_file, key_file, flag):
        tls = ServerTLS(
            cert_file,
            key_file,
            min_version=settings.min_version,
            ciphers=settings.ciphers,
            alpn=alpn,
            client_cas=client_cas,
            flag=flag,
        )
        metrics = connection_metrics or ConnectionMetrics()
        hc = _HypercornConfig(tls, ConnectionPolicy(config.read_header_timeout, metrics))
        hc.bind = [config.bind]
        hc.alpn_protocols = list(alpn)
        hc.keep_alive_timeout = config.keep_alive_timeout
        hc.ssl_handshake_timeout = config.handshake_timeout
        hc.graceful_timeout = config.graceful_timeout
        hc.h2_max_concurrent_streams = config.h2_max_concurrent_streams
        hc.h11_max_incomplete_size = config.max_header_bytes + HEADER_SLACK
        hc.h2_max_header_list_size = config.max_header_bytes
        hc.include_server_header = False
        hc.accesslog = None
        hc.errorlog = logging.getLogger("metrics_server.serving.hypercorn")
        trigger = reload_trigger or partial(trio.sleep, config.cert_poll_interval)

        async with trio.open_nursery() as nursery:

            async def run_server(task_status: trio.TaskStatus[list[str]]) -> None:
                wrapped = cast(Framework, contain_app(peercert.tls_extension(app), metrics))
                await hypercorn.trio.serve(
                    wrapped, hc, shutdown_trigger=shutdown_trigger, task_status=task_status
                )
                nursery.cancel_scope.cancel()  # stop the file watcher too

            nursery.start_soon(tls.watch, trigger)
            urls: list[str] = await nursery.start(run_server)
            task_status.started(urls)
