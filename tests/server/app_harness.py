"""The whole server against the simulated cluster, in-process: helpers for tests/server/test_app_*.

* `StackThread` runs a `kubesim.SimCluster` and the real `metrics_server.app.serve()` in a
  background thread with its own `trio.run`, so one running stack serves every test of a module
  (pytest-trio fixtures live for one test only).
* `GroundTruth` is what the simulator says every node, pod and container uses (exact for Steady
  profiles), with the kubelet sampling parameters needed to check timestamps.
* `aggregator_client` / `aggregator_async_client` talk to the server as kube-aggregator does: the
  front-proxy client certificate plus `X-Remote-User` / `X-Remote-Group`, verifying the server's
  self-signed certificate against the CA written beside it in `--cert-dir`.
* `GatedProxy` is a TCP forwarder whose client-to-upstream direction can be held: pointed at the
  simulated apiserver through `--authorization-kubeconfig`, it keeps SubjectAccessReviews (and so
  the requests waiting on them) open for as long as a test wants.

Everything that waits is bounded (`trio.fail_after`); `wait_for_metrics` waits on scrape cycles
(kubelet requests) and on the trio run going idle, never on a fixed sleep.
"""

from __future__ import annotations

import base64
import datetime as dt
import re
import ssl
import threading
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TypeVar

import httpx
import trio
import trio.testing
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization

from kubesim import SimCluster
from metrics_server.app import serve
from metrics_server.cli import parse_options
from metrics_server.options import Options

T = TypeVar("T")
API = "/apis/metrics.k8s.io/v1beta1"
RESOLUTION = "10s"
SAMPLE_INTERVAL_NS = 10 * 1_000_000_000
"""The simulated kubelets' housekeeping period (SimCluster's default `sample_interval_s`)."""
NS_PER_S = 1_000_000_000
MI = 1 << 20
TABLE_ACCEPT = (
    "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,"
    "application/json"
)
"""What `kubectl get` sends (apiserver-wire.md §7)."""
_RFC3339_SECONDS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


# --- TLS and clients ----------------------------------------------------------------------------


def server_ca_pem(cert_dir: Path, pair_name: str = "apiserver") -> bytes:
    """The self-signed CA of the server's generated pair: `<cert-dir>/<pair>.crt` holds the leaf,
    then the CA (client-go's layout)."""
    certs = x509.load_pem_x509_certificates((cert_dir / f"{pair_name}.crt").read_bytes())
    assert len(certs) == 2, f"expected leaf + CA in {pair_name}.crt, found {len(certs)} certificates"
    return certs[1].public_bytes(serialization.Encoding.PEM)


def client_ssl_context(
    ca_pem: bytes, cert: Path | None = None, key: Path | None = None, *, verify: bool = True
) -> ssl.SSLContext:
    """A client context trusting only `ca_pem` (hostname/IP checked), presenting `cert` if given.

    `verify=False` is for the one caller that skips verification in real life: kube-aggregator's
    availability probe."""
    ctx = ssl.create_default_context(cadata=ca_pem.decode())
    if not verify:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    if cert is not None:
        ctx.load_cert_chain(cert, key)
    return ctx


def identity_headers(user: str, groups: Sequence[str] = ()) -> list[tuple[str, str]]:
    """kube-aggregator's identity headers: one `X-Remote-Group` line per group, order kept."""
    return [("X-Remote-User", user), *(("X-Remote-Group", g) for g in groups)]


def aggregator_client(
    base_url: str, cluster: SimCluster, server_ca: bytes, *, verify: bool = True
) -> httpx.Client:
    """A sync client that presents the front-proxy client certificate, as the aggregator does."""
    ctx = client_ssl_context(
        server_ca, cluster.paths.front_proxy_client_cert, cluster.paths.front_proxy_client_key, verify=verify
    )
    return httpx.Client(base_url=base_url, verify=ctx, timeout=30.0)


