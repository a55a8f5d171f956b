"""Find and run the real kubectl binaries (``kubectl`` on PATH, and ``kubectl.1.27`` ... beside the file it
links to) for the side-by-side tests of ``python -m k8s_metrics top``."""

from __future__ import annotations

import os
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path

import trio


@dataclass(frozen=True)
class Run:
    """What a command printed and how it ended."""

    code: int
    out: str
    err: str


def versioned_kubectls() -> dict[tuple[int, int], Path]:
    """``{(1, 33): Path(".../kubectl.1.33"), ...}``: the versioned binaries beside the real kubectl.

    Raises AssertionError when kubectl is not on PATH or has no versioned siblings: these tests must run.
    """
    found = shutil.which("kubectl")
    assert found is not None, "kubectl must be on PATH"
    directory = Path(found).resolve().parent
    binaries = {}
    for path in directory.iterdir():
        match = re.fullmatch(r"kubectl\.(\d+)\.(\d+)", path.name)
        if match and os.access(path, os.X_OK):
            binaries[(int(match[1]), int(match[2]))] = path
    assert binaries, f"no kubectl.1.NN binaries beside {found}"
    return binaries


def newest_kubectl() -> tuple[tuple[int, int], Path]:
    binaries = versioned_kubectls()
    version = max(binaries)
    return version, binaries[version]


async def run_kubectl(binary: Path, kubeconfig: Path, home: Path, *args: str) -> Run:
    """Run ``binary --kubeconfig=... args`` with its own HOME and cache directory (no shared state)."""
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(home), "KUBECACHEDIR": str(home / "cache")}
    command = [str(binary), f"--kubeconfig={kubeconfig}", f"--cache-dir={home / 'cache'}", *args]
    result = await trio.run_process(command, capture_stdout=True, capture_stderr=True, check=False, env=env)
    return Run(result.returncode, result.stdout.decode(), result.stderr.decode())


async def run_top(kubeconfig: Path, *args: str) -> Run:
    """Run ``python -m k8s_metrics top`` with the same kubeconfig, in a fresh interpreter."""
    command = [sys.executable, "-m", "k8s_metrics", "top", *args, f"--kubeconfig={kubeconfig}"]
    env = {"PATH": os.environ.get("PATH", ""), "HOME": "/nonexistent"}
    result = await trio.run_process(command, capture_stdout=True, capture_stderr=True, check=False, env=env)
    return Run(result.returncode, result.stdout.decode(), result.stderr.decode())
