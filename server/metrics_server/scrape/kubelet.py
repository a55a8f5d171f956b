"""Fetching one node's resource usage from its kubelet, over HTTPS.

`KubeletClient.scrape(node)` resolves the node's URL (`resolve_address`, `resolve_port`, the path),
GETs it, and parses the body into a `NodeBatch`. Every failure is a `ScrapeError` subclass whose
message is the whole story (the URL and the innermost cause, e.g. the certificate verification
reason); nothing is logged here except the one-time switch to the Summary API, so the caller logs
each failure exactly once.

Connections: one persistent HTTP/1.1 connection per node (`http1.Connection`: h11 over a
non-blocking stdlib `SSLSocket` driven by trio), kept alive across cycles, all sharing one
`SSLContext`, and closed when `retain()` no longer lists the node, or on `aclose()`. Requests are
exactly what a per-node `httpx.AsyncClient` sent before (same headers in the same order, same
TLS server name: the URL's host, so an IP address needs an IP SAN), prebuilt as bytes per node and
path, and rebuilt only when the headers change (a rotated token). `config.auth` (an `httpx.Auth`)
runs its async auth flow on a prebuilt `httpx.Request` per request: its 401 handling (re-read the
token, retry once) works as under httpx; the flow is resumed only with a 401 response, which is
all that any of our auths (and httpx's) look at.

Why not httpx: per warm request a `httpx.AsyncClient` per node costs ~0.9 ms CPU and ~87 KB RSS per
idle connection, this client 0.24-0.33 ms and 43 KB (1000 fake TLS kubelets; the comparison, and how
it was measured, is in docs/performance.md). The MemoryBIOs of `trio.SSLStream` keep their buffers;
`SSLSocket` lets OpenSSL read the socket itself and release its record buffers when idle, and h11's
state is dropped between requests, so an idle connection holds the SSL object (session, peer
certificate) and its socket only. Of the remaining cost, h11's response parsing is the largest share
(~30 us per response). The whole scrape path (requests, parsing, the scraper): `python -m
bench.micro.scrape --nodes 200 --cycles 5`.
"""

from __future__ import annotations

import logging
import re
import ssl
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field
from http import HTTPStatus
from types import TracebackType
from typing import Protocol, Self

import h11
import httpx
import trio

from metrics_server.kube.objects import NodeInfo
from metrics_server.scrape.batch import KubeletError, NodeBatch, ScrapeError
from metrics_server.scrape.config import KubeletClientConfig, build_ssl_context
from metrics_server.scrape.http1 import Connection, DecodingError, content_decoders, decode_capped
from metrics_server.scrape.prometheus import parse_resource_metrics
from metrics_server.scrape.summary import parse_summary

logger = logging.getLogger(__name__)

RESOURCE_PATH = "/metrics/resource"
SUMMARY_PATH = "/stats/summary?only_cpu_and_memory=true"

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

    Wrappers often have empty messages (httpx under trio wrapped a certificate failure as
    ConnectError('') <- httpcore.ConnectError('') <- trio.BrokenResourceError('') <-
    SSLCertVerificationError('... IP address mismatch ...')).
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


_DEFAULT_HEADERS = (("Accept", "*/*"), ("Accept-Encoding", "gzip, deflate"), ("Connection", "keep-alive"))
"""What httpx sends by default (the client has always sent these); Host comes first, User-Agent
after them."""

_TRANSPORT_ERRORS = (OSError, h11.ProtocolError, DecodingError, trio.ClosedResourceError, httpx.InvalidURL)
"""Connecting, TLS, writing, reading, a malformed or undecodable response, a bad URL."""

_STALE_ERRORS = (OSError, h11.RemoteProtocolError)
"""What a kept-alive connection that the kubelet closed meanwhile looks like (reset, EOF)."""


@dataclass(slots=True)
class _Request:
    """One URL's GET, prebuilt."""

    url: str
    http: httpx.Request
    """What `httpx.AsyncClient.send` would have sent; auth flows run on it."""
    headers: httpx.Headers
    """`http`'s headers before any auth flow touched them."""
    raw: list[tuple[bytes, bytes]]
    """The headers `wire` was built from."""
    wire: bytes


