"""Fixtures for the API tests: in-memory listers and snapshot, and the app behind Quart's test client."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import prometheus_client
import pytest
import trio
import yaml

from metrics_server.api.app import ApiOptions, create_app
from metrics_server.api.health import HealthChecks
from metrics_server.kube.objects import NodeInfo, PodInfo
from metrics_server.promtext import Stamps
from metrics_server.storage.snapshot import ContainerUsage, NodeUsage, PodUsage

NOW = 1745601657.25
"""The fixed clock: creationTimestamp 2025-04-25T17:20:57Z."""
NOW_TEXT = "2025-04-25T17:20:57Z"
TS = 1745601642_500_000_000
"""Sample time of the data: 2025-04-25T17:20:42Z."""
TS_TEXT = "2025-04-25T17:20:42Z"

SPEC_PATH = Path(__file__).resolve().parents[3] / "openapi" / "metrics.k8s.io-v1beta1.yaml"


def spec() -> dict[str, Any]:
    return yaml.safe_load(SPEC_PATH.read_text("utf-8"))  # type: ignore[no-any-return]


class FakeNodes:
    def __init__(self, nodes: Iterable[NodeInfo] = ()) -> None:
        self.items = {n.name: n for n in nodes}

    def get(self, name: str) -> NodeInfo | None:
        return self.items.get(name)

    def list(self) -> Iterable[NodeInfo]:
        return list(self.items.values())


class FakePods:
    def __init__(self, pods: Iterable[PodInfo] = ()) -> None:
        self.items = {(p.namespace, p.name): p for p in pods}

    def get(self, namespace: str, name: str) -> PodInfo | None:
        return self.items.get((namespace, name))

    def list(self, namespace: str | None = None) -> Iterable[PodInfo]:
        return [p for p in self.items.values() if namespace is None or p.namespace == namespace]


@dataclass
class FakeSnapshot:
    nodes: dict[str, NodeUsage] = field(default_factory=dict)
    pods: dict[tuple[str, str], PodUsage] = field(default_factory=dict)

    def node(self, name: str) -> NodeUsage | None:
        return self.nodes.get(name)

    def pod(self, namespace: str, name: str) -> PodUsage | None:
        return self.pods.get((namespace, name))


def node(name: str, labels: Mapping[str, str] | None = None) -> NodeInfo:
    return NodeInfo(name, f"uid-{name}", dict(labels or {}), (), 10250, None, True)


def pod(namespace: str, name: str, labels: Mapping[str, str] | None = None, node_name: str = "") -> PodInfo:
    return PodInfo(namespace, name, f"uid-{name}", dict(labels or {}), node_name)


@dataclass
class World:
    """The cluster the app sees; tests mutate it freely before requests."""

    nodes: FakeNodes
    pods: FakePods
    snapshot: FakeSnapshot
    freshness: list[float] = field(default_factory=list)
    """`now - timestamp` of every served object, in the order of the timestamps."""
    healthy: dict[str, str | None] = field(default_factory=dict)

    def observe_freshness(self, now_s: float, stamps: Stamps) -> None:
        values, running, _ = stamps
        for i, value in enumerate(values):
            self.freshness += [now_s - value] * (running[i] - (running[i - 1] if i else 0))


def default_world() -> World:
    nodes = FakeNodes(
        [
            node("node-b", {"kubernetes.io/hostname": "node-b", "tier": "2"}),
            node("node-a", {"kubernetes.io/os": "linux", "kubernetes.io/hostname": "node-a", "tier": "1"}),
            node("node-nometrics", {"tier": "3"}),
        ]
    )
    pods = FakePods(
        [
            pod(
                "kube-system",
                "coredns-1",
                {"k8s-app": "kube-dns", "pod-template-hash": "558bd4d5db"},
                "node-a",
            ),
            pod("default", "web-2", {"app": "web"}, "node-b"),
            pod("default", "web-1", {"app": "web"}, "node-a"),
            pod("default", "db-0", {}, "node-b"),
            pod("default", "pending-metrics", {"app": "web"}, "node-a"),
        ]
    )
    snapshot = FakeSnapshot(
        nodes={
            "node-a": NodeUsage(TS, 15_012_000_000, 168_064_370, 1_994_969_088),
            "node-b": NodeUsage(TS, 60_729_000_000, 2_000_000_000, 5 * 1024 * 1024, swap_bytes=1024),
        },
        pods={
            ("kube-system", "coredns-1"): PodUsage(
                TS, 14_997_000_000, (ContainerUsage("coredns", 2_460_574, 12_533_760),)
            ),
            ("default", "web-1"): PodUsage(
                TS,
                15_000_000_000,
                (
                    ContainerUsage("app", 5_000, 1_000_000, swap_bytes=2048),
                    ContainerUsage("sidecar", 12_000_000, 1024),
                ),
            ),
            ("default", "web-2"): PodUsage(TS, 1_000, (ContainerUsage("app", 0, 1000),)),
            ("default", "db-0"): PodUsage(TS, 30_000_000_000, ()),
            # metrics for a pod that is not in the pod cache (not Running): never served
            ("default", "ghost"): PodUsage(TS, 15_000_000_000, (ContainerUsage("c", 1, 1024),)),
        },
    )
    return World(nodes, pods, snapshot)


def make_app(
    world: World,
    options: ApiOptions | None = None,
    health: HealthChecks | None = None,
    registry: prometheus_client.CollectorRegistry | None = None,
) -> Any:
    if registry is None:
        registry = prometheus_client.CollectorRegistry()
        prometheus_client.Gauge("test_gauge", "A test gauge.", registry=registry).set(3)

    def check(name: str) -> Any:
        return lambda: world.healthy.get(name)

    if health is None:
        health = HealthChecks.standard(
            metric_collection_timely=check("metric-collection-timely"),
            metric_storage_ready=check("metric-storage-ready"),
            metric_informer_sync=check("metric-informer-sync"),
            metadata_informer_sync=check("metadata-informer-sync"),
            shutdown=check("shutdown"),
        )
    return create_app(
        nodes=world.nodes,
        pods=world.pods,
        snapshot=lambda: world.snapshot,
        health=health,
        registry=registry,
        options=options or ApiOptions(version={"major": "0", "minor": "1", "gitVersion": "v0.1.0"}),
        clock=lambda: NOW,
        observe_freshness=world.observe_freshness,
    )


@pytest.fixture
def world() -> World:
    return default_world()


@pytest.fixture
async def client(world: World) -> AsyncIterator[Any]:
    app = make_app(world)
    async with app.test_app() as test_app:
        yield test_app.test_client()


class Asgi:
    """Calls the app as an ASGI server (hypercorn) would, collecting the response messages.

    Quart's test client re-packs the body, so tests that care how the body is handed to the server
    (pieces, headers) use this; `messages` keeps the last response's ASGI messages.
    """

    def __init__(self, app: Any, scope: Mapping[str, Any] | None = None) -> None:
        """`scope`: extra scope keys for every request (e.g. `asgi.STREAMED_BODY`)."""
        self.app = app
        self.scope = dict(scope or {})
        self.messages: list[dict[str, Any]] = []

    async def get(self, path: str, query: str = "") -> tuple[int, bytes]:
        status, parts = await self.request(path, query)
        return status, b"".join(parts)

    async def request(self, path: str, query: str = "") -> tuple[int, list[bytes]]:
        """The status and the body messages' bytes, not joined."""
        scope = {
            "type": "http",
            "asgi": {"version": "3.0", "spec_version": "2.3"},
            "http_version": "1.1",
            "method": "GET",
            "scheme": "https",
            "path": path,
            "raw_path": path.encode(),
            "query_string": query.encode(),
            "root_path": "",
            "headers": [
                (b"host", b"127.0.0.1:4443"),
                (b"accept", b"application/json"),
                (b"user-agent", b"hpa"),
            ],
            "client": ("127.0.0.1", 50000),
            "server": ("127.0.0.1", 4443),
            "extensions": {},
            **self.scope,
        }
        sent = False

        async def receive() -> dict[str, Any]:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": b"", "more_body": False}
            await trio.sleep_forever()
            raise AssertionError("unreachable")

        status = 0
        parts: list[bytes] = []
        self.messages = []

        async def send(message: dict[str, Any]) -> None:
            nonlocal status
            self.messages.append(message)
            if message["type"] == "http.response.start":
                status = message["status"]
            elif message["type"] == "http.response.body":
                parts.append(message.get("body", b""))

        await self.app(scope, receive, send)
        return status, parts
