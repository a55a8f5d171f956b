"""Helpers for the end-to-end tests (imported as `e2ehelpers`): kubectl binaries and a cluster harness.

`ClusterHarness` runs a `kubesim.simulation.Simulation` (simulated cluster in-process, the real
metrics server as a subprocess) in a background thread with its own `trio.run`, so one cluster
can serve a whole pytest session (pytest-trio fixtures live for one test only). Tests talk to
the cluster from their own thread through `call` (a sync function in the cluster's trio thread)
and `run` (an async one). Everything that waits is bounded by a deadline.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import subprocess
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import trio

from kubesim import SimCluster
from kubesim.simulation import SimulateConfig, Simulation, tail_lines

T = TypeVar("T")

KUBECTL_VERSIONS = ("1.27", "1.28", "1.29", "1.30", "1.31", "1.32", "1.33")
KUBECTL_TIMEOUT_S = 60.0
MI = 1 << 20

# The `stale` cluster's nodes (tests/e2e/conftest.py): kubelets stopped once metrics are ready.
STALE_FAULTS = {"sim-node-0001": "refuse", "sim-node-0002": "hang"}
STALE_HEALTHY = ("sim-node-0000", "sim-node-0003")


@dataclass(frozen=True, slots=True)
class KubectlBinary:
    """One kubectl executable: `label` is `plain` or its minor version (`1.27`)."""

    label: str
    path: Path

    @property
    def minor(self) -> int | None:
        major, _, minor = self.label.partition(".")
        return int(minor) if major == "1" and minor.isdigit() else None


def find_kubectls() -> tuple[list[KubectlBinary], list[str]]:
    """The plain `kubectl` on PATH and every `kubectl.1.xx` beside its real file.

    Returns the binaries found and the names looked for but missing (the dev and CI machines
    have all of them; a missing one is a failure, not a skip).
    """
    plain = shutil.which("kubectl")
    if plain is None:
        return [], ["kubectl", *(f"kubectl.{v}" for v in KUBECTL_VERSIONS)]
    directory = Path(os.path.realpath(plain)).parent
    found = [KubectlBinary("plain", Path(plain))]
    missing: list[str] = []
    for version in KUBECTL_VERSIONS:
        path = directory / f"kubectl.{version}"
        if os.access(path, os.X_OK):
            found.append(KubectlBinary(version, path))
        else:
            missing.append(str(path))
    return found, missing


@dataclass(frozen=True, slots=True)
class Result:
    code: int
    out: str
    err: str

    def rows(self) -> list[list[str]]:
        """stdout as whitespace-split rows (kubectl aligns columns with spaces)."""
        return [line.split() for line in self.out.splitlines() if line.strip()]


class Kubectl:
    """Runs one kubectl binary against a kubeconfig, with its own HOME and cache directory."""

    def __init__(self, binary: KubectlBinary, kubeconfig: Path, home: Path) -> None:
        self.binary = binary
        self.kubeconfig = kubeconfig
        self.home = home
        home.mkdir(parents=True, exist_ok=True)

    def __call__(self, *args: str, context: str | None = None) -> Result:
        cmd = [
            str(self.binary.path),
            f"--kubeconfig={self.kubeconfig}",
            f"--cache-dir={self.home / 'cache'}",
            *([f"--context={context}"] if context else []),
            *args,
        ]
        env = {"PATH": os.environ.get("PATH", ""), "HOME": str(self.home), "LANG": "C"}
        done = subprocess.run(cmd, capture_output=True, env=env, timeout=KUBECTL_TIMEOUT_S, check=False)
        return Result(done.returncode, done.stdout.decode(), done.stderr.decode())


# --- what kubectl prints, computed from the simulator's ground truth ---------------------------


TOP_NODE_HEADER_OLD = ["NAME", "CPU(cores)", "CPU%", "MEMORY(bytes)", "MEMORY%"]
TOP_NODE_HEADER_NEW = ["NAME", "CPU(cores)", "CPU(%)", "MEMORY(bytes)", "MEMORY(%)"]


def top_node_headers(binary: KubectlBinary) -> list[list[str]]:
    """The headers `top node` may print: `CPU%` up to 1.31, `CPU(%)` from 1.32. The plain
    `kubectl` may be a dispatcher that runs some version of its choice, so either is accepted."""
    if binary.minor is None:
        return [TOP_NODE_HEADER_OLD, TOP_NODE_HEADER_NEW]
    return [TOP_NODE_HEADER_NEW if binary.minor >= 32 else TOP_NODE_HEADER_OLD]


def go_cpu(nanocores: int) -> str:
    """A CPU quantity in Go's canonical DecimalSI form, as the API serialises it (`250m`, `2`, `1500u`)."""
    for suffix, scale in (("", 10**9), ("m", 10**6), ("u", 10**3)):
        if nanocores % scale == 0:
            return f"{nanocores // scale}{suffix}"
    return f"{nanocores}n"


