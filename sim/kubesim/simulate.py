"""`metrics-server simulate` (`python -m kubesim.simulate`): a simulated cluster plus the real
metrics server, until Ctrl-C.

The command line around `kubesim.simulation.Simulation`: it parses the flags (those after `--`
go to the server), prints each stage and then the `kubectl` lines to try, and stops everything
on SIGINT, SIGTERM or SIGHUP. Exit codes: 0 after a signal, 1 when the simulation fails (the
server exits, metrics are not ready in time), 2 for a refused flag, a cluster error (a port in
use) or a metrics server that is not installed (one line saying how to install it).
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import Sequence
from pathlib import Path

import trio

from k8s_metrics.durations import parse_duration_ns

from .cluster import SimCluster
from .errors import SimError
from .profiles import PROFILE_KINDS
from .simulation import (
    METRICS_API,
    ServerNotInstalledError,
    SimulateConfig,
    SimulateError,
    Simulation,
    display_path,
    server_script,
)
from .statefiles import LIMITED_NAMESPACE, LIMITED_USER


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
        server_script()
    except ServerNotInstalledError as exc:
        print(f"metrics-server simulate: {exc}", file=sys.stderr)
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
