"""A ready-to-use client for the Metrics API, built from a kubeconfig or the in-cluster configuration.

Usage (sync, or async under trio or asyncio, with the generated operation functions)::

    from k8s_metrics.client import metrics_client
    from k8s_metrics._generated.api.metrics import list_namespaced_pod_metrics

    with metrics_client() as client:                       # $KUBECONFIG / ~/.kube/config, else in-cluster
        pods = list_namespaced_pod_metrics.sync("kube-system", client=client)

    async with metrics_client(kubeconfig="kubeconfig.yaml", context="kind") as client:
        pods = await list_namespaced_pod_metrics.asyncio("kube-system", client=client)

Every declared response is parsed: 200 into the resource model, errors into the generated ``Status``.
Error bodies that are not a ``Status`` (kube-aggregator's plain-text ``service unavailable``, a proxy's
HTML page) are turned into a ``Status`` the way client-go does it: a reason and message chosen by the
HTTP code, and the original text in ``details.causes[0].message`` with reason ``UnexpectedServerResponse``.
An undeclared status code raises ``errors.UnexpectedStatus``; transport failures raise ``httpx`` errors.

Use one client per event loop: the async connection pool belongs to the loop that first used it.
"""

from __future__ import annotations

import json
import os
from typing import Final

import httpx
from attrs import define, field

from . import __version__
from ._generated.client import Client
from .kubeconfig import ClusterConnection, load_default, load_kubeconfig

__all__ = ["DEFAULT_TIMEOUT", "MetricsClient", "metrics_client"]

DEFAULT_TIMEOUT: Final[httpx.Timeout] = httpx.Timeout(30.0, connect=10.0)
"""Whole lists of a large cluster are tens of megabytes, so reads get more time than httpx's 5 s."""

_USER_AGENT: Final = f"k8s-metrics-client/{__version__}"
_MAX_CAUSE_CHARS: Final = 2048  # keep a proxy's error page from bloating the Status

# client-go's NewGenericServerResponse: reason and message for an error body that is not a Status.
# None as the message means "use the body text".
_GENERIC_ERRORS: Final[dict[int, tuple[str, str | None]]] = {
    400: ("BadRequest", "the server rejected our request for an unknown reason"),
    401: ("Unauthorized", "the server has asked for the client to provide credentials"),
    403: ("Forbidden", None),  # the body says who may not do what
    404: ("NotFound", "the server could not find the requested resource"),
    405: ("MethodNotAllowed", "the server does not allow this method on the requested resource"),
    406: ("NotAcceptable", "the server was unable to respond with a content type that the client supports"),
    409: ("Conflict", "the server reported a conflict"),
    410: ("Gone", "the server no longer has the requested resource"),
    422: ("Invalid", "the server rejected our request due to an error in our request"),
    429: ("TooManyRequests", "the server has received too many requests and has asked us to try again later"),
    503: ("ServiceUnavailable", "the server is currently unable to handle the request"),
    504: (
        "Timeout",
        "the server was unable to return a response in the time allotted, "
        "but may still be processing the request",
    ),
}


@define
class MetricsClient(Client):
    """The generated ``Client`` whose httpx clients send with the connection's TLS server name and turn
    error bodies that are not a ``Status`` into one. Accepted wherever the generated functions take
    ``client=``; ``with_headers``/``with_timeout`` keep both behaviours."""

    _tls_server_name: str | None = field(default=None, kw_only=True, alias="tls_server_name")

    def get_httpx_client(self) -> httpx.Client:
        if self._client is None:
            inner = httpx.HTTPTransport(verify=self._verify_ssl)
            self._client = httpx.Client(
                base_url=self._base_url,
                cookies=self._cookies,
                headers=self._headers,
                timeout=self._timeout,
                verify=self._verify_ssl,  # still used for proxies taken from the environment
                follow_redirects=self._follow_redirects,
                transport=_StatusTransport(inner, self._tls_server_name),
                **self._httpx_args,
            )
        return self._client

    def get_async_httpx_client(self) -> httpx.AsyncClient:
        if self._async_client is None:
            inner = httpx.AsyncHTTPTransport(verify=self._verify_ssl)
            self._async_client = httpx.AsyncClient(
                base_url=self._base_url,
                cookies=self._cookies,
                headers=self._headers,
                timeout=self._timeout,
                verify=self._verify_ssl,
                follow_redirects=self._follow_redirects,
                transport=_AsyncStatusTransport(inner, self._tls_server_name),
                **self._httpx_args,
            )
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
    authenticates with its ``httpx.Auth`` and asks for JSON.

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
        headers={"Accept": "application/json", "User-Agent": _USER_AGENT},
        raise_on_unexpected_status=raise_on_unexpected_status,
        httpx_args={} if connection.auth is None else {"auth": connection.auth},
        tls_server_name=connection.tls_server_name,
    )


