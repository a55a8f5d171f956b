"""Typed, numeric node and pod usage from the Metrics API, sync or async (trio or asyncio).

Five lines from ``pip install`` to numbers::

    from k8s_metrics import open_metrics

    with open_metrics() as metrics:                      # kubeconfig or in-cluster, like kubectl
        for pod in metrics.pods("kube-system"):
            print(pod.name, pod.cpu, pod.memory)         # Decimal cores, int bytes

Async, under trio or asyncio, with CPU as ``float``::

    async with open_async_metrics(cpu=float) as metrics:
        nodes = await metrics.nodes(label_selector={"pool": "blue"})

Reads: ``nodes``, ``node``, ``pods``, ``pod`` (the values are :mod:`k8s_metrics.values`), ``get_json``
for any other API path. For an autoscaler's loop: ``wait_until_available`` (after a cluster or server
start) and ``watch_pods`` (a batch each time pods get a new sample); see :mod:`k8s_metrics.waiting`.

Every method raises a :class:`~k8s_metrics.errors.MetricsError`: an
:class:`~k8s_metrics.errors.ApiError` subclass carrying the Kubernetes ``Status`` for an error
answer (``NotFound``, ``Forbidden``, ``Unauthorized``, ``ServiceUnavailable``, ``BadRequest``),
``ResponseError`` for a body that is not the promised document, ``TransportError`` when no answer came.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from types import ModuleType, TracebackType
from typing import Any, Final, Generic, Self, TypeVar, overload

import anyio
import httpx

from ._generated import errors as generated_errors
from ._generated.models.node_metrics_list import NodeMetricsList
from ._generated.models.pod_metrics_list import PodMetricsList
from ._generated.types import Response
from .api.metrics import (
    list_namespaced_pod_metrics,
    list_node_metrics,
    list_pod_metrics_for_all_namespaces,
    read_namespaced_pod_metrics,
    read_node_metrics,
)
from .client import DEFAULT_TIMEOUT, MetricsClient, metrics_client
from .errors import MetricsError, ResponseError
from .kubeconfig import ClusterConnection, load_default, load_kubeconfig
from .values import ContainerUsage, Converter, CpuT, NodeUsage, PodUsage
from .waiting import DISCOVERY_PATH, Backoff, SampleTracker, retryable

__all__ = [
    "AsyncMetrics",
    "AsyncPodWatch",
    "ContainerUsage",
    "CpuT",
    "Metrics",
    "NodeUsage",
    "PodUsage",
    "Selector",
    "open_async_metrics",
    "open_metrics",
]

Selector = str | Mapping[str, str] | None
"""A selector as Kubernetes writes it (``"app=web,tier!=db"``), or a mapping of equalities
(``{"app": "web"}``, joined in key order), or None for everything."""

_NODES: Final = "nodes.metrics.k8s.io"
_PODS: Final = "pods.metrics.k8s.io"


# --------------------------------------------------------------------------------------------------
# Requests, shared by the sync and async forms
# --------------------------------------------------------------------------------------------------


def _selector(selector: Selector) -> str | None:
    if selector is None or isinstance(selector, str):
        return selector or None
    return ",".join(f"{key}={value}" for key, value in sorted(selector.items()))


@dataclass(frozen=True)
class _Call:
    """One generated operation to call, and how to read its result."""

    operation: ModuleType
    args: tuple[str, ...]
    kwargs: dict[str, Any]
    resource: str
    convert: Callable[[Any], Any]

    def finish(self, response: Response[Any]) -> Any:
        parsed = response.parsed  # error answers were raised by the client: this is the resource
        try:
            return self.convert(parsed)
        except (ValueError, KeyError, TypeError, AttributeError, ArithmeticError) as exc:
            raise ResponseError(f"unexpected {self.resource} document: {exc!r}") from exc


@dataclass(frozen=True)
class _CallFactory(Generic[CpuT]):
    converter: Converter[CpuT]

    def nodes(self, label_selector: Selector, field_selector: Selector) -> _Call:
        kwargs = _list_kwargs(label_selector, field_selector)
        return _Call(list_node_metrics, (), kwargs, _NODES, self._node_list)

    def node(self, name: str) -> _Call:
        return _Call(read_node_metrics, (name,), {}, _NODES, self.converter.node)

    def pods(self, namespace: str | None, label_selector: Selector, field_selector: Selector) -> _Call:
        kwargs = _list_kwargs(label_selector, field_selector)
        if namespace is None:
            return _Call(list_pod_metrics_for_all_namespaces, (), kwargs, _PODS, self._pod_list)
        return _Call(list_namespaced_pod_metrics, (namespace,), kwargs, _PODS, self._pod_list)

    def pod(self, namespace: str, name: str) -> _Call:
        return _Call(read_namespaced_pod_metrics, (namespace, name), {}, _PODS, self.converter.pod)

    def _node_list(self, parsed: NodeMetricsList) -> list[NodeUsage[CpuT]]:
        return [self.converter.node(item) for item in parsed.items]

    def _pod_list(self, parsed: PodMetricsList) -> list[PodUsage[CpuT]]:
        return [self.converter.pod(item) for item in parsed.items]


def _list_kwargs(label_selector: Selector, field_selector: Selector) -> dict[str, Any]:
    kwargs: dict[str, Any] = {}
    if (labels := _selector(label_selector)) is not None:
        kwargs["label_selector"] = labels
    if (fields := _selector(field_selector)) is not None:
        kwargs["field_selector"] = fields
    return kwargs


def _json(response: httpx.Response, path: str) -> Any:
    try:
        return response.json()
    except ValueError as exc:
        raise ResponseError(f"GET {path}: the body is not JSON: {exc}") from exc


_T = TypeVar("_T")


def _guard(request: Callable[[], _T], resource: str) -> _T:
    try:
        return request()
    except generated_errors.UnexpectedStatus as exc:
        raise ResponseError(f"unexpected status {exc.status_code} for {resource}") from exc
    except (ValueError, KeyError, TypeError) as exc:  # the generated parser on a malformed 2xx body
        raise ResponseError(f"unexpected {resource} document: {exc!r}") from exc


async def _aguard(request: Callable[[], Awaitable[_T]], resource: str) -> _T:
    try:
        return await request()
    except generated_errors.UnexpectedStatus as exc:
        raise ResponseError(f"unexpected status {exc.status_code} for {resource}") from exc
    except (ValueError, KeyError, TypeError) as exc:
        raise ResponseError(f"unexpected {resource} document: {exc!r}") from exc


# --------------------------------------------------------------------------------------------------
# The clients
# --------------------------------------------------------------------------------------------------


@dataclass
class _Base(Generic[CpuT]):
    client: MetricsClient
    """The underlying generated-API client (for the generated operations, or ``get_httpx_client()``)."""
    cpu: type[CpuT]
    """The CPU type chosen when opening (``Decimal`` or ``float``)."""
    default_namespace: str = "default"
    """The namespace of the kubeconfig context (or the in-cluster namespace), else ``"default"``."""
    _calls: _CallFactory[CpuT] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._calls = _CallFactory(Converter(self.cpu))


class Metrics(_Base[CpuT]):
    """Blocking access to the Metrics API. Use as a context manager, or call :meth:`close`.

    Build one with :func:`open_metrics`, or wrap an existing
    :class:`~k8s_metrics.client.MetricsClient`: ``Metrics(client, cpu=Decimal)``.
    """

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self.client.get_httpx_client().close()

    def nodes(
        self, *, label_selector: Selector = None, field_selector: Selector = None
    ) -> list[NodeUsage[CpuT]]:
        """All nodes that have metrics, sorted by name (``GET .../nodes``).

        ``field_selector`` may use ``metadata.name`` only. Raises :class:`~k8s_metrics.errors.MetricsError`.
        """
        return self._run(self._calls.nodes(label_selector, field_selector))  # type: ignore[no-any-return]

    def node(self, name: str) -> NodeUsage[CpuT]:
        """One node. Raises :class:`~k8s_metrics.errors.NotFound` when the node does not exist or has no
        metrics yet, other :class:`~k8s_metrics.errors.MetricsError` as :meth:`nodes`."""
        return self._run(self._calls.node(name))  # type: ignore[no-any-return]

    def pods(
        self,
        namespace: str | None = None,
        *,
        label_selector: Selector = None,
        field_selector: Selector = None,
    ) -> list[PodUsage[CpuT]]:
        """Running pods with metrics in ``namespace``, or in **all namespaces** when it is None, sorted by
        namespace and name. ``field_selector`` may use ``metadata.name`` and ``metadata.namespace`` only.
        Raises :class:`~k8s_metrics.errors.MetricsError`."""
        return self._run(self._calls.pods(namespace, label_selector, field_selector))  # type: ignore[no-any-return]

    def pod(self, namespace: str, name: str) -> PodUsage[CpuT]:
        """One pod. Raises :class:`~k8s_metrics.errors.NotFound` when the pod does not exist, is not Running
        or has no metrics yet."""
        return self._run(self._calls.pod(namespace, name))  # type: ignore[no-any-return]

    def get_json(
        self, path: str, params: Mapping[str, str] | None = None, headers: Mapping[str, str] | None = None
    ) -> Any:
        """GET any API path on the same connection (for example ``/api/v1/nodes`` for allocatable) and return
        the decoded JSON. Errors are raised as for the metrics calls."""
        return _json(self.client.get_httpx_client().get(path, params=params, headers=headers), path)

    def wait_until_available(self, timeout: float | None = 60.0) -> None:
        """Block until the Metrics API answers (its discovery document, ``GET /apis/metrics.k8s.io/v1beta1``,
        served once kube-aggregator has an Available metrics server), checking again after 0.2 s, then
        twice as long each time up to 5 s. ``timeout`` is in seconds; None waits for ever.

        Raises the last error when the API is still unavailable at the deadline
        (:class:`~k8s_metrics.errors.ServiceUnavailable`, :class:`~k8s_metrics.errors.NotFound` for an
        APIService not registered yet, :class:`~k8s_metrics.errors.TransportError` ...), and at once an
        error that waiting cannot cure (``Unauthorized``, ``Forbidden`` ...).
        """
        backoff = Backoff(None if timeout is None else time.monotonic() + timeout)
        while True:
            try:
                self.get_json(DISCOVERY_PATH)
                return
            except MetricsError as exc:
                delay = backoff.next_delay(time.monotonic()) if retryable(exc) else None
                if delay is None:
                    raise
            time.sleep(delay)

    def watch_pods(
        self,
        namespace: str | None = None,
        *,
        label_selector: Selector = None,
        field_selector: Selector = None,
        interval: float | None = None,
        stop: threading.Event | None = None,
    ) -> Iterator[list[PodUsage[CpuT]]]:
        """Yield the pods of :meth:`pods` that have a sample not yielded before: first every pod with
        metrics (when there is one), then, poll after poll, only pods whose sample ``timestamp`` changed
        (or that appeared). A poll with nothing new yields nothing.

        Polls every half of the served ``window`` (within 1-30 s), or every ``interval`` seconds. Stops
        when the caller leaves the loop, or soon after ``stop`` is set (from another thread). Errors are
        raised as by :meth:`pods`; combine with :meth:`wait_until_available` to ride out restarts.
        """
        tracker = SampleTracker(interval)
        while stop is None or not stop.is_set():
            fresh = tracker.new(
                self.pods(namespace, label_selector=label_selector, field_selector=field_selector)
            )
            if fresh:
                yield fresh
            if stop is None:
                time.sleep(tracker.poll_interval())
            elif stop.wait(tracker.poll_interval()):
                return

    def _run(self, call: _Call) -> Any:
        def request() -> Response[Any]:
            return call.operation.sync_detailed(*call.args, client=self.client, **call.kwargs)  # type: ignore[no-any-return]

        return call.finish(_guard(request, call.resource))


class AsyncMetrics(_Base[CpuT]):
    """Async access to the Metrics API, under trio or asyncio. Use ``async with``, or call :meth:`aclose`.
    Methods and errors are those of :class:`Metrics`. Use one instance per event loop."""

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self.client.get_async_httpx_client().aclose()

    async def nodes(
        self, *, label_selector: Selector = None, field_selector: Selector = None
    ) -> list[NodeUsage[CpuT]]:
        """See :meth:`Metrics.nodes`."""
        return await self._run(self._calls.nodes(label_selector, field_selector))  # type: ignore[no-any-return]

    async def node(self, name: str) -> NodeUsage[CpuT]:
        """See :meth:`Metrics.node`."""
        return await self._run(self._calls.node(name))  # type: ignore[no-any-return]

    async def pods(
        self,
        namespace: str | None = None,
        *,
        label_selector: Selector = None,
        field_selector: Selector = None,
    ) -> list[PodUsage[CpuT]]:
        """See :meth:`Metrics.pods`."""
        return await self._run(self._calls.pods(namespace, label_selector, field_selector))  # type: ignore[no-any-return]

    async def pod(self, namespace: str, name: str) -> PodUsage[CpuT]:
        """See :meth:`Metrics.pod`."""
        return await self._run(self._calls.pod(namespace, name))  # type: ignore[no-any-return]

    async def get_json(
        self, path: str, params: Mapping[str, str] | None = None, headers: Mapping[str, str] | None = None
    ) -> Any:
        """See :meth:`Metrics.get_json`."""
        client = self.client.get_async_httpx_client()
        return _json(await client.get(path, params=params, headers=headers), path)

    async def wait_until_available(self, timeout: float | None = 60.0) -> None:  # noqa: ASYNC109
        # A timeout parameter rather than a cancel scope: at the deadline the last error is raised.
        """See :meth:`Metrics.wait_until_available`; waits on the event loop's clock (trio's or asyncio's),
        and is cancelled like any other wait."""
        backoff = Backoff(None if timeout is None else anyio.current_time() + timeout)
        while True:
            try:
                await self.get_json(DISCOVERY_PATH)
                return
            except MetricsError as exc:
                delay = backoff.next_delay(anyio.current_time()) if retryable(exc) else None
                if delay is None:
                    raise
            await anyio.sleep(delay)

    def watch_pods(
        self,
        namespace: str | None = None,
        *,
        label_selector: Selector = None,
        field_selector: Selector = None,
        interval: float | None = None,
    ) -> AsyncPodWatch[CpuT]:
        """See :meth:`Metrics.watch_pods`: ``async for batch in metrics.watch_pods(...)``. Cancelled like
        any other wait (a trio cancel scope, ``asyncio`` task cancellation), or by leaving the loop."""

        async def fetch() -> list[PodUsage[CpuT]]:
            return await self.pods(namespace, label_selector=label_selector, field_selector=field_selector)

        return AsyncPodWatch(fetch, SampleTracker(interval))

    async def _run(self, call: _Call) -> Any:
        async def request() -> Response[Any]:
            return await call.operation.asyncio_detailed(*call.args, client=self.client, **call.kwargs)  # type: ignore[no-any-return]

        return call.finish(await _aguard(request, call.resource))


# --------------------------------------------------------------------------------------------------
# Factories
# --------------------------------------------------------------------------------------------------


def _open(
    connection: ClusterConnection | None,
    kubeconfig: str | os.PathLike[str] | None,
    context: str | None,
    timeout: float | httpx.Timeout,
) -> tuple[MetricsClient, str]:
    if connection is None:
        connection = load_default(context) if kubeconfig is None else load_kubeconfig(kubeconfig, context)
    elif kubeconfig is not None or context is not None:
        raise ValueError("pass either a connection or kubeconfig/context, not both")
    return metrics_client(connection, timeout=timeout), connection.namespace or "default"


class AsyncPodWatch(Generic[CpuT]):
    """The async iterator of :meth:`AsyncMetrics.watch_pods`. An object rather than an async generator,
    so that leaving the loop early leaves nothing to finalize (no generator frame suspended in a wait)."""

    def __init__(self, fetch: Callable[[], Awaitable[list[PodUsage[CpuT]]]], tracker: SampleTracker) -> None:
        self._fetch: Callable[[], Awaitable[list[PodUsage[CpuT]]]] = fetch
        self._tracker = tracker
        self._polled = False

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> list[PodUsage[CpuT]]:
        while True:
            if self._polled:
                await anyio.sleep(self._tracker.poll_interval())
            self._polled = True
            fresh = self._tracker.new(await self._fetch())
            if fresh:
                return fresh


@overload
def open_metrics(
    connection: ClusterConnection | None = None,
    *,
    kubeconfig: str | os.PathLike[str] | None = None,
    context: str | None = None,
    timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
) -> Metrics[Decimal]: ...
@overload
def open_metrics(
    connection: ClusterConnection | None = None,
    *,
    kubeconfig: str | os.PathLike[str] | None = None,
    context: str | None = None,
    cpu: type[CpuT],
    timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
) -> Metrics[CpuT]: ...
def open_metrics(
    connection: ClusterConnection | None = None,
    *,
    kubeconfig: str | os.PathLike[str] | None = None,
    context: str | None = None,
    cpu: type[Any] = Decimal,
    timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
) -> Metrics[Any]:
    """Open blocking access to the cluster's Metrics API.

    The cluster is ``connection``, else the ``kubeconfig`` file (``context`` or its current context), else
    — like kubectl — ``$KUBECONFIG`` / ``~/.kube/config``, else the in-cluster service account. ``cpu`` is
    ``Decimal`` (exact, the default) or ``float``. Nothing is sent until the first call.

    Raises:
        k8s_metrics.kubeconfig.ConfigError: the configuration cannot be loaded (the message says why).
        ValueError: ``connection`` combined with ``kubeconfig``/``context``, or ``cpu`` not Decimal/float.
    """
    client, namespace = _open(connection, kubeconfig, context, timeout)
    return Metrics(client, _cpu_type(cpu), namespace)


@overload
def open_async_metrics(
    connection: ClusterConnection | None = None,
    *,
    kubeconfig: str | os.PathLike[str] | None = None,
    context: str | None = None,
    timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
) -> AsyncMetrics[Decimal]: ...
@overload
def open_async_metrics(
    connection: ClusterConnection | None = None,
    *,
    kubeconfig: str | os.PathLike[str] | None = None,
    context: str | None = None,
    cpu: type[CpuT],
    timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
) -> AsyncMetrics[CpuT]: ...
def open_async_metrics(
    connection: ClusterConnection | None = None,
    *,
    kubeconfig: str | os.PathLike[str] | None = None,
    context: str | None = None,
    cpu: type[Any] = Decimal,
    timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
) -> AsyncMetrics[Any]:
    """Like :func:`open_metrics`, for ``async with`` under trio or asyncio. Loading the configuration is
    blocking (and may run a kubeconfig exec plugin once); requests are not."""
    client, namespace = _open(connection, kubeconfig, context, timeout)
    return AsyncMetrics(client, _cpu_type(cpu), namespace)


def _cpu_type(cpu: type[Any]) -> type[Any]:
    if cpu is not Decimal and cpu is not float:
        raise ValueError(f"cpu must be decimal.Decimal or float, not {cpu!r}")
    return cpu
