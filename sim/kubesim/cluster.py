"""`SimCluster`: the whole simulated cluster under one trio nursery, plus the files clients need.

Usage::

    async with SimCluster(nodes=3, pods_per_node=5, seed=1, state_dir=tmp) as cluster:
        ...  # cluster.api_url, cluster.paths.kubeconfig, cluster.expected_cpu_millicores(...)

or `await nursery.start(cluster.run)`. The state directory receives the cluster CA, the
front-proxy CA and client pair, the apiserver's serving pair, an admin client certificate,
`kubeconfig` (contexts `admin`, `admin-cert`, `limited`) and `metrics-server.kubeconfig`
(the metrics server's service account), laid out by `kubesim.statefiles`.
`metrics_server_args()` gives the flags a real metrics server needs against this cluster;
`set_metrics_server_url()` points the aggregator at it and `on_ready` is a hook to start it once
everything listens.

Every kubelet listens on the same port: `kubelet_port`, or by default (0) one port free on every
node address (`kubelet.reserve_port`), so clusters started side by side, by parallel test runs or
beside a running `simulate`, never collide; `model_options.kubelet_port` then says which.
"""

from __future__ import annotations

import logging
import shutil
import ssl
from collections.abc import Awaitable, Callable, Sequence
from contextlib import AsyncExitStack
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar

import trio

from .aggregator import Aggregator
from .apiserver import ApiServer
from .clock import NS_PER_S, SimClock
from .control import control_handler
from .entities import ContainerSpec, Pod
from .errors import ConfigError, SimError
from .httpserver import serve_listeners
from .kubelet import KubeletFleet, reserve_port
from .model import ClusterModel, ModelOptions, node_ip
from .pki import CertificateAuthority
from .policy import Policy
from .profiles import PROFILE_KINDS
from .statefiles import (
    ADMIN_USER,
    FRONT_PROXY_CLIENT_CN,
    StatePaths,
    write_kubeconfigs,
)
from .store import Store
from .workloads import Workloads

log = logging.getLogger(__name__)
_T = TypeVar("_T")


