"""The deterministic mode: usage any two correct metrics servers compute identically, whenever they scrape.

In this mode (`SimCluster(deterministic=True)`, `python -m kubesim --deterministic`):

* every container, and every node's own (system) usage, follows a `Linear` profile: the CPU
  counter grows at a constant whole number of nanocores, a multiple of `EXACT_NANOCORES`, and the
  working set is constant;
* kubelets sample on whole seconds (no per-node phase, no per-container skew) and pods have no
  overhead, so every sample is taken `k` whole seconds after its container started;
* the times of changes (pod start, container restart, phase change) are rounded up to a whole
  second (`aligned_ns`).

Why `EXACT_NANOCORES` (5**9): a kubelet writes the counter in seconds as a float and a server
reads it back as `uint64(seconds * 1e9)`. A counter of `k * 5**9` ns is `k / 512` s, exact in
binary, so the round trip is exact, and the rate between any two samples,
`(c1 - c0) / (t1 - t0)`, is exactly the profile's rate, whichever two samples a server pairs.
So two servers' answers differ only in `timestamp`, `window` and `creationTimestamp` (and in
what they deliberately do differently), which is what `tests/reference/` relies on.

`comparison_workload(cluster)` adds the cases that matter when comparing servers: pods in many
namespaces with labels, multi-container pods, init containers, a pod that is not running, a node
with no pods. Restarts, pods stopping and appearing, and failing kubelets are the cluster's own
controls (`SimCluster.restart_container`, `set_pod_phase`, `add_pod`, `set_fault`).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import TYPE_CHECKING

from .clock import NS_PER_S
from .entities import ContainerSpec
from .profiles import GI, MI, Profile

if TYPE_CHECKING:
    from .cluster import SimCluster

EXACT_NANOCORES = 5**9
"""1953125 nanocores (~1.95 millicores): every deterministic CPU rate is a multiple of this."""
_PAGE = 4096


def aligned_ns(t_ns: int) -> int:
    """`t_ns` rounded up to a whole second (when deterministic changes take effect)."""
    return -(-t_ns // NS_PER_S) * NS_PER_S


@dataclass(slots=True)
class Linear(Profile):
    """CPU `units * EXACT_NANOCORES` nanocores, constant; memory `memory` bytes, constant.

    `cpu_ns(t)` is exact (an integer, no rounding) whenever `t - origin` is a whole number of
    seconds, which the deterministic mode guarantees for every sample.
    """

    units: int = 64
    memory: int = 64 * MI

    def __post_init__(self) -> None:
        if self.units < 0:
            raise ValueError("linear profile: units must be >= 0")

    @property
    def kind(self) -> str:
        return "linear"

    @property
    def nanocores(self) -> int:
        return self.units * EXACT_NANOCORES

    def cpu_ns(self, t_ns: int) -> int:
        if t_ns <= self.origin_ns:
            return 0
        return self.nanocores * (t_ns - self.origin_ns) // NS_PER_S

    def cpu_millicores(self, t_ns: int) -> float:
        return self.nanocores / 1e6

    def memory_bytes(self, t_ns: int) -> int:
        return self.memory


def random_linear(rng: random.Random, origin_ns: int, *, low: int = 1, high: int = 400) -> Linear:
    """A container's deterministic profile drawn from `rng`: 2-780 millicores, 16-512 MiB."""
    memory = rng.randrange(16, 512) * MI + rng.randrange(0, 256) * _PAGE
    return Linear(origin_ns, units=rng.randrange(low, high + 1), memory=memory)


def system_linear(rng: random.Random, origin_ns: int) -> Linear:
    """A node's own usage (kubelet, runtime, OS) in the deterministic mode."""
    return Linear(origin_ns, units=rng.randrange(20, 130), memory=rng.randrange(300, 900) * MI)


# --- the comparison workload ------------------------------------------------------------------

DIFF_NAMESPACES = ("diff-a", "diff-b")
FAILING_FAULT = "error"


@dataclass(frozen=True, slots=True)
class Workload:
    """What `comparison_workload` set up (names for the requests a comparison makes)."""

    empty_node: str
    """A node with no pods."""
    failing_node: str
    """A node whose kubelet answers 500: no metrics for it or its pods."""
    pending_pod: tuple[str, str]
    """A pod that is not running (namespace, name)."""
    multi_pod: tuple[str, str]
    """A running pod of three containers."""
    init_pod: tuple[str, str]
    """A running pod whose two init containers have completed."""


def comparison_workload(cluster: SimCluster) -> Workload:
    """Shape a deterministic cluster of >= 5 nodes for comparing servers (call before they start).

    Adds pods with hand-picked usage and labels in `DIFF_NAMESPACES` (quantities in every canonical
    form: `1`, `500m`, `15625u`, `1953125n`; `5Mi`, `3Gi`, `1000000`), empties the last node and
    makes the next-to-last node's kubelet fail; the random pods stay in the other namespaces.
    """
    names = cluster.node_names()
    if len(names) < 5:
        raise ValueError("comparison_workload needs at least 5 nodes")
    if not cluster.model.options.deterministic:
        raise ValueError("comparison_workload needs a deterministic cluster")
    n0, n1, n2, failing, empty = names[0], names[1], names[2], names[-2], names[-1]
    for pod in cluster.pods(empty):
        cluster.delete_pod(pod.namespace, pod.name)

    def spec(name: str, units: int, memory: int) -> ContainerSpec:
        return ContainerSpec(name, Linear(0, units=units, memory=memory))

    a, b = DIFF_NAMESPACES
    cluster.add_pod(
        n0,
        a,
        "multi",
        [spec("app", 512, 3 * GI), spec("sidecar", 256, 5 * MI), spec("log", 1, 1_000_000)],
        labels={"app": "multi", "tier": "web", "env": "prod"},
    )
    cluster.add_pod(
        n1,
        a,
        "init",
        [spec("app", 8, 12345 * _PAGE)],
        labels={"app": "init", "env": "staging"},
        init_containers=("init-db", "init-cfg"),
    )
    cluster.add_pod(n2, a, "pending", [spec("app", 64, 64 * MI)], labels={"app": "multi"}, phase="Pending")
    cluster.add_pod(n2, a, "solo", [spec("app", 64, 200 * MI)], labels={"app": "solo", "tier": "backend"})
    for i, (node, env) in enumerate(((n0, "prod"), (n1, "staging"), (n2, "prod"))):
        cluster.add_pod(
            node,
            b,
            f"web-{i}",
            [spec("web", 32 + 16 * i, (100 + i) * MI), spec("istio-proxy", 3, 40 * MI)],
            labels={"app": "web", "tier": "frontend", "env": env, "index": str(i)},
        )
    cluster.add_pod(
        failing, b, "on-failing-node", [spec("web", 10, 10 * MI)], labels={"app": "web", "env": "prod"}
    )
    cluster.set_fault(failing, FAILING_FAULT)
    return Workload(empty, failing, (a, "pending"), (a, "multi"), (a, "init"))
