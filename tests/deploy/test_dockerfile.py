"""The container image recipe, as far as it can be checked without a Docker engine: the
entrypoint is the installed console script, the build context holds what the Dockerfile copies,
and the runtime stage is the non-root, no-bytecode-writing set-up the manifests assume."""

from __future__ import annotations

import fnmatch
import importlib.util
import json
import re
import subprocess
import sys
import tomllib
from importlib.metadata import distribution
from pathlib import Path

import pytest

from metrics_server import __version__, cli

REPO = Path(__file__).resolve().parents[2]
_spec = importlib.util.spec_from_file_location("image_lock", REPO / "image" / "lock.py")
assert _spec is not None and _spec.loader is not None
lock = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(lock)

Instruction = tuple[str, str]


def instructions() -> list[Instruction]:
    """(KEYWORD, arguments) per Dockerfile instruction, continuation lines joined, comments dropped."""
    out: list[Instruction] = []
    pending = ""
    for raw in (REPO / "Dockerfile").read_text().splitlines():
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line = pending + line
        pending = ""
        keyword, _, args = line.partition(" ")
        out.append((keyword.upper(), args.strip()))
    assert not pending, "the Dockerfile ends inside a continuation"
    return out


def stages() -> list[list[Instruction]]:
    result: list[list[Instruction]] = []
    for keyword, args in instructions():
        if keyword == "FROM":
            result.append([])
        if result:
            result[-1].append((keyword, args))
    return result


def runtime_stage() -> list[Instruction]:
    return stages()[-1]


def test_two_stages_on_the_same_python_3_11_slim_base_pinned_by_digest() -> None:
    args = dict(a.split("=", 1) for k, a in instructions() if k == "ARG" and "=" in a)
    assert re.fullmatch(r"python:3\.11-slim-bookworm@sha256:[0-9a-f]{64}", args["PYTHON_IMAGE"])
    # The lock file is made for the base's Python and C library (bookworm: glibc 2.36).
    assert lock.PLATFORM == ("CPython", "3.11", "x86_64", ("glibc", "2.36"))
    froms = [stage[0][1] for stage in stages()]
    # Same base in both: the virtual environment's interpreter symlink must resolve at run time.
    assert froms == ["${PYTHON_IMAGE} AS build", "${PYTHON_IMAGE}"]
    requires = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["requires-python"]
    assert requires == ">=3.11"


def test_runtime_stage_entrypoint_user_and_environment() -> None:
    stage = runtime_stage()
    [entrypoint] = [a for k, a in stage if k == "ENTRYPOINT"]
    assert json.loads(entrypoint) == ["metrics-server"]
    assert [a for k, a in stage if k == "USER"] == ["65534:65534"]
    env = " ".join(a for k, a in stage if k == "ENV").split()
    for setting in ("PYTHONDONTWRITEBYTECODE=1", "PYTHONUNBUFFERED=1", "PATH=/opt/venv/bin:$PATH"):
        assert setting in env
    assert ("COPY", "--from=build /opt/venv /opt/venv") in stage
    # Nothing in the runtime stage installs or builds: it only receives the finished environment.
    assert [k for k, _ in stage if k == "RUN"] == []


def test_build_stage_installs_as_ci_checks_it() -> None:
    """The one RUN is image/install.sh, which CI runs too (.ci/run), so the tree CI starts with
    `--version` is the image's: hash-checked dependencies from the lock, the two projects as wheels."""
    [run] = [a for k, a in stages()[0] if k == "RUN"]
    assert run == "sh image/install.sh /opt/venv"
    script = (REPO / "image" / "install.sh").read_text()
    assert '--require-hashes --no-deps -r "$src/image/requirements.lock"' in script
    assert '--no-deps --wheel-dir "$wheels" "$src/client" "$src"' in script
    assert '--no-deps --no-index --find-links "$wheels" k8s-metrics-client k8s-metrics-server' in script
    ci = (REPO / ".ci" / "run").read_text()
    assert "image/install.sh .venv-image" in ci
    assert ".venv-image/bin/metrics-server --version" in ci
    assert ".venv/bin/python image/lock.py --check" in ci
    # ... and proves the simulator stays out of both the server's wheel and the image's tree.
    assert 'if .venv-image/bin/python -c "import kubesim"' in ci
    assert 'print(f"server wheel: {len(names)} files, no kubesim")' in ci
    names = {
        tomllib.loads((REPO / path).read_text())["project"]["name"]
        for path in ("pyproject.toml", "client/pyproject.toml")
    }
    assert names == {"k8s-metrics-client", "k8s-metrics-server"}


