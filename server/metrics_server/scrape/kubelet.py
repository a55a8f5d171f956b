"""Fetching one node's resource usage from its kubelet, over HTTPS.

`KubeletClient.scrape(node)` resolves the node's URL (`resolve_address`, `resolve_port`, the path),
GETs it, and parses the body into a `NodeBatch`. Every failure is a `ScrapeError` subclass whose
message is the whole story (the URL and the innermost cause, e.g. the certificate verification
reason that httpx hides three `__context__` levels down); nothing is logged here except the
one-time switch to the Summary API, so the caller logs each failure exactly once.

Connections: one small `httpx.AsyncClient` per node (at most 2 connections, kept alive across
cycles), never one shared pool (httpcore's pool is quadratic in its size). All clients share one
`SSLContext`. A node's client is closed when `retain()` no longer lists the node, or on `aclose()`.
"""

from __future__ import annotations

import http.cookiejar
import logging
import re
import ssl
import time
from collections.abc import AsyncIterator, Callable, Collection
from dataclasses import dataclass, field
from http import HTTPStatus
from types import TracebackType
from typing import Protocol, Self

import httpx
import trio

from metrics_server.kube.objects import NodeInfo
from metrics_server.scrape.batch import KubeletError, NodeBatch, ScrapeError
from metrics_server.scrape.config import KubeletClientConfig, build_ssl_context
from metrics_server.scrape.prometheus import parse_resource_metrics
from metrics_server.scrape.summary import parse_summary

logger = logging.getLogger(__name__)

RESOURCE_PATH = "/metrics/resource"
SUMMARY_PATH = "/stats/summary?only_cpu_and_memory=true"

KEEPALIVE_EXPIRY_S = 300.0
"""Idle connections live longer than any sane resolution, so each cycle reuses last cycle's."""

_ERROR_BODY_LIMIT = 64 * 1024
"""Error bodies up to this size are read (and dropped) so the connection stays reusable; a
bigger one closes the connection."""


class ParseFn(Protocol):
    """`parse_resource_metrics` / `parse_summary`: body to batch, or `ParseError`."""

    def __call__(self, body: bytes, *, node: str, request_time_ns: int) -> NodeBatch: ...


class AddressError(ScrapeError):
    """The node has no address of any preferred type."""


class KubeletTransportError(ScrapeError):
    """Connecting, TLS, or reading failed; the message carries the innermost cause."""


class ResponseTooLargeError(KubeletError):
    """The body exceeded --kubelet-max-response-bytes; the transfer was aborted."""


class KubeletTimeoutError(ScrapeError):
    """No complete response within --kubelet-request-timeout (or before the cycle deadline)."""


def resolve_address(node: NodeInfo, preferred_types: Collection[str]) -> str:
    """The first address of the first preferred type the node has (metrics-server's resolver)."""
    for address_type in preferred_types:
        for address in node.addresses:
            if address.type == address_type:
                return address.address
    raise AddressError(f"no address matched types [{' '.join(preferred_types)}]")


def resolve_port(node: NodeInfo, config: KubeletClientConfig) -> int:
    """The node's reported kubelet port with --kubelet-use-node-status-port (when non-zero)."""
    if config.use_node_status_port and node.kubelet_port:
        return node.kubelet_port
    return config.port


def base_url(node: NodeInfo, config: KubeletClientConfig) -> str:
    """`https://<address>:<port>` (`http` with --deprecated-kubelet-completely-insecure), IPv6
    addresses bracketed. Raises `AddressError`."""
    host = resolve_address(node, config.preferred_address_types)
    if ":" in host:
        host = f"[{host}]"
    scheme = "http" if config.deprecated_completely_insecure else "https"
    return f"{scheme}://{host}:{resolve_port(node, config)}"


def resource_path(node: NodeInfo) -> str:
    """The `metrics.k8s.io/resource-metrics-path` annotation when set, else /metrics/resource."""
    path = node.metrics_path or RESOURCE_PATH
    return path if path.startswith("/") else "/" + path


_SSL_LOCATION = re.compile(r"\s*\(_ssl\.c:\d+\)$")