@dataclass(slots=True)
class _Node:
    base: str
    """`https://<address>:<port>` the requests and the connection are for."""
    connection: Connection | None = None
    """Open and idle between scrapes; None until the next request opens one."""
    requests: dict[str, _Request] = field(default_factory=dict)
    """Prebuilt requests by path."""
    summary_only: bool = False
    """`auto` found no /metrics/resource on this kubelet; remembered until the node goes away."""


class KubeletClient:
    """Scrapes kubelets; holds one kept-alive connection per node.

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
        ctx = ssl_context if ssl_context is not None else build_ssl_context(config)
        self._ssl: ssl.SSLContext | None = None if config.deprecated_completely_insecure else ctx
        # Credentials never go over plain HTTP.
        self._auth = None if config.deprecated_completely_insecure else config.auth
        self._headers = httpx.Headers([*_DEFAULT_HEADERS, ("User-Agent", config.user_agent)])
        self._time_ns = time_ns
        self._nodes: dict[str, _Node] = {}

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    @property
    def nodes(self) -> frozenset[str]:
        """Nodes that currently have state (and maybe an open connection)."""
        return frozenset(self._nodes)

    async def retain(self, names: Collection[str]) -> list[str]:
        """Close the connections of nodes not in `names`; return those nodes' names."""
        gone = [name for name in self._nodes if name not in names]
        for name in gone:
            self._close(name)
        await trio.lowlevel.cancel_shielded_checkpoint()
        return gone

    async def aclose(self) -> None:
        for name in list(self._nodes):
            self._close(name)
        await trio.lowlevel.cancel_shielded_checkpoint()

    def _close(self, name: str) -> None:
        connection = self._nodes.pop(name).connection
        if connection is not None:
            connection.close_gracefully()

    async def scrape(self, node: NodeInfo) -> NodeBatch:
        """One node's batch. Raises a `ScrapeError`: `AddressError`, `KubeletTransportError`,
        `KubeletError` (status != 200, body too large), `ParseError`, `KubeletTimeoutError`
        (no complete answer within `request_timeout`, which covers the `auto` fallback too)."""
        base = base_url(node, self.config)
        state = self._nodes.get(node.name)
        if state is None or state.base != base:
            if state is not None and state.connection is not None:
                state.connection.close_gracefully()  # the node moved: a new address or port
            state = self._nodes[node.name] = _Node(base)
        timeout = self.config.request_timeout
        with trio.move_on_after(timeout):
            return await self._scrape(node, state)
        raise KubeletTimeoutError(
            f'Get "{base}{self._path(node, state)}": no complete response '
            f"within --kubelet-request-timeout ({timeout:g}s)"
        )

    def _path(self, node: NodeInfo, state: _Node) -> str:
        if self.config.metrics_source == "summary" or state.summary_only:
            return SUMMARY_PATH
        return resource_path(node)

    async def _scrape(self, node: NodeInfo, state: _Node) -> NodeBatch:
        path = self._path(node, state)
        parse = self._parse_summary if path == SUMMARY_PATH else self._parse_resource
        request_time_ns = self._time_ns()
        status, reason, body = await self._get(state, path)
        if (
            status == 404
            and self.config.metrics_source == "auto"
            and path == RESOURCE_PATH
            and node.metrics_path is None
        ):
            # Only the default path falls back: a 404 on an annotated path is a misconfiguration
            # the operator should see, not something to paper over.
            state.summary_only = True
            logger.info(
                "Kubelet has no %s, using the Summary API from now on",
                RESOURCE_PATH,
                extra={"node": node.name},
            )
            parse = self._parse_summary
            request_time_ns = self._time_ns()
            status, reason, body = await self._get(state, SUMMARY_PATH)
        if status != 200:
            raise KubeletError(f'request failed, status: "{status} {reason}"')
        return parse(body, node=node.name, request_time_ns=request_time_ns)

    async def _get(self, state: _Node, path: str) -> tuple[int, str, bytes]:
        """(status, reason, body): the body only for 200, decoded and within the cap."""
        url = state.base + path
        try:
            request = state.requests.get(path)
            if request is None:
                request = state.requests[path] = self._prepare(url)
            if self._auth is None:
                status, reason, _, body = await self._exchange(state, request, request.wire)
                return status, reason, body
            return await self._get_with_auth(state, request, self._auth)
        except _TRANSPORT_ERRORS as exc:
            raise KubeletTransportError(f'Get "{url}": {describe_cause(exc)}') from exc

    def _prepare(self, url: str) -> _Request:
        http = httpx.Request("GET", url, headers=self._headers)
        raw = http.headers.raw
        return _Request(url, http, http.headers, raw, _format(http.url.raw_path, raw))

    async def _get_with_auth(
        self, state: _Node, request: _Request, auth: httpx.Auth
    ) -> tuple[int, str, bytes]:
        """Like httpx's auth handling: the flow sets the headers; on a 401 it may hand back the
        request to send once more (e.g. with a re-read token)."""
        http = request.http
        http.headers = request.headers.copy()  # as fresh as the request httpx would build
        flow = auth.async_auth_flow(http)
        try:
            sent = await flow.__anext__()
            while True:
                raw = sent.headers.raw
                if raw != request.raw:
                    # A new token (or the first one): rebuild the bytes, keep them for next time.
                    request.raw, request.wire = raw, _format(sent.url.raw_path, raw)
                status, reason, headers, body = await self._exchange(state, request, request.wire)
                if status != 401:
                    return status, reason, body
                response = httpx.Response(status, headers=list(headers), content=body, request=sent)
                try:
                    sent = await flow.asend(response)
                except StopAsyncIteration:
                    return status, reason, b""
        finally:
            await flow.aclose()

    async def _exchange(
        self, state: _Node, request: _Request, wire: bytes
    ) -> tuple[int, str, Sequence[tuple[bytes, bytes]], bytes]:
        """One request on the node's connection: the kept-alive one, or a new one. A kept-alive
        connection that fails before the response is complete is retried once on a new one."""
        connection = state.connection
        if connection is not None:
            state.connection = None  # taken; put back only if it stays usable
            try:
                return await self._exchange_on(state, connection, request.url, wire)
            except _STALE_ERRORS:
                # The kubelet may have closed the kept-alive connection just as we sent on it;
                # like Go's transport, retry an idempotent GET once on a fresh connection.
                pass
        connection = await self._open(state)
        return await self._exchange_on(state, connection, request.url, wire)

    async def _open(self, state: _Node) -> Connection:
        # The host as httpx used it: connect to it, and verify the certificate against it.
        url = httpx.URL(state.base)
        host = url.raw_host.decode("ascii")
        port = url.port or (443 if url.scheme == "https" else 80)
        return await Connection.open(host, port, self._ssl, host)

    async def _exchange_on(
        self, state: _Node, connection: Connection, url: str, wire: bytes
    ) -> tuple[int, str, Sequence[tuple[bytes, bytes]], bytes]:
        try:
            await connection.send(wire)
            head = await connection.receive_head()
            status = head.status_code
            body = b""
            if status != 200:
                # Read (and drop) a small error body so that the connection stays reusable.
                pieces = await connection.receive_body(_ERROR_BODY_LIMIT)
                if pieces is not None:
                    body = b"".join(pieces)
            else:
                limit = self.config.max_response_bytes
                # h11's Headers iterate through Sequence.__getitem__: walk a plain list twice instead.
                fields = list(head.headers)
                for name, value in fields:
                    if name == b"content-length" and value.isdigit() and int(value) > limit:
                        raise ResponseTooLargeError(_too_large(url, limit))
                pieces = await connection.receive_body(limit)
                if pieces is None:
                    raise ResponseTooLargeError(_too_large(url, limit))
                decoders = content_decoders(fields)
                decoded = decode_capped(pieces, decoders, limit) if decoders else b"".join(pieces)
                if decoded is None:
                    raise ResponseTooLargeError(_too_large(url, limit))
                body = decoded
        except BaseException:
            connection.close()  # mid-exchange (an error, the timeout): its state is unknown
            raise
        if connection.reusable:
            connection.release()
            state.connection = connection
        else:
            connection.close()
        reason = head.reason.decode("ascii", "ignore") or _standard_phrase(status)
        return status, reason, head.headers, body


def _format(target: bytes, headers: list[tuple[bytes, bytes]]) -> bytes:
    """The request's bytes, as h11 writes them (and validates: no CR/LF in a token)."""
    return h11.Connection(h11.CLIENT).send(h11.Request(method=b"GET", target=target, headers=headers)) or b""


def _too_large(url: str, limit: int) -> str:
    return f'Get "{url}": response body exceeds --kubelet-max-response-bytes ({limit} bytes)'


def _standard_phrase(status: int) -> str:
    try:
        return HTTPStatus(status).phrase
    except ValueError:
        return ""
