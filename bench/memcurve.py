"""Memory per cycle of bench runs: the curve, and the growth rate that says whether it is flat.

    python -m bench.memcurve [LABEL=]RESULT.json ... [--skip 5] [--max-slope 1.0] [--plot PNG]

For each result (`bench run` output), prints the growth of the server's memory per cycle after
the first `--skip` cycles: the least-squares slope of the per-cycle PSS of all its processes
(`server_pss_mib`; RSS for results recorded before PSS was), in MiB per cycle, and the first,
lowest, highest and last values. With `--max-slope`, exits 1 when a run grows faster (the
regression check for a leak: issue 15 asks for at most 1 MiB per cycle over a 60-cycle run). With
`--plot`, draws every run's curve (and, with workers, each process's) in one PNG.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import orjson


def series(result: dict[str, Any]) -> list[float]:
    cycles = result["cycles"]
    key = "server_pss_mib" if all(c.get("server_pss_mib") for c in cycles) else "server_rss_mib"
    return [float(c[key]) for c in cycles]


def slope(values: list[float]) -> float:
    """Least-squares MiB per cycle (0 for fewer than two values)."""
    n = len(values)
    if n < 2:
        return 0.0
    mean_x, mean_y = (n - 1) / 2, sum(values) / n
    num = sum((i - mean_x) * (v - mean_y) for i, v in enumerate(values))
    den = sum((i - mean_x) ** 2 for i in range(n))
    return num / den


def label(result: dict[str, Any], path: Path) -> str:
    s = result["scenario"]
    return f"{s['nodes']}x{s['pods_per_node']} ({path.parent.name})"


def plot(runs: list[tuple[str, dict[str, Any]]], out: Path, skip: int) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(9, 4.5), constrained_layout=True)
    for name, result in runs:
        values = series(result)
        xs = list(range(1, len(values) + 1))
        ax.plot(xs, values, "-", label=f"{name}: all processes")
        per = [c.get("server_pss_mib_by_process") or [] for c in result["cycles"]]
        if per and all(len(p) > 1 for p in per):
            for i in range(len(per[0])):
                what = "serving" if i == 0 else f"worker {i - 1}"
                ax.plot(xs, [p[i] if i < len(p) else float("nan") for p in per], ":", label=f"{name}: {what}")
    ax.axvline(skip + 0.5, color="grey", ls="--", lw=0.8)
    ax.set_xlabel("recorded cycle")
    ax.set_ylabel("PSS (MiB)")
    ax.set_title("server memory per cycle")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize=7)
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.memcurve", description=__doc__)
    parser.add_argument("results", nargs="+", help="result JSON, optionally LABEL=PATH")
    parser.add_argument("--skip", type=int, default=5, help="cycles left out of the slope (warm-up)")
    parser.add_argument("--max-slope", type=float, default=None, help="MiB per cycle; exit 1 above it")
    parser.add_argument("--plot", type=Path, default=None)
    args = parser.parse_args(argv)
    runs = []
    failed = False
    for given in args.results:
        name, _, text = given.rpartition("=")
        path = Path(text)
        result = orjson.loads(path.read_bytes())
        values = series(result)
        rate = slope(values[args.skip :])
        name = name or label(result, path)
        print(
            f"{name}: {len(values)} cycles, {rate:+.2f} MiB/cycle after cycle {args.skip} "
            f"(first {values[0]:.0f}, min {min(values):.0f}, max {max(values):.0f}, "
            f"last {values[-1]:.0f} MiB)"
        )
        if args.max_slope is not None and rate > args.max_slope:
            print(f"  grows faster than {args.max_slope:g} MiB/cycle", file=sys.stderr)
            failed = True
        runs.append((name, result))
    if args.plot is not None:
        plot(runs, args.plot, args.skip)
        print(f"wrote {args.plot}")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