def describe_cause(exc: BaseException) -> str:
    """The innermost cause of `exc`, readable: follows `__cause__`, else `__context__`, and the
    first member of exception groups, to the deepest exception with a message.

    httpx under trio wraps a certificate failure as ConnectError('') <- httpcore.ConnectError('')
    <- trio.BrokenResourceError('') <- SSLCertVerificationError('... IP address mismatch ...').
    OS and SSL errors are shown by their message alone; anything else as `Type: message`.
    """
    best = exc
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if str(current) and not isinstance(current, BaseExceptionGroup):
            best = current
        if isinstance(current, BaseExceptionGroup) and current.exceptions:
            current = current.exceptions[0]
        else:
            current = current.__cause__ if current.__cause__ is not None else current.__context__
    message = _SSL_LOCATION.sub("", str(best))
    if not message:
        return type(best).__name__
    if isinstance(best, OSError):
        return message
    return f"{type(best).__name__}: {message}"


class _NoCookieJar(http.cookiejar.CookieJar):
    """Kubelets set no cookies; storing or sending them would only cost time per request."""

    def extract_cookies(self, response: object, request: object) -> None:
        pass

    def add_cookie_header(self, request: object) -> None:
        pass


@dataclass(slots=True)
class _NodeConnection:
    client: httpx.AsyncClient
    urls: dict[str, httpx.URL] = field(default_factory=dict)
    """Parsed request URLs by their text: parsing one costs more than the rest of building a request."""
    summary_only: bool = False
    """`auto` found no /metrics/resource on this kubelet; remembered until the node goes away."""
    reused: bool = False
    """A request completed, so the next one may go over a kept-alive connection."""


