"""The simulated cluster's state: nodes, pods, containers and their usage over time.

`ClusterModel` is the single source of truth. The apiserver serves the objects it writes into
the `Store`; the kubelets read the same pod and container states to render their bodies; and
the ground-truth methods (`expected_*`) answer from the same profiles. Changing the cluster
(pods coming and going, restarts, phase changes, faults) goes through its methods only, so
the API objects, watch events and kubelet bodies never disagree. The nodes, pods and containers
are `kubesim.entities`; their API objects are rendered by `kubesim.objects`.

Time is the simulated clock (`SimClock`): CPU counters are integrals of the profiles, so they
advance when trio's clock does, also under a MockClock.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

import trio

from . import objects
from .clock import NS_PER_MS, NS_PER_S, SimClock
from .deterministic import aligned_ns, random_linear, system_linear
from .entities import Container, ContainerSpec, Node, Pod
from .errors import ConfigError, NotFoundError
from .profiles import GI, MI, PROFILE_KINDS, Steady, random_profile, stable_hash
from .store import Store

NAMESPACES = ("default", "kube-system", "team-a", "team-b", "monitoring")
APPS = ("web", "api", "worker", "cache", "frontend", "payments", "search", "batch", "auth", "queue")
_RS_CHARS = "bcdfghjklmnpqrstvwxz2456789"

FAULT_MODES = (
    "ok",
    "hang",
    "refuse",
    "error",
    "scrape_error",
    "garbage",
    "huge",
    "huge_chunked",
    "drip",
    "reset",
    "badvalues",
)
"""What each mode sends: `kubesim.faults`."""
KUBELET_FORMATS = ("stable", "1.28", "1.21")


@dataclass(frozen=True, slots=True)
class ModelOptions:
    nodes: int = 3
    pods_per_node: int = 5
    seed: int = 0
    kubelet_port: int = 10250
    sample_interval_s: float = 10.0
    """Kubelet housekeeping period: bodies change once per period. 0 samples at every request."""
    profile_kinds: tuple[str, ...] = PROFILE_KINDS
    kubelet_format: str = "stable"
    address_prefix: tuple[int, int] = (127, 1)
    """Node i listens on <a>.<b + i // 250>.<i % 250 + 1>: 250 nodes per /16 block."""
    deterministic: bool = False
    """`kubesim.deterministic`: linear usage sampled on whole seconds (profile_kinds is ignored)."""


def node_ip(prefix: tuple[int, int], index: int) -> str:
    a, b = prefix
    return f"{a}.{b + index // 250 // 256}.{index // 250 % 256}.{index % 250 + 1}"