def aggregator_async_client(
    base_url: str, cluster: SimCluster, server_ca: bytes, *, keepalive: bool = True
) -> httpx.AsyncClient:
    """The async twin of `aggregator_client`. `keepalive=False` opens a connection per request:
    a connection made before the server knew the front-proxy CA never presented its
    certificate (the TLS context did not ask for one) and stays anonymous."""
    ctx = client_ssl_context(
        server_ca, cluster.paths.front_proxy_client_cert, cluster.paths.front_proxy_client_key
    )
    limits = httpx.Limits() if keepalive else httpx.Limits(max_keepalive_connections=0)
    return httpx.AsyncClient(base_url=base_url, verify=ctx, timeout=30.0, limits=limits)


MASTERS = identity_headers("kubernetes-admin", ["system:masters", "system:authenticated"])
"""A cluster admin as the aggregator forwards one: authorized without a SubjectAccessReview."""


# --- server options -----------------------------------------------------------------------------


def server_options(cluster: SimCluster, host: str, cert_dir: Path, extra: Iterable[str] = ()) -> Options:
    """The flags a deployment against this cluster would use, on `host`, any free port.

    The 10 s resolution needs a kubelet timeout of at most 9 s (the default 10 s is refused)."""
    args = cluster.metrics_server_args(secure_port=0, cert_dir=cert_dir, metric_resolution=RESOLUTION)
    return parse_options([*args, f"--bind-address={host}", "--kubelet-request-timeout=5s", *extra])


def write_kubeconfig(
    path: Path,
    server: str,
    ca_pem: bytes,
    users: Mapping[str, Mapping[str, str]],
    current: str,
) -> Path:
    """A kubeconfig with one cluster (`server`, trusting `ca_pem`) and one context per user."""
    doc = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": "direct",
                "cluster": {
                    "server": server,
                    "certificate-authority-data": base64.b64encode(ca_pem).decode(),
                },
            }
        ],
        "contexts": [{"name": name, "context": {"cluster": "direct", "user": name}} for name in users],
        "current-context": current,
        "users": [{"name": name, "user": dict(user)} for name, user in users.items()],
    }
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    path.chmod(0o600)
    return path


def b64_file(path: Path) -> str:
    return base64.b64encode(path.read_bytes()).decode()


# --- ground truth -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ContainerTruth:
    name: str
    nanocores: int
    memory: int
    skew_ms: int


@dataclass(frozen=True, slots=True)
class PodTruth:
    namespace: str
    name: str
    node: str
    labels: dict[str, str]
    phase: str
    containers: tuple[ContainerTruth, ...]
    """Sorted by name (the order the API serves)."""

    @property
    def nanocores(self) -> int:
        return sum(c.nanocores for c in self.containers)

    @property
    def memory(self) -> int:
        return sum(c.memory for c in self.containers)


@dataclass(frozen=True, slots=True)
class NodeTruth:
    name: str
    labels: dict[str, str]
    nanocores: int
    memory: int
    phase_ms: int
    skew_ms: int


@dataclass(frozen=True, slots=True)
class GroundTruth:
    nodes: dict[str, NodeTruth]
    pods: dict[tuple[str, str], PodTruth]
    served_nodes: tuple[str, ...]
    """Nodes whose kubelet answers (sorted): exactly those the API lists."""

    def served_pods(self, namespace: str | None = None) -> list[PodTruth]:
        """Running pods on answering nodes, sorted by (namespace, name): what the API lists."""
        return [
            p
            for key, p in sorted(self.pods.items())
            if p.phase == "Running"
            and p.node in self.served_nodes
            and (namespace is None or p.namespace == namespace)
        ]


