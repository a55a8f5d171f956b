"""Where a process's memory grew: compare tracemalloc snapshots taken during a bench run.

    BENCH_TRACEMALLOC_DIR=/tmp/snaps BENCH_TRACEMALLOC_EVERY=60 python -m bench run ...
    python -m bench.tracediff /tmp/snaps [--top 25] [--key lineno|traceback]

Prints the total traced size of every snapshot (the growth curve of Python allocations: when RSS
grows and this does not, the growth is fragmentation or native memory), then the largest
differences between the second snapshot (after start-up) and the last, by source line.
"""

from __future__ import annotations

import argparse
import sys
import tracemalloc
from pathlib import Path


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.tracediff")
    parser.add_argument("directory", type=Path)
    parser.add_argument("--top", type=int, default=25)
    parser.add_argument("--key", choices=("lineno", "filename", "traceback"), default="lineno")
    args = parser.parse_args(argv)
    paths = sorted(args.directory.glob("*.snap"))
    if len(paths) < 2:
        print("need at least two snapshots", file=sys.stderr)
        return 2
    snapshots = []
    for path in paths:
        snap = tracemalloc.Snapshot.load(str(path)).filter_traces(
            [tracemalloc.Filter(False, tracemalloc.__file__)]
        )
        total = sum(stat.size for stat in snap.statistics("filename"))
        print(f"{path.name}: {total / 2**20:.1f} MiB traced")
        snapshots.append(snap)
    base, last = snapshots[1], snapshots[-1]
    print(f"\nlargest changes, {paths[1].name} -> {paths[-1].name}:")
    for stat in last.compare_to(base, args.key)[: args.top]:
        frame = stat.traceback[0]
        print(
            f"{stat.size_diff / 2**20:+8.2f} MiB {stat.count_diff:+9d} blocks  "
            f"{stat.size / 2**20:8.2f} MiB now  {frame.filename}:{frame.lineno}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
