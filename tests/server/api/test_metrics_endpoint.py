"""`GET /metrics` serves `generate_latest(registry)` exactly, fresh after every change."""

from __future__ import annotations

from typing import Any

from conftest import World, make_app
from prometheus_client import CollectorRegistry, Gauge, generate_latest

from metrics_server.api.steps import STREAM_MESSAGE_BYTES
from metrics_server.promtext import one_stamp
from metrics_server.selfmetrics import SelfMetrics

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


async def read(client: Any) -> bytes:
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == CONTENT_TYPE
    body: bytes = await response.get_data()
    return body


async def test_metrics_body_is_generate_latest_and_follows_new_ticks(world: World) -> None:
    registry = CollectorRegistry(auto_describe=True)
    Gauge("before_gauge", "Registered before the self-metrics.", registry=registry).set(1)
    metrics = SelfMetrics(registry, 15)
    app = make_app(world, registry=registry)
    async with app.test_app() as test_app:
        client = test_app.test_client()
        first = await read(client)
        assert first == generate_latest(registry)
        assert first.index(b"before_gauge") < first.index(b"metrics_server_api_metric_freshness_seconds")
        for tick in range(3):
            for node in ("node-b", "node-a"):
                metrics.record_kubelet_request(
                    node, success=True, duration_s=0.01 * (tick + 1), now_unix_s=100.0 + tick
                )
            metrics.observe_tick_duration(1.0 + tick)
            body = await read(client)
            assert body == generate_latest(registry)
            text = body.decode()
            assert (
                f'metrics_server_kubelet_request_duration_seconds_count{{node="node-a"}} {tick + 1}.0' in text
            )
            assert f'metrics_server_kubelet_last_request_time_seconds{{node="node-b"}} {100.0 + tick}' in text
            assert f"metrics_server_manager_tick_duration_seconds_count {tick + 1}.0" in text
            assert await read(client) == body  # no change in between: the same bytes
        # serving objects moves the freshness histogram (rendered live, not cached)
        metrics.observe_freshness(0.0, one_stamp(-12.0))  # an age of 12 s
        assert b"metrics_server_api_metric_freshness_seconds_count 1.0" in await read(client)


async def test_a_large_body_is_sent_in_pieces_with_the_same_bytes(world: World) -> None:
    registry = CollectorRegistry(auto_describe=True)
    metrics = SelfMetrics(registry, 15)
    for i in range(6000):  # ~1.4 MB: more than one body message
        metrics.record_kubelet_request(f"node-{i:05d}", success=True, duration_s=0.01, now_unix_s=100.0)
    app = make_app(world, registry=registry)
    async with app.test_app() as test_app:
        response = await test_app.test_client().get("/metrics")
        body = await response.get_data()
    assert len(body) > STREAM_MESSAGE_BYTES
    assert body == generate_latest(registry)
    assert response.headers["Content-Length"] == str(len(body))
