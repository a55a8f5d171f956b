"""`metrics-server simulate --nodes 20`, the README's first command, as a user runs it.

Runs the console script next to this interpreter as a subprocess, reads its stdout line by line
until the ready line (bounded by a deadline), checks the printed hints, runs the real kubectl
against the cluster (`top pods -A` must print every running pod the simulated apiserver lists),
then sends SIGINT: the command must exit 0 and its metrics server process must be gone.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import trio
from e2ehelpers import find_kubectls

from kubesim import simulate
from kubesim.simulation import READY_PREFIX
from metrics_server import cli

pytestmark = pytest.mark.e2e

CLI_PREFIX = "127.83"
START_DEADLINE_S = 120.0
STOP_DEADLINE_S = 30.0


class LineReader:
    """Lines from a trio receive stream, kept in `seen`."""

    def __init__(self, stream: trio.abc.ReceiveStream) -> None:
        self._stream = stream
        self._buffer = b""
        self.seen: list[str] = []

    async def next_line(self) -> str | None:
        while b"\n" not in self._buffer:
            chunk = await self._stream.receive_some()
            if not chunk:
                return None
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        self.seen.append(line.decode())
        return self.seen[-1]

    async def until(self, prefix: str) -> str:
        while (line := await self.next_line()) is not None:
            if line.startswith(prefix):
                return line
        raise AssertionError(f"output ended before a line starting with {prefix!r}: {self.seen}")

    async def rest(self) -> list[str]:
        while await self.next_line() is not None:
            pass
        return self.seen


async def kubectl(kubeconfig: Path, home: Path, *args: str) -> tuple[int, str, str]:
    binary = find_kubectls()[0][0].path
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(home)}
    cmd = [str(binary), f"--kubeconfig={kubeconfig}", f"--cache-dir={home / 'cache'}", *args]
    done = await trio.run_process(cmd, capture_stdout=True, capture_stderr=True, check=False, env=env)
    return done.returncode, done.stdout.decode(), done.stderr.decode()


def process_exists(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_simulate_twenty_nodes_then_ctrl_c(tmp_path: Path) -> None:
    script = Path(sys.executable).parent / "metrics-server"
    state = tmp_path / "state"
    command = [
        str(script),
        "simulate",
        "--nodes",
        "20",
        "--metric-resolution",
        "10s",
        "--state-dir",
        str(state),
        "--address-prefix",
        CLI_PREFIX,
        "--kubelet-port=0",
    ]
    stderr_path = tmp_path / "stderr.txt"
    with stderr_path.open("wb") as stderr:  # a file: an undrained pipe could block the command
        process = await trio.lowlevel.open_process(command, stdout=subprocess.PIPE, stderr=stderr)
    assert process.stdout is not None
    out = LineReader(process.stdout)
    try:
        with trio.fail_after(START_DEADLINE_S):
            cluster_line = await out.until("cluster up:")
            server_line = await out.until("metrics server started:")
            await out.until("APIService v1beta1.metrics.k8s.io available")
            ready = await out.until(READY_PREFIX)
            await out.until("Metrics server log:")
        assert re.match(
            r"cluster up: 20 nodes, 200 pods, apiserver https://127\.0\.0\.1:\d+, kubelets on "
            rf"https://{re.escape(CLI_PREFIX)}\.0\.1:\d+ \.\.\., "
            rf"files in {re.escape(str(state))} \(\d+\.\d+s\)$",
            cluster_line,
        ), cluster_line
        assert re.match(r"metrics ready: 20/20 nodes, 200/200 pods \(\d+\.\d+s\)$", ready), ready
        match = re.match(
            r"metrics server started: pid (\d+), https://127\.0\.0\.1:\d+, log (\S+) ", server_line
        )
        assert match, server_line
        server_pid = int(match[1])
        assert Path(match[2]) == state / "metrics-server.log"
        kubeconfig = state / "kubeconfig"
        hints = out.seen[out.seen.index(ready) + 1 :]
        assert f"  kubectl --kubeconfig {kubeconfig} top pods -A" in hints
        assert f"  kubectl --kubeconfig {kubeconfig} get --raw /apis/metrics.k8s.io/v1beta1/nodes" in hints
        assert f"  export KUBECONFIG={kubeconfig}" in hints
        assert hints[-1] == f"Metrics server log: {state / 'metrics-server.log'}. Press Ctrl-C to stop."

        home = tmp_path / "home"
        code, listed, err = await kubectl(
            kubeconfig, home, "get", "pods", "-A", "--field-selector=status.phase=Running", "--no-headers"
        )
        assert (code, err) == (0, "")
        running = sorted((row.split()[0], row.split()[1]) for row in listed.splitlines())
        assert len(running) == 200
        code, top, err = await kubectl(kubeconfig, home, "top", "pods", "-A")
        assert (code, err) == (0, "")
        header, *rows = [line.split() for line in top.splitlines()]
        assert header == ["NAMESPACE", "NAME", "CPU(cores)", "MEMORY(bytes)"]
        assert sorted((row[0], row[1]) for row in rows) == running
        assert all(re.fullmatch(r"\d+m", row[2]) and re.fullmatch(r"\d+Mi", row[3]) for row in rows), rows

        process.send_signal(signal.SIGINT)
        with trio.fail_after(STOP_DEADLINE_S):
            rest = await out.rest()
            await process.wait()
        errors = stderr_path.read_text()
        assert process.returncode == 0, (rest, errors)
        assert rest[-2:] == ["SIGINT: stopping", "metrics server stopped (exit code 0)"]
        assert errors == ""
        assert not process_exists(server_pid)
    finally:
        if process.returncode is None:
            process.kill()
            with trio.CancelScope(shield=True):
                await process.wait()


async def test_simulate_reports_a_server_that_exits(tmp_path: Path) -> None:
    """A server that refuses its flags: the command prints the server's last lines and exits 1."""
    state = tmp_path / "state"
    command = [
        str(Path(sys.executable).parent / "metrics-server"),
        "simulate",
        "--nodes=1",
        "--pods-per-node=1",
        f"--state-dir={state}",
        "--address-prefix=127.84",
        "--kubelet-port=0",
        "--",
        "--tls-min-version=VersionTLS10",
    ]
    with trio.fail_after(START_DEADLINE_S):
        done = await trio.run_process(command, capture_stdout=True, capture_stderr=True, check=False)
    out, err = done.stdout.decode().splitlines(), done.stderr.decode().splitlines()
    assert done.returncode == 1, (out, err)
    assert [line.split(":")[0] for line in out] == ["cluster up", "metrics server started"]
    log = state / "metrics-server.log"
    assert err[0] == f"metrics-server simulate: the metrics server exited with code 2; last lines of {log}:"
    script = Path(sys.executable).parent / "metrics-server"
    assert err[1].startswith(f"  # {script} --kubeconfig="), err[1]
    assert err[2:] == [
        "  Error: --tls-min-version: VersionTLS10 is refused: TLS 1.2 is the minimum (RFC 8996)"
    ]


def test_simulate_without_the_simulator_installed_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The server's distribution does not contain kubesim: `simulate` names the one to install."""
    monkeypatch.setitem(sys.modules, "kubesim", None)  # what find_spec reports for a missing package

    def execv(path: str, args: list[str]) -> None:
        raise AssertionError(f"exec {args}")

    monkeypatch.setattr(os, "execv", execv)
    assert cli.main(["simulate", "--nodes", "20"]) == 2
    assert capsys.readouterr() == (
        "",
        "metrics-server simulate: the simulator is a separate distribution, not installed here: "
        "pip install ./sim\n",
    )


def test_simulate_without_the_server_installed_says_how_to_install_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """kubesim alone: the environment of this interpreter has no `metrics-server` command."""
    python = tmp_path / "bin" / "python"
    monkeypatch.setattr(sys, "executable", str(python))
    assert simulate.main(["--nodes", "1", f"--state-dir={tmp_path / 'state'}"]) == 2
    assert capsys.readouterr() == (
        "",
        "metrics-server simulate: the metrics server is not installed in this environment "
        f"(no {tmp_path / 'bin' / 'metrics-server'}): install it with `pip install -e .` "
        "from the repository root\n",
    )
    assert not (tmp_path / "state").exists()
