"""Typed, numeric node and pod usage from the Metrics API, sync or async (trio or asyncio).

Five lines from ``pip install`` to numbers::

    from k8s_metrics import open_metrics

    with open_metrics() as metrics:                      # kubeconfig or in-cluster, like kubectl
        for pod in metrics.pods("kube-system"):
            print(pod.name, pod.cpu, pod.memory)         # Decimal cores, int bytes

Async, under trio or asyncio, with CPU as ``float``::

    async with open_async_metrics(cpu=float) as metrics:
        nodes = await metrics.nodes(label_selector={"pool": "blue"})

Values:

* ``cpu`` is in **cores**, exactly as served (``"250m"`` is ``Decimal("0.250")``), or as a ``float`` when
  the client was opened with ``cpu=float``; ``cpu_nanocores`` is the exact integer and
  ``cpu_millicores`` the value ``kubectl top`` prints (rounded up, like ``Quantity.MilliValue()``).
* ``memory`` is in **bytes** (``int``; a fractional quantity is rounded up, like ``Quantity.Value()``).
* A pod's ``cpu``/``memory`` are the sums over its containers, summed exactly (as ``kubectl top`` does).
* ``timestamp`` is an aware UTC ``datetime``; ``window`` a ``timedelta`` (parsed from Go's duration text).
* A resource missing from a usage map counts as 0 (as in ``kubectl top``) and is named in ``missing``;
  :meth:`PodUsage.has_metrics` applies the HPA's rule for a usable pod sample.

Every method raises a :class:`~k8s_metrics.errors.MetricsError`: an
:class:`~k8s_metrics.errors.ApiError` subclass carrying the Kubernetes ``Status`` for an error
answer (``NotFound``, ``Forbidden``, ``Unauthorized``, ``ServiceUnavailable``, ``BadRequest``),
``ResponseError`` for a body that is not the promised document, ``TransportError`` when no answer came.
"""

from __future__ import annotations

import datetime
import os
import re
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from types import ModuleType, TracebackType
from typing import Any, Final, Generic, Self, TypeVar, overload

import httpx

from ._generated import errors as generated_errors
from ._generated.api.metrics import (
    list_namespaced_pod_metrics,
    list_node_metrics,
    list_pod_metrics_for_all_namespaces,
    read_namespaced_pod_metrics,
    read_node_metrics,
)
from ._generated.models.node_metrics import NodeMetrics
from ._generated.models.node_metrics_list import NodeMetricsList
from ._generated.models.object_meta import ObjectMeta
from ._generated.models.pod_metrics import PodMetrics
from ._generated.models.pod_metrics_list import PodMetricsList
from ._generated.models.resource_list import ResourceList
from ._generated.models.status import Status
from ._generated.types import Response, Unset
from .client import DEFAULT_TIMEOUT, MetricsClient, metrics_client
from .errors import ApiError, ResponseError, TransportError, error_from_status, status_from_body
from .kubeconfig import ClusterConnection, load_default, load_kubeconfig
from .quantity import cpu_millicores, cpu_nanocores, memory_bytes, parse_quantity

__all__ = [
    "AsyncMetrics",
    "ContainerUsage",
    "CpuT",
    "Metrics",
    "NodeUsage",
    "PodUsage",
    "Selector",
    "open_async_metrics",
    "open_metrics",
    "parse_duration",
]

CpuT = TypeVar("CpuT", Decimal, float)
"""How CPU cores are represented: exact ``Decimal`` (the default) or ``float``."""

Selector = str | Mapping[str, str] | None
"""A selector as Kubernetes writes it (``"app=web,tier!=db"``), or a mapping of equalities
(``{"app": "web"}``, joined in key order), or None for everything."""

_NODES: Final = "nodes.metrics.k8s.io"
_PODS: Final = "pods.metrics.k8s.io"
_ZERO: Final = Decimal(0)
_NONE_MISSING: Final[frozenset[str]] = frozenset()


