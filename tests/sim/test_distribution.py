"""kubesim is its own distribution (`sim/pyproject.toml`, k8s-metrics-kubesim): it declares what it
imports, and it never imports the metrics server (which it starts only as a command)."""

from __future__ import annotations

import ast
import subprocess
import sys
import tomllib
from importlib.metadata import distribution, packages_distributions
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

import kubesim

REPO = Path(__file__).resolve().parents[2]
PACKAGE = Path(kubesim.__file__).parent
PYPROJECT = tomllib.loads((REPO / "sim" / "pyproject.toml").read_text())


def test_importing_every_kubesim_module_loads_no_metrics_server_module() -> None:
    code = (
        "import pkgutil, sys, kubesim\n"
        "for info in pkgutil.walk_packages(kubesim.__path__, 'kubesim.'):\n"
        "    __import__(info.name)\n"
        "print(sum(1 for m in sys.modules if m.split('.')[0] == 'kubesim'))\n"
        "print(sorted(m for m in sys.modules if m.split('.')[0] == 'metrics_server'))\n"
    )
    command = [sys.executable, "-c", code]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    modules = sorted(path.stem for path in PACKAGE.glob("*.py") if path.stem != "__init__")
    assert (done.returncode, done.stdout, done.stderr) == (0, f"{len(modules) + 1}\n[]\n", "")


def imported_top_level_names() -> set[str]:
    names: set[str] = set()
    for path in PACKAGE.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                names.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names.add(node.module.split(".")[0])
    return names - set(sys.stdlib_module_names) - {"__future__", "kubesim"}


def test_the_dependencies_are_exactly_the_distributions_kubesim_imports() -> None:
    owners = packages_distributions()
    imported = {canonicalize_name(owners[name][0]) for name in imported_top_level_names()}
    declared = {canonicalize_name(Requirement(text).name) for text in PYPROJECT["project"]["dependencies"]}
    assert imported == declared
    assert declared == {
        "k8s-metrics-client",
        "trio",
        "httpx",
        "h11",
        "orjson",
        "cryptography",
        "pyyaml",
    }


def test_the_client_range_is_the_servers() -> None:
    server = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    [ours] = [r for r in PYPROJECT["project"]["dependencies"] if r.startswith("k8s-metrics-client")]
    [theirs] = [r for r in server if r.startswith("k8s-metrics-client")]
    assert Requirement(ours) == Requirement(theirs)


def test_installed_distribution_ships_the_policy_and_the_kubesim_command() -> None:
    dist = distribution("k8s-metrics-kubesim")
    assert dist.metadata["Name"] == "k8s-metrics-kubesim"
    requires = {canonicalize_name(Requirement(r).name) for r in dist.requires or []}
    assert "k8s-metrics-server" not in requires
    [entry] = [e for e in dist.entry_points if e.group == "console_scripts"]
    assert (entry.name, entry.value) == ("kubesim", "kubesim.__main__:main")
    assert PYPROJECT["tool"]["setuptools"]["package-data"] == {"kubesim": ["py.typed", "*.yaml"]}
    assert (PACKAGE / "policy.yaml").is_file() and (PACKAGE / "py.typed").is_file()
