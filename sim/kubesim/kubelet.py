"""Simulated kubelets: one TLS listener per node address, serving /metrics/resource and /stats/summary.

Each node listens on its own loopback address (`Node.ip`) on the kubelet port, with a serving
certificate from the cluster CA carrying that IP as SAN. Requests are authenticated (bearer
token or client certificate from the cluster CA) and authorized against the cluster `Policy`
exactly as a kubelet in webhook mode does: 401 `Unauthorized` without valid credentials, 403
`Forbidden (user=..., verb=get, resource=nodes, subresource=metrics)` without the permission.

Bodies are rendered from the `ClusterModel` at the kubelet's latest housekeeping tick and
cached until the next tick (or until the node's pods change), so a scrape costs string
formatting of a pre-rendered template at most once per tick (`kubesim.kubeletbodies`).
Faults (`Node.fault`): `hang` accepts and never answers, `refuse` closes the listening socket,
`error` answers 500, `scrape_error` answers 200 with only the scrape-error gauge set to 1;
`garbage` and the body faults (`huge`, `huge_chunked`, `drip`, `reset`, `badvalues`) are
`kubesim.faults`.
"""

from __future__ import annotations

import logging
import ssl
from pathlib import Path

import trio

from . import faults
from .clock import SimClock
from .entities import Node
from .errors import ConfigError
from .httpserver import Request, Response, serve_listeners
from .kubeletbodies import PROM_CONTENT_TYPE, KubeletRenderer, scrape_error_body
from .model import ClusterModel
from .pki import CertificateAuthority
from .policy import METHOD_VERBS, Attributes, Policy, User

log = logging.getLogger(__name__)

_TEXT = [("Content-Type", "text/plain; charset=utf-8"), ("X-Content-Type-Options", "nosniff")]


def _text(status: int, body: str) -> Response:
    return Response(status, list(_TEXT), body.encode())


class Kubelet:
    """One node's kubelet endpoint: request handling (auth, faults, routing) on its renderer."""

    def __init__(self, model: ClusterModel, node: Node, policy: Policy, clock: SimClock) -> None:
        self.node = node
        self.renderer = KubeletRenderer(model, node)
        self._policy = policy
        self._clock = clock
        self.requests = 0
        self.fault_stats = faults.Stats()
        self._seen = trio.Event()

    async def wait_request(self) -> None:
        """Return after the next request reaches this kubelet (lets tests synchronise on a hang)."""
        await self._seen.wait()

    def _authenticate(self, request: Request) -> User | None:
        auth = request.header("authorization")
        if auth is not None:
            scheme, _, token = auth.partition(" ")
            if scheme.lower() != "bearer" or not token.strip():
                return None
            return self._policy.authenticate_token(token.strip())
        if request.peer.cert_common_name is not None:
            return Policy.user_from_certificate(
                request.peer.cert_common_name, request.peer.cert_organizations
            )
        return None  # a kubelet in webhook mode runs with anonymous auth off

    async def handle(self, request: Request) -> Response:
        self.requests += 1
        seen, self._seen = self._seen, trio.Event()
        seen.set()
        fault = self.node.fault
        if fault == "hang":
            return Response(0, hang=True)
        if fault == "garbage":
            return faults.garbage()
        user = self._authenticate(request)
        if user is None:
            return _text(401, "Unauthorized")
        path = request.path
        if path == "/stats" or path.startswith("/stats/"):
            sub = "stats"
        elif path == "/metrics" or path.startswith("/metrics/"):
            sub = "metrics"
        elif path == "/logs" or path.startswith("/logs/"):
            sub = "log"
        elif path == "/spec" or path.startswith("/spec/"):
            sub = "spec"
        else:
            sub = "proxy"
        verb = METHOD_VERBS.get(request.method, "")
        attrs = Attributes(
            user,
            verb,
            True,
            api_version="v1",
            resource="nodes",
            subresource=sub,
            name=self.node.name,
            path=path,
        )
        if not self._policy.authorize(attrs).allowed:
            return _text(403, f"Forbidden (user={user.name}, verb={verb}, resource=nodes, subresource={sub})")
        if request.method != "GET":
            return _text(405, "405: Method Not Allowed")
        now = self._clock.now_ns()
        fmt = self.node.kubelet_format
        if path == "/metrics/resource":
            if fault == "error":
                return _text(
                    500,
                    "An error has occurred while serving metrics:\n\n"
                    'collected metric "node_cpu_usage_seconds_total" was collected before with the same '
                    f"name and label values (simulated fault on {self.node.name})\n",
                )
            body = (
                scrape_error_body(fmt, 1).encode()
                if fault == "scrape_error"
                else self.renderer.metrics_resource(now)
            )
            if fault in faults.BODY_FAULTS:
                return faults.body_fault(fault, PROM_CONTENT_TYPE, body, self.fault_stats)
            return Response(200, [("Content-Type", PROM_CONTENT_TYPE)], body)
        if path == "/stats/summary":
            if fault in ("error", "scrape_error"):
                return _text(
                    500, f"Internal Error: failed to get node info: simulated fault on {self.node.name}"
                )
            only = request.param("only_cpu_and_memory") == "true"
            body = self.renderer.summary(now, only)
            if fault in faults.BODY_FAULTS:
                return faults.body_fault(fault, "application/json", body, self.fault_stats)
            return Response(200, [("Content-Type", "application/json")], body)
        if path == "/healthz":
            return _text(200, "ok")
        return _text(404, "404 page not found\n")