# --------------------------------------------------------------------------------------------------
# Values
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ContainerUsage(Generic[CpuT]):
    """The usage of one container.

    Attributes:
        name: the container name.
        cpu: cores (``Decimal`` exactly as served, or ``float``).
        cpu_nanocores: cores × 10⁹, exact.
        memory: working-set bytes.
        missing: resource names (``"cpu"``, ``"memory"``) absent from the served usage map; they read 0.
    """

    name: str
    cpu: CpuT
    cpu_nanocores: int
    memory: int
    missing: frozenset[str] = frozenset()

    @property
    def cpu_millicores(self) -> int:
        """Millicores rounded away from zero (``Quantity.MilliValue()``): what ``kubectl top`` prints and
        what the HPA adds up per pod."""
        return _millicores(self.cpu_nanocores)


@dataclass(frozen=True, slots=True)
class PodUsage(Generic[CpuT]):
    """The usage of one pod: its containers and their exact sums.

    Attributes:
        namespace, name: the pod.
        labels: the pod's labels as metrics-server copies them (empty when it sent none).
        timestamp: end of the measurement (aware, UTC); the earliest of the containers'.
        window: length of the CPU rate window.
        containers: per-container usage, in the order served.
        cpu, cpu_nanocores, memory: sums over ``containers`` (0 for a pod with none).
    """

    namespace: str
    name: str
    labels: Mapping[str, str]
    timestamp: datetime.datetime
    window: datetime.timedelta
    containers: tuple[ContainerUsage[CpuT], ...]
    cpu: CpuT
    cpu_nanocores: int
    memory: int

    @property
    def cpu_millicores(self) -> int:
        """Millicores of the exact sum, rounded up: the pod row of ``kubectl top pod``. (The HPA instead adds
        each container's rounded value: ``sum(c.cpu_millicores for c in pod.containers)``.)"""
        return _millicores(self.cpu_nanocores)

    def has_metrics(self, resource: str = "cpu") -> bool:
        """The HPA's test for a usable sample: at least one container, and every container reports
        ``resource``. A pod failing it counts as *missing* in the HPA's algorithm."""
        return bool(self.containers) and all(resource not in c.missing for c in self.containers)


@dataclass(frozen=True, slots=True)
class NodeUsage(Generic[CpuT]):
    """The usage of one node (the whole machine as the kubelet sees it, not just its pods).

    Attributes:
        name: the node.
        labels: the Node's labels as metrics-server copies them (empty when it sent none).
        timestamp: end of the measurement (aware, UTC).
        window: length of the CPU rate window.
        cpu, cpu_nanocores, memory: as in :class:`ContainerUsage`.
        missing: resource names absent from the served usage map; they read 0.
    """

    name: str
    labels: Mapping[str, str]
    timestamp: datetime.datetime
    window: datetime.timedelta
    cpu: CpuT
    cpu_nanocores: int
    memory: int
    missing: frozenset[str] = frozenset()

    @property
    def cpu_millicores(self) -> int:
        """Millicores rounded up: what ``kubectl top node`` prints."""
        return _millicores(self.cpu_nanocores)


def _millicores(nanocores: int) -> int:
    return cpu_millicores(Decimal(nanocores).scaleb(-9))


# Go's time.ParseDuration units, in nanoseconds.
_UNITS: Final = {
    "ns": 1,
    "us": 10**3,
    "µs": 10**3,
    "μs": 10**3,
    "ms": 10**6,
    "s": 10**9,
    "m": 60 * 10**9,
    "h": 3600 * 10**9,
}
_TERM: Final = re.compile(r"(\d*)(?:\.(\d*))?([a-zµμ]+)")


