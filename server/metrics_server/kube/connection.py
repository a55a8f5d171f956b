"""The httpx client the server uses to talk to the kube-apiserver.

A `ClusterConnection` (from `k8s_metrics.kubeconfig`: in-cluster or a kubeconfig file) says where
the apiserver is and how to authenticate; `make_api_client` turns it into one `httpx.AsyncClient`.
One client and one small pool serve everything (list+watch of nodes, pods and the authentication
ConfigMap, TokenReview and SubjectAccessReview): they all go to one host, so the httpcore
pool-scan cost that forbids a shared client for kubelets does not arise here. Each open watch holds
one HTTP/1.1 connection; the pool leaves ample room for lists and reviews next to them.
"""

from __future__ import annotations

import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Protocol

import httpx

from k8s_metrics.kubeconfig import ClusterConnection, ConfigError, load_incluster, load_kubeconfig
from metrics_server import __version__
from metrics_server.kube.errors import OptionsError
from metrics_server.kube.restmetrics import MeasuredTransport, RestClientMetrics

USER_AGENT = f"metrics-server/{__version__} (python; httpx) metrics_server.kube"


class ClusterConnectionLike(Protocol):
    """The fields of `k8s_metrics.kubeconfig.ClusterConnection` this module reads."""

    @property
    def server(self) -> str: ...

    @property
    def ssl_context(self) -> ssl.SSLContext: ...

    @property
    def auth(self) -> httpx.Auth | None: ...

    @property
    def tls_server_name(self) -> str | None: ...

    @property
    def proxy(self) -> str | None: ...


def load_connection(kubeconfig: str = "", *, flag: str = "--kubeconfig") -> ClusterConnection:
    """The kube-apiserver connection, as metrics-server finds it: the kubeconfig file when one is
    named, otherwise the in-cluster service account (no fallback to ~/.kube/config).

    Blocking (reads files, may run an exec plugin once): call it at start-up, before trio runs or
    in a worker thread. Raises `OptionsError` naming `flag` when the connection cannot be set up.
    """
    try:
        if kubeconfig:
            return load_kubeconfig(kubeconfig)
        return load_incluster()
    except ConfigError as exc:
        hint = "" if kubeconfig else " (not given, and the in-cluster service account is unusable)"
        raise OptionsError(flag, f"{exc}{hint}") from exc


@dataclass(frozen=True, slots=True)
class ApiClientOptions:
    """Limits of the kube-apiserver client. The defaults suit one server instance at 5000 nodes."""

    max_connections: int = 32
    max_keepalive_connections: int = 16
    connect_timeout: float = 10.0
    request_timeout: float = 60.0
    """Read/write timeout of ordinary requests (a list page of 500 full pods can take seconds)."""
    user_agent: str = USER_AGENT

    def validate(self) -> None:
        if self.max_connections < 4:
            raise OptionsError("max_connections", "must be at least 4 (three watches stay open)")
        if not 0 < self.max_keepalive_connections <= self.max_connections:
            raise OptionsError("max_keepalive_connections", "must be in 1..max_connections")
        if self.connect_timeout <= 0 or self.request_timeout <= 0:
            raise OptionsError("request_timeout", "timeouts must be positive")


class _ServerNameTransport(httpx.AsyncBaseTransport):
    """Sends a fixed TLS server name (SNI, and the name the certificate is checked against).

    kubeconfig's `tls-server-name` lets the URL name an IP or a tunnel while the certificate is
    checked for another name; httpcore reads that from the `sni_hostname` request extension.
    """

    def __init__(self, inner: httpx.AsyncBaseTransport, server_name: str) -> None:
        self._inner = inner
        self._server_name = server_name

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        request.extensions["sni_hostname"] = self._server_name
        return await self._inner.handle_async_request(request)

    async def aclose(self) -> None:
        await self._inner.aclose()


def make_api_client(
    conn: ClusterConnectionLike,
    options: ApiClientOptions | None = None,
    *,
    extra_headers: Mapping[str, str] | None = None,
    metrics: RestClientMetrics | None = None,
) -> httpx.AsyncClient:
    """One `httpx.AsyncClient` for the kube-apiserver described by `conn`.

    Paths are relative to `conn.server` (which may carry a path prefix, e.g. behind a proxy).
    Requests go through the kubeconfig's `proxy-url` when it has one (`socks5` needs the client's
    `[socks]` extra; without it `OptionsError` says so). With `metrics`, every request is counted
    and timed (`kube.restmetrics`). The caller owns the client: use it as an async context manager
    or `aclose()` it.
    """
    opts = options or ApiClientOptions()
    opts.validate()
    limits = httpx.Limits(
        max_connections=opts.max_connections,
        max_keepalive_connections=opts.max_keepalive_connections,
        keepalive_expiry=60.0,
    )
    try:
        inner = httpx.AsyncHTTPTransport(verify=conn.ssl_context, limits=limits, retries=0, proxy=conn.proxy)
    except ImportError as exc:  # socks5 without socksio
        raise OptionsError("proxy-url", f"{conn.proxy}: {exc}") from exc
    transport: httpx.AsyncBaseTransport = inner
    if conn.tls_server_name:
        transport = _ServerNameTransport(inner, conn.tls_server_name)
    if metrics is not None:
        transport = MeasuredTransport(transport, metrics)
    headers = {"User-Agent": opts.user_agent, "Accept": "application/json"}
    if extra_headers:
        headers.update(extra_headers)
    base_url = conn.server if conn.server.endswith("/") else conn.server + "/"
    return httpx.AsyncClient(
        base_url=base_url,
        auth=conn.auth,
        transport=transport,
        headers=headers,
        timeout=httpx.Timeout(opts.request_timeout, connect=opts.connect_timeout),
        follow_redirects=False,
        trust_env=False,
    )