class _StatusTransport(httpx.BaseTransport):
    def __init__(self, inner: httpx.BaseTransport, tls_server_name: str | None) -> None:
        self._inner = inner
        self._tls_server_name = tls_server_name

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        _set_server_name(request, self._tls_server_name)
        response = self._inner.handle_request(request)
        if response.status_code < 400:
            return response
        try:
            body = response.read()
        finally:
            response.close()
        return _error_response(response, body)

    def close(self) -> None:
        self._inner.close()


class _AsyncStatusTransport(httpx.AsyncBaseTransport):
    def __init__(self, inner: httpx.AsyncBaseTransport, tls_server_name: str | None) -> None:
        self._inner = inner
        self._tls_server_name = tls_server_name

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        _set_server_name(request, self._tls_server_name)
        response = await self._inner.handle_async_request(request)
        if response.status_code < 400:
            return response
        try:
            body = await response.aread()
        finally:
            await response.aclose()
        return _error_response(response, body)

    async def aclose(self) -> None:
        await self._inner.aclose()


def _set_server_name(request: httpx.Request, tls_server_name: str | None) -> None:
    # httpcore uses sni_hostname both for SNI and for checking the certificate's name.
    if tls_server_name:
        request.extensions.setdefault("sni_hostname", tls_server_name)


def _error_response(response: httpx.Response, body: bytes) -> httpx.Response:
    """Rebuild an already-read error response, with a Status body if it did not carry one."""
    if not _is_status(response, body):
        body = json.dumps(_generic_status(response, body), separators=(",", ":")).encode()
    headers = [
        (name, value)
        for name, value in response.headers.multi_items()
        # The body was decoded and may be replaced: its framing headers no longer apply.
        if name.lower() not in ("content-length", "content-encoding", "transfer-encoding", "content-type")
    ]
    headers.append(("Content-Type", "application/json"))
    return httpx.Response(response.status_code, headers=headers, content=body, extensions=response.extensions)


def _is_status(response: httpx.Response, body: bytes) -> bool:
    if "json" not in response.headers.get("content-type", ""):
        return False
    try:
        document = json.loads(body)
    except ValueError:
        return False
    return isinstance(document, dict) and document.get("kind") == "Status"


def _generic_status(response: httpx.Response, body: bytes) -> dict[str, object]:
    code = response.status_code
    text = body.decode("utf-8", errors="replace").strip()[:_MAX_CAUSE_CHARS]
    if code in _GENERIC_ERRORS:
        reason, generic = _GENERIC_ERRORS[code]
        message = generic or text or "the server does not allow access to the requested resource"
    elif code >= 500:
        quoted = json.dumps(text, ensure_ascii=False)  # Go's %q, as client-go prints it
        reason = "InternalError"
        message = f"an error on the server ({quoted}) has prevented the request from succeeding"
    else:
        reason = "Unknown"
        message = f"the server responded with the status code {code} but did not return more information"
    details: dict[str, object] = {"causes": [{"reason": "UnexpectedServerResponse", "message": text}]}
    retry_after = response.headers.get("retry-after", "")
    if retry_after.isdigit():
        details["retryAfterSeconds"] = int(retry_after)
    return {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
        "details": details,
        "code": code,
    }
