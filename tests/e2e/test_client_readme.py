"""Every code block of client/README.md, run against the `autoscale` cluster (kubesim with a real metrics
server): what the README tells a user to type works.

The user of the README is set up as one would be: ``~/.kube/config`` is the simulated cluster's admin
kubeconfig, and ``~/.kube/kind.yaml`` the same with the context named ``kind-kind``, the name kind
gives it. ``python`` blocks run as scripts, ``sh`` blocks line by line in bash from the repository
root; both must exit 0 with nothing on stderr. Blocks without a language are not code (the error
tree). ``pip install`` lines are not run (they would reinstall the client): the test checks that they
name this repository's client directory and extra, and tests/client/test_package.py installs the
built wheel into a fresh virtualenv.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from e2ehelpers import ClusterHarness

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "client" / "README.md"
FENCE = re.compile(r"^( *)```(\w*)\n(.*?)^\1```$", re.MULTILINE | re.DOTALL)


def blocks() -> list[tuple[str, str, int]]:
    """(language, code, line) of every fenced block, in order."""
    text = README.read_text()
    found = []
    for match in FENCE.finditer(text):
        indent = len(match[1])
        code = "".join(line[indent:] + "\n" for line in match[3].splitlines())
        found.append((match[2], code, text.count("\n", 0, match.start()) + 1))
    return found


BLOCKS = blocks()


def test_the_readme_has_the_blocks_this_test_runs() -> None:
    assert [language for language, _, _ in BLOCKS] == [
        "sh",
        "python",
        "python",
        "python",
        "python",
        "python",
        "python",
        "",
        "python",
        "sh",
        "sh",
        "python",
    ]


@pytest.fixture(scope="module")
def home(autoscale: ClusterHarness, tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("readme-home")
    (home / ".kube").mkdir()
    config = yaml.safe_load(autoscale.kubeconfig.read_text())
    (home / ".kube" / "config").write_text(yaml.safe_dump(config))
    for context in config["contexts"]:
        if context["name"] == config["current-context"]:
            context["name"] = "kind-kind"
    config["current-context"] = "kind-kind"
    (home / ".kube" / "kind.yaml").write_text(yaml.safe_dump(config))
    return home


def check_pip_install(line: str) -> None:
    project = tomllib.loads((ROOT / "client" / "pyproject.toml").read_text())["project"]
    words = line.split("#")[0].split()
    assert words[:2] == ["pip", "install"] and len(words) == 3, line
    target = words[2].strip("'")
    path, _, extra = target.partition("[")
    assert (ROOT / path / "pyproject.toml").exists(), line
    assert not extra or extra.rstrip("]") in project["optional-dependencies"], line


@pytest.mark.parametrize(("language", "code", "line"), BLOCKS, ids=[f"line-{b[2]}" for b in BLOCKS])
def test_readme_block(language: str, code: str, line: int, home: Path) -> None:
    env = {
        "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}",
        "HOME": str(home),
        "PYTHONPATH": "",
    }
    if language == "python":
        command = [sys.executable, "-c", code]
    elif language == "sh":
        lines = [text for text in code.splitlines() if text.strip() and not text.startswith("#")]
        for text in [t for t in lines if t.startswith("pip install ")]:
            check_pip_install(text)
        script = "\n".join(t for t in lines if not t.startswith("pip install "))
        if not script:
            return
        command = ["bash", "-euo", "pipefail", "-c", script]
    else:
        return  # not code
    done = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert (done.returncode, done.stderr) == (0, ""), f"README line {line}:\n{code}\n{done.stdout}"
