"""List+watch caches against the fake kube-apiserver: sync, resume, relist, errors, filters."""

from __future__ import annotations

import itertools
import logging
import random

import httpx
import pytest
import trio
import trio.testing
import trustme
from kubefake import Connection, FakeApiServer, Recorder, make_node, make_pod

from kubesim.responses import status_doc
from metrics_server.kube.backoff import Backoff
from metrics_server.kube.caches import KubeCaches, node_spec, pod_spec
from metrics_server.kube.connection import make_api_client
from metrics_server.kube.errors import OptionsError
from metrics_server.kube.informer import Informer, InformerConfig
from metrics_server.kube.nodes import NodeCache
from metrics_server.kube.objects import NodeAddress, NodeInfo, PodInfo
from metrics_server.kube.pods import PodCache

FAST = InformerConfig(backoff_initial=0.001, backoff_max=0.002)


def pod_names(cache: PodCache) -> list[tuple[str, str]]:
    return sorted((p.namespace, p.name) for p in cache.list())


async def start_pods(
    nursery: trio.Nursery, client: httpx.AsyncClient, config: InformerConfig = FAST, seed: int = 1
) -> tuple[Informer, PodCache, Recorder]:
    cache = PodCache()
    recorder = Recorder()
    informer = Informer(client, pod_spec(), cache, config, rng=random.Random(seed), observer=recorder)
    await nursery.start(informer.run)
    return informer, cache, recorder


async def test_paginated_list_then_watch_from_its_resource_version(
    fake: FakeApiServer, client: httpx.AsyncClient, nursery: trio.Nursery
) -> None:
    for i in range(5):
        fake.pods.put(make_pod("default", f"web-{i}", node=f"node-{i % 2}"))
    fake.pods.put(make_pod("default", "pending-0", phase="Pending"))
    list_rv = str(fake.rv)
    informer, cache, _ = await start_pods(nursery, client, InformerConfig(page_size=2))
    watch = await fake.pods.next_watch()

    assert informer.has_synced
    assert informer.resource_version == list_rv
    assert pod_names(cache) == [("default", f"web-{i}") for i in range(5)]
    assert cache.get("default", "web-3") == PodInfo(
        namespace="default", name="web-3", uid="uid-default-web-3", labels={"app": "web"}, node_name="node-1"
    )
    lists = [r for r in fake.requests if r.path == "/api/v1/pods" and "watch" not in r.query]
    assert [sorted(r.query) for r in lists] == [
        ["fieldSelector", "limit"],
        ["continue", "fieldSelector", "limit"],
        ["continue", "fieldSelector", "limit"],
    ]
    assert {r.query["limit"] for r in lists} == {"2"}
    assert {r.query["fieldSelector"] for r in lists} == {"status.phase=Running"}
    assert watch.params["resourceVersion"] == list_rv
    assert watch.params["allowWatchBookmarks"] == "true"
    assert watch.params["fieldSelector"] == "status.phase=Running"
    # client-go's spread: timeoutSeconds in [300, 600)
    assert watch.params["timeoutSeconds"] == str(int(300 * (1 + random.Random(1).random())))


async def test_watch_events_are_applied(
    fake: FakeApiServer, client: httpx.AsyncClient, nursery: trio.Nursery
) -> None:
    fake.pods.put(make_pod("a", "one"))
    _, cache, recorder = await start_pods(nursery, client)
    await fake.pods.next_watch()

    fake.pods.put(make_pod("b", "two", labels={"tier": "db"}))
    await recorder.wait_for("event", "ADDED")
    fake.pods.put(make_pod("b", "two", labels={"tier": "cache"}))
    await recorder.wait_for("event", "MODIFIED")
    fake.pods.remove("one", "a")
    event = await recorder.wait_for("event", "DELETED")

    assert pod_names(cache) == [("b", "two")]
    assert cache.list("b")[0].labels == {"tier": "cache"}
    assert cache.list("a") == ()
    assert cache.get("a", "one") is None
    assert len(cache) == 1
    assert event.resource_version == str(fake.rv)


async def test_dropped_watch_resumes_from_last_resource_version_without_relist(
    fake: FakeApiServer, client: httpx.AsyncClient, nursery: trio.Nursery
) -> None:
    informer, cache, recorder = await start_pods(nursery, client)
    first = await fake.pods.next_watch()
    rv_a = fake.pods.put(make_pod("default", "a"))
    await recorder.wait_for("event", "ADDED")

    first.drop()
    await recorder.wait_for("watch-ended", "dropped")
    rv_b = fake.pods.put(make_pod("default", "b"))  # happens while disconnected
    second = await fake.pods.next_watch()
    await recorder.wait_for("event", "ADDED")

    assert second.resource_version == str(rv_a)
    assert fake.pods.list_count == 1
    assert pod_names(cache) == [("default", "a"), ("default", "b")]
    assert informer.resource_version == str(rv_b)


