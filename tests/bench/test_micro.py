"""The micro-benchmarks in bench/micro/ still import (so they do not rot); none is run.

Each module is imported as `python -m bench.micro.<name>` would import it, in one child process
with warnings as errors, and must define its entry point, `main`.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
MICRO = REPO / "bench" / "micro"

MODULES = [
    "api_encode",
    "api_get",
    "api_metrics",
    "api_protobuf",
    "auth_request",
    "parse",
    "scrape",
    "shard_protocol",
    "storage_cycle",
    "storage_gc",
    "storage_memory",
    "storage_store",
    "storage_young",
]

CHECK = """
import importlib, sys
for name in sys.argv[1:]:
    module = importlib.import_module("bench.micro." + name)
    assert callable(getattr(module, "main", None)), name
    print(name)
"""


def test_the_list_is_every_module() -> None:
    assert sorted(p.stem for p in MICRO.glob("*.py") if p.stem != "__init__") == MODULES


def test_every_micro_benchmark_imports() -> None:
    done = subprocess.run(
        [sys.executable, "-W", "error", "-c", CHECK, *MODULES],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.split() == MODULES
