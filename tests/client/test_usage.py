"""The typed layer (k8s_metrics.usage) against a real HTTPS server serving metrics-server's exact JSON:
values, selectors, sync / trio / asyncio forms, and the exception hierarchy."""

from __future__ import annotations

import asyncio
import datetime
import json
import socket
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
import sniffio
import trio
from usage_cluster import (
    API_RESOURCE_LIST,
    NODE_METRICS_LIST,
    V1BETA1,
    deep,
    pod_metrics_list,
    serve_cluster,
    sim_metrics,
)

import k8s_metrics
from k8s_metrics import (
    ApiError,
    AsyncMetrics,
    BadRequest,
    Conflict,
    ContainerUsage,
    Forbidden,
    Invalid,
    Metrics,
    MetricsError,
    NodeUsage,
    NotFound,
    PodUsage,
    ResponseError,
    ServiceUnavailable,
    TransportError,
    Unauthorized,
    load_kubeconfig,
    metrics_client,
    open_async_metrics,
    open_metrics,
)
from kubesim import SimCluster

if TYPE_CHECKING:
    from conftest import FakeApiServer

UTC = datetime.UTC
WriteKubeconfig = Callable[..., Path]
MODES = ("sync", "trio", "asyncio")


@pytest.fixture
def kubeconfig(api_server: FakeApiServer, write_kubeconfig: WriteKubeconfig, tmp_path: Path) -> Path:
    serve_cluster(api_server)
    return write_kubeconfig(
        tmp_path / "kubeconfig", server_url=api_server.url, ca_pem=api_server.ca_pem, token=api_server.token
    )


async def call(
    mode: str, kubeconfig: Path, method: str, *args: Any, cpu: type = Decimal, **kwargs: Any
) -> Any:
    """Open a client in ``mode`` (sync in a worker thread, async under trio, or asyncio in a worker thread),
    call ``method`` and return its result (or raise its exception)."""
    if mode == "sync":

        def run_sync() -> Any:
            with open_metrics(kubeconfig=kubeconfig, cpu=cpu) as metrics:
                assert isinstance(metrics, Metrics)
                return getattr(metrics, method)(*args, **kwargs)

        return await trio.to_thread.run_sync(run_sync)

    async def run_async(library: str) -> Any:
        assert sniffio.current_async_library() == library
        async with open_async_metrics(kubeconfig=kubeconfig, cpu=cpu) as metrics:
            assert isinstance(metrics, AsyncMetrics)
            return await getattr(metrics, method)(*args, **kwargs)

    if mode == "trio":
        return await run_async("trio")
    return await trio.to_thread.run_sync(lambda: asyncio.run(run_async("asyncio")))


def ts(text: str) -> datetime.datetime:
    return datetime.datetime.fromisoformat(text)


NODE_A = NodeUsage(
    name="node-a",
    labels={"pool": "blue"},
    timestamp=datetime.datetime(2026, 4, 25, 17, 20, 42, tzinfo=UTC),
    window=datetime.timedelta(seconds=15, milliseconds=12),
    cpu=Decimal("0.137491625"),
    cpu_nanocores=137491625,
    memory=1612836 * 1024,
)
WEB_1 = PodUsage(
    namespace="default",
    name="web-1",
    labels={"app": "web"},
    timestamp=datetime.datetime(2026, 4, 25, 17, 20, 40, tzinfo=UTC),
    window=datetime.timedelta(seconds=15, milliseconds=4),
    containers=(
        ContainerUsage("nginx", Decimal("0.250"), 250_000_000, 64 * 2**20),
        ContainerUsage("log-shipper", Decimal("1E-9"), 1, 4096),
    ),
    cpu=Decimal("0.250000001"),
    cpu_nanocores=250_000_001,
    memory=64 * 2**20 + 4096,
)


# -- values


@pytest.mark.parametrize("mode", MODES)
async def test_nodes_are_typed_exact_numbers(mode: str, kubeconfig: Path, api_server: FakeApiServer) -> None:
    nodes = await call(mode, kubeconfig, "nodes")
    assert [n.name for n in nodes] == ["node-a", "node-b", "node-c", "node-ghost"]
    assert nodes[0] == NODE_A
    assert [(n.cpu, n.cpu_nanocores, n.cpu_millicores, n.memory) for n in nodes[1:]] == [
        (Decimal("1.500"), 1_500_000_000, 1500, 2048 * 2**20),
        (Decimal("1E-9"), 1, 1, 1_000_000),
        (Decimal(1), 10**9, 1000, 512 * 2**20),
    ]
    assert nodes[0].cpu_millicores == 138  # rounded up, as kubectl top prints it
    assert [n.window for n in nodes[1:3]] == [
        datetime.timedelta(seconds=60, milliseconds=729),
        datetime.timedelta(seconds=10),
    ]
    assert nodes[3].labels == {} and nodes[0].missing == frozenset()
    [seen] = api_server.requests
    assert (seen.method, seen.path, seen.query) == ("GET", f"{V1BETA1}/nodes", "")
    assert seen.headers["authorization"] == f"Bearer {api_server.token}"


