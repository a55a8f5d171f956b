"""Print the five pods using the most memory across the cluster.

python examples/top_memory.py [--kubeconfig PATH] [--context NAME] [--count N]
"""

from __future__ import annotations

import argparse
import sys

from k8s_metrics import MetricsError, open_metrics


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, ~/.kube/config, in-cluster)"
    )
    parser.add_argument("--context", help="kubeconfig context (default: the current one)")
    parser.add_argument("--count", type=int, default=5, help="how many pods to show (default: 5)")
    args = parser.parse_args()

    try:
        with open_metrics(kubeconfig=args.kubeconfig, context=args.context) as metrics:
            pods = metrics.pods()  # all namespaces
    except MetricsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1

    top = sorted(pods, key=lambda p: (-p.memory, p.namespace, p.name))[: args.count]
    width = max((len(f"{p.namespace}/{p.name}") for p in top), default=0)
    for rank, pod in enumerate(top, 1):
        mib = pod.memory / 2**20
        print(
            f"{rank}. {pod.namespace + '/' + pod.name:<{width}}  {mib:9.1f} MiB  {pod.cpu_millicores:>6}m CPU"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
