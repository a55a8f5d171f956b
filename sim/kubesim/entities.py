"""The simulated cluster's objects as the model keeps them: nodes, pods, their containers, and
what `ClusterModel.add_pod` takes per container (`ContainerSpec`).

Usage comes from each container's `Profile` (and each node's system profile), read at any
simulated time: CPU as a cumulative counter in nanoseconds, memory as the working set in bytes.
Only `kubesim.model.ClusterModel` changes them; the kubelets and the API objects
(`kubesim.objects`) read them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import trio

from .errors import NotFoundError
from .profiles import Profile


@dataclass(slots=True)
class ContainerSpec:
    """What `add_pod` needs per container; the profile's origin is set to the pod's start."""

    name: str
    profile: Profile
    image: str = ""
    """Empty: a plausible image name is made up."""


@dataclass(slots=True)
class Container:
    name: str
    image: str
    profile: Profile
    request_mc: int
    request_memory: int
    stat_skew_ms: int
    """How long before the kubelet's housekeeping tick this container's stats were taken."""
    instance_start_ns: int
    instance_base_ns: int = 0
    """CPU the earlier instances used (the counter restarts from 0 with each instance)."""
    restarts: int = 0
    last_finished_ns: int = 0

    def counter_ns(self, t_ns: int) -> int:
        """usageCoreNanoSeconds of the current instance at t."""
        return max(0, self.profile.cpu_ns(t_ns) - self.instance_base_ns)


@dataclass(slots=True)
class Pod:
    namespace: str
    name: str
    uid: str
    node: str
    labels: dict[str, str]
    containers: list[Container]
    created_ns: int
    started_ns: int
    ip: str
    phase: str = "Running"
    overhead_mc: int = 0
    overhead_memory: int = 0
    stat_skew_ms: int = 0
    owner: str = ""
    init_containers: tuple[str, ...] = ()
    """Names of init containers, all completed before the pod started: in the Pod object only
    (a kubelet reports no metrics for a finished container)."""

    @property
    def key(self) -> tuple[str, str]:
        return (self.namespace, self.name)

    def container(self, name: str) -> Container:
        for c in self.containers:
            if c.name == name:
                return c
        raise NotFoundError(f"container {name!r} not found in pod {self.namespace}/{self.name}")

    def cpu_ns(self, t_ns: int) -> int:
        """The pod cgroup's counter: all instances of all containers, plus the pod's overhead."""
        if t_ns <= self.started_ns:
            return 0
        total = sum(c.profile.cpu_ns(t_ns) for c in self.containers)
        return total + self.overhead_mc * (t_ns - self.started_ns) // 1000

    def memory_bytes(self, t_ns: int) -> int:
        return sum(c.profile.memory_bytes(t_ns) for c in self.containers) + self.overhead_memory


@dataclass(slots=True)
class Node:
    name: str
    index: int
    ip: str
    cpu_capacity_mc: int
    memory_capacity: int
    cpu_allocatable_mc: int
    memory_allocatable: int
    created_ns: int
    boot_ns: int
    system: Profile
    """Usage outside pods (kubelet, runtime, OS)."""
    labels: dict[str, str]
    kubelet_format: str = "stable"
    phase_ms: int = 0
    """Offset of this kubelet's housekeeping ticks."""
    stat_skew_ms: int = 0
    pods: dict[tuple[str, str], Pod] = field(default_factory=dict)
    """Pods whose containers run here (phase Running)."""
    retired_cpu_ns: int = 0
    retired_memory: int = 0
    ready: bool = True
    fault: str = "ok"
    fault_changed: trio.Event = field(default_factory=trio.Event)
    generation: int = 0
    """Bumped whenever the set of running pods or container instances changes (kubelet templates)."""

    def cpu_ns(self, t_ns: int) -> int:
        return (
            self.system.cpu_ns(t_ns) + self.retired_cpu_ns + sum(p.cpu_ns(t_ns) for p in self.pods.values())
        )

    def memory_bytes(self, t_ns: int) -> int:
        return self.system.memory_bytes(t_ns) + sum(p.memory_bytes(t_ns) for p in self.pods.values())
