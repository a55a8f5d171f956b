"""Helpers for the simulator tests: HTTPS clients and a fake metrics backend (imported as `simhelpers`)."""

from __future__ import annotations

import ssl
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import trio
import trustme

from kubesim import SimCluster
from kubesim.httpserver import Request, Response, serve_listeners

# Distinct from the `python -m kubesim` default (127.1) so a running dev cluster does not collide.
TEST_PREFIX = (127, 77)
START_NS = 1_750_000_000_000_000_000  # a fixed simulated epoch keeps timestamps exact in assertions


def cluster_client(cluster: SimCluster, *, token: str | None = None, cert: bool = False) -> httpx.AsyncClient:
    """An HTTPS client that trusts the cluster CA (kubelets and apiserver certs chain to it)."""
    ctx = ssl.create_default_context(cafile=str(cluster.paths.ca_cert))
    if cert:
        ctx.load_cert_chain(cluster.paths.admin_cert, cluster.paths.admin_key)
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.AsyncClient(verify=ctx, headers=headers)


@dataclass
class FakeMetricsServer:
    """An HTTPS backend standing in for the metrics server: records what the aggregator sends.

    It requests client certificates and verifies them against the front-proxy CA, like a real
    aggregated server's request-header authenticator.
    """

    url: str = ""
    requests: list[Request] = field(default_factory=list)
    responses: dict[str, Any] = field(default_factory=dict)
    typed: dict[str, tuple[str, bytes]] = field(default_factory=dict)
    """Path -> (Content-Type, body), for answers that are not plain JSON."""

    async def handle(self, request: Request) -> Response:
        self.requests.append(request)
        if request.path in self.typed:
            content_type, body = self.typed[request.path]
            return Response(200, [("Content-Type", content_type)], body)
        if request.path in self.responses:
            return Response(
                200, [("Content-Type", "application/json")], orjson.dumps(self.responses[request.path])
            )
        echo = {
            "path": request.path,
            "query": request.raw_query,
            "headers": [[k.decode(), v.decode()] for k, v in request.headers],
            "cn": request.peer.cert_common_name,
        }
        return Response(200, [("Content-Type", "application/json")], orjson.dumps(echo))


async def start_fake_metrics_server(
    nursery: trio.Nursery, front_proxy_ca: Path, host: str = "127.0.0.1"
) -> FakeMetricsServer:
    ca = trustme.CA()
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert(host).configure_cert(ctx)
    ctx.load_verify_locations(cafile=str(front_proxy_ca))
    ctx.verify_mode = ssl.CERT_OPTIONAL
    backend = FakeMetricsServer()
    listeners = await trio.open_tcp_listeners(0, host=host)
    backend.url = f"https://{host}:{listeners[0].socket.getsockname()[1]}"
    await nursery.start(serve_listeners, listeners, backend.handle, ctx)
    return backend