def ground_truth(cluster: SimCluster, broken_nodes: Iterable[str] = ()) -> GroundTruth:
    """Usage over the last 5 simulated seconds; call in the cluster's trio thread.

    With Steady profiles every window gives the same rate and memory never moves, so these are
    the exact values the server must serve (up to the float rounding of kubelet counters)."""
    t1 = cluster.now_ns()
    t0 = t1 - 5 * NS_PER_S
    nodes: dict[str, NodeTruth] = {}
    for name in cluster.node_names():
        node = cluster.model.node(name)
        nodes[name] = NodeTruth(
            name,
            dict(node.labels),
            round(cluster.expected_node_cpu_rate(name, t0, t1) * 1_000_000),
            cluster.expected_node_memory_bytes(name, t1),
            node.phase_ms,
            node.stat_skew_ms,
        )
    pods: dict[tuple[str, str], PodTruth] = {}
    for pod in cluster.pods():
        containers = tuple(
            ContainerTruth(
                c.name,
                round(cluster.expected_cpu_rate(pod.namespace, pod.name, c.name, t0, t1) * 1_000_000),
                cluster.expected_memory_bytes(pod.namespace, pod.name, c.name, t1),
                c.stat_skew_ms,
            )
            for c in sorted(pod.containers, key=lambda c: c.name)
        )
        pods[pod.key] = PodTruth(pod.namespace, pod.name, pod.node, dict(pod.labels), pod.phase, containers)
    broken = set(broken_nodes)
    return GroundTruth(nodes, pods, tuple(sorted(n for n in nodes if n not in broken)))


# --- Go / Kubernetes formats --------------------------------------------------------------------


def parse_cpu_nanocores(quantity: str) -> int:
    """A canonical DecimalSI CPU quantity as the API serves it (`168064370n`, `5u`, `250m`, `2`)."""
    for suffix, scale in (("n", 1), ("u", 1_000), ("m", 1_000_000)):
        if quantity.endswith(suffix):
            return int(quantity[: -len(suffix)]) * scale
    return int(quantity) * NS_PER_S


def go_memory(num_bytes: int) -> str:
    """Memory in Go's canonical BinarySI form (`300Mi`, `20484Ki`, `1000`)."""
    for suffix, scale in (
        ("Ei", 1 << 60),
        ("Pi", 1 << 50),
        ("Ti", 1 << 40),
        ("Gi", 1 << 30),
        ("Mi", MI),
        ("Ki", 1024),
    ):
        if num_bytes and num_bytes % scale == 0:
            return f"{num_bytes // scale}{suffix}"
    return str(num_bytes)


def go_cpu(nanocores: int) -> str:
    """CPU in Go's canonical DecimalSI form (`250m`, `2`, `1500u`, `168064370n`)."""
    for suffix, scale in (("", NS_PER_S), ("m", 1_000_000), ("u", 1_000)):
        if nanocores % scale == 0:
            return f"{nanocores // scale}{suffix}"
    return f"{nanocores}n"


def parse_rfc3339_seconds(text: str) -> int:
    assert _RFC3339_SECONDS.match(text), f"not RFC 3339 with second precision: {text!r}"
    return int(dt.datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=dt.UTC).timestamp())


def is_sample_time(timestamp: str, phase_ms: int, skew_ms: int) -> bool:
    """Whether `timestamp` (truncated to the second) is one of a kubelet's sample times for a
    series sampled `skew_ms` before each housekeeping tick `phase_ms + k x 10 s`."""
    ts_ns = parse_rfc3339_seconds(timestamp) * NS_PER_S
    offset = (phase_ms - skew_ms) * 1_000_000
    return (offset - ts_ns) % SAMPLE_INTERVAL_NS < NS_PER_S


WINDOWS = frozenset({"10s", "20s"})
"""Windows the server can serve here: consecutive samples of one series are whole kubelet
periods apart (10 s), and a scrape may land twice in one period, stretching the pair to 20 s."""


# --- waiting for scrape cycles -----------------------------------------------------------------


IDLE_CUSHION = 0.1
"""Seconds without any runnable task that count as "the cycle is over": longer than the scrape
stagger (8 ms x nodes) and any per-request work, far shorter than the 10 s between cycles."""


async def wait_for_metrics(cluster: SimCluster, client: httpx.AsyncClient, truth: GroundTruth) -> None:
    """Return once the server serves everything in `truth` (`metrics_complete`).

    Checks whenever the whole trio run (the simulator and the server must share it) is idle,
    then waits for the next scrape cycle to reach a kubelet. The server exposes no event for "a
    cycle was stored", so this is the earliest moment a check can see a cycle's result. A check
    that straddles a cycle's start only costs one more cycle. Bound it with `trio.fail_after`.
    """
    kubelet = cluster.kubelets.kubelet(truth.served_nodes[0])
    while True:
        await trio.testing.wait_all_tasks_blocked(IDLE_CUSHION)
        if await metrics_complete(client, truth):
            return
        await kubelet.wait_request()