@pytest.mark.parametrize("as_event", [True, False], ids=["error-event-410", "http-410"])
async def test_gone_relists(
    fake: FakeApiServer, client: httpx.AsyncClient, nursery: trio.Nursery, as_event: bool
) -> None:
    fake.pods.put(make_pod("default", "old"))
    _, cache, recorder = await start_pods(nursery, client)
    first = await fake.pods.next_watch()
    fake.pods.expired_as_event = as_event
    # The server ends the watch; while nobody watches, "old" goes away and "new" appears, and
    # the history is compacted past the informer's resourceVersion.
    first.close()
    await recorder.wait_for("watch-ended", "closed")
    fake.pods.remove("old", "default")
    fake.pods.put(make_pod("default", "new"))
    fake.pods.compact()

    expired = await fake.pods.next_watch()
    ended = await recorder.wait_for("watch-ended")
    listed = await recorder.wait_for("listed")
    third = await fake.pods.next_watch()

    assert expired.resource_version == first.resource_version
    assert ended.detail == "expired"
    assert fake.pods.list_count == 2
    assert pod_names(cache) == [("default", "new")]
    assert listed.resource_version == str(fake.rv)
    assert third.resource_version == str(fake.rv)


async def test_error_event_relists(
    fake: FakeApiServer, client: httpx.AsyncClient, nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    _, cache, recorder = await start_pods(nursery, client)
    watch = await fake.pods.next_watch()
    fake.pods.put(make_pod("default", "a"))
    await recorder.wait_for("event", "ADDED")

    watch.error(500, "InternalError", "etcd request timed out")
    ended = await recorder.wait_for("watch-ended")
    await recorder.wait_for("listed")

    assert ended.detail == "error"
    assert fake.pods.list_count == 2
    assert pod_names(cache) == [("default", "a")]
    assert "watch of pods ended: 500 InternalError: etcd request timed out; relisting" in caplog.text


async def test_bookmark_advances_resource_version(
    fake: FakeApiServer, client: httpx.AsyncClient, nursery: trio.Nursery
) -> None:
    informer, _, recorder = await start_pods(nursery, client)
    watch = await fake.pods.next_watch()

    watch.bookmark(12345)
    await recorder.wait_for("event", "BOOKMARK")
    assert informer.resource_version == "12345"

    watch.close()
    second = await fake.pods.next_watch()
    assert second.resource_version == "12345"
    assert fake.pods.list_count == 1


async def close_at_exit(server: FakeApiServer) -> None:
    try:
        await trio.sleep_forever()
    finally:
        server.close()


async def test_apiserver_down_at_start_keeps_retrying_then_syncs(
    ca: trustme.CA, autojump_clock: trio.testing.MockClock, nursery: trio.Nursery
) -> None:
    server = FakeApiServer(ca)
    await server.bind()  # bound but not listening: connections are refused
    nursery.start_soon(close_at_exit, server)
    server.nodes.put(make_node("node-1"))
    config = InformerConfig()  # default backoff: 0.8 s doubling to 30 s, jitter 0.5
    async with make_api_client(Connection(server.url, server.client_ssl_context())) as api:
        cache = NodeCache()
        recorder = Recorder()
        informer = Informer(api, node_spec(), cache, config, rng=random.Random(7), observer=recorder)
        await nursery.start(informer.run)

        failures = []
        for _ in range(8):
            await recorder.wait_for("list-failed")
            failures.append(trio.current_time())
        assert not informer.has_synced
        assert cache.list() == ()
        assert informer.last_error is not None
        assert informer.last_error.startswith("cannot list nodes: GET /api/v1/nodes: ConnectError")
        assert "Connection refused" in informer.last_error
        expected = Backoff(0.8, 30.0, rng=random.Random(7))
        gaps = [b - a for a, b in itertools.pairwise(failures)]
        assert gaps == pytest.approx([expected.next() for _ in gaps], abs=1e-6)

        server.start_listening(nursery)
        await informer.wait_synced()
        assert [n.name for n in cache.list()] == ["node-1"]
        nursery.cancel_scope.cancel()


async def test_forbidden_list_logs_missing_permission_then_recovers(
    fake: FakeApiServer, client: httpx.AsyncClient, nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    message = (
        'nodes is forbidden: User "system:serviceaccount:kube-system:metrics-server" '
        'cannot list resource "nodes" in API group "" at the cluster scope'
    )
    fake.nodes.fail_lists.append((403, status_doc(403, message)))
    fake.nodes.put(make_node("node-1"))
    recorder = Recorder()
    cache = NodeCache()
    informer = Informer(client, node_spec(), cache, FAST, observer=recorder)
    with caplog.at_level(logging.ERROR, logger="metrics_server.kube.informer"):
        await nursery.start(informer.run)
        failed = await recorder.wait_for("list-failed")
        assert not informer.has_synced
        await informer.wait_synced()

    expected = (
        f"cannot list nodes: forbidden: {message}; "
        'the server\'s service account needs "list" and "watch" on "nodes"'
    )
    assert failed.detail == expected
    assert [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR] == [
        f"{expected} (will retry)"
    ]
    assert informer.last_error is None


async def test_pod_leaving_running_disappears(
    fake: FakeApiServer, client: httpx.AsyncClient, nursery: trio.Nursery
) -> None:
    fake.pods.put(make_pod("default", "job-1"))
    fake.pods.put(make_pod("default", "job-2"))
    fake.pods.put(make_pod("default", "web-1"))
    _, cache, recorder = await start_pods(nursery, client)
    watch = await fake.pods.next_watch()

    # The apiserver turns "left the field selector" into DELETED (with the previous content).
    fake.pods.put(make_pod("default", "job-1", phase="Succeeded"))
    await recorder.wait_for("event", "DELETED")
    assert watch.sent[-1][0] == "DELETED"
    assert pod_names(cache) == [("default", "job-2"), ("default", "web-1")]

    # Defensively, a MODIFIED event that shows another phase removes the pod too.
    failed = make_pod("default", "job-2", phase="Failed")
    failed["metadata"]["resourceVersion"] = str(fake.next_rv())
    watch.event("MODIFIED", failed)
    await recorder.wait_for("event", "MODIFIED")
    assert pod_names(cache) == [("default", "web-1")]
    assert len(cache) == 1


async def test_node_selector_filters_list_and_watch(
    fake: FakeApiServer, client: httpx.AsyncClient, nursery: trio.Nursery
) -> None:
    fake.nodes.put(make_node("worker-1", labels={"role": "worker"}))
    fake.nodes.put(make_node("infra-1", labels={"role": "infra"}))
    recorder = Recorder()
    caches = KubeCaches(client, InformerConfig(node_selector="role=worker"), observer=recorder)
    await nursery.start(caches.run)
    await caches.wait_synced()
    watch = await fake.nodes.next_watch()
    if watch.params.get("labelSelector") is None:  # that was the pods' watch
        watch = await fake.nodes.next_watch()

    assert caches.has_synced and caches.pods_synced and caches.not_synced_reason() is None
    assert [n.name for n in caches.nodes.list()] == ["worker-1"]
    node_lists = [r for r in fake.requests if r.path == "/api/v1/nodes"]
    assert {r.query["labelSelector"] for r in node_lists} == {"role=worker"}

    fake.nodes.put(make_node("worker-1", labels={"role": "retired"}))
    await recorder.wait_for("event", "DELETED")
    assert caches.nodes.list() == ()
    assert caches.nodes.get("worker-1") is None


async def test_malformed_objects_are_skipped(
    fake: FakeApiServer, client: httpx.AsyncClient, nursery: trio.Nursery, caplog: pytest.LogCaptureFixture
) -> None:
    bad = make_pod("default", "bad")
    bad["metadata"]["labels"] = {"app": 5}
    fake.pods.put(bad)
    fake.pods.put(make_pod("default", "good"))
    _, cache, recorder = await start_pods(nursery, client)
    watch = await fake.pods.next_watch()
    watch.event("ADDED", {"metadata": {"name": "no-namespace", "resourceVersion": "999"}})
    event = await recorder.wait_for("event", "ADDED")

    assert pod_names(cache) == [("default", "good")]
    assert event.resource_version == "999"
    assert caplog.text.count("skipping malformed object in pods") == 2


async def test_node_info_extracted(
    fake: FakeApiServer, client: httpx.AsyncClient, nursery: trio.Nursery
) -> None:
    fake.nodes.put(make_node("n1", address="10.1.2.3", port=10255, metrics_path="/custom/metrics"))
    fake.nodes.put(make_node("n2", ready=False))
    cache = NodeCache()
    informer = Informer(client, node_spec(), cache, FAST)
    await nursery.start(informer.run)
    await informer.wait_synced()

    assert cache.get("n1") == NodeInfo(
        name="n1",
        uid="uid-n1",
        labels={"kubernetes.io/hostname": "n1"},
        addresses=(NodeAddress("InternalIP", "10.1.2.3"), NodeAddress("Hostname", "n1")),
        kubelet_port=10255,
        metrics_path="/custom/metrics",
        ready=True,
    )
    n2 = cache.get("n2")
    assert n2 is not None and not n2.ready and n2.metrics_path is None
    nursery.cancel_scope.cancel()


def test_node_selector_validation_names_the_flag() -> None:
    with pytest.raises(
        OptionsError, match=r"^--node-selector: unable to parse requirement: found 'us-east' expected: '\('"
    ):
        InformerConfig(node_selector="zone in us-east").validate()
    InformerConfig(node_selector="metrics-server-skip!=true,kubernetes.io/os=linux").validate()
