"""A simulated cluster plus the real metrics server, ready for `kubectl top` (`Simulation`).

`Simulation.run` starts a `SimCluster` in this process, then the metrics server as a separate
process with the flags a cluster would give it (the `metrics-server` command of the environment
this interpreter runs in: `server_script`), points the aggregator at it and waits until the
Metrics API answers through the aggregator for every node and every running pod. It reports each
stage through a callback, and on cancellation terminates the server (SIGTERM, then SIGKILL after a
grace period) and waits for it before the cluster's listeners close. kubesim never imports the
server: the two are separate distributions, and only the command line joins them.

Failure modes (all `SimulateError`): the server is not installed (`ServerNotInstalledError`,
raised by the constructor), the server process exits while it should run (`ServerExitedError`,
with the last lines of its log), or the metrics are not complete within `ready_timeout_s`
(`NotReadyError`, saying how many nodes and pods report). Cluster problems (a port in use) are
the simulator's `ConfigError`.

The server's stdout and stderr go to `<state dir>/metrics-server.log`, preceded by its command
line. It runs in its own session, so a Ctrl-C in the terminal reaches only this process, which
then stops the server in order; if this process is killed with SIGKILL the server is orphaned.
`kubesim.simulate` is the command line around it (`metrics-server simulate`).
"""

from __future__ import annotations

import logging
import shlex
import signal
import socket
import ssl
import subprocess
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import trio

from k8s_metrics.durations import parse_duration_ns

from .clock import NS_PER_S
from .cluster import SimCluster
from .errors import SimError
from .profiles import PROFILE_KINDS
from .statefiles import ADMIN_USER

log = logging.getLogger(__name__)

METRICS_API = "/apis/metrics.k8s.io/v1beta1"
SERVER_SCRIPT = "metrics-server"
"""The server's console script (the `k8s-metrics-server` distribution installs it)."""
SERVER_LOG = "metrics-server.log"
SERVER_CERT_DIR = "ms-certs"
READY_PREFIX = "metrics ready"
"""The progress line that says `kubectl top` works (tests and scripts wait for it)."""

_POLL_INTERVAL_S = 1.0
_STOP_GRACE_S = 15.0
_TAIL_LINES = 20


class SimulateError(SimError):
    """The simulation could not reach, or keep, the ready state."""


class ServerNotInstalledError(SimulateError):
    """The environment has no `metrics-server` command: the server distribution is not installed."""


class ServerExitedError(SimulateError):
    """The metrics server process exited while it should have been running."""

    def __init__(self, returncode: int, log_path: Path, tail: Sequence[str]) -> None:
        self.returncode = returncode
        self.log_path = log_path
        self.tail = list(tail)
        super().__init__(
            f"the metrics server exited with code {returncode}; last lines of {log_path}:\n"
            + "\n".join(f"  {line}" for line in self.tail)
        )


class NotReadyError(SimulateError):
    """The Metrics API did not cover every node and running pod within the ready timeout."""


@dataclass(frozen=True, slots=True)
class SimulateConfig:
    """What to simulate and how to start the server. Durations are Go duration strings."""

    state_dir: Path
    nodes: int = 20
    pods_per_node: int = 10
    seed: int = 0
    host: str = "127.0.0.1"
    port: int = 0
    """The apiserver's port; 0 picks a free one (the kubeconfig is rewritten every run)."""
    address_prefix: tuple[int, int] = (127, 1)
    kubelet_port: int = 10250
    profile_kinds: tuple[str, ...] = PROFILE_KINDS
    """Usage profiles the random pods draw from; ("steady",) makes every number exactly predictable."""
    metric_resolution: str = "15s"
    metric_staleness: str | None = None
    kubelet_request_timeout: str | None = None
    """Default: half of --metric-resolution, at most 10s (the server wants it below 90%)."""
    server_args: tuple[str, ...] = ()
    """Extra server flags, appended last (so they override the ones derived here)."""
    ready_timeout_s: float = 120.0
    python: str | None = None
    """The interpreter whose environment holds the server (`server_script`); None: this one."""


