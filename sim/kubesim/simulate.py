"""`metrics-server simulate`: a simulated cluster plus the real metrics server, ready for `kubectl top`.

`Simulation.run` starts a `SimCluster` in this process, then the metrics server as a separate
process with the flags a cluster would give it (`python -m metrics_server.cli ...`, the same
interpreter), points the aggregator at it and waits until the Metrics API answers through the
aggregator for every node and every running pod. It reports each stage through a callback, and
on cancellation terminates the server (SIGTERM, then SIGKILL after a grace period) and waits for
it before the cluster's listeners close.

Failure modes (all `SimulateError`): the server process exits while it should run
(`ServerExitedError`, with the last lines of its log), or the metrics are not complete within
`ready_timeout_s` (`NotReadyError`, saying how many nodes and pods report). Cluster problems
(a port in use) are the simulator's `ConfigError`.

The server's stdout and stderr go to `<state dir>/metrics-server.log`, preceded by its command
line. It runs in its own session, so a Ctrl-C in the terminal reaches only this process, which
then stops the server in order; if this process is killed with SIGKILL the server is orphaned.
"""

from __future__ import annotations

import argparse
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
from .cluster import ADMIN_USER, LIMITED_NAMESPACE, LIMITED_USER, SimCluster
from .errors import SimError
from .profiles import PROFILE_KINDS

log = logging.getLogger(__name__)

METRICS_API = "/apis/metrics.k8s.io/v1beta1"
SERVER_LOG = "metrics-server.log"
SERVER_CERT_DIR = "ms-certs"
READY_PREFIX = "metrics ready"
"""The progress line that says `kubectl top` works (tests and scripts wait for it)."""

_POLL_INTERVAL_S = 1.0
_STOP_GRACE_S = 15.0
_TAIL_LINES = 20


