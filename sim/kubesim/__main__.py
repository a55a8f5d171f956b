"""`python -m kubesim`: run a simulated cluster until interrupted and say where its files are."""

from __future__ import annotations

import argparse
import logging
import resource
import signal
import sys
import time
from pathlib import Path

import trio

from .cluster import SimCluster
from .errors import SimError
from .model import KUBELET_FORMATS
from .profiles import PROFILE_KINDS


def _prefix(text: str) -> tuple[int, int]:
    try:
        a, b = (int(x) for x in text.split("."))
    except ValueError:
        raise argparse.ArgumentTypeError(f"--address-prefix must look like 127.1, got {text!r}") from None
    return a, b


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m kubesim", description=__doc__)
    p.add_argument("--nodes", type=int, default=3)
    p.add_argument("--pods-per-node", type=int, default=5)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--state-dir", type=Path, default=Path("kubesim-state"))
    p.add_argument("--host", default="127.0.0.1", help="apiserver address (127.x.y.z)")
    p.add_argument("--port", type=int, default=6443, help="apiserver port (0: any free port)")
    p.add_argument("--kubelet-port", type=int, default=10250, help="0: one port free on every node address")
    p.add_argument(
        "--address-prefix", type=_prefix, default=(127, 1), help="node i listens on <a>.<b+...>.x.y"
    )
    p.add_argument("--metrics-server-url", default=None, help="where the aggregator proxies metrics.k8s.io")
    p.add_argument(
        "--metrics-server-ca", type=Path, default=None, help="CA to verify the metrics server (default: skip)"
    )
    p.add_argument(
        "--policy", type=Path, default=None, help="policy YAML (default: the packaged policy.yaml)"
    )
    p.add_argument(
        "--sample-interval",
        type=float,
        default=10.0,
        help="kubelet housekeeping period, s (0: every request)",
    )
    p.add_argument("--profiles", default=",".join(PROFILE_KINDS), help="usage profile kinds to draw from")
    p.add_argument("--kubelet-format", choices=KUBELET_FORMATS, default="stable")
    p.add_argument(
        "--deterministic",
        action="store_true",
        help="linear usage on whole seconds: any two correct servers agree (kubesim.deterministic)",
    )
    p.add_argument("--pod-churn-per-minute", type=float, default=0.0)
    p.add_argument("--stats-interval", type=float, default=0.0, help="print RSS/CPU/request counts every N s")
    p.add_argument("--log-level", default="INFO")
    return p.parse_args(argv)


def _rss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


async def _stats(cluster: SimCluster, interval: float) -> None:
    last_cpu, last_wall, last_req = 0.0, time.monotonic(), 0
    while True:
        await trio.sleep(interval)
        usage = resource.getrusage(resource.RUSAGE_SELF)
        cpu = usage.ru_utime + usage.ru_stime
        wall = time.monotonic()
        reqs = sum(k.requests for k in cluster.kubelets.kubelets.values())
        renders = sum(k.renderer.renders for k in cluster.kubelets.kubelets.values())
        per_req = (cpu - last_cpu) / (reqs - last_req) * 1e3 if reqs > last_req else 0.0
        print(
            f"rss={_rss_mib():.0f}MiB cpu={100 * (cpu - last_cpu) / (wall - last_wall):.1f}% "
            f"kubelet_requests={reqs} renders={renders} cpu_ms_per_kubelet_request={per_req:.3f} "
            f"api_requests={cluster.apiserver.requests} apiservice_available={cluster.aggregator.available}",
            flush=True,
        )
        last_cpu, last_wall, last_req = cpu, wall, reqs


async def amain(args: argparse.Namespace) -> None:
    started = time.monotonic()
    cluster = SimCluster(
        nodes=args.nodes,
        pods_per_node=args.pods_per_node,
        seed=args.seed,
        state_dir=args.state_dir,
        host=args.host,
        port=args.port,
        kubelet_port=args.kubelet_port,
        address_prefix=args.address_prefix,
        metrics_server_url=args.metrics_server_url,
        metrics_server_ca=args.metrics_server_ca,
        policy_file=args.policy,
        sample_interval_s=args.sample_interval,
        profile_kinds=tuple(k for k in args.profiles.split(",") if k),
        kubelet_format=args.kubelet_format,
        pod_churn_per_minute=args.pod_churn_per_minute,
        deterministic=args.deterministic,
    )
    async with trio.open_nursery() as nursery:
        await nursery.start(cluster.run)
        paths = cluster.paths
        first, last = cluster.node_names()[:1], cluster.node_names()[-1:]
        print(
            f"kubesim ready in {time.monotonic() - started:.1f}s: {len(cluster.model.nodes)} nodes, "
            f"{len(cluster.model.pods)} pods, rss={_rss_mib():.0f}MiB\n"
            f"  apiserver:          {cluster.api_url}\n"
            f"  kubelets:           {', '.join(cluster.kubelet_url(n) for n in first + last)}"
            f"{' ...' if len(cluster.model.nodes) > 2 else ''}\n"
            f"  kubeconfig:         {paths.kubeconfig.resolve()}  (contexts admin, admin-cert, limited)\n"
            f"  metrics-server SA:  {paths.metrics_server_kubeconfig.resolve()}\n"
            f"  kubelet CA:         {paths.kubelet_ca.resolve()}\n"
            f"  front-proxy CA:     {paths.front_proxy_ca_cert.resolve()}\n"
            f"  metrics server flags (example port 4443):\n    "
            + " ".join(
                cluster.metrics_server_args(secure_port=4443, cert_dir=paths.root.resolve() / "ms-certs")
            )
            + f"\n  try: kubectl --kubeconfig {paths.kubeconfig.resolve()} get nodes",
            flush=True,
        )
        if args.stats_interval > 0:
            nursery.start_soon(_stats, cluster, args.stats_interval)
        # SIGTERM (and SIGINT, which background shells ignore) end the cluster cleanly.
        with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
            async for _ in signals:
                print("kubesim: shutting down", flush=True)
                nursery.cancel_scope.cancel()
                break


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        trio.run(amain, args)
    except KeyboardInterrupt:
        return 0
    except SimError as exc:
        print(f"kubesim: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