class KubeletClient:
    """Scrapes kubelets; holds one connection-reusing client per node.

    Use as `async with KubeletClient(config) as client:` (or call `aclose()`). The parsers default
    to the real ones (`prometheus.parse_resource_metrics`, `summary.parse_summary`). `time_ns` is
    the wall clock for the request start time the parsers use for samples without a timestamp.
    """

    def __init__(
        self,
        config: KubeletClientConfig,
        *,
        parse_resource: ParseFn = parse_resource_metrics,
        parse_summary: ParseFn = parse_summary,
        ssl_context: ssl.SSLContext | None = None,
        time_ns: Callable[[], int] = time.time_ns,
    ) -> None:
        self.config = config
        self._parse_resource = parse_resource
        self._parse_summary = parse_summary
        self._ssl = ssl_context if ssl_context is not None else build_ssl_context(config)
        self._time_ns = time_ns
        self._nodes: dict[str, _NodeConnection] = {}

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    @property
    def nodes(self) -> frozenset[str]:
        """Nodes that currently have a client (and maybe open connections)."""
        return frozenset(self._nodes)

    async def retain(self, names: Collection[str]) -> list[str]:
        """Close the clients of nodes not in `names`; return those nodes' names."""
        gone = [name for name in self._nodes if name not in names]
        for name in gone:
            await self._close(name)
        return gone

    async def aclose(self) -> None:
        for name in list(self._nodes):
            await self._close(name)

    async def _close(self, name: str) -> None:
        connection = self._nodes.pop(name)
        with trio.CancelScope(shield=True):
            await connection.client.aclose()

    async def scrape(self, node: NodeInfo) -> NodeBatch:
        """One node's batch. Raises a `ScrapeError`: `AddressError`, `KubeletTransportError`,
        `KubeletError` (status != 200, body too large), `ParseError`, `KubeletTimeoutError`
        (no complete answer within `request_timeout`, which covers the `auto` fallback too)."""
        url = base_url(node, self.config)
        connection = self._connection(node.name)
        timeout = self.config.request_timeout
        with trio.move_on_after(timeout):
            try:
                return await self._scrape(node, url, connection)
            except (KubeletTransportError, ResponseTooLargeError, trio.Cancelled):
                connection.reused = False  # the connection was closed
                raise
        connection.reused = False
        raise KubeletTimeoutError(
            f'Get "{url}{self._path(node, connection)}": no complete response '
            f"within --kubelet-request-timeout ({timeout:g}s)"
        )

    def _path(self, node: NodeInfo, connection: _NodeConnection) -> str:
        if self.config.metrics_source == "summary" or connection.summary_only:
            return SUMMARY_PATH
        return resource_path(node)

    async def _scrape(self, node: NodeInfo, base: str, connection: _NodeConnection) -> NodeBatch:
        path = self._path(node, connection)
        parse = self._parse_summary if path == SUMMARY_PATH else self._parse_resource
        request_time_ns = self._time_ns()
        status, reason, body = await self._get(connection, base + path)
        if (
            status == 404
            and self.config.metrics_source == "auto"
            and path == RESOURCE_PATH
            and node.metrics_path is None
        ):
            # Only the default path falls back: a 404 on an annotated path is a misconfiguration
            # the operator should see, not something to paper over.
            connection.summary_only = True
            logger.info(
                "Kubelet has no %s, using the Summary API from now on",
                RESOURCE_PATH,
                extra={"node": node.name},
            )
            parse = self._parse_summary
            request_time_ns = self._time_ns()
            status, reason, body = await self._get(connection, base + SUMMARY_PATH)
        if status != 200:
            raise KubeletError(f'request failed, status: "{status} {reason}"')
        return parse(body, node=node.name, request_time_ns=request_time_ns)

    def _connection(self, name: str) -> _NodeConnection:
        connection = self._nodes.get(name)
        if connection is None:
            client = httpx.AsyncClient(
                verify=self._ssl,
                # Credentials never go over plain HTTP.
                auth=None if self.config.deprecated_completely_insecure else self.config.auth,
                headers={"User-Agent": self.config.user_agent},
                cookies=_NoCookieJar(),
                limits=httpx.Limits(
                    max_connections=2, max_keepalive_connections=2, keepalive_expiry=KEEPALIVE_EXPIRY_S
                ),
                # The whole request is bounded by a trio scope in scrape(); per-operation httpx
                # timeouts would only race it with a less useful message.
                timeout=None,
                follow_redirects=False,
                # No proxies, netrc or SSL_CERT_FILE from the environment: kubelets are reached
                # directly with the configured trust only.
                trust_env=False,
            )
            connection = self._nodes[name] = _NodeConnection(client)
        return connection

    async def _get(self, connection: _NodeConnection, url: str) -> tuple[int, str, bytes]:
        try:
            try:
                return await self._get_once(connection, url)
            except (httpx.RemoteProtocolError, httpx.ReadError, httpx.WriteError):
                if not connection.reused:
                    raise
                # The kubelet may have closed the kept-alive connection just as we sent on it;
                # like Go's transport, retry an idempotent GET once on a fresh connection.
                connection.reused = False
                return await self._get_once(connection, url)
        except (httpx.HTTPError, httpx.InvalidURL) as exc:
            raise KubeletTransportError(f'Get "{url}": {describe_cause(exc)}') from exc

    async def _get_once(self, connection: _NodeConnection, url: str) -> tuple[int, str, bytes]:
        limit = self.config.max_response_bytes
        parsed = connection.urls.get(url)
        if parsed is None:
            parsed = connection.urls[url] = httpx.URL(url)
        # `send` of a Request built from the client's (already merged) default headers skips
        # `build_request`'s per-request merging of URL, headers, cookies and query parameters; the
        # request itself is what `client.stream("GET", url)` would send (see test_kubelet.py).
        client = connection.client
        request = httpx.Request("GET", parsed, headers=client.headers)
        response = await client.send(request, stream=True)
        try:
            status = response.status_code
            reason = response.reason_phrase or _standard_phrase(status)
            if status != 200:
                if await _read_capped(response.aiter_raw(), _ERROR_BODY_LIMIT) is not None:
                    connection.reused = True  # drained: the connection stays open for the next request
                return status, reason, b""
            declared = response.headers.get("content-length")
            if declared is not None and declared.isdigit() and int(declared) > limit:
                raise ResponseTooLargeError(_too_large(url, limit))
            chunks = await _read_capped(response.aiter_bytes(), limit)
            if chunks is None:
                raise ResponseTooLargeError(_too_large(url, limit))
        finally:
            await response.aclose()
        connection.reused = True
        return status, reason, b"".join(chunks)


def _too_large(url: str, limit: int) -> str:
    return f'Get "{url}": response body exceeds --kubelet-max-response-bytes ({limit} bytes)'


def _standard_phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""


async def _read_capped(chunks: AsyncIterator[bytes], limit: int) -> list[bytes] | None:
    """All chunks, or None as soon as they exceed `limit` bytes.

    Stopping early must not just `break`: httpx/httpcore read through nested async generators,
    and abandoning them leaves trio to finalize them later (a ResourceWarning). Cancelling a
    private scope instead raises Cancelled inside the innermost generator at its next read,
    which unwinds and closes every generator and the connection.
    """
    out: list[bytes] = []
    size = 0
    with trio.CancelScope() as abort:
        async for chunk in chunks:
            if abort.cancel_called:
                continue  # already-buffered data drains without a checkpoint; ignore it
            size += len(chunk)
            if size > limit:
                abort.cancel()
                continue
            out.append(chunk)
    return None if abort.cancel_called else out
