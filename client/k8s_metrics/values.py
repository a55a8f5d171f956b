"""The typed values of the Metrics API: node, pod and container usage as numbers.

* ``cpu`` is in **cores**, exactly as served (``"250m"`` is ``Decimal("0.250")``), or as a ``float`` when
  the client was opened with ``cpu=float``; ``cpu_nanocores`` is the exact integer and
  ``cpu_millicores`` the value ``kubectl top`` prints (rounded up, like ``Quantity.MilliValue()``).
* ``memory`` is in **bytes** (``int``; a fractional quantity is rounded up, like ``Quantity.Value()``).
* A pod's ``cpu``/``memory`` are the sums over its containers, summed exactly (as ``kubectl top`` does).
* ``timestamp`` is an aware UTC ``datetime``; ``window`` a ``timedelta`` (parsed from Go's duration text).
* A resource missing from a usage map counts as 0 (as in ``kubectl top``) and is named in ``missing``
  (of a container or a node); :meth:`PodUsage.has_metrics` applies the HPA's rule for a usable pod sample.

:class:`Converter` builds them from the generated models; a document that does not fit raises
``ValueError``/``KeyError``/``TypeError`` (the caller reports a ``ResponseError``).
"""

from __future__ import annotations

import datetime
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Final, Generic, TypeVar

from ._generated.models.node_metrics import NodeMetrics
from ._generated.models.object_meta import ObjectMeta
from ._generated.models.pod_metrics import PodMetrics
from ._generated.models.resource_list import ResourceList
from ._generated.types import Unset
from .durations import parse_duration
from .quantity import cpu_millicores, cpu_nanocores, memory_bytes, parse_quantity

__all__ = ["ContainerUsage", "Converter", "CpuT", "NodeUsage", "PodUsage"]

CpuT = TypeVar("CpuT", Decimal, float)
"""How CPU cores are represented: exact ``Decimal`` (the default) or ``float``."""

_ZERO: Final = Decimal(0)
_NONE_MISSING: Final[frozenset[str]] = frozenset()


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
class Converter(Generic[CpuT]):
    """Builds the typed values from the generated models, with CPU cores as ``cpu`` (Decimal or float)."""

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
