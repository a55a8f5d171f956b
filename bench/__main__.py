"""`python -m bench run ...` (one scenario) or `python -m bench report DIR` (table and plot)."""

from __future__ import annotations

import argparse
import sys
from functools import partial
from pathlib import Path

import trio

from bench.report import render_dir
from bench.run import add_run_arguments, run_scenario, scenario_from


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True)
    add_run_arguments(sub.add_parser("run", help="run one scenario and write its JSON result"))
    rep = sub.add_parser("report", help="render every result-*.json in DIR as results.md and scaling.png")
    rep.add_argument("dir", type=Path)
    rep.add_argument("--plot", type=Path, default=None, help="PNG path (default DIR/scaling.png)")
    rep.add_argument("--table", type=Path, default=None, help="markdown path (default DIR/results.md)")
    args = p.parse_args(argv)
    if args.command == "run":
        path = trio.run(partial(run_scenario, scenario_from(args), args.out, keep=args.keep))
        print(f"bench: wrote {path}")
        if args.no_report:
            return 0
        written = render_dir(args.out)
    else:
        written = render_dir(args.dir, plot=args.plot, table=args.table)
    for w in written:
        print(f"bench: wrote {w}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