@pytest.mark.parametrize("mode", MODES)
async def test_cpu_as_float(mode: str, kubeconfig: Path) -> None:
    node = await call(mode, kubeconfig, "node", "node-a", cpu=float)
    assert type(node.cpu) is float and node.cpu == 0.137491625
    assert (node.cpu_nanocores, node.memory) == (137491625, 1612836 * 1024)
    pod = await call(mode, kubeconfig, "pod", "default", "web-1", cpu=float)
    assert [c.cpu for c in pod.containers] == [0.25, 1e-9]
    assert pod.cpu == 0.250000001  # the exact sum, converted once
    assert all(type(v) is float for v in (pod.cpu, *(c.cpu for c in pod.containers)))


@pytest.mark.parametrize("mode", MODES)
async def test_pods_of_a_namespace(mode: str, kubeconfig: Path, api_server: FakeApiServer) -> None:
    pods = await call(mode, kubeconfig, "pods", "default")
    assert [p.name for p in pods] == ["web-0", "web-1"]
    assert pods[1] == WEB_1
    web_0 = pods[0]
    assert (web_0.cpu, web_0.cpu_millicores, web_0.memory) == (Decimal("0.012"), 12, 5 * 2**20 + 1_000_000)
    assert [(c.name, c.cpu, c.memory) for c in web_0.containers] == [
        ("nginx", Decimal("0.012"), 5 * 2**20),
        ("log-shipper", Decimal(0), 1_000_000),
    ]
    [seen] = api_server.requests
    assert (seen.path, seen.query) == (f"{V1BETA1}/namespaces/default/pods", "")


@pytest.mark.parametrize("mode", MODES)
async def test_pods_of_all_namespaces(mode: str, kubeconfig: Path, api_server: FakeApiServer) -> None:
    pods = await call(mode, kubeconfig, "pods")
    assert [(p.namespace, p.name) for p in pods] == [
        ("default", "web-0"),
        ("default", "web-1"),
        ("jobs", "batch-7"),
        ("kube-system", "coredns-558bd4d5db-4dpjz"),
        ("monitoring", "prometheus-k8s-0"),
    ]
    batch, prometheus = pods[2], pods[4]
    assert (batch.containers, batch.cpu, batch.cpu_nanocores, batch.memory) == ((), Decimal(0), 0, 0)
    assert not batch.has_metrics("cpu") and not batch.has_metrics("memory")  # the HPA counts it missing
    assert prometheus.cpu == Decimal("1.2035") and prometheus.cpu_millicores == 1204
    assert prometheus.memory == (1536 + 20 + 1024) * 2**20
    assert prometheus.has_metrics("cpu")
    assert [api_server.requests[0].path] == [f"{V1BETA1}/pods"]


@pytest.mark.parametrize("mode", MODES)
async def test_one_pod(mode: str, kubeconfig: Path, api_server: FakeApiServer) -> None:
    assert await call(mode, kubeconfig, "pod", "default", "web-1") == WEB_1
    assert api_server.requests[0].path == f"{V1BETA1}/namespaces/default/pods/web-1"


async def test_selectors_as_text_or_mapping(kubeconfig: Path, api_server: FakeApiServer) -> None:
    api_server.reply_json(f"{V1BETA1}/namespaces/shop/pods", 200, pod_metrics_list([]))
    async with open_async_metrics(kubeconfig=kubeconfig) as metrics:
        blue = await metrics.nodes(label_selector="pool=blue")
        assert [n.name for n in blue] == ["node-a", "node-b"]
        assert await metrics.nodes(label_selector={"pool": "blue"}) == blue
        none = await metrics.pods(
            "shop", label_selector={"tier": "front", "app": "web"}, field_selector="metadata.name=x"
        )
        assert none == []
        await metrics.nodes(field_selector={"metadata.name": "node-a"}, label_selector="")
    assert [r.query for r in api_server.requests] == [
        "labelSelector=pool%3Dblue",
        "labelSelector=pool%3Dblue",
        "fieldSelector=metadata.name%3Dx&labelSelector=app%3Dweb%2Ctier%3Dfront",
        "fieldSelector=metadata.name%3Dnode-a",
    ]