def go_memory(num_bytes: int) -> str:
    """A memory quantity in Go's canonical BinarySI form (`300Mi`, `2251584Ki`, `2Gi`, `1000`)."""
    for suffix, scale in (
        ("Ei", 1 << 60),
        ("Pi", 1 << 50),
        ("Ti", 1 << 40),
        ("Gi", 1 << 30),
        ("Mi", MI),
        ("Ki", 1024),
    ):
        if num_bytes and num_bytes % scale == 0:
            return f"{num_bytes // scale}{suffix}"
    return str(num_bytes)


def top_cpu(nanocores: int) -> str:
    """kubectl top's CPU cell for a value in nanocores (millicores rounded up)."""
    return f"{-(-nanocores // 10**6)}m"


def top_memory(num_bytes: int) -> str:
    """kubectl top's memory cell (whole MiB rounded down)."""
    return f"{num_bytes // MI}Mi"


def top_percent(used_milli: int, available_milli: int) -> str:
    """kubectl top's percentage cell: Go's `int64(float64(used) / float64(available) * 100)`."""
    return f"{math.trunc(used_milli / available_milli * 100)}%"


@dataclass(frozen=True, slots=True)
class NodeTruth:
    name: str
    nanocores: int
    memory: int
    allocatable_mc: int
    allocatable_memory: int

    def top_row(self) -> list[str]:
        cpu_mc = -(-self.nanocores // 10**6)
        return [
            self.name,
            top_cpu(self.nanocores),
            top_percent(cpu_mc, self.allocatable_mc),
            top_memory(self.memory),
            top_percent(self.memory * 1000, self.allocatable_memory * 1000),
        ]


@dataclass(frozen=True, slots=True)
class ContainerTruth:
    name: str
    nanocores: int
    memory: int


@dataclass(frozen=True, slots=True)
class PodTruth:
    namespace: str
    name: str
    node: str
    labels: dict[str, str]
    containers: tuple[ContainerTruth, ...]

    @property
    def nanocores(self) -> int:
        return sum(c.nanocores for c in self.containers)

    @property
    def memory(self) -> int:
        return sum(c.memory for c in self.containers)

    def top_cells(self) -> list[str]:
        return [top_cpu(self.nanocores), top_memory(self.memory)]


@dataclass(frozen=True, slots=True)
class GroundTruth:
    """What every node and running pod uses, from the simulator's model (exact for Steady profiles)."""

    nodes: dict[str, NodeTruth]
    pods: dict[tuple[str, str], PodTruth]

    def pods_in(self, namespace: str) -> list[PodTruth]:
        return [p for p in self.pods.values() if p.namespace == namespace]


def ground_truth(cluster: SimCluster) -> GroundTruth:
    """Compute the truth over the last 5 simulated seconds; call it in the cluster's thread.

    Only meaningful as "what kubectl must print" when every profile is Steady: then any window
    gives the same rate, and memory does not move.
    """
    t1 = cluster.now_ns()
    t0 = t1 - 5 * 10**9
    nodes = {}
    for name in cluster.node_names():
        node = cluster.model.node(name)
        nodes[name] = NodeTruth(
            name,
            round(cluster.expected_node_cpu_rate(name, t0, t1) * 10**6),
            cluster.expected_node_memory_bytes(name, t1),
            node.cpu_allocatable_mc,
            node.memory_allocatable,
        )
    pods = {}
    for pod in cluster.pods():
        if pod.phase != "Running":
            continue
        containers = tuple(
            ContainerTruth(
                c.name,
                round(cluster.expected_cpu_rate(pod.namespace, pod.name, c.name, t0, t1) * 10**6),
                cluster.expected_memory_bytes(pod.namespace, pod.name, c.name, t1),
            )
            for c in pod.containers
        )
        pods[pod.key] = PodTruth(pod.namespace, pod.name, pod.node, dict(pod.labels), containers)
    return GroundTruth(nodes, pods)


# --- the cluster harness ----------------------------------------------------------------------


class HarnessError(Exception):
    """The background cluster failed to start, or died; the message carries the server log tail."""


class ClusterHarness:
    """A `Simulation` in a background thread; see the module docstring.

    `start()` returns at once; `wait_ready(timeout)` blocks until metrics cover every node and
    running pod (or raises HarnessError with the reason); `stop()` cancels and joins. `after_ready`
    runs in the cluster's trio thread right after readiness (e.g. to inject faults early).
    """

    def __init__(
        self,
        config: SimulateConfig,
        *,
        prepare: Callable[[SimCluster], None] | None = None,
        after_ready: Callable[[SimCluster], None] | None = None,
    ) -> None:
        self.config = config
        self.progress: list[str] = []
        self.simulation = Simulation(config, report=self.progress.append, prepare=prepare)
        self._after_ready = after_ready
        self._ready = threading.Event()
        self._done = threading.Event()
        self._error: BaseException | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        self._cancel: trio.CancelScope | None = None
        self._thread = threading.Thread(
            target=self._main, name=f"kubesim-{config.state_dir.name}", daemon=True
        )

    @property
    def cluster(self) -> SimCluster:
        return self.simulation.cluster

    @property
    def kubeconfig(self) -> Path:
        return self.cluster.paths.kubeconfig

    def start(self) -> ClusterHarness:
        self._thread.start()
        return self

    def _main(self) -> None:
        try:
            trio.run(self._amain)
        except BaseException as exc:  # reported to the test thread by wait_ready / stop
            self._error = exc
        finally:
            self._ready.set()
            self._done.set()

    async def _amain(self) -> None:
        self._token = trio.lowlevel.current_trio_token()
        with trio.CancelScope() as scope:
            self._cancel = scope
            async with trio.open_nursery() as nursery:
                await nursery.start(self.simulation.run)
                if self._after_ready is not None:
                    self._after_ready(self.cluster)
                self._ready.set()

    def _failure(self, what: str) -> HarnessError:
        log = "\n".join(tail_lines(self.simulation.server_log, 40))
        progress = "\n".join(self.progress)
        return HarnessError(f"{what}: {self._error!r}\nprogress:\n{progress}\nserver log tail:\n{log}")

    def wait_ready(self, timeout: float) -> None:
        if not self._ready.wait(timeout):
            raise self._failure(f"cluster not ready within {timeout:g}s")
        if self._error is not None or self._done.is_set():
            raise self._failure("cluster failed")

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a sync function in the cluster's trio thread (where the model lives)."""
        self._check_alive()
        return trio.from_thread.run_sync(fn, *args, trio_token=self._token)

    def run(self, afn: Callable[..., Awaitable[T]], *args: Any) -> T:
        """Run an async function in the cluster's trio thread."""
        self._check_alive()
        return trio.from_thread.run(afn, *args, trio_token=self._token)

    def _check_alive(self) -> None:
        if self._done.is_set() or self._token is None:
            raise self._failure("cluster is not running")

    def stop(self, timeout: float = 30.0) -> None:
        """Cancel the simulation (which terminates the server) and join the thread."""
        if self._token is not None and not self._done.is_set() and self._cancel is not None:
            # RunFinishedError: it ended by itself in the meantime, and _error says why.
            with contextlib.suppress(trio.RunFinishedError):
                trio.from_thread.run_sync(self._cancel.cancel, trio_token=self._token)
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise HarnessError(f"cluster thread did not stop within {timeout:g}s")
        if self._error is not None:
            raise self._failure("cluster failed")

    def wait_kubelet_requests(self, node: str, count: int, within_s: float) -> None:
        """Block until `node`'s kubelet has received `count` more requests (scrape cycles pace
        polling this way); trio.TooSlowError after `within_s` seconds."""

        async def wait() -> None:
            kubelet = self.cluster.kubelets.kubelet(node)
            with trio.fail_after(within_s):
                for _ in range(count):
                    await kubelet.wait_request()

        self.run(wait)


AUTOSCALE_MILLICORES = 1400
"""CPU of every container of the `autoscale` cluster's workloads (conftest.py): against a 1000m target
that is a ratio of 1.40 whichever way the nanocores round, so two replicas want ceil(2.8) = 3."""
