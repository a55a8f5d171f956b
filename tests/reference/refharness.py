"""The differential suite's harness (imported as `refharness`): one deterministic kubesim, both servers.

`PairHarness` runs a deterministic `SimCluster` (`kubesim.deterministic`, shaped by
`comparison_workload`) in a background thread with its own `trio.run`, then starts our server
(`python -m metrics_server.cli`) and metrics-server v0.8.0 (`REFERENCE`) as processes with the
same flags (`SimCluster.metrics_server_args`), and waits until both serve every node and running
pod they can. `get` sends one request to each server directly, as kube-aggregator would (the
front-proxy client certificate and `X-Remote-*` headers), ours first; `use_backend` points the
aggregator at one of them for kubectl. `CI=true` makes a missing reference binary a failure
(`reference_or_skip`); elsewhere the suite skips with the reason.
"""

from __future__ import annotations

import contextlib
import os
import signal
import ssl
import subprocess
import sys
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
import trio

from kubesim import SimCluster
from kubesim.deterministic import Workload, comparison_workload
from kubesim.simulation import free_port, tail_lines

T = TypeVar("T")

ROOT = Path(__file__).resolve().parents[2]
REFERENCE = ROOT.parent / "shared" / "reference" / "bin" / "metrics-server-v0.8.0"
"""`../shared/reference/bin/metrics-server-v0.8.0` from the project root (see its README)."""
RESOLUTION = "10s"
KUBELET_TIMEOUT = "5s"
READY_TIMEOUT_S = 120.0
PREFIX = (127, 91)
"""Kubelet addresses: distinct from every other test cluster's (see tests/e2e/conftest.py)."""
SERVERS = ("ours", "reference")
ADMIN = ("kubernetes-admin", ("system:masters", "system:authenticated"))
JANE = ("jane", ("system:authenticated",))


def reference_or_skip() -> Path:
    """The reference binary; a failure under CI=true when it is missing, else a skip with the reason."""
    if REFERENCE.is_file() and os.access(REFERENCE, os.X_OK):
        return REFERENCE
    reason = (
        f"metrics-server v0.8.0 not found at {REFERENCE.relative_to(ROOT.parent)} (beside the project, "
        "see shared/reference/bin/README.md): the differential suite needs the real reference binary"
    )
    if os.environ.get("CI") == "true":
        pytest.fail(f"CI=true: {reason}")
    pytest.skip(reason)


class HarnessError(Exception):
    """The cluster or a server failed to start or died; the message carries the logs' tails."""


@dataclass(frozen=True, slots=True)
class Reply:
    status: int
    headers: dict[str, str]
    """Lower-case names; repeated headers joined with `, `."""
    body: bytes


@dataclass
class Server:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    log: Path

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.port}"