class SimCluster:
    """A simulated cluster: apiserver + aggregator on `host:port`, one kubelet per node address."""

    def __init__(
        self,
        *,
        nodes: int = 3,
        pods_per_node: int = 5,
        seed: int = 0,
        state_dir: Path,
        host: str = "127.0.0.1",
        port: int = 0,
        kubelet_port: int = 0,
        address_prefix: tuple[int, int] = (127, 1),
        metrics_server_url: str | None = None,
        metrics_server_ca: Path | None = None,
        policy_file: Path | None = None,
        sample_interval_s: float = 10.0,
        profile_kinds: Sequence[str] = PROFILE_KINDS,
        kubelet_format: str = "stable",
        bookmark_interval_s: float = 60.0,
        probe_interval_s: float = 30.0,
        watch_history: int = 10_000,
        pod_churn_per_minute: float = 0.0,
        start_epoch_ns: int | None = None,
        send_remote_uid: bool = False,
        deterministic: bool = False,
        on_ready: Callable[[SimCluster], Awaitable[None]] | None = None,
    ) -> None:
        if not host.startswith("127."):
            raise ConfigError(f"host must be a 127.x.y.z loopback address, got {host!r}")
        if address_prefix[0] != 127 or not 0 <= address_prefix[1] <= 255:
            raise ConfigError(f"address_prefix must be (127, b) with 0 <= b <= 255, got {address_prefix!r}")
        if pod_churn_per_minute < 0:
            raise ConfigError("pod_churn_per_minute must be >= 0")
        if deterministic and (sample_interval_s < 1 or sample_interval_s != int(sample_interval_s)):
            raise ConfigError("the deterministic mode needs a sample interval of whole seconds (>= 1)")
        self.model_options = ModelOptions(
            nodes=nodes,
            pods_per_node=pods_per_node,
            seed=seed,
            kubelet_port=kubelet_port,
            sample_interval_s=sample_interval_s,
            profile_kinds=tuple(profile_kinds),
            kubelet_format=kubelet_format,
            address_prefix=address_prefix,
            deterministic=deterministic,
        )
        self.paths = StatePaths(Path(state_dir))
        self.host = host
        self.port = port
        self.policy = Policy.load(policy_file)
        self._policy_file = policy_file or Policy.default_path()
        self._metrics_server_url = metrics_server_url
        self._metrics_server_ca = metrics_server_ca
        self._bookmark_interval_s = bookmark_interval_s
        self._probe_interval_s = probe_interval_s
        self._watch_history = watch_history
        self._churn = pod_churn_per_minute
        self._start_epoch_ns = start_epoch_ns
        self._send_remote_uid = send_remote_uid
        self._on_ready = on_ready
        self._stack: AsyncExitStack | None = None
        self._nursery: trio.Nursery | None = None
        self._model: ClusterModel | None = None
        self._aggregator: Aggregator | None = None
        self._apiserver: ApiServer | None = None
        self._kubelets: KubeletFleet | None = None
        self._clock: SimClock | None = None

    # --- lifecycle ---------------------------------------------------------------------

    async def __aenter__(self) -> SimCluster:
        stack = AsyncExitStack()
        await stack.__aenter__()
        try:
            self._nursery = await stack.enter_async_context(trio.open_nursery())
            await self._nursery.start(self.run)
        except BaseException:
            await stack.aclose()
            raise
        self._stack = stack
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> bool | None:
        assert self._stack is not None and self._nursery is not None
        self._nursery.cancel_scope.cancel()
        stack, self._stack = self._stack, None
        return await stack.__aexit__(exc_type, exc, tb)

    async def run(self, *, task_status: trio.TaskStatus[SimCluster] = trio.TASK_STATUS_IGNORED) -> None:
        """Build and serve the cluster until cancelled; `task_status.started(self)` once all listen."""
        paths = self.paths
        paths.root.mkdir(parents=True, exist_ok=True)
        paths.kubelet_certs.mkdir(exist_ok=True)
        clock = SimClock(self._start_epoch_ns)
        self._clock = clock
        cluster_ca = CertificateAuthority.load_or_create(paths.ca_cert, paths.ca_key, "kubesim-ca")
        front_ca = CertificateAuthority.load_or_create(
            paths.front_proxy_ca_cert, paths.front_proxy_ca_key, "front-proxy-ca"
        )
        front_ca.issue(FRONT_PROXY_CLIENT_CN, client=True).write(
            paths.front_proxy_client_cert, paths.front_proxy_client_key
        )
        cluster_ca.issue(ADMIN_USER, organizations=["system:masters"], client=True).write(
            paths.admin_cert, paths.admin_key
        )
        cluster_ca.issue(
            "kube-apiserver",
            ip_sans=sorted({self.host, "127.0.0.1"}),
            dns_sans=["localhost", "kubernetes", "kubernetes.default", "kubernetes.default.svc"],
            server=True,
        ).write(paths.apiserver_cert, paths.apiserver_key)
        if self._policy_file.resolve() != paths.policy.resolve():
            shutil.copyfile(self._policy_file, paths.policy)

        reserved: dict[str, list[trio.SocketListener]] = {}
        if self.model_options.kubelet_port == 0 and self.model_options.nodes > 0:
            ips = [node_ip(self.model_options.address_prefix, i) for i in range(self.model_options.nodes)]
            port, reserved = await reserve_port(ips)
            self.model_options = replace(self.model_options, kubelet_port=port)
        store = Store(history=self._watch_history)
        model = ClusterModel(self.model_options, clock, store)
        model.populate()
        created = clock.now_ns() - 30 * 86400 * NS_PER_S
        model.put_configmap(
            "kube-system",
            "extension-apiserver-authentication",
            {
                "client-ca-file": cluster_ca.cert_pem.decode(),
                "requestheader-allowed-names": f'["{FRONT_PROXY_CLIENT_CN}"]',
                "requestheader-client-ca-file": front_ca.cert_pem.decode(),
                "requestheader-extra-headers-prefix": '["X-Remote-Extra-"]',
                "requestheader-group-headers": '["X-Remote-Group"]',
                "requestheader-uid-headers": '["X-Remote-Uid"]',
                "requestheader-username-headers": '["X-Remote-User"]',
            },
            created,
        )
        for ns in sorted({k[0] for k in model.pods} | {"default", "kube-system"}):
            model.put_configmap(ns, "kube-root-ca.crt", {"ca.crt": cluster_ca.cert_pem.decode()}, created)
        aggregator = Aggregator(
            clock,
            self.policy.aggregator,
            paths.front_proxy_client_cert,
            paths.front_proxy_client_key,
            backend_url=self._metrics_server_url,
            backend_ca=self._metrics_server_ca,
            probe_interval_s=self._probe_interval_s,
            send_uid=self._send_remote_uid,
        )
        apiserver = ApiServer(
            model,
            store,
            self.policy,
            aggregator,
            clock,
            bookmark_interval_s=self._bookmark_interval_s,
            control=control_handler(model, aggregator, store),
            workloads=Workloads(model, store),
        )
        kubelets = KubeletFleet(
            model,
            self.policy,
            cluster_ca,
            paths.kubelet_certs,
            clock,
            self.model_options.kubelet_port,
            reserved,
        )
        self._model, self._aggregator, self._apiserver, self._kubelets = (
            model,
            aggregator,
            apiserver,
            kubelets,
        )

        ctx = ssl.SSLContext(
            ssl.PROTOCOL_TLS_SERVER
        )  # no system CA store: it costs ~1 MB and 15 ms per context
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(paths.apiserver_cert, paths.apiserver_key)
        ctx.load_verify_locations(cadata=cluster_ca.cert_pem.decode())
        ctx.verify_mode = ssl.CERT_OPTIONAL
        ctx.set_alpn_protocols(["http/1.1"])
        try:
            listeners = await trio.open_tcp_listeners(self.port, host=self.host)
        except OSError as exc:
            raise ConfigError(f"apiserver cannot listen on {self.host}:{self.port}: {exc}") from exc
        self.port = listeners[0].socket.getsockname()[1]
        apiserver.address = f"{self.host}:{self.port}"
        write_kubeconfigs(self.paths, self.api_url, cluster_ca.cert_pem, self.policy)

        async with trio.open_nursery() as nursery:
            await nursery.start(serve_listeners, listeners, apiserver.handle, ctx)
            await nursery.start(aggregator.run)
            await nursery.start(kubelets.run)
            if self._churn > 0:
                nursery.start_soon(self._churn_loop)
            log.info(
                "kubesim: %d nodes, %d pods, apiserver %s", len(model.nodes), len(model.pods), self.api_url
            )
            task_status.started(self)
            if self._on_ready is not None:
                nursery.start_soon(self._on_ready, self)

    async def _churn_loop(self) -> None:
        while True:
            await trio.sleep(60.0 / self._churn)
            self.model.churn_step()

    # --- accessors ---------------------------------------------------------------------

    @staticmethod
    def _require(value: _T | None) -> _T:
        if value is None:
            raise SimError("the cluster is not running (use `async with` or nursery.start(cluster.run))")
        return value

    @property
    def model(self) -> ClusterModel:
        return self._require(self._model)

    @property
    def clock(self) -> SimClock:
        return self._require(self._clock)

    @property
    def aggregator(self) -> Aggregator:
        return self._require(self._aggregator)

    @property
    def apiserver(self) -> ApiServer:
        return self._require(self._apiserver)

    @property
    def workloads(self) -> Workloads:
        """Deployments, StatefulSets and ReplicaSets: ``workloads.add(...)``, ``workloads.scale(...)``."""
        workloads = self._require(self._apiserver).workloads
        return self._require(workloads)

    @property
    def kubelets(self) -> KubeletFleet:
        return self._require(self._kubelets)

    @property
    def api_url(self) -> str:
        return f"https://{self.host}:{self.port}"

    def node_names(self) -> list[str]:
        return sorted(self.model.nodes)

    def node_ip(self, node: str) -> str:
        return self.model.node(node).ip

    def kubelet_url(self, node: str) -> str:
        return f"https://{self.node_ip(node)}:{self.model_options.kubelet_port}"

    def pods(self, node: str | None = None) -> list[Pod]:
        """All pods (any phase), sorted by namespace/name; only one node's with `node`."""
        return sorted(
            (p for p in self.model.pods.values() if node is None or p.node == node), key=lambda p: p.key
        )

    def token(self, user: str) -> str:
        return self.policy.token_for(user)

    # --- metrics server wiring ---------------------------------------------------------

    def set_metrics_server_url(self, url: str | None) -> None:
        """Where the aggregator proxies metrics.k8s.io; re-probes availability at once."""
        self.aggregator.set_backend(url)

    async def wait_apiservice_available(self) -> None:
        await self.aggregator.wait_available()

    def metrics_server_args(
        self, *, secure_port: int, cert_dir: Path, metric_resolution: str = "15s"
    ) -> list[str]:
        """Flags that make a metrics server work against this cluster on 127.0.0.1:<secure_port>."""
        kc = str(self.paths.metrics_server_kubeconfig)
        return [
            f"--kubeconfig={kc}",
            f"--authentication-kubeconfig={kc}",
            f"--authorization-kubeconfig={kc}",
            f"--kubelet-certificate-authority={self.paths.kubelet_ca}",
            "--kubelet-preferred-address-types=InternalIP",
            f"--kubelet-port={self.model_options.kubelet_port}",
            f"--secure-port={secure_port}",
            "--bind-address=127.0.0.1",
            f"--cert-dir={cert_dir}",
            f"--metric-resolution={metric_resolution}",
        ]

    @staticmethod
    def metrics_server_url_for(secure_port: int, host: str = "127.0.0.1") -> str:
        return f"https://{host}:{secure_port}"

    # --- control (delegates to the model) ---------------------------------------------

    def set_fault(self, node: str, mode: str) -> None:
        self.model.set_fault(node, mode)

    def set_node_ready(self, node: str, ready: bool) -> None:
        self.model.set_node_ready(node, ready)

    def set_kubelet_format(self, node: str, fmt: str) -> None:
        self.model.set_kubelet_format(node, fmt)

    def add_pod(
        self, node: str, namespace: str, name: str, containers: Sequence[ContainerSpec], **kwargs: Any
    ) -> Pod:
        return self.model.add_pod(node, namespace, name, containers, **kwargs)

    def set_pod_phase(self, namespace: str, name: str, phase: str) -> Pod:
        return self.model.set_pod_phase(namespace, name, phase)

    def delete_pod(self, namespace: str, name: str) -> None:
        self.model.delete_pod(namespace, name)

    def restart_container(self, namespace: str, name: str, container: str) -> None:
        self.model.restart_container(namespace, name, container)

    def compact(self) -> None:
        """Drop the watch history: watches from older resourceVersions get 410 Expired."""
        self.model.store.compact()

    # --- ground truth ------------------------------------------------------------------

    def now_ns(self) -> int:
        return self.clock.now_ns()

    def expected_cpu_millicores(
        self, namespace: str, pod: str, container: str | None = None, at_ns: int | None = None
    ) -> float:
        """Instantaneous simulated CPU (millicores) of a container, or of a pod (sum of containers)."""
        return self.model.expected_cpu_millicores(namespace, pod, container, at_ns)

    def expected_cpu_rate(
        self, namespace: str, pod: str, container: str | None, t0_ns: int, t1_ns: int
    ) -> float:
        """Mean CPU millicores between two sample times (what a metrics server should report)."""
        return self.model.expected_cpu_rate(namespace, pod, container, t0_ns, t1_ns)

    def expected_memory_bytes(
        self, namespace: str, pod: str, container: str | None = None, at_ns: int | None = None
    ) -> int:
        return self.model.expected_memory_bytes(namespace, pod, container, at_ns)

    def expected_node_cpu_rate(self, node: str, t0_ns: int, t1_ns: int) -> float:
        return self.model.expected_node_cpu_rate(node, t0_ns, t1_ns)

    def expected_node_memory_bytes(self, node: str, at_ns: int | None = None) -> int:
        return self.model.expected_node_memory_bytes(node, at_ns)