def parse_duration(text: str) -> datetime.timedelta:
    """Parse a Go duration string (``"15.012s"``, ``"1m0.729s"``, ``"500ms"``, ``"1µs"``, ``"0s"``, ``"0"``)
    like ``time.ParseDuration`` (fractions finer than a nanosecond are dropped), then round half to even
    to whole microseconds, ``timedelta``'s resolution.

    Raises:
        ValueError: not a Go duration; the message quotes ``text``.
    """
    body = text[1:] if text[:1] in "+-" else text
    if body == "0":
        return datetime.timedelta(0)
    if not body:
        raise ValueError(f"invalid duration {text!r}")
    ns = 0
    pos = 0
    while pos < len(body):
        match = _TERM.match(body, pos)
        if match is None or not (match[1] or match[2]) or match[3] not in _UNITS:
            raise ValueError(f"invalid duration {text!r}")
        unit = _UNITS[match[3]]
        ns += int(match[1] or "0") * unit
        if match[2]:
            ns += int(match[2]) * unit // 10 ** len(match[2])
        pos = match.end()
    micros, rest = divmod(ns, 1000)
    if rest > 500 or (rest == 500 and micros % 2):
        micros += 1
    return datetime.timedelta(microseconds=-micros if text.startswith("-") else micros)


# --------------------------------------------------------------------------------------------------
# Conversion from the generated models
# --------------------------------------------------------------------------------------------------


def _labels(meta: ObjectMeta) -> dict[str, str]:
    return {} if isinstance(meta.labels, Unset) else dict(meta.labels.additional_properties)


def _exact(usage: ResourceList) -> tuple[Decimal, Decimal, frozenset[str]]:
    values = usage.additional_properties
    if "cpu" in values and "memory" in values:  # metrics-server always sends both
        return parse_quantity(values["cpu"]), parse_quantity(values["memory"]), _NONE_MISSING
    missing = frozenset(name for name in ("cpu", "memory") if name not in values)
    cpu = parse_quantity(values["cpu"]) if "cpu" in values else _ZERO
    memory = parse_quantity(values["memory"]) if "memory" in values else _ZERO
    return cpu, memory, missing


@dataclass(frozen=True)
class _Converter(Generic[CpuT]):
    cpu: Callable[[Decimal], CpuT]

    def node(self, item: NodeMetrics) -> NodeUsage[CpuT]:
        cpu, memory, missing = _exact(item.usage)
        return NodeUsage(
            name=item.metadata.name,
            labels=_labels(item.metadata),
            timestamp=item.timestamp,
            window=parse_duration(item.window),
            cpu=self.cpu(cpu),
            cpu_nanocores=cpu_nanocores(cpu),
            memory=memory_bytes(memory),
            missing=missing,
        )

    def pod(self, item: PodMetrics) -> PodUsage[CpuT]:
        containers = []
        total_cpu = total_memory = _ZERO
        for c in item.containers:
            cpu, memory, missing = _exact(c.usage)
            total_cpu += cpu
            total_memory += memory
            containers.append(
                ContainerUsage(c.name, self.cpu(cpu), cpu_nanocores(cpu), memory_bytes(memory), missing)
            )
        namespace = item.metadata.namespace
        return PodUsage(
            namespace=namespace if isinstance(namespace, str) else "",
            name=item.metadata.name,
            labels=_labels(item.metadata),
            timestamp=item.timestamp,
            window=parse_duration(item.window),
            containers=tuple(containers),
            cpu=self.cpu(total_cpu),
            cpu_nanocores=cpu_nanocores(total_cpu),
            memory=memory_bytes(total_memory),
        )


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
    name: str
    convert: Callable[[Any], Any]

    def finish(self, response: Response[Any]) -> Any:
        parsed = response.parsed
        if isinstance(parsed, Status):
            raise error_from_status(parsed, resource=self.resource, name=self.name)
        if parsed is None:  # only with raise_on_unexpected_status=False
            raise error_from_status(status_from_body(response.status_code, response.content))
        try:
            return self.convert(parsed)
        except (ValueError, KeyError, TypeError, ArithmeticError) as exc:
            raise ResponseError(f"unexpected {self.resource} document: {exc}") from exc


