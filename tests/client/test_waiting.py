"""k8s_metrics.waiting and ``wait_until_available``: the backoff, which errors are worth waiting out, the
sample tracker behind ``watch_pods``, and waiting for the simulated cluster's Metrics API to come up
(kube-aggregator's 503 until a metrics server is behind it). ``watch_pods`` itself runs against a real
metrics server in tests/e2e/test_autoscaler.py."""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import Awaitable, Callable
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import trio
import trio.testing
from usage_cluster import API_RESOURCE_LIST, V1BETA1

from k8s_metrics import (
    Forbidden,
    NotFound,
    PodUsage,
    ServiceUnavailable,
    TransportError,
    Unauthorized,
    open_async_metrics,
    open_metrics,
)
from k8s_metrics.errors import BadRequest
from k8s_metrics.models import Status
from k8s_metrics.waiting import Backoff, SampleTracker, retryable
from kubesim import SimCluster

if TYPE_CHECKING:
    from conftest import FakeApiServer

UTC = datetime.UTC
T0 = datetime.datetime(2026, 4, 25, 17, 20, 42, tzinfo=UTC)
WriteKubeconfig = Callable[..., Path]


def test_backoff_doubles_up_to_the_cap_and_stops_at_the_deadline() -> None:
    backoff = Backoff(deadline=10.0)
    delays = [backoff.next_delay(now) for now in (0.0, 0.2, 0.6, 1.4, 3.0, 6.2, 9.0, 10.0)]
    assert delays == [0.2, 0.4, 0.8, 1.6, 3.2, 3.8, 1.0, None]  # 5 s would pass the deadline at 6.2
    endless = Backoff(deadline=None)
    assert [endless.next_delay(1e9) for _ in range(7)] == [0.2, 0.4, 0.8, 1.6, 3.2, 5.0, 5.0]


def status(code: int) -> Status:
    return Status.from_dict(
        {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure", "code": code}
    )


def test_what_waiting_can_cure() -> None:
    assert retryable(TransportError("ConnectError: refused"))
    assert retryable(ServiceUnavailable(status(503), "down"))
    assert retryable(NotFound(status(404), "the server could not find the requested resource"))
    assert all(retryable(ServiceUnavailable(status(code), "")) for code in (429, 500, 502, 504))
    assert not retryable(Unauthorized(status(401), "Unauthorized"))
    assert not retryable(Forbidden(status(403), "forbidden"))
    assert not retryable(BadRequest(status(400), "bad"))


def pod(name: str, at: datetime.datetime, window_s: float = 15.0, namespace: str = "ns") -> PodUsage[Decimal]:
    return PodUsage(namespace, name, {}, at, datetime.timedelta(seconds=window_s), (), Decimal(0), 0, 0)


def test_sample_tracker() -> None:
    tracker = SampleTracker()
    assert tracker.poll_interval() == 5.0  # no window known yet
    later = T0 + datetime.timedelta(seconds=15)
    a, b = pod("a", T0), pod("b", T0, window_s=10.0)
    assert tracker.new([a, b]) == [a, b]
    assert tracker.poll_interval() == 5.0  # half the smallest window
    assert tracker.new([a, b]) == []  # nothing new
    a2, c = pod("a", later), pod("c", later)
    assert tracker.new([a2, b, c]) == [a2, c]  # a newer sample, and a new pod
    assert tracker.new([b]) == []  # a and c are gone (forgotten) ...
    assert tracker.new([a2, b]) == [a2]  # ... so a is new when it comes back
    assert tracker.new([pod("a", later, namespace="other")]) == [pod("a", later, namespace="other")]
    tracker.new([pod("x", T0, window_s=0.5)])
    assert tracker.poll_interval() == 1.0  # at least a second
    tracker.new([pod("x", T0, window_s=600)])
    assert tracker.poll_interval() == 30.0  # at most 30 seconds
    assert SampleTracker(interval=0.25).poll_interval() == 0.25


async def test_waits_for_the_simulated_metrics_api_to_come_up(
    tmp_path: Path, start_api_server: Callable[..., Awaitable[FakeApiServer]]
) -> None:
    async with (
        SimCluster(
            nodes=1, pods_per_node=1, seed=3, state_dir=tmp_path / "sim", address_prefix=(127, 87)
        ) as sim,
        open_async_metrics(kubeconfig=sim.paths.kubeconfig) as metrics,
    ):
        with pytest.raises(ServiceUnavailable) as gave_up:  # kube-aggregator: no metrics server yet
            await metrics.wait_until_available(timeout=0.5)
        assert gave_up.value.message == "the server is currently unable to handle the request"

        backend = await start_api_server(token=None)
        backend.reply_json(V1BETA1, 200, API_RESOURCE_LIST)
        async with trio.open_nursery() as nursery:
            nursery.start_soon(metrics.wait_until_available)
            await trio.testing.wait_all_tasks_blocked(cushion=0.05)  # it has asked, and backs off
            assert backend.requests == []
            sim.set_metrics_server_url(backend.url)
            await sim.aggregator.probe_once()  # the APIService becomes Available
        # The waiter returned once the backend answered it (the aggregator's probes ask as themselves).
        proxied = [r.path for r in backend.requests if r.headers.get("x-remote-user") == "kubernetes-admin"]
        assert proxied == [V1BETA1]


@pytest.mark.parametrize("mode", ["sync", "asyncio"])
async def test_wait_until_available_in_other_forms(
    mode: str, api_server: FakeApiServer, write_kubeconfig: WriteKubeconfig, tmp_path: Path
) -> None:
    kubeconfig = write_kubeconfig(
        tmp_path / "config", server_url=api_server.url, ca_pem=api_server.ca_pem, token=api_server.token
    )
    revoked = write_kubeconfig(
        tmp_path / "revoked", server_url=api_server.url, ca_pem=api_server.ca_pem, token="revoked"
    )
    api_server.reply(V1BETA1, 503, b"service unavailable\n", "text/plain")

    def wait(config: Path, timeout: float) -> None:
        if mode == "sync":
            with open_metrics(kubeconfig=config) as metrics:
                metrics.wait_until_available(timeout=timeout)
            return

        async def in_asyncio() -> None:
            async with open_async_metrics(kubeconfig=config) as metrics:
                await metrics.wait_until_available(timeout=timeout)

        asyncio.run(in_asyncio())

    with pytest.raises(ServiceUnavailable):
        await trio.to_thread.run_sync(wait, kubeconfig, 0.3)
    assert len(api_server.requests) >= 2  # asked again after backing off
    api_server.requests.clear()
    with pytest.raises(Unauthorized):  # not worth waiting for: raised at once
        await trio.to_thread.run_sync(wait, revoked, 60.0)
    assert len(api_server.requests) == 1
    api_server.reply_json(V1BETA1, 200, API_RESOURCE_LIST)
    await trio.to_thread.run_sync(wait, kubeconfig, 60.0)