async def metrics_complete(client: httpx.AsyncClient, truth: GroundTruth) -> bool:
    """The server is ready and serves every answering node and every running pod on one."""
    ready = await client.get("/readyz", headers=MASTERS)
    if ready.status_code != 200:
        return False
    nodes = await client.get(f"{API}/nodes", headers=MASTERS)
    pods = await client.get(f"{API}/pods", headers=MASTERS)
    if nodes.status_code != 200 or pods.status_code != 200:
        return False
    served_nodes = tuple(item["metadata"]["name"] for item in nodes.json()["items"])
    served_pods = [(i["metadata"]["namespace"], i["metadata"]["name"]) for i in pods.json()["items"]]
    return served_nodes == truth.served_nodes and served_pods == [
        (p.namespace, p.name) for p in truth.served_pods()
    ]


# --- the running stack in a thread --------------------------------------------------------------


class StackError(Exception):
    """The background stack failed to start, died, or did not stop cleanly."""


@dataclass
class StackConfig:
    root: Path
    server_host: str
    apiserver_host: str
    kubelet_prefix: tuple[int, int]
    nodes: int
    pods_per_node: int
    seed: int
    prepare: Callable[[SimCluster], None] | None = None
    """Runs in the cluster's thread before the server starts (add pods, inject faults)."""
    broken_nodes: tuple[str, ...] = ()
    faults: tuple[tuple[str, str], ...] = ()
    """(node, kubesim fault mode) set before the server starts; like `broken_nodes`, never served."""
    ready_timeout: float = 60.0
    extra_args: tuple[str, ...] = ()


class StackThread:
    """SimCluster + `serve()` in one background `trio.run`.

    `start()` returns at once; `wait_ready()` blocks until every answering node and running pod
    has metrics (or raises `StackError`); `stop()` sets the server's `stop` event, waits for
    `serve()` to return, then stops the cluster and joins the thread.
    """

    def __init__(self, config: StackConfig) -> None:
        self.config = config
        self.cluster: SimCluster | None = None
        self.url = ""
        self.cert_dir = config.root / "serving-certs"
        self.truth: GroundTruth | None = None
        self._ready = threading.Event()
        self._done = threading.Event()
        self._error: BaseException | None = None
        self._token: trio.lowlevel.TrioToken | None = None
        self._stop: trio.Event | None = None
        self._readiness: trio.CancelScope | None = None
        self.serve_returned = False
        self._thread = threading.Thread(target=self._main, name="app-stack", daemon=True)

    def start(self) -> StackThread:
        self._thread.start()
        return self

    def _main(self) -> None:
        try:
            trio.run(self._amain)
        except BaseException as exc:  # reported to the test thread by wait_ready / stop
            self._error = exc
        finally:
            self._ready.set()
            self._done.set()

    async def _amain(self) -> None:
        cfg = self.config
        self._token = trio.lowlevel.current_trio_token()
        self._stop = trio.Event()
        cluster = SimCluster(
            nodes=cfg.nodes,
            pods_per_node=cfg.pods_per_node,
            seed=cfg.seed,
            state_dir=cfg.root / "sim",
            host=cfg.apiserver_host,
            address_prefix=cfg.kubelet_prefix,
            profile_kinds=("steady",),
        )
        async with trio.open_nursery() as outer:
            await outer.start(cluster.run)
            self.cluster = cluster
            if cfg.prepare is not None:
                cfg.prepare(cluster)
            for node in cfg.broken_nodes:
                cluster.set_fault(node, "refuse")
            for node, mode in cfg.faults:
                cluster.set_fault(node, mode)
            unserved = (*cfg.broken_nodes, *(node for node, _ in cfg.faults))
            self.truth = truth = ground_truth(cluster, unserved)
            options = server_options(cluster, cfg.server_host, self.cert_dir, cfg.extra_args)
            async with trio.open_nursery() as inner:
                urls: list[str] = await inner.start(partial(serve, options, stop=self._stop))
                self.url = urls[0]
                ca = server_ca_pem(self.cert_dir)
                try:
                    with trio.CancelScope() as self._readiness, trio.fail_after(cfg.ready_timeout):
                        async with aggregator_async_client(self.url, cluster, ca) as client:
                            await wait_for_metrics(cluster, client, truth)
                except httpx.ConnectError:
                    # Cancelling a connect in progress surfaces as "all attempts to connect
                    # failed" (trio's happy eyeballs, via httpcore), not as Cancelled.
                    if not self._stop.is_set():
                        raise
                self._ready.set()
                await self._stop.wait()
            self.serve_returned = True
            outer.cancel_scope.cancel()

    def _failure(self, what: str) -> StackError:
        return StackError(f"{what}: {self._error!r}")

    def wait_ready(self) -> None:
        if not self._ready.wait(self.config.ready_timeout + 30):
            raise self._failure("stack not ready in time")
        if self._error is not None or self._done.is_set():
            raise self._failure("stack failed") from self._error

    def call(self, fn: Callable[[], Awaitable[T]]) -> T:
        """Run `await fn()` in the stack's trio thread (where the cluster lives) and return its result."""
        assert self._token is not None
        return trio.from_thread.run(fn, trio_token=self._token)

    def _request_stop(self) -> None:
        assert self._stop is not None
        if self._readiness is not None:  # stopped before it was ready: stop waiting for that first
            self._readiness.cancel()
        self._stop.set()

    def stop(self, timeout: float = 30.0) -> None:
        """Stop the server (and the cluster after it); re-raise what the stack died of, if anything."""
        if self._token is not None and self._stop is not None and not self._done.is_set():
            trio.from_thread.run_sync(self._request_stop, trio_token=self._token)
        self._thread.join(timeout)
        if self._thread.is_alive():
            raise StackError(f"stack thread did not stop within {timeout:g}s")
        if self._error is not None:
            raise self._failure("stack failed") from self._error


