"""The connection every part of the client shares: the generated API's ``Client``, built from a kubeconfig
or the in-cluster configuration, whose requests raise :mod:`k8s_metrics.errors` instead of returning
error responses.

Usage with the generated operations (sync, or async under trio or asyncio)::

    from k8s_metrics import metrics_client
    from k8s_metrics.api.metrics import list_namespaced_pod_metrics

    with metrics_client() as client:                       # $KUBECONFIG / ~/.kube/config, else in-cluster
        pods = list_namespaced_pod_metrics.sync("kube-system", client=client)   # a PodMetricsList

    async with metrics_client(kubeconfig="kubeconfig.yaml", context="kind") as client:
        pods = await list_namespaced_pod_metrics.asyncio("kube-system", client=client)

One error policy: every request sent through the client's httpx clients (``get_httpx_client()``,
``get_async_httpx_client()``; the generated operations, :mod:`k8s_metrics.usage` and
:mod:`k8s_metrics.scale` all use them) raises :class:`~k8s_metrics.errors.ApiError` (by HTTP code) for an
error answer, once authentication has had its retry, and :class:`~k8s_metrics.errors.TransportError` when
no answer came. So a generated ``sync()`` returns the resource, never a ``Status``.

The cluster's ``proxy-url`` is used when set; otherwise httpx's ``HTTPS_PROXY``/``NO_PROXY`` variables
apply, as they do for kubectl. Use one client per event loop: the async connection pool belongs to the
loop that first used it.
"""

from __future__ import annotations

import os
from typing import Any, Final

import httpx
from attrs import define, field

from . import __version__
from ._generated.client import Client
from .errors import TransportError, error_from_response
from .kubeconfig import ClusterConnection, load_default, load_kubeconfig

__all__ = ["DEFAULT_TIMEOUT", "MetricsClient", "metrics_client"]

DEFAULT_TIMEOUT: Final[httpx.Timeout] = httpx.Timeout(30.0, connect=10.0)
"""Whole lists of a large cluster are tens of megabytes, so reads get more time than httpx's 5 s."""

USER_AGENT: Final = f"k8s-metrics-client/{__version__}"


class _RaisingClient(httpx.Client):
    """An ``httpx.Client`` that sends the TLS server name and raises the client's errors."""

    def __init__(self, *, tls_server_name: str | None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._tls_server_name = tls_server_name

    def send(self, request: httpx.Request, **kwargs: Any) -> httpx.Response:
        _set_server_name(request, self._tls_server_name)
        try:
            response = super().send(request, **kwargs)
        except httpx.RequestError as exc:
            raise TransportError(f"{type(exc).__name__}: {exc}") from exc
        if response.status_code < 400:
            return response
        try:
            response.read()
        except httpx.RequestError as exc:
            raise TransportError(f"{type(exc).__name__}: {exc}") from exc
        finally:
            response.close()
        raise error_from_response(response, self.base_url.path.rstrip("/"))


class _AsyncRaisingClient(httpx.AsyncClient):
    """The async form of :class:`_RaisingClient` (trio or asyncio)."""

    def __init__(self, *, tls_server_name: str | None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._tls_server_name = tls_server_name

    async def send(self, request: httpx.Request, **kwargs: Any) -> httpx.Response:
        _set_server_name(request, self._tls_server_name)
        try:
            response = await super().send(request, **kwargs)
        except httpx.RequestError as exc:
            raise TransportError(f"{type(exc).__name__}: {exc}") from exc
        if response.status_code < 400:
            return response
        try:
            await response.aread()
        except httpx.RequestError as exc:
            raise TransportError(f"{type(exc).__name__}: {exc}") from exc
        finally:
            await response.aclose()
        raise error_from_response(response, self.base_url.path.rstrip("/"))


def _set_server_name(request: httpx.Request, tls_server_name: str | None) -> None:
    # httpcore uses sni_hostname both for SNI and for checking the certificate's name.
    if tls_server_name:
        request.extensions.setdefault("sni_hostname", tls_server_name)


@define
class MetricsClient(Client):
    """The generated ``Client`` whose httpx clients send with the connection's TLS server name and
    proxy, and raise :mod:`k8s_metrics.errors` for error answers (see the module docstring). Accepted
    wherever the generated functions take ``client=``; ``with_headers``/``with_timeout`` keep both."""

    _tls_server_name: str | None = field(default=None, kw_only=True, alias="tls_server_name")
    _proxy: str | None = field(default=None, kw_only=True, alias="proxy")

    def _client_args(self) -> dict[str, Any]:
        args: dict[str, Any] = {
            "base_url": self._base_url,
            "cookies": self._cookies,
            "headers": self._headers,
            "timeout": self._timeout,
            "verify": self._verify_ssl,
            "follow_redirects": self._follow_redirects,
            "tls_server_name": self._tls_server_name,
            **self._httpx_args,
        }
        if self._proxy is not None:
            args["proxy"] = self._proxy
        return args

    def get_httpx_client(self) -> httpx.Client:
        if self._client is None:
            self._client = _RaisingClient(**self._client_args())
        return self._client

    def get_async_httpx_client(self) -> httpx.AsyncClient:
        if self._async_client is None:
            self._async_client = _AsyncRaisingClient(**self._client_args())
        return self._async_client


def metrics_client(
    connection: ClusterConnection | None = None,
    *,
    kubeconfig: str | os.PathLike[str] | None = None,
    context: str | None = None,
    timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
    raise_on_unexpected_status: bool = True,
) -> MetricsClient:
    """Return a client for the cluster of ``connection``.

    Without ``connection`` the cluster comes from ``kubeconfig`` (a file) and ``context`` (default: the
    current context); without ``kubeconfig`` from ``$KUBECONFIG`` / ``~/.kube/config``, else the
    in-cluster service account. The client verifies the server with the connection's ``SSLContext``,
    authenticates with its ``httpx.Auth``, goes through its proxy and asks for JSON. A success code the
    spec does not declare for an operation (a redirect) raises the generated ``errors.UnexpectedStatus``
    unless ``raise_on_unexpected_status`` is false (then the operation returns None).

    Raises ``ValueError`` when ``connection`` is combined with ``kubeconfig`` or ``context``, and
    ``k8s_metrics.kubeconfig.ConfigError`` when the configuration cannot be loaded. Nothing is sent yet.
    """
    if connection is None:
        connection = load_default(context) if kubeconfig is None else load_kubeconfig(kubeconfig, context)
    elif kubeconfig is not None or context is not None:
        raise ValueError("pass either a connection or kubeconfig/context, not both")
    return MetricsClient(
        base_url=connection.server,
        verify_ssl=connection.ssl_context,
        timeout=timeout if isinstance(timeout, httpx.Timeout) else httpx.Timeout(timeout),
        headers={"Accept": "application/json", "User-Agent": USER_AGENT},
        raise_on_unexpected_status=raise_on_unexpected_status,
        httpx_args={} if connection.auth is None else {"auth": connection.auth},
        tls_server_name=connection.tls_server_name,
        proxy=connection.proxy,
    )