@dataclass(frozen=True, slots=True)
class Coverage:
    """How much of the cluster the Metrics API reports, as seen through the aggregator."""

    nodes: int
    nodes_expected: int
    pods: int
    pods_expected: int

    @property
    def complete(self) -> bool:
        return self.nodes >= self.nodes_expected and self.pods >= self.pods_expected

    def __str__(self) -> str:
        return f"{self.nodes}/{self.nodes_expected} nodes, {self.pods}/{self.pods_expected} pods"


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nothing listens on right now (the kernel's pick for port 0)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def server_script(python: str | None = None) -> Path:
    """The `metrics-server` console script beside `python` (default: `sys.executable`), where pip
    installs it into the same environment. Raises `ServerNotInstalledError` when it is not there."""
    script = Path(python or sys.executable).parent / SERVER_SCRIPT
    if not script.is_file():
        raise ServerNotInstalledError(
            f"the metrics server is not installed in this environment (no {script}): "
            "install it with `pip install -e .` from the repository root"
        )
    return script


def tail_lines(path: Path, count: int = _TAIL_LINES) -> list[str]:
    """The last `count` lines of a text file (empty if it does not exist)."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return []
    return data.decode("utf-8", "replace").splitlines()[-count:]


def default_request_timeout(resolution: str) -> str:
    """Half the resolution, at most 10s: inside the server's `timeout <= 90% of resolution` rule."""
    ns = min(10 * NS_PER_S, parse_duration_ns(resolution) // 2)
    return f"{ns // 1_000_000}ms"


def display_path(path: Path) -> str:
    """`path` relative to the current directory when it lies below it, else absolute."""
    absolute = path.resolve()
    try:
        return str(absolute.relative_to(Path.cwd()))
    except ValueError:
        return str(absolute)


class Simulation:
    """One simulated cluster and one metrics server process; see the module docstring."""

    def __init__(
        self,
        config: SimulateConfig,
        *,
        report: Callable[[str], None] | None = None,
        prepare: Callable[[SimCluster], None] | None = None,
    ) -> None:
        """`report` receives one line per stage; `prepare` may change the cluster (add pods, ...)
        after it is up and before the server starts. Raises `ServerNotInstalledError` first thing."""
        self.config = config
        self.server_script = server_script(config.python)
        self.cluster = SimCluster(
            nodes=config.nodes,
            pods_per_node=config.pods_per_node,
            seed=config.seed,
            state_dir=config.state_dir,
            host=config.host,
            port=config.port,
            kubelet_port=config.kubelet_port,
            address_prefix=config.address_prefix,
            profile_kinds=config.profile_kinds,
        )
        self._report = report or (lambda line: None)
        self._prepare = prepare
        self.server_log = config.state_dir / SERVER_LOG
        self.server_port = 0
        self.server_pid: int | None = None
        self.server_returncode: int | None = None
        self._stopping = False

    @property
    def server_url(self) -> str:
        return SimCluster.metrics_server_url_for(self.server_port)

    def server_command(self) -> list[str]:
        """The server's command line (valid once the cluster is up and the port chosen)."""
        cfg = self.config
        args = self.cluster.metrics_server_args(
            secure_port=self.server_port,
            cert_dir=cfg.state_dir / SERVER_CERT_DIR,
            metric_resolution=cfg.metric_resolution,
        )
        timeout = cfg.kubelet_request_timeout or default_request_timeout(cfg.metric_resolution)
        args.append(f"--kubelet-request-timeout={timeout}")
        if cfg.metric_staleness is not None:
            args.append(f"--metric-staleness={cfg.metric_staleness}")
        return [str(self.server_script), *args, *cfg.server_args]

    async def run(self, *, task_status: trio.TaskStatus[Simulation] = trio.TASK_STATUS_IGNORED) -> None:
        """Start everything, `task_status.started(self)` once metrics are ready, run until cancelled."""
        t0 = trio.current_time()

        def elapsed() -> str:
            return f"{trio.current_time() - t0:.1f}s"

        # The cluster outlives the server: cancellation reaches it only once the server is gone,
        # so the server sees an orderly SIGTERM rather than its watches breaking first.
        cluster_scope = trio.CancelScope(shield=True)

        async def run_cluster(*, task_status: trio.TaskStatus[SimCluster]) -> None:
            with cluster_scope:
                await self.cluster.run(task_status=task_status)

        async with trio.open_nursery() as nursery:
            await nursery.start(run_cluster)
            cluster = self.cluster
            running = sum(1 for p in cluster.pods() if p.phase == "Running")
            self._report(
                f"cluster up: {len(cluster.model.nodes)} nodes, {running} pods, apiserver {cluster.api_url}, "
                f"kubelets on {cluster.kubelet_url(cluster.node_names()[0])} ..., "
                f"files in {display_path(self.config.state_dir)} ({elapsed()})"
            )
            try:
                if self._prepare is not None:
                    self._prepare(cluster)
                await self._run_server(elapsed, task_status)
            finally:
                cluster_scope.cancel()

    async def _run_server(self, elapsed: Callable[[], str], task_status: trio.TaskStatus[Simulation]) -> None:
        self.server_port = free_port(self.config.host)
        command = self.server_command()
        self.server_log.parent.mkdir(parents=True, exist_ok=True)
        with self.server_log.open("wb") as log_file:
            log_file.write(f"# {shlex.join(command)}\n".encode())
            log_file.flush()
            process = await trio.lowlevel.open_process(
                command,
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=log_file,
                start_new_session=True,
            )
            self.server_pid = process.pid
            try:
                self._report(
                    f"metrics server started: pid {process.pid}, {self.server_url}, "
                    f"log {display_path(self.server_log)} ({elapsed()})"
                )
                async with trio.open_nursery() as nursery:
                    nursery.start_soon(self._watch, process)
                    await self._wait_ready(elapsed)
                    task_status.started(self)
                    await trio.sleep_forever()
            finally:
                self._stopping = True
                await self._terminate(process)

    async def _watch(self, process: trio.Process) -> None:
        returncode = await process.wait()
        if not self._stopping:
            self.server_returncode = returncode
            raise ServerExitedError(returncode, self.server_log, tail_lines(self.server_log))

    async def _terminate(self, process: trio.Process) -> None:
        # Shielded: cleanup must finish even though we got here by cancellation.
        with trio.CancelScope(shield=True):
            if process.returncode is not None:
                return  # it exited by itself: _watch has reported that
            process.send_signal(signal.SIGTERM)
            with trio.move_on_after(_STOP_GRACE_S):
                await process.wait()
            if process.returncode is None:
                log.warning("metrics server (pid %d) ignored SIGTERM; killing it", process.pid)
                process.kill()
                await process.wait()
            self.server_returncode = process.returncode
            self._report(f"metrics server stopped (exit code {process.returncode})")

    async def _wait_ready(self, elapsed: Callable[[], str]) -> None:
        cluster = self.cluster
        cluster.set_metrics_server_url(self.server_url)
        coverage: Coverage | None = None
        with trio.move_on_after(self.config.ready_timeout_s) as scope:
            await cluster.wait_apiservice_available()
            self._report(f"APIService v1beta1.metrics.k8s.io available ({elapsed()})")
            async with self._admin_client() as client:
                while True:
                    coverage = await self.coverage(client)
                    if coverage.complete:
                        break
                    await trio.sleep(_POLL_INTERVAL_S)
        if scope.cancelled_caught:
            state = (
                f"reporting {coverage}"
                if coverage is not None
                else f"APIService not available: {cluster.aggregator.message}"
            )
            raise NotReadyError(
                f"metrics not ready after {self.config.ready_timeout_s:g}s ({state}); "
                f"see {self.server_log}:\n" + "\n".join(f"  {line}" for line in tail_lines(self.server_log))
            )
        self._report(f"{READY_PREFIX}: {coverage} ({elapsed()})")

    def _admin_client(self) -> httpx.AsyncClient:
        ctx = ssl.create_default_context(cafile=str(self.cluster.paths.ca_cert))
        return httpx.AsyncClient(
            base_url=self.cluster.api_url,
            verify=ctx,
            headers={"Authorization": f"Bearer {self.cluster.token(ADMIN_USER)}"},
            timeout=30.0,
        )

    async def coverage(self, client: httpx.AsyncClient) -> Coverage:
        """Nodes and running pods the Metrics API reports through the aggregator, right now."""
        nodes_expected = set(self.cluster.node_names())
        pods_expected = {p.key for p in self.cluster.pods() if p.phase == "Running"}
        nodes = await self._list(client, f"{METRICS_API}/nodes")
        pods = await self._list(client, f"{METRICS_API}/pods") if nodes else []
        node_names = {item["metadata"]["name"] for item in nodes}
        pod_keys = {(item["metadata"]["namespace"], item["metadata"]["name"]) for item in pods}
        return Coverage(
            len(node_names & nodes_expected),
            len(nodes_expected),
            len(pod_keys & pods_expected),
            len(pods_expected),
        )

    @staticmethod
    async def _list(client: httpx.AsyncClient, path: str) -> list[dict[str, Any]]:
        try:
            response = await client.get(path)
        except httpx.HTTPError as exc:
            log.debug("GET %s failed: %s", path, exc)
            return []
        if response.status_code != 200:
            log.debug("GET %s: %d %s", path, response.status_code, response.text[:200])
            return []
        items: list[dict[str, Any]] = orjson.loads(response.content).get("items") or []
        return items