Listeners = dict[str, list[trio.SocketListener]]


async def reserve_port(ips: list[str], attempts: int = 20) -> tuple[int, Listeners]:
    """A port free on every address in `ips`, with a listener already bound on each (by address).

    For a kubelet port of 0: simulated clusters (tests, a running `simulate`) side by side never
    collide. The first address picks an ephemeral port; the others must bind the same one, else
    all are closed and another port is tried. Raises `ConfigError` after `attempts` tries."""
    last: OSError | None = None
    for _ in range(attempts):
        bound: Listeners = {}
        try:
            bound[ips[0]] = await trio.open_tcp_listeners(0, host=ips[0])
            port: int = bound[ips[0]][0].socket.getsockname()[1]
            for ip in ips[1:]:
                bound[ip] = await trio.open_tcp_listeners(port, host=ip)
        except OSError as exc:
            last = exc
            for listeners in bound.values():
                for listener in listeners:
                    await listener.aclose()
            continue
        return port, bound
    raise ConfigError(f"no kubelet port is free on all {len(ips)} node addresses: {last}")


class KubeletFleet:
    """All kubelets of a cluster; `run` binds every node's listener, then serves until cancelled."""

    def __init__(
        self,
        model: ClusterModel,
        policy: Policy,
        ca: CertificateAuthority,
        cert_dir: Path,
        clock: SimClock,
        port: int,
        reserved: Listeners | None = None,
    ) -> None:
        """`reserved`: listeners already bound on `port` by node address (`reserve_port`)."""
        self.model = model
        self._policy = policy
        self._ca = ca
        self._cert_dir = cert_dir
        self._clock = clock
        self.port = port
        self.kubelets: dict[str, Kubelet] = {}
        self._contexts: dict[str, ssl.SSLContext] = {}
        self._reserved: dict[str, list[trio.SocketListener]] = dict(reserved or {})

    def _ssl_context(self, node: Node) -> ssl.SSLContext:
        ctx = self._contexts.get(node.name)
        if ctx is None:
            path = self._cert_dir / f"{node.name}.pem"
            if not path.exists():
                pair = self._ca.issue(node.name, ip_sans=[node.ip], dns_sans=[node.name], server=True)
                path.write_bytes(pair.cert_pem + pair.key_pem)
                path.chmod(0o600)
            ctx = ssl.SSLContext(
                ssl.PROTOCOL_TLS_SERVER
            )  # no system CA store: it costs ~1 MB and 15 ms per context
            ctx.minimum_version = ssl.TLSVersion.TLSv1_2
            ctx.load_cert_chain(path)
            # Client certificates are optional (bearer tokens are the common case) but verified when sent.
            ctx.load_verify_locations(cadata=self._ca.cert_pem.decode())
            ctx.verify_mode = ssl.CERT_OPTIONAL
            ctx.set_alpn_protocols(["http/1.1"])
            self._contexts[node.name] = ctx
        return ctx

    def kubelet(self, node_name: str) -> Kubelet:
        k = self.kubelets.get(node_name)
        if k is None:
            k = Kubelet(self.model, self.model.node(node_name), self._policy, self._clock)
            self.kubelets[node_name] = k
        return k

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        async with trio.open_nursery() as nursery:
            for node in list(self.model.nodes.values()):
                await nursery.start(self._serve_node, node.name)
            task_status.started()

    async def _serve_node(
        self, name: str, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED
    ) -> None:
        """Serve one node, closing and reopening its listener as `refuse` faults come and go."""
        kubelet = self.kubelet(name)
        node = kubelet.node
        ctx = self._ssl_context(node)
        started = False
        while True:
            if node.fault == "refuse":
                if not started:
                    task_status.started()
                    started = True
                await node.fault_changed.wait()
                continue
            try:
                listeners = self._reserved.pop(node.ip, None) or await trio.open_tcp_listeners(
                    self.port, host=node.ip
                )
            except OSError as exc:
                raise ConfigError(f"kubelet of {name} cannot listen on {node.ip}:{self.port}: {exc}") from exc
            with trio.CancelScope() as scope:
                async with trio.open_nursery() as nursery:
                    await nursery.start(serve_listeners, listeners, kubelet.handle, ctx)
                    if not started:
                        task_status.started()
                        started = True

                    async def stop_on_refuse() -> None:
                        while node.fault != "refuse":
                            await node.fault_changed.wait()
                        scope.cancel()  # closes the listener and every open connection

                    nursery.start_soon(stop_on_refuse)
