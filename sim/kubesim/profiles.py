"""Resource usage over time: what a simulated container consumes, in closed form.

A profile answers two questions for any simulated time `t` (Unix ns): the CPU consumed since
the profile's origin (`cpu_ns(t)`, integer core-nanoseconds, non-decreasing) and the memory
working set (`memory_bytes(t)`). Kubelet counters, the pod and node aggregates and the ground
truth tests compare against are all derived from these two functions, so they always agree.

Every profile is deterministic: the bursty one draws its bursts from a hash of its key and the
slot number, never from shared random state.
"""

from __future__ import annotations

import hashlib
import math
import random
from dataclasses import dataclass, field

from .clock import NS_PER_S
from .errors import ConfigError

MI = 1 << 20
GI = 1 << 30
_PAGE = 4096
_MASK64 = (1 << 64) - 1


def stable_hash(*parts: object) -> int:
    """A 64-bit hash that is the same in every process (unlike `hash()`)."""
    digest = hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little")


def _splitmix64(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) & _MASK64
    x = ((x ^ (x >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
    x = ((x ^ (x >> 27)) * 0x94D049BB133111EB) & _MASK64
    return x ^ (x >> 31)


def _page_round(value: float) -> int:
    return max(_PAGE, int(value) // _PAGE * _PAGE)


@dataclass(slots=True)
class Profile:
    """Base class: a CPU and memory curve anchored at `origin_ns` (the pod's start).

    `cpu_ns(t)` is the CPU used in [origin, t]; for t before the origin it is 0.
    """

    origin_ns: int

    @property
    def kind(self) -> str:
        raise NotImplementedError

    def cpu_ns(self, t_ns: int) -> int:
        raise NotImplementedError

    def cpu_millicores(self, t_ns: int) -> float:
        """The instantaneous CPU rate in millicores."""
        raise NotImplementedError

    def memory_bytes(self, t_ns: int) -> int:
        raise NotImplementedError

    def rate_millicores(self, t0_ns: int, t1_ns: int) -> float:
        """The mean CPU rate over [t0, t1], exactly what a rate computed from two samples gives."""
        if t1_ns <= t0_ns:
            raise ValueError("rate window must have t1 > t0")
        return (self.cpu_ns(t1_ns) - self.cpu_ns(t0_ns)) * 1000 / (t1_ns - t0_ns)


@dataclass(slots=True)
class Steady(Profile):
    """Constant CPU (`millicores`) and constant memory: exact ground truth for e2e checks."""

    millicores: int = 100
    memory: int = 64 * MI

    @property
    def kind(self) -> str:
        return "steady"

    def cpu_ns(self, t_ns: int) -> int:
        if t_ns <= self.origin_ns:
            return 0
        return self.millicores * (t_ns - self.origin_ns) // 1000

    def cpu_millicores(self, t_ns: int) -> float:
        return float(self.millicores)

    def memory_bytes(self, t_ns: int) -> int:
        return self.memory


@dataclass(slots=True)
class Sine(Profile):
    """CPU `mean ± amplitude` and memory `memory ± memory_amplitude` on a sine of `period_s`.

    The phase is taken modulo the period in integer ns, so precision does not decay with time.
    """

    mean_millicores: int = 200
    amplitude_millicores: int = 100
    period_s: int = 300
    phase: float = 0.0
    memory: int = 128 * MI
    memory_amplitude: int = 16 * MI

    def __post_init__(self) -> None:
        if not 0 <= self.amplitude_millicores < self.mean_millicores:
            raise ConfigError("sine profile: need 0 <= amplitude < mean (CPU use cannot go negative)")
        if self.period_s <= 0:
            raise ConfigError("sine profile: period_s must be > 0")

    @property
    def kind(self) -> str:
        return "sine"

    def _angle(self, t_ns: int) -> float:
        period_ns = self.period_s * NS_PER_S
        return self.phase + 2 * math.pi * ((t_ns - self.origin_ns) % period_ns) / period_ns

    def cpu_ns(self, t_ns: int) -> int:
        if t_ns <= self.origin_ns:
            return 0
        steady = self.mean_millicores * (t_ns - self.origin_ns) // 1000
        period_ns = self.period_s * NS_PER_S
        wave = self.amplitude_millicores / 1000 * period_ns / (2 * math.pi)
        return steady + round(wave * (math.cos(self.phase) - math.cos(self._angle(t_ns))))

    def cpu_millicores(self, t_ns: int) -> float:
        return self.mean_millicores + self.amplitude_millicores * math.sin(self._angle(t_ns))

    def memory_bytes(self, t_ns: int) -> int:
        return _page_round(self.memory + self.memory_amplitude * math.sin(self._angle(t_ns) + 1.0))


_BURST_PERIOD = 256
"""Bursty slots repeat every this many slots, so cumulative burst time is O(1) to compute."""


@dataclass(slots=True)
class Bursty(Profile):
    """`base` CPU, plus `burst` during slots of `slot_s` seconds picked with `probability`.

    Memory rises by `memory_burst` during a burst slot. Which slots burst is a 256-slot pattern
    (a bit mask drawn from `key`) repeated forever: the counter at any time is closed-form, so
    a kubelet with thousands of bursty containers renders in O(containers).
    """

    base_millicores: int = 50
    burst_millicores: int = 900
    slot_s: int = 10
    probability: float = 0.2
    memory: int = 96 * MI
    memory_burst: int = 64 * MI
    key: int = 0
    _mask: int = field(default=0, init=False, repr=False)
    _per_period: int = field(default=0, init=False, repr=False)

    def __post_init__(self) -> None:
        if self.slot_s <= 0 or not 0.0 <= self.probability <= 1.0:
            raise ConfigError("bursty profile: need slot_s > 0 and 0 <= probability <= 1")
        threshold = self.probability * 2.0**64
        self._mask = sum(
            1 << i
            for i in range(_BURST_PERIOD)
            if _splitmix64(self.key ^ (i * 0x632BE59BD9B4E019 & _MASK64)) < threshold
        )
        self._per_period = self._mask.bit_count()

    @property
    def kind(self) -> str:
        return "bursty"

    def _is_burst(self, slot: int) -> bool:
        return bool(self._mask >> (slot % _BURST_PERIOD) & 1)

    def _bursts_before(self, slot: int) -> int:
        periods, rest = divmod(slot, _BURST_PERIOD)
        return periods * self._per_period + (self._mask & ((1 << rest) - 1)).bit_count()

    def cpu_ns(self, t_ns: int) -> int:
        if t_ns <= self.origin_ns:
            return 0
        elapsed = t_ns - self.origin_ns
        slot_ns = self.slot_s * NS_PER_S
        slot, into = divmod(elapsed, slot_ns)
        burst_ns = self._bursts_before(slot) * slot_ns + (into if self._is_burst(slot) else 0)
        return (self.base_millicores * elapsed + self.burst_millicores * burst_ns) // 1000

    def _slot(self, t_ns: int) -> int:
        return max(0, t_ns - self.origin_ns) // (self.slot_s * NS_PER_S)

    def cpu_millicores(self, t_ns: int) -> float:
        burst = self._is_burst(self._slot(t_ns))
        return float(self.base_millicores + (self.burst_millicores if burst else 0))

    def memory_bytes(self, t_ns: int) -> int:
        return self.memory + (self.memory_burst if self._is_burst(self._slot(t_ns)) else 0)


PROFILE_KINDS = ("steady", "sine", "bursty")


def random_profile(
    rng: random.Random, origin_ns: int, key: int, kinds: tuple[str, ...] = PROFILE_KINDS
) -> Profile:
    """A plausible profile drawn from `rng`: the simulated cluster's default workload mix."""
    kind = rng.choice(kinds)
    memory = rng.randrange(16, 512) * MI + rng.randrange(0, 256) * _PAGE
    if kind == "steady":
        return Steady(origin_ns, millicores=rng.randrange(1, 800), memory=memory)
    if kind == "sine":
        mean = rng.randrange(20, 1000)
        return Sine(
            origin_ns,
            mean_millicores=mean,
            amplitude_millicores=rng.randrange(0, mean),
            period_s=rng.choice((60, 120, 300, 600)),
            phase=rng.uniform(0, 2 * math.pi),
            memory=memory,
            memory_amplitude=memory // rng.choice((4, 8, 16)),
        )
    if kind == "bursty":
        return Bursty(
            origin_ns,
            base_millicores=rng.randrange(1, 200),
            burst_millicores=rng.randrange(200, 2000),
            slot_s=rng.choice((5, 10, 30)),
            probability=rng.choice((0.05, 0.1, 0.3)),
            memory=memory,
            memory_burst=rng.randrange(0, 128) * MI,
            key=key,
        )
    raise ConfigError(f"unknown profile kind {kind!r}; expected one of {', '.join(PROFILE_KINDS)}")