async def test_missing_resources_read_zero_and_are_named(kubeconfig: Path, api_server: FakeApiServer) -> None:
    nodes = deep(NODE_METRICS_LIST)
    del nodes["items"][0]["usage"]["memory"]
    api_server.reply_json(f"{V1BETA1}/nodes", 200, nodes)
    pods = pod_metrics_list(
        [
            {
                "metadata": {"name": "p", "namespace": "x", "creationTimestamp": "2026-04-25T17:20:57Z"},
                "timestamp": "2026-04-25T17:20:40Z",
                "window": "1m0s",
                "containers": [
                    {"name": "a", "usage": {"cpu": "5m", "memory": "1Ki"}},
                    {"name": "b", "usage": {"memory": "1Ki"}},
                ],
            }
        ]
    )
    api_server.reply_json(f"{V1BETA1}/namespaces/x/pods", 200, pods)
    async with open_async_metrics(kubeconfig=kubeconfig) as metrics:
        node = (await metrics.nodes())[0]
        [pod] = await metrics.pods("x")
    assert (node.memory, node.missing, node.cpu_millicores) == (0, frozenset({"memory"}), 138)
    assert [c.missing for c in pod.containers] == [frozenset(), frozenset({"cpu"})]
    assert (pod.cpu, pod.memory, pod.window) == (Decimal("0.005"), 2048, datetime.timedelta(minutes=1))
    assert pod.has_metrics("memory") and not pod.has_metrics("cpu")


def test_default_namespace_comes_from_the_context(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "kubeconfig"
    document = {
        "clusters": [{"name": "c", "cluster": {"server": "https://127.0.0.21:1"}}],
        "users": [{"name": "u", "user": {"token": "t"}}],
        "contexts": [
            {"name": "team", "context": {"cluster": "c", "user": "u", "namespace": "team-a"}},
            {"name": "plain", "context": {"cluster": "c", "user": "u"}},
        ],
        "current-context": "team",
    }
    kubeconfig.write_text(json.dumps(document))
    with open_metrics(kubeconfig=kubeconfig) as metrics:
        assert metrics.default_namespace == "team-a" and metrics.cpu is Decimal
    with open_metrics(kubeconfig=kubeconfig, context="plain", cpu=float) as metrics:
        assert metrics.default_namespace == "default" and metrics.cpu is float
    with Metrics(metrics_client(load_kubeconfig(kubeconfig)), float) as metrics:
        assert metrics.default_namespace == "default"
    with pytest.raises(ValueError, match=r"cpu must be decimal\.Decimal or float, not <class 'int'>"):
        open_metrics(kubeconfig=kubeconfig, cpu=int)  # mypy accepts it: int is promoted to float
    with pytest.raises(ValueError, match="either a connection or kubeconfig/context"):
        open_metrics(load_kubeconfig(kubeconfig), context="plain")
    with pytest.raises(k8s_metrics.ConfigError, match="context 'nope' not found"):
        open_async_metrics(kubeconfig=kubeconfig, context="nope")


# -- errors


def status(code: int, reason: str, message: str, details: dict[str, Any] | None = None) -> dict[str, Any]:
    document: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
    }
    if details is not None:
        document["details"] = details
    document["code"] = code
    return document


NOT_FOUND = status(
    404,
    "NotFound",
    'podmetrics.metrics.k8s.io "default/web-9" not found',
    {"name": "default/web-9", "group": "metrics.k8s.io", "kind": "podmetrics"},
)
FORBIDDEN = status(
    403,
    "Forbidden",
    'nodes.metrics.k8s.io is forbidden: User "jane" cannot list resource "nodes" in API group '
    '"metrics.k8s.io" at the cluster scope',
    {"group": "metrics.k8s.io", "kind": "nodes"},
)


@pytest.mark.parametrize("mode", MODES)
async def test_not_found_carries_the_status(mode: str, kubeconfig: Path, api_server: FakeApiServer) -> None:
    api_server.reply_json(f"{V1BETA1}/namespaces/default/pods/web-9", 404, NOT_FOUND)
    with pytest.raises(NotFound) as caught:
        await call(mode, kubeconfig, "pod", "default", "web-9")
    error = caught.value
    assert isinstance(error, ApiError) and isinstance(error, MetricsError)
    assert (error.code, error.reason, error.message) == (404, "NotFound", NOT_FOUND["message"])
    assert error.status.to_dict() == NOT_FOUND
    assert str(error) == 'NotFound (404): podmetrics.metrics.k8s.io "default/web-9" not found'