def dockerignore() -> list[str]:
    lines = (REPO / ".dockerignore").read_text().splitlines()
    return [line.strip() for line in lines if line.strip() and not line.startswith("#")]


def in_build_context(path: str) -> bool:
    """Docker's rule: a path is matched when it or one of its parents matches; the last matching
    pattern wins and `!` re-includes. Patterns are anchored at the context root except `**/x`,
    which matches `x` at any depth. (fnmatch's `*` also crosses `/`, which changes nothing here
    because a parent directory matches first.)"""
    included = True
    parts = Path(path).parts
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    for pattern in dockerignore():
        negate = pattern.startswith("!")
        glob = pattern.removeprefix("!").rstrip("/")
        if glob.startswith("**/"):
            matched = any(fnmatch.fnmatchcase(Path(c).name, glob.removeprefix("**/")) for c in candidates)
        else:
            matched = any(fnmatch.fnmatchcase(c, glob) for c in candidates)
        if matched:
            included = negate
    return included


def test_every_copied_source_exists_and_is_in_the_build_context() -> None:
    sources: list[str] = []
    for keyword, args in instructions():
        if keyword == "COPY" and not args.startswith("--from="):
            sources.extend(args.split()[:-1])
    assert sorted(sources) == ["README.md", "client/", "image/", "pyproject.toml", "server/"]
    for source in sources:
        assert (REPO / source).exists(), source
        assert in_build_context(source.rstrip("/")), source


@pytest.mark.parametrize(
    ("path", "included"),
    [
        ("server/metrics_server/cli.py", True),
        ("client/k8s_metrics/quantity.py", True),
        ("README.md", True),
        ("server/metrics_server/__pycache__/cli.cpython-311.pyc", False),
        ("client/k8s_metrics_client.egg-info/PKG-INFO", False),
        (".venv/bin/python", False),
        (".git/HEAD", False),
        ("tests/deploy/test_dockerfile.py", False),
        ("bench/README.md", False),
        ("image/requirements.lock", True),
        # The simulator is its own distribution (sim/pyproject.toml): not in the image.
        ("sim", False),
        ("sim/pyproject.toml", False),
        ("sim/kubesim/simulate.py", False),
    ],
)
def test_dockerignore_keeps_the_context_to_the_sources(path: str, included: bool) -> None:
    assert in_build_context(path) is included


def test_console_script_resolves_to_cli_main() -> None:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    assert pyproject["project"]["scripts"] == {"metrics-server": "metrics_server.cli:main"}
    [entry] = [e for e in distribution("k8s-metrics-server").entry_points if e.name == "metrics-server"]
    assert entry.group == "console_scripts"
    assert entry.value == "metrics_server.cli:main"
    assert entry.load() is cli.main


def test_installed_metrics_server_command_runs() -> None:
    # The script pip generated for the installed package, run as the image's ENTRYPOINT would.
    script = Path(sys.executable).parent / "metrics-server"
    assert script.is_file()
    result = subprocess.run(
        [str(script), "--version"], capture_output=True, text=True, timeout=60, check=False
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, f"metrics-server {__version__}\n", "")


def test_a_bad_flag_is_refused_by_the_installed_command() -> None:
    script = Path(sys.executable).parent / "metrics-server"
    result = subprocess.run(
        [str(script), "--metric-resolution=5s"], capture_output=True, text=True, timeout=60, check=False
    )
    assert (result.returncode, result.stdout, result.stderr) == (
        2,
        "",
        "Error: --metric-resolution must be at least 10s\n",
    )


# --- the lock file


def test_lock_file_matches_the_projects() -> None:
    assert lock.problems() == []


def test_lock_check_fails_when_a_dependency_changes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    project = tmp_path / "pyproject.toml"
    text = (REPO / "pyproject.toml").read_text().replace('"orjson>=3.10,<4"', '"orjson>=9,<10"')
    project.write_text(text)
    monkeypatch.setattr(lock, "PROJECTS", (project, REPO / "client" / "pyproject.toml"))
    assert lock.problems() == [
        "the dependencies in pyproject.toml or client/pyproject.toml changed since the lock was made",
        f"orjson=={pinned('orjson')} is outside <10,>=9",
    ]


def pinned(name: str) -> str:
    [line] = [
        x
        for x in (REPO / "image" / "requirements.lock").read_text().splitlines()
        if x.startswith(f"{name}==")
    ]
    return line.split("==")[1].split()[0]
