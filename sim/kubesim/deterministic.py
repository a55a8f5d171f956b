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

from .clock import NS_PER_S
from .profiles import MI, Profile

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