@pytest.mark.parametrize("mode", MODES)
async def test_plain_text_503_of_the_aggregator(
    mode: str, kubeconfig: Path, api_server: FakeApiServer
) -> None:
    api_server.reply(
        f"{V1BETA1}/nodes", 503, b"service unavailable\n", content_type="text/plain; charset=utf-8"
    )
    with pytest.raises(ServiceUnavailable) as caught:
        await call(mode, kubeconfig, "nodes")
    error = caught.value
    assert (error.code, error.reason) == (503, "ServiceUnavailable")
    # client-go's wording for a non-Status body, with the resource asked for, as kubectl prints it
    assert error.message == "the server is currently unable to handle the request (get nodes.metrics.k8s.io)"
    assert error.status.message == "the server is currently unable to handle the request"
    assert error.status.details.causes[0].message == "service unavailable"  # type: ignore[union-attr, index]


async def test_plain_text_error_names_the_object(kubeconfig: Path, api_server: FakeApiServer) -> None:
    api_server.reply(f"{V1BETA1}/namespaces/default/pods/web-0", 503, b"no", content_type="text/plain")
    with pytest.raises(ServiceUnavailable, match=r"request \(get pods.metrics.k8s.io web-0\)$"):
        await call("trio", kubeconfig, "pod", "default", "web-0")


@pytest.mark.parametrize(
    ("code", "document", "error_type"),
    [
        (403, FORBIDDEN, Forbidden),
        (
            400,
            status(400, "BadRequest", "unable to parse requirement: found '=', expected: identifier"),
            BadRequest,
        ),
        (500, status(500, "InternalError", "failed listing pods: boom"), ApiError),
        (429, status(429, "TooManyRequests", "slow down"), ApiError),
        (409, status(409, "Conflict", "an undeclared status code"), Conflict),
        (422, status(422, "Invalid", "an undeclared status code"), Invalid),
        (410, status(410, "Gone", "an undeclared status code"), ApiError),
    ],
)
async def test_error_classes(
    code: int,
    document: dict[str, Any],
    error_type: type[ApiError],
    kubeconfig: Path,
    api_server: FakeApiServer,
) -> None:
    api_server.reply_json(f"{V1BETA1}/nodes", code, document)
    with pytest.raises(ApiError) as caught:
        await call("sync", kubeconfig, "nodes")
    assert type(caught.value) is error_type
    assert (caught.value.code, caught.value.reason, caught.value.message) == (
        code,
        document["reason"],
        document["message"],
    )


@pytest.mark.parametrize("mode", MODES)
async def test_unauthorized(
    mode: str, api_server: FakeApiServer, write_kubeconfig: WriteKubeconfig, tmp_path: Path
) -> None:
    kubeconfig = write_kubeconfig(
        tmp_path / "kubeconfig", server_url=api_server.url, ca_pem=api_server.ca_pem, token="wrong"
    )
    with pytest.raises(Unauthorized) as caught:
        await call(mode, kubeconfig, "nodes")
    assert (caught.value.code, caught.value.message) == (401, "Unauthorized")


@pytest.mark.parametrize(
    "body",
    [b"not json", b'{"kind":"NodeMetricsList","items":[{"metadata":{"name":"n"}}]}', b"[]"],
)
async def test_malformed_success_bodies(body: bytes, kubeconfig: Path, api_server: FakeApiServer) -> None:
    api_server.reply(f"{V1BETA1}/nodes", 200, body)
    with pytest.raises(ResponseError, match=r"^unexpected nodes\.metrics\.k8s\.io document: "):
        await call("trio", kubeconfig, "nodes")


async def test_invalid_quantity_is_a_response_error(kubeconfig: Path, api_server: FakeApiServer) -> None:
    nodes = deep(NODE_METRICS_LIST)
    nodes["items"][1]["usage"]["cpu"] = "1.5 cores"
    api_server.reply_json(f"{V1BETA1}/nodes", 200, nodes)
    with pytest.raises(ResponseError, match=r"invalid quantity '1\.5 cores'"):
        await call("trio", kubeconfig, "nodes")