class SimulateError(SimError):
    """The simulation could not reach, or keep, the ready state."""


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
    python: str = sys.executable


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
        after it is up and before the server starts."""
        self.config = config
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
        return [cfg.python, "-m", "metrics_server.cli", *args, *cfg.server_args]

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


def kubectl_hints(cluster: SimCluster) -> list[str]:
    """The lines printed once metrics are ready: what to run against this cluster."""
    kubeconfig = display_path(cluster.paths.kubeconfig)
    k = f"kubectl --kubeconfig {kubeconfig}"
    node = cluster.node_names()[0]
    return [
        "Try (contexts: admin (default), admin-cert, "
        f'limited = user "{LIMITED_USER}", metrics of namespace {LIMITED_NAMESPACE} only):',
        f"  {k} top nodes",
        f"  {k} top node {node}",
        f"  {k} top pods -A",
        f"  {k} top pods -n {LIMITED_NAMESPACE} --containers --sort-by=cpu",
        f"  {k} get podmetrics -A",
        f"  {k} get nodemetrics",
        f"  {k} get --raw {METRICS_API}/nodes",
        f"  {k} --context limited top pods            # allowed: namespace {LIMITED_NAMESPACE}",
        f"  {k} --context limited top pods -n default # Forbidden",
        "or, for this shell:",
        f"  export KUBECONFIG={cluster.paths.kubeconfig.resolve()}",
    ]


def _prefix(text: str) -> tuple[int, int]:
    try:
        a, b = (int(x) for x in text.split("."))
    except ValueError:
        raise argparse.ArgumentTypeError(f"must look like 127.1, got {text!r}") from None
    return a, b


def _profiles(text: str) -> tuple[str, ...]:
    kinds = tuple(k.strip() for k in text.split(",") if k.strip())
    unknown = [k for k in kinds if k not in PROFILE_KINDS]
    if unknown or not kinds:
        raise argparse.ArgumentTypeError(f"want some of {','.join(PROFILE_KINDS)}, got {text!r}")
    return kinds


def _duration(text: str) -> str:
    try:
        parse_duration_ns(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None
    return text


def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="metrics-server simulate",
        description="Run a simulated cluster and the real metrics server against it, until Ctrl-C. "
        "Flags after `--` go to the metrics server.",
        allow_abbrev=False,
    )
    p.add_argument("--nodes", type=int, default=20)
    p.add_argument("--pods-per-node", type=int, default=10)
    p.add_argument("--seed", type=int, default=0, help="the simulated cluster is deterministic per seed")
    p.add_argument(
        "--metric-resolution", type=_duration, default="15s", help="the server's scrape period (>= 10s)"
    )
    p.add_argument("--metric-staleness", type=_duration, default=None, help="default: the server's")
    p.add_argument(
        "--kubelet-request-timeout",
        type=_duration,
        default=None,
        help="default: half of --metric-resolution, at most 10s",
    )
    p.add_argument(
        "--state-dir",
        type=Path,
        default=Path(".kubesim"),
        help="certificates, kubeconfigs and the server log (default: .kubesim)",
    )
    p.add_argument("--host", default="127.0.0.1", help="the apiserver's address (127.x.y.z)")
    p.add_argument("--port", type=int, default=0, help="the apiserver's port (default 0: any free port)")
    p.add_argument(
        "--address-prefix",
        type=_prefix,
        default=(127, 1),
        help="kubelets listen on <a>.<b>.x.y (default 127.1)",
    )
    p.add_argument("--kubelet-port", type=int, default=10250, help="0: one port free on every node address")
    p.add_argument(
        "--profiles",
        type=_profiles,
        default=PROFILE_KINDS,
        help=f"usage profiles the pods draw from, comma-separated (default {','.join(PROFILE_KINDS)})",
    )
    p.add_argument(
        "--ready-timeout",
        type=float,
        default=120.0,
        help="seconds to wait for metrics of every node and pod (default 120)",
    )
    p.add_argument("--log-level", default="WARNING", help="the simulator's log level (default WARNING)")
    p.add_argument("server_args", nargs="*", metavar="-- SERVER_FLAG", help="extra metrics server flags")
    return p.parse_args(argv)


def config_from_args(args: argparse.Namespace) -> SimulateConfig:
    return SimulateConfig(
        state_dir=args.state_dir,
        nodes=args.nodes,
        pods_per_node=args.pods_per_node,
        seed=args.seed,
        host=args.host,
        port=args.port,
        address_prefix=args.address_prefix,
        kubelet_port=args.kubelet_port,
        profile_kinds=args.profiles,
        metric_resolution=args.metric_resolution,
        metric_staleness=args.metric_staleness,
        kubelet_request_timeout=args.kubelet_request_timeout,
        server_args=tuple(args.server_args),
        ready_timeout_s=args.ready_timeout,
    )


def _say(line: str) -> None:
    print(line, flush=True)


async def amain(config: SimulateConfig) -> None:
    """Run until SIGINT, SIGTERM or SIGHUP; print progress and then the kubectl hints."""
    simulation = Simulation(config, report=_say)
    async with trio.open_nursery() as nursery:

        async def stop_on_signal() -> None:
            with trio.open_signal_receiver(signal.SIGINT, signal.SIGTERM, signal.SIGHUP) as signals:
                async for signum in signals:
                    _say(f"{signal.Signals(signum).name}: stopping")
                    nursery.cancel_scope.cancel()
                    return

        nursery.start_soon(stop_on_signal)
        await nursery.start(simulation.run)
        for line in kubectl_hints(simulation.cluster):
            _say(line)
        _say(f"Metrics server log: {display_path(simulation.server_log)}. Press Ctrl-C to stop.")


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    if not args.host.startswith("127."):
        print("metrics-server simulate: --host must be a 127.x.y.z address", file=sys.stderr)
        return 2
    try:
        return _run(config_from_args(args))
    except KeyboardInterrupt:  # Ctrl-C before the signal receiver was installed
        return 130


def _run(config: SimulateConfig) -> int:
    code = 0
    try:
        trio.run(amain, config)
    except* SimulateError as group:
        _print_errors(group)
        code = 1
    except* SimError as group:  # the cluster's own errors, e.g. a port in use
        _print_errors(group)
        code = 2
    return code


def _print_errors(group: BaseExceptionGroup[SimError]) -> None:
    def leaves(exc: BaseException) -> list[BaseException]:
        if isinstance(exc, BaseExceptionGroup):
            return [leaf for sub in exc.exceptions for leaf in leaves(sub)]
        return [exc]

    for exc in leaves(group):
        print(f"metrics-server simulate: {exc}", file=sys.stderr)


if __name__ == "__main__":
    sys.exit(main())