class PairHarness:
    """See the module docstring. `start()` returns at once; `wait_ready()` blocks; `stop()` ends all."""

    def __init__(self, state_dir: Path, reference: Path) -> None:
        self.state_dir = state_dir
        self.reference = reference
        self.cluster = SimCluster(
            nodes=5,
            pods_per_node=3,
            seed=14,
            state_dir=state_dir / "cluster",
            address_prefix=PREFIX,
            sample_interval_s=1.0,
            deterministic=True,
        )
        self.workload: Workload | None = None
        self.servers: dict[str, Server] = {}
        self.startup_s = 0.0
        self._ready = threading.Event()
        self._done = threading.Event()
        self._error: BaseException | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        self._cancel: trio.CancelScope | None = None
        self._thread = threading.Thread(target=self._main, name="kubesim-reference", daemon=True)
        self._clients: dict[tuple[str, str], httpx.Client] = {}

    # --- life cycle ------------------------------------------------------------------------

    def start(self) -> PairHarness:
        self._started = time.monotonic()
        self._thread.start()
        return self

    def _main(self) -> None:
        try:
            trio.run(self._amain)
        except BaseException as exc:  # reported by wait_ready / stop
            self._error = exc
        finally:
            self._ready.set()
            self._done.set()

    async def _amain(self) -> None:
        self._token = trio.lowlevel.current_trio_token()
        with trio.CancelScope() as scope:
            self._cancel = scope
            async with trio.open_nursery() as nursery:
                await nursery.start(self.cluster.run)
                self.workload = comparison_workload(self.cluster)
                self._ready.set()

    def wait_ready(self) -> None:
        """Cluster up, both servers started and serving everything they can; HarnessError if not."""
        if not self._ready.wait(60) or self._error is not None:
            raise HarnessError(f"the simulated cluster did not start: {self._error!r}")
        for name in SERVERS:
            self._spawn(name)
        deadline = time.monotonic() + READY_TIMEOUT_S
        for name in SERVERS:
            self._wait_serving(name, deadline)
        self.startup_s = time.monotonic() - self._started

    def _spawn(self, name: str) -> None:
        port = free_port()
        args = self.cluster.metrics_server_args(
            secure_port=port, cert_dir=self.state_dir / f"certs-{name}", metric_resolution=RESOLUTION
        )
        args.append(f"--kubelet-request-timeout={KUBELET_TIMEOUT}")
        argv0 = [sys.executable, "-m", "metrics_server.cli"] if name == "ours" else [str(self.reference)]
        log = self.state_dir / f"{name}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                [*argv0, *args], stdin=subprocess.DEVNULL, stdout=out, stderr=out, start_new_session=True
            )
        self.servers[name] = Server(name, port, process, log)

    def expected_coverage(self) -> tuple[set[str], set[tuple[str, str]]]:
        """Nodes and running pods a correct server reports (everything but the failing kubelet's)."""
        assert self.workload is not None
        failing = self.workload.failing_node
        nodes = {n for n in self.call(self.cluster.node_names) if n != failing}
        pods = {p.key for p in self.call(self.cluster.pods) if p.phase == "Running" and p.node != failing}
        return nodes, pods

    def coverage(self, name: str) -> tuple[set[str], set[tuple[str, str]]]:
        nodes = self.json(name, "/apis/metrics.k8s.io/v1beta1/nodes").get("items") or []
        pods = self.json(name, "/apis/metrics.k8s.io/v1beta1/pods").get("items") or []
        return (
            {i["metadata"]["name"] for i in nodes},
            {(i["metadata"]["namespace"], i["metadata"]["name"]) for i in pods},
        )

    def _wait_serving(self, name: str, deadline: float) -> None:
        expected = self.expected_coverage()
        seen: tuple[set[str], set[tuple[str, str]]] = (set(), set())
        while time.monotonic() < deadline:
            self._check_alive()
            with contextlib.suppress(httpx.HTTPError, ValueError):
                seen = self.coverage(name)
                if seen == expected:
                    return
            time.sleep(0.5)
        raise HarnessError(
            f"{name} did not serve every node and pod within {READY_TIMEOUT_S:g}s: "
            f"{len(seen[0])}/{len(expected[0])} nodes, {len(seen[1])}/{len(expected[1])} pods\n" + self.logs()
        )

    def _check_alive(self) -> None:
        if self._done.is_set():
            raise HarnessError(f"the simulated cluster stopped: {self._error!r}\n" + self.logs())
        for server in self.servers.values():
            if server.process.poll() is not None:
                raise HarnessError(f"{server.name} exited with {server.process.returncode}\n" + self.logs())

    def logs(self) -> str:
        return "\n".join(
            f"--- {s.name} ({s.log.name}) ---\n" + "\n".join(tail_lines(s.log, 25))
            for s in self.servers.values()
        )

    def stop(self) -> None:
        for client in self._clients.values():
            client.close()
        for server in self.servers.values():
            if server.process.poll() is None:
                server.process.send_signal(signal.SIGTERM)
        for server in self.servers.values():
            try:
                server.process.wait(15)
            except subprocess.TimeoutExpired:
                server.process.kill()
                server.process.wait()
        if self._token is not None and not self._done.is_set() and self._cancel is not None:
            with contextlib.suppress(trio.RunFinishedError):
                trio.from_thread.run_sync(self._cancel.cancel, trio_token=self._token)
        self._thread.join(30)

    # --- the cluster's thread ------------------------------------------------------------

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        """Run a sync function in the cluster's trio thread (where the model lives)."""
        if self._done.is_set() or self._token is None:
            raise HarnessError(f"the simulated cluster is not running: {self._error!r}")
        return trio.from_thread.run_sync(fn, *args, trio_token=self._token)

    def run(self, afn: Callable[..., Awaitable[T]], *args: Any) -> T:
        if self._done.is_set() or self._token is None:
            raise HarnessError(f"the simulated cluster is not running: {self._error!r}")
        return trio.from_thread.run(afn, *args, trio_token=self._token)

    def use_backend(self, name: str) -> None:
        """Point the aggregator at one server; returns once it is Available and its discovery fetched."""
        url = self.servers[name].url

        async def switch() -> None:
            self.cluster.set_metrics_server_url(url)
            with trio.fail_after(30):
                while True:
                    await self.cluster.aggregator.wait_probe()
                    if self.cluster.aggregator.available and self.cluster.aggregator.backend_url == url:
                        return

        self.run(switch)

    # --- requests ------------------------------------------------------------------------

    def client(self, name: str, who: tuple[str, tuple[str, ...]] = ADMIN) -> httpx.Client:
        key = (name, who[0])
        client = self._clients.get(key)
        if client is None:
            paths = self.cluster.paths
            headers = [("X-Remote-User", who[0]), *(("X-Remote-Group", g) for g in who[1])]
            # The servers' self-signed certificates are not verified (the aggregator's manifest
            # says insecureSkipTLSVerify too); the front-proxy client certificate is presented.
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            ctx.load_cert_chain(paths.front_proxy_client_cert, paths.front_proxy_client_key)
            client = httpx.Client(
                base_url=self.servers[name].url, verify=ctx, headers=httpx.Headers(headers), timeout=30.0
            )
            self._clients[key] = client
        return client

    def get(
        self,
        name: str,
        path: str,
        headers: dict[str, str] | None = None,
        *,
        method: str = "GET",
        who: tuple[str, tuple[str, ...]] = ADMIN,
    ) -> Reply:
        """One request to one server (the query in `path` is sent as written)."""
        request_headers = {"User-Agent": "reference-suite/1.0", "Accept-Encoding": "identity"}
        request_headers.update(headers or {})
        response = self.client(name, who).request(method, path, headers=request_headers)
        joined: dict[str, str] = {}
        for key, value in response.headers.multi_items():
            key = key.lower()
            joined[key] = f"{joined[key]}, {value}" if key in joined else value
        return Reply(response.status_code, joined, response.content)

    def json(self, name: str, path: str) -> dict[str, Any]:
        import orjson

        reply = self.get(name, path)
        if reply.status != 200:
            raise ValueError(f"{name} {path}: {reply.status}")
        doc: dict[str, Any] = orjson.loads(reply.body)
        return doc

    def ticks(self, name: str) -> int:
        """Scrape cycles the server has completed (`metrics_server_manager_tick_duration_seconds_count`)."""
        text = self.get(name, "/metrics").body.decode()
        for line in text.splitlines():
            if line.startswith("metrics_server_manager_tick_duration_seconds_count"):
                return int(float(line.rsplit(" ", 1)[1]))
        return 0