@dataclass(frozen=True)
class _CallFactory(Generic[CpuT]):
    converter: _Converter[CpuT]

    def nodes(self, label_selector: Selector, field_selector: Selector) -> _Call:
        kwargs = _list_kwargs(label_selector, field_selector)
        return _Call(list_node_metrics, (), kwargs, _NODES, "", self._node_list)

    def node(self, name: str) -> _Call:
        return _Call(read_node_metrics, (name,), {}, _NODES, name, self.converter.node)

    def pods(self, namespace: str | None, label_selector: Selector, field_selector: Selector) -> _Call:
        kwargs = _list_kwargs(label_selector, field_selector)
        if namespace is None:
            return _Call(list_pod_metrics_for_all_namespaces, (), kwargs, _PODS, "", self._pod_list)
        return _Call(list_namespaced_pod_metrics, (namespace,), kwargs, _PODS, "", self._pod_list)

    def pod(self, namespace: str, name: str) -> _Call:
        return _Call(read_namespaced_pod_metrics, (namespace, name), {}, _PODS, name, self.converter.pod)

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


def _unexpected(exc: generated_errors.UnexpectedStatus, call_resource: str, name: str) -> ApiError:
    return error_from_status(
        status_from_body(exc.status_code, exc.content), resource=call_resource, name=name
    )


def _json_result(response: httpx.Response, path: str) -> Any:
    if response.status_code >= 300:
        raise error_from_status(
            status_from_body(response.status_code, response.content), resource=_resource_of(path)
        )
    try:
        return response.json()
    except ValueError as exc:
        raise ResponseError(f"GET {path}: the body is not JSON: {exc}") from exc


def _resource_of(path: str) -> str:
    """client-go's qualified resource of a core or group path, for error messages: ``/api/v1/nodes`` is
    ``nodes``, ``/apis/apps/v1/namespaces/x/deployments/y`` is ``deployments.apps``."""
    parts = [p for p in path.split("/") if p]
    if parts[:1] == ["api"]:
        group, rest = "", parts[2:]
    elif parts[:1] == ["apis"] and len(parts) >= 3:
        group, rest = parts[1], parts[3:]
    else:
        return ""
    if rest[:1] == ["namespaces"] and len(rest) >= 3:
        rest = rest[2:]
    if not rest:
        return ""
    return f"{rest[0]}.{group}" if group else rest[0]


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
        self._calls = _CallFactory(_Converter(self.cpu))


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
        return _guard(
            lambda: _json_result(
                self.client.get_httpx_client().get(path, params=params, headers=headers), path
            ),
            path,
        )

    def _run(self, call: _Call) -> Any:
        def request() -> Response[Any]:
            return call.operation.sync_detailed(*call.args, client=self.client, **call.kwargs)  # type: ignore[no-any-return]

        return call.finish(_guard(request, call.resource, call.name))


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

        async def request() -> Any:
            client = self.client.get_async_httpx_client()
            return _json_result(await client.get(path, params=params, headers=headers), path)

        return await _aguard(request, path)

    async def _run(self, call: _Call) -> Any:
        async def request() -> Response[Any]:
            return await call.operation.asyncio_detailed(*call.args, client=self.client, **call.kwargs)  # type: ignore[no-any-return]

        return call.finish(await _aguard(request, call.resource, call.name))


_T = TypeVar("_T")


def _guard(request: Callable[[], _T], resource: str, name: str = "") -> _T:
    try:
        return request()
    except generated_errors.UnexpectedStatus as exc:
        raise _unexpected(exc, resource, name) from exc
    except httpx.RequestError as exc:
        raise TransportError(f"{type(exc).__name__}: {exc}") from exc
    except (ValueError, KeyError, TypeError) as exc:  # the generated parser on a malformed 2xx body
        raise ResponseError(f"unexpected {resource} document: {exc!r}") from exc


async def _aguard(request: Callable[[], Awaitable[_T]], resource: str, name: str = "") -> _T:
    try:
        return await request()
    except generated_errors.UnexpectedStatus as exc:
        raise _unexpected(exc, resource, name) from exc
    except httpx.RequestError as exc:
        raise TransportError(f"{type(exc).__name__}: {exc}") from exc
    except (ValueError, KeyError, TypeError) as exc:
        raise ResponseError(f"unexpected {resource} document: {exc!r}") from exc


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