class ClusterModel:
    """Nodes and pods plus the API objects that describe them (see module docstring)."""

    def __init__(self, options: ModelOptions, clock: SimClock, store: Store) -> None:
        if options.nodes < 0 or options.pods_per_node < 0:
            raise ConfigError("nodes and pods_per_node must be >= 0")
        if options.kubelet_format not in KUBELET_FORMATS:
            raise ConfigError(f"kubelet_format must be one of {', '.join(KUBELET_FORMATS)}")
        for kind in options.profile_kinds:
            if kind not in PROFILE_KINDS:
                raise ConfigError(
                    f"unknown profile kind {kind!r}; expected one of {', '.join(PROFILE_KINDS)}"
                )
        if options.sample_interval_s < 0:
            raise ConfigError("sample_interval_s must be >= 0")
        if options.deterministic and (
            options.sample_interval_s < 1 or options.sample_interval_s != int(options.sample_interval_s)
        ):
            raise ConfigError("the deterministic mode needs a sample interval of whole seconds (>= 1)")
        self.options = options
        self.clock = clock
        self.store = store
        self.rng = random.Random(options.seed)
        self.nodes: dict[str, Node] = {}
        self.pods: dict[tuple[str, str], Pod] = {}
        self.api_pods = store.add_resource(
            "pods", kind="Pod", api_version="v1", namespaced=True, field_names=objects.POD_FIELDS
        )
        self.api_nodes = store.add_resource(
            "nodes", kind="Node", api_version="v1", namespaced=False, field_names=objects.NODE_FIELDS
        )
        self.api_namespaces = store.add_resource(
            "namespaces",
            kind="Namespace",
            api_version="v1",
            namespaced=False,
            field_names=objects.NAMESPACE_FIELDS,
        )
        self.api_configmaps = store.add_resource(
            "configmaps",
            kind="ConfigMap",
            api_version="v1",
            namespaced=True,
            field_names=objects.CONFIGMAP_FIELDS,
        )
        self._pod_serial = 0
        self._pod_names: set[str] = set()

    # --- population --------------------------------------------------------------------

    def populate(self) -> None:
        """Create the namespaces, nodes and pods the options ask for (deterministic from the seed)."""
        now = self.clock.now_ns()
        for ns in NAMESPACES:
            self._put_namespace(ns, now - 30 * 86400 * NS_PER_S)
        for i in range(self.options.nodes):
            self._create_node(i, now)
        for node in list(self.nodes.values()):
            for j in range(self.options.pods_per_node):
                self._create_random_pod(node, now, daemon=(j == 0))

    def _create_node(self, index: int, now: int) -> Node:
        rng = self.rng
        name = f"sim-node-{index:04d}" if self.options.nodes <= 10_000 else f"sim-node-{index}"
        cores = rng.choice((4, 8, 16, 32))
        mem_gi = cores * rng.choice((2, 4, 8))
        capacity_mem = mem_gi * GI - rng.randrange(200, 900) * MI
        created = now - rng.randrange(1, 30 * 86400) * NS_PER_S
        boot = created + rng.randrange(0, 3600) * NS_PER_S
        interval_ms = int(self.options.sample_interval_s * 1000)
        deterministic = self.options.deterministic
        if deterministic:
            boot = aligned_ns(boot)
        node = Node(
            name=name,
            index=index,
            ip=node_ip(self.options.address_prefix, index),
            cpu_capacity_mc=cores * 1000,
            memory_capacity=capacity_mem // 1024 * 1024,
            cpu_allocatable_mc=cores * 1000 - rng.choice((100, 200)),
            memory_allocatable=(capacity_mem - rng.choice((100, 500)) * MI - 100 * MI) // 1024 * 1024,
            created_ns=created,
            boot_ns=boot,
            system=system_linear(rng, boot)
            if deterministic
            else Steady(boot, millicores=rng.randrange(40, 250), memory=rng.randrange(300, 900) * MI),
            labels={
                "beta.kubernetes.io/arch": "amd64",
                "beta.kubernetes.io/os": "linux",
                "kubernetes.io/arch": "amd64",
                "kubernetes.io/hostname": name,
                "kubernetes.io/os": "linux",
                "node.kubernetes.io/instance-type": f"sim.{cores}x{mem_gi}",
                "topology.kubernetes.io/zone": f"sim-zone-{'abc'[index % 3]}",
            },
            kubelet_format=self.options.kubelet_format,
            phase_ms=rng.randrange(0, interval_ms) if interval_ms and not deterministic else 0,
            stat_skew_ms=rng.randrange(0, 500) if interval_ms and not deterministic else 0,
        )
        self.nodes[name] = node
        self._put_node(node)
        return node

    def _random_name(self, prefix: str, rs: bool) -> str:
        rng = self.rng
        while True:
            suffix = "".join(rng.choice(_RS_CHARS) for _ in range(5))
            name = (
                f"{prefix}-{''.join(rng.choice(_RS_CHARS) for _ in range(10))}-{suffix}"
                if rs
                else f"{prefix}-{suffix}"
            )
            if name not in self._pod_names:
                return name

    def _create_random_pod(
        self, node: Node, now: int, *, daemon: bool = False, start_ns: int | None = None
    ) -> Pod:
        rng = self.rng
        if daemon:
            ns, app, name = "kube-system", "kube-proxy", self._random_name("kube-proxy", rs=False)
            container_names = ["kube-proxy"]
        else:
            ns = rng.choice(NAMESPACES)
            app = rng.choice(APPS)
            name = self._random_name(app, rs=True)
            container_names = (
                [app]
                + (["istio-proxy"] if rng.random() < 0.25 else [])
                + (["log-shipper"] if rng.random() < 0.1 else [])
            )
        started = start_ns if start_ns is not None else now - rng.randrange(60, 7 * 86400) * NS_PER_S
        key = stable_hash(self.options.seed, ns, name)
        specs = [
            ContainerSpec(
                cname,
                random_linear(rng, started)
                if self.options.deterministic
                else random_profile(rng, started, key ^ stable_hash(cname), self.options.profile_kinds),
            )
            for cname in container_names
        ]
        labels = {"app": app} if daemon else {"app": app, "pod-template-hash": name.split("-")[-2]}
        if not daemon:
            labels["tier"] = rng.choice(("frontend", "backend"))
        return self.add_pod(
            node.name,
            ns,
            name,
            specs,
            labels=labels,
            start_ns=started,
            owner="DaemonSet" if daemon else "ReplicaSet",
        )

    # --- control -----------------------------------------------------------------------

    def node(self, name: str) -> Node:
        try:
            return self.nodes[name]
        except KeyError:
            raise NotFoundError(f"node {name!r} not found") from None

    def pod(self, namespace: str, name: str) -> Pod:
        try:
            return self.pods[(namespace, name)]
        except KeyError:
            raise NotFoundError(f"pod {namespace}/{name} not found") from None

    def add_pod(
        self,
        node_name: str,
        namespace: str,
        name: str,
        containers: Sequence[ContainerSpec],
        *,
        labels: Mapping[str, str] | None = None,
        start_ns: int | None = None,
        phase: str = "Running",
        owner: str = "",
        init_containers: Sequence[str] = (),
    ) -> Pod:
        """Create a pod on a node. Profiles are re-anchored to the pod's start (default: now).

        `init_containers` names init containers that completed before the start (see `Pod`)."""
        node = self.node(node_name)
        if (namespace, name) in self.pods:
            raise ConfigError(f"pod {namespace}/{name} already exists")
        if not containers:
            raise ConfigError("a pod needs at least one container")
        now = self.clock.now_ns()
        started = now if start_ns is None else start_ns
        started -= started % NS_PER_MS
        deterministic = self.options.deterministic
        if deterministic:
            started = aligned_ns(started)
        rng = random.Random(stable_hash(self.options.seed, "pod", namespace, name))
        interval_ms = int(self.options.sample_interval_s * 1000) if not deterministic else 0
        built = []
        for spec in containers:
            spec.profile.origin_ns = started
            mean_mc = max(1, round(spec.profile.cpu_millicores(started)))
            built.append(
                Container(
                    spec.name,
                    spec.image or f"registry.example/{spec.name}:1.{rng.randrange(30)}",
                    spec.profile,
                    request_mc=max(10, mean_mc // 10 * 10),
                    request_memory=spec.profile.memory_bytes(started) // MI * MI,
                    stat_skew_ms=rng.randrange(0, 1500) if interval_ms else 0,
                    instance_start_ns=started,
                )
            )
        self._pod_serial += 1
        pod = Pod(
            namespace=namespace,
            name=name,
            uid=objects.uid(self.options.seed, namespace, name, self._pod_serial),
            node=node.name,
            labels=dict(labels or {"app": name}),
            containers=built,
            created_ns=started - rng.randrange(1, 10) * NS_PER_S,
            started_ns=started,
            ip=f"10.{(node.index >> 8) & 255}.{node.index & 255}.{len(node.pods) % 250 + 2}",
            phase=phase,
            overhead_mc=rng.randrange(0, 3) if not deterministic else 0,
            overhead_memory=rng.randrange(0, 64) * 4096 if not deterministic else 0,
            stat_skew_ms=rng.randrange(0, 1500) if interval_ms else 0,
            owner=owner,
            init_containers=tuple(init_containers),
        )
        self.pods[pod.key] = pod
        self._pod_names.add(name)
        if phase == "Running":
            node.pods[pod.key] = pod
            node.generation += 1
        self._put_pod(pod)
        return pod

    def set_pod_phase(self, namespace: str, name: str, phase: str) -> Pod:
        """Move a pod to Pending/Running/Succeeded/Failed; leaving Running stops its usage."""
        if phase not in ("Pending", "Running", "Succeeded", "Failed"):
            raise ConfigError(f"unknown pod phase {phase!r}")
        pod = self.pod(namespace, name)
        node = self.node(pod.node)
        now = self._event_ns()
        if pod.phase == "Running" and phase != "Running":
            node.retired_cpu_ns += pod.cpu_ns(now)
            node.pods.pop(pod.key, None)
            node.generation += 1
            for c in pod.containers:
                c.last_finished_ns = now
        elif pod.phase != "Running" and phase == "Running":
            # (Re)starting: usage is counted from now, on fresh counters.
            pod.started_ns = now
            for c in pod.containers:
                c.profile.origin_ns = now
                c.instance_start_ns = now
                c.instance_base_ns = 0
            node.pods[pod.key] = pod
            node.generation += 1
        pod.phase = phase
        self._put_pod(pod)
        return pod

    def delete_pod(self, namespace: str, name: str) -> None:
        pod = self.pod(namespace, name)
        if pod.phase == "Running":
            self.set_pod_phase(namespace, name, "Succeeded")
        del self.pods[pod.key]
        self.api_pods.delete(namespace, name)

    def restart_container(self, namespace: str, name: str, container: str) -> Container:
        """The container's counter starts again from 0 and its start time moves to now."""
        pod = self.pod(namespace, name)
        c = pod.container(container)
        now = self._event_ns()
        c.instance_base_ns = c.profile.cpu_ns(now)
        c.last_finished_ns = now
        c.instance_start_ns = now
        c.restarts += 1
        if pod.phase == "Running":
            self.node(pod.node).generation += 1
        self._put_pod(pod)
        return c

    def _event_ns(self) -> int:
        """When a change made now takes effect: now, or the next whole second when deterministic."""
        now = self.clock.now_ns()
        return aligned_ns(now) if self.options.deterministic else now

    def set_node_ready(self, name: str, ready: bool) -> None:
        node = self.node(name)
        node.ready = ready
        self._put_node(node)

    def set_fault(self, name: str, mode: str) -> None:
        """Put a node's kubelet in fault `mode` (`FAULT_MODES`, described in `kubesim.faults`), or "ok"."""
        if mode not in FAULT_MODES:
            raise ConfigError(f"unknown fault mode {mode!r}; expected one of {', '.join(FAULT_MODES)}")
        node = self.node(name)
        node.fault = mode
        event, node.fault_changed = node.fault_changed, trio.Event()
        event.set()

    def set_kubelet_format(self, name: str, fmt: str) -> None:
        if fmt not in KUBELET_FORMATS:
            raise ConfigError(f"kubelet format must be one of {', '.join(KUBELET_FORMATS)}")
        node = self.node(name)
        node.kubelet_format = fmt
        node.generation += 1
        self._put_node(node)

    def churn_step(self) -> None:
        """One random change, as a busy cluster makes: a restart, or a pod replaced by a new one."""
        running = [p for p in self.pods.values() if p.phase == "Running"]
        if not running:
            return
        pod = self.rng.choice(sorted(running, key=lambda p: p.key))
        if self.rng.random() < 0.3:
            self.restart_container(pod.namespace, pod.name, self.rng.choice(pod.containers).name)
            return
        node = self.nodes[pod.node]
        self.set_pod_phase(pod.namespace, pod.name, "Succeeded")
        self.delete_pod(pod.namespace, pod.name)
        self._create_random_pod(node, self.clock.now_ns(), start_ns=self.clock.now_ns())

    # --- kubelet sampling ----------------------------------------------------------------

    def sample_tick_ns(self, node: Node, now_ns: int) -> int:
        """The latest housekeeping tick of a kubelet at `now_ns` (its samples are taken then)."""
        interval = int(self.options.sample_interval_s * 1000) * NS_PER_MS
        if interval == 0:
            return now_ns
        phase = node.phase_ms * NS_PER_MS
        return (now_ns - phase) // interval * interval + phase

    # --- ground truth ------------------------------------------------------------------

    def expected_cpu_millicores(
        self, namespace: str, name: str, container: str | None = None, at_ns: int | None = None
    ) -> float:
        """The simulated instantaneous CPU rate of a container, or of a pod (sum of its containers)."""
        pod = self.pod(namespace, name)
        t = self.clock.now_ns() if at_ns is None else at_ns
        cs = [pod.container(container)] if container else pod.containers
        return sum(c.profile.cpu_millicores(t) for c in cs)

    def expected_cpu_rate(
        self, namespace: str, name: str, container: str | None, t0_ns: int, t1_ns: int
    ) -> float:
        """Mean CPU millicores over [t0, t1]: what a rate between two samples at those times gives."""
        pod = self.pod(namespace, name)
        cs = [pod.container(container)] if container else pod.containers
        return sum(c.profile.rate_millicores(t0_ns, t1_ns) for c in cs)

    def expected_memory_bytes(
        self, namespace: str, name: str, container: str | None = None, at_ns: int | None = None
    ) -> int:
        """The simulated working set of a container, or the sum over a pod's containers."""
        pod = self.pod(namespace, name)
        t = self.clock.now_ns() if at_ns is None else at_ns
        cs = [pod.container(container)] if container else pod.containers
        return sum(c.profile.memory_bytes(t) for c in cs)

    def expected_node_cpu_rate(self, name: str, t0_ns: int, t1_ns: int) -> float:
        node = self.node(name)
        return (node.cpu_ns(t1_ns) - node.cpu_ns(t0_ns)) * 1000 / (t1_ns - t0_ns)

    def expected_node_memory_bytes(self, name: str, at_ns: int | None = None) -> int:
        node = self.node(name)
        return node.memory_bytes(self.clock.now_ns() if at_ns is None else at_ns)

    # --- API objects (kubesim.objects) ---------------------------------------------------

    def _put_namespace(self, name: str, created: int) -> None:
        self.api_namespaces.put(
            "",
            name,
            {"kubernetes.io/metadata.name": name},
            objects.namespace_fields(name),
            functools.partial(objects.namespace_json, name, created),
        )

    def put_configmap(self, namespace: str, name: str, data: Mapping[str, str], created: int) -> None:
        self.api_configmaps.put(
            namespace,
            name,
            {},
            {"metadata.name": name, "metadata.namespace": namespace},
            functools.partial(objects.configmap_json, namespace, name, data, created),
        )

    def _put_node(self, node: Node) -> None:
        now = self.clock.now_ns()
        options = self.options

        def render(rv: int) -> bytes:
            return objects.node_json(
                node, seed=options.seed, kubelet_port=options.kubelet_port, now=now, rv=rv
            )

        self.api_nodes.put("", node.name, node.labels, objects.node_fields(node), render)

    def _put_pod(self, pod: Pod) -> None:
        node = self.nodes[pod.node]
        render = functools.partial(objects.pod_json, pod, node)
        self.api_pods.put(pod.namespace, pod.name, pod.labels, objects.pod_fields(pod), render)

    def running_pods(self, node: Node) -> Iterable[Pod]:
        return node.pods.values()
