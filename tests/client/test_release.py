"""The client as released: `python -m build` makes a wheel and an sdist that `twine check` passes, with
the version, metadata and files a user installs (py.typed, the public modules, no tests)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tarfile
import zipfile
from email.parser import Parser
from pathlib import Path

import pytest

import k8s_metrics

CLIENT = Path(__file__).resolve().parents[2] / "client"


@pytest.fixture(scope="module")
def dist(tmp_path_factory: pytest.TempPathFactory) -> Path:
    source = tmp_path_factory.mktemp("client-src") / "client"  # build from a copy: no files in the repo
    shutil.copytree(CLIENT, source, ignore=shutil.ignore_patterns("*.egg-info", "build", "__pycache__"))
    out = tmp_path_factory.mktemp("dist")
    subprocess.run(
        [sys.executable, "-m", "build", "--no-isolation", "--outdir", str(out), str(source)],
        check=True,
        capture_output=True,
    )
    return out


def test_wheel_and_sdist_pass_twine_check(dist: Path) -> None:
    version = k8s_metrics.__version__
    files = sorted(p.name for p in dist.iterdir())
    assert files == [f"k8s_metrics_client-{version}-py3-none-any.whl", f"k8s_metrics_client-{version}.tar.gz"]
    done = subprocess.run(
        [sys.executable, "-m", "twine", "--no-color", "check", "--strict", *(str(dist / f) for f in files)],
        check=False,
        capture_output=True,
        text=True,
        env={**os.environ, "COLUMNS": "500"},  # rich wraps long paths at the terminal width
    )
    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout.splitlines() == [f"Checking {dist / f}: PASSED" for f in files]


def test_the_wheel(dist: Path) -> None:
    [wheel] = dist.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        info = f"k8s_metrics_client-{k8s_metrics.__version__}.dist-info"
        metadata = Parser().parsestr(archive.read(f"{info}/METADATA").decode())
    for module in ("py.typed", "models.py", "api/metrics.py", "scale.py", "waiting.py", "durations.py",
                   "selectors.py", "fieldselectors.py", "gostrings.py", "kubeconfig/files.py",
                   "_generated/models/status.py"):  # fmt: skip
        assert f"k8s_metrics/{module}" in names
    assert not [n for n in names if "test" in n.split("/")[0] or n.endswith(".pyc")]
    assert metadata["Name"] == "k8s-metrics-client"
    assert metadata["Version"] == k8s_metrics.__version__
    assert metadata["Requires-Python"] == ">=3.11"
    assert metadata["License-Expression"] == "Apache-2.0"
    assert "Typing :: Typed" in metadata.get_all("Classifier")
    assert metadata.get_all("Requires-Dist") == [
        "httpx<0.29,>=0.23.1",
        "attrs>=22.2",
        "anyio>=3",
        "certifi",
        "pyyaml<7,>=6.0",
        'httpx[socks]; extra == "socks"',
    ]
    assert metadata["Description-Content-Type"] == "text/markdown"
    assert metadata.get_payload().startswith("# k8s-metrics-client\n")


def test_the_sdist(dist: Path) -> None:
    [sdist] = dist.glob("*.tar.gz")
    with tarfile.open(sdist) as archive:
        names = {n.split("/", 1)[1] for n in archive.getnames() if "/" in n}
    assert {"README.md", "CHANGELOG.md", "pyproject.toml", "k8s_metrics/py.typed"} <= names


def test_the_changelog_names_this_version() -> None:
    assert f"\n## {k8s_metrics.__version__}\n" in (CLIENT / "CHANGELOG.md").read_text()