# --- a TCP forwarder whose requests can be held -------------------------------------------------


class GatedProxy:
    """Forwards TCP (TLS passes through untouched) from `listen_host` to `upstream`.

    While `hold()` is in force, bytes from clients are not forwarded; `held` counts the
    connections with bytes waiting, and `wait_held(n)` returns once `n` are waiting. `release()`
    forwards everything held and all that follows.
    """

    def __init__(self, listen_host: str, upstream_host: str, upstream_port: int) -> None:
        self.listen_host = listen_host
        self.upstream = (upstream_host, upstream_port)
        self.port = 0
        self._open = trio.Event()
        self._open.set()
        self.held = 0
        self._held_changed = trio.Event()

    @property
    def url(self) -> str:
        return f"https://{self.listen_host}:{self.port}"

    def hold(self) -> None:
        if self._open.is_set():
            self._open = trio.Event()

    def release(self) -> None:
        self._open.set()

    async def wait_held(self, count: int) -> None:
        while self.held < count:
            await self._held_changed.wait()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        listeners = await trio.open_tcp_listeners(0, host=self.listen_host)
        self.port = listeners[0].socket.getsockname()[1]
        async with trio.open_nursery() as nursery:
            await nursery.start(partial(trio.serve_listeners, self._handle, listeners))
            task_status.started()

    async def _handle(self, client: trio.SocketStream) -> None:
        async with (
            client,
            await trio.open_tcp_stream(*self.upstream) as upstream,
            trio.open_nursery() as nursery,
        ):
            nursery.start_soon(self._pump, client, upstream, True, nursery.cancel_scope)
            nursery.start_soon(self._pump, upstream, client, False, nursery.cancel_scope)

    async def _pump(
        self, src: trio.SocketStream, dst: trio.SocketStream, gated: bool, scope: trio.CancelScope
    ) -> None:
        try:
            while data := await src.receive_some(65536):
                if gated and not self._open.is_set():
                    self._set_held(+1)
                    try:
                        await self._open.wait()
                    finally:
                        self._set_held(-1)
                await dst.send_all(data)
        except (trio.BrokenResourceError, trio.ClosedResourceError):
            pass
        scope.cancel()

    def _set_held(self, delta: int) -> None:
        self.held += delta
        event, self._held_changed = self._held_changed, trio.Event()
        event.set()
