"""CPU per parse of real kubelet `/metrics/resource` bodies (not a test; run by hand).

    .venv/bin/python -m bench.micro.parse [--runs 15] [--against OLD_PROMETHEUS_PY]

Times `parse_resource_metrics` (the column-wise fast path for these canonical bodies) and
`lines.parse_lines` (the exact line parser) on two captures from tests/data/kubelet-samples:
metrics-server's 70-pod kind 1.21 body and an EKS 2025 node, plus the 70-pod body with CRLF line
ends (which only the line parser reads). Each figure is the best of `--runs` batches of 100
parses, in CPU time of this process (the machine may be shared).

`--against FILE` loads another version of `scrape/prometheus.py` as a standalone module (a file
that defines `parse_resource_metrics` and `parse_lines`, e.g. one written by
`git show REV:server/metrics_server/scrape/prometheus.py`) and times it interleaved with the
current code, batch for batch, after checking that both give the same batches.
"""

from __future__ import annotations

import argparse
import importlib.util
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

from metrics_server.scrape import lines, prometheus
from metrics_server.scrape.batch import NodeBatch

SAMPLES = Path(__file__).resolve().parents[2] / "tests" / "data" / "kubelet-samples" / "resource"
KIND_70_PODS = (SAMPLES / "metrics-server-kind-v1.21-70pods.txt").read_bytes()
EKS = (SAMPLES / "ersilia-eks-2025-stable-no-scrape_error.txt").read_bytes()
BATCH = 100

Parse = Callable[..., NodeBatch]


def _load(path: Path) -> ModuleType:
    spec = importlib.util.spec_from_file_location("prometheus_against", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _batch_cpu(parse: Parse, body: bytes) -> float:
    t0 = time.process_time()
    for _ in range(BATCH):
        parse(body, node="n", request_time_ns=0)
    return (time.process_time() - t0) / BATCH


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--against", type=Path, help="another prometheus.py to time interleaved")
    args = parser.parse_args()
    other = _load(args.against) if args.against else None
    cases: list[tuple[str, Parse, str, bytes]] = [
        ("70-pod kind 1.21", prometheus.parse_resource_metrics, "parse_resource_metrics", KIND_70_PODS),
        ("EKS 2025", prometheus.parse_resource_metrics, "parse_resource_metrics", EKS),
        ("70-pod kind 1.21", lines.parse_lines, "parse_lines", KIND_70_PODS),
        (
            "70-pod kind 1.21, CRLF",
            prometheus.parse_resource_metrics,
            "parse_resource_metrics",
            KIND_70_PODS.replace(b"\n", b"\r\n"),
        ),
    ]
    for label, parse, name, body in cases:
        against: Parse | None = getattr(other, name) if other is not None else None
        if against is not None and against(body, node="n", request_time_ns=0) != parse(
            body, node="n", request_time_ns=0
        ):
            raise SystemExit(f"{label}: {name} differs from {args.against}")
        best = best_against = float("inf")
        for _ in range(args.runs):
            if against is not None:
                best_against = min(best_against, _batch_cpu(against, body))
            best = min(best, _batch_cpu(parse, body))
        line = f"{label:24s} {name:22s} {len(body) / 1024:5.1f} KB  {best * 1e3:.3f} ms"
        if against is not None:
            line += f"  (against: {best_against * 1e3:.3f} ms, ratio {best / best_against:.3f})"
        print(line)


if __name__ == "__main__":
    main()