@pytest.mark.parametrize("mode", MODES)
async def test_connection_refused(mode: str, write_kubeconfig: WriteKubeconfig, tmp_path: Path) -> None:
    with socket.socket() as sock:  # a port nobody listens on: bound, never listening
        sock.bind(("127.0.0.21", 0))
        port = sock.getsockname()[1]
        kubeconfig = write_kubeconfig(
            tmp_path / "kubeconfig", server_url=f"https://127.0.0.21:{port}", token="t"
        )
        with pytest.raises(TransportError, match=r"^ConnectError: ") as caught:
            await call(mode, kubeconfig, "nodes")
    assert caught.value.__cause__ is not None


async def test_get_json_reads_core_objects_and_maps_errors(
    kubeconfig: Path, api_server: FakeApiServer
) -> None:
    def run() -> tuple[Any, Any]:
        with open_metrics(kubeconfig=kubeconfig) as metrics:
            nodes = metrics.get_json("/api/v1/nodes", {"labelSelector": "pool=blue"})
            with pytest.raises(NotFound) as caught:
                metrics.get_json("/api/v1/namespaces/x/pods/y")
            return nodes, caught.value

    nodes, error = await trio.to_thread.run_sync(run)
    assert [n["metadata"]["name"] for n in nodes["items"]] == ["node-a", "node-b"]
    assert error.message == "the server could not find the requested resource"
    api_server.reply("/api/v1/nodes", 503, b"down", content_type="text/plain")
    api_server.reply("/apis/apps/v1/namespaces/shop/deployments/web", 200, b"<html>")
    async with open_async_metrics(kubeconfig=kubeconfig) as metrics:
        with pytest.raises(ServiceUnavailable, match=r"handle the request \(get nodes\)$"):
            await metrics.get_json("/api/v1/nodes")
        with pytest.raises(
            ResponseError, match=r"^GET /apis/apps/v1/namespaces/shop/deployments/web: the body"
        ):
            await metrics.get_json("/apis/apps/v1/namespaces/shop/deployments/web")


# -- through the simulated cluster (sim/kubesim): its apiserver and kube-aggregator in front of the fake


async def test_through_the_simulated_cluster(
    tmp_path: Path, start_api_server: Callable[..., Awaitable[FakeApiServer]]
) -> None:
    state = tmp_path / "sim"
    async with SimCluster(nodes=2, pods_per_node=2, seed=3, state_dir=state, address_prefix=(127, 79)) as sim:
        async with open_async_metrics(kubeconfig=sim.paths.kubeconfig, context="admin") as metrics:
            with pytest.raises(ServiceUnavailable) as caught:  # no metrics server behind the aggregator yet
                await metrics.pods()
            assert caught.value.status.details.causes[0].message == "service unavailable"  # type: ignore[union-attr, index]

            backend = await start_api_server(token=None)
            nodes, pods = sim_metrics(sim)
            backend.reply_json(f"{V1BETA1}/nodes", 200, nodes)
            backend.reply_json(f"{V1BETA1}/pods", 200, pods)
            backend.reply_json(V1BETA1, 200, API_RESOURCE_LIST)
            sim.set_metrics_server_url(backend.url)
            await sim.aggregator.probe_once()
            assert sim.aggregator.available

            got_nodes = await metrics.nodes()
            got_pods = await metrics.pods()
            node_objects = await metrics.get_json("/api/v1/nodes")
        async with open_async_metrics(kubeconfig=sim.paths.kubeconfig, context="limited") as limited:
            with pytest.raises(Forbidden):  # the simulated RBAC: this user may read only its namespace
                await limited.nodes()
    assert [(n.name, n.cpu, n.memory) for n in got_nodes] == [
        (name, Decimal(250 * (i + 1)) / 1000, (i + 1) * 2**30) for i, name in enumerate(sim.node_names())
    ]
    assert [n["metadata"]["name"] for n in node_objects["items"]] == sim.node_names()
    expected = sorted(sim.pods(), key=lambda p: (p.namespace, p.name))
    assert [(p.namespace, p.name, [c.name for c in p.containers]) for p in got_pods] == [
        (p.namespace, p.name, [c.name for c in p.containers]) for p in expected
    ]
    for k, pod in enumerate(got_pods):
        assert [c.cpu_nanocores for c in pod.containers] == [
            (k + 1) * 7_000_000 + j * 1001 for j in range(len(pod.containers))
        ]
        assert pod.memory == sum((k + 1) * 9 * 2**20 + j * 4096 for j in range(len(pod.containers)))
    # the aggregator proxied our requests: no Authorization, the identity in X-Remote-User
    seen = [r for r in backend.requests if r.path == f"{V1BETA1}/pods"]
    assert seen and all("authorization" not in r.headers for r in seen)
    assert {r.headers["x-remote-user"] for r in seen} == {"kubernetes-admin"}
