"""``python -m k8s_metrics top`` side by side with the real kubectl, against the same HTTPS fake apiserver
(discovery, Metrics API, core nodes and pods): same stdout line for line, same stderr, same exit status.

The reference is the newest versioned kubectl beside the one on PATH (its header style is the default);
``--legacy-headers`` is compared with the newest kubectl before 1.32. Our command runs in-process (in a
worker thread: the server lives on the test's trio loop) and, for the three core tables, also as
``python -m k8s_metrics`` in a subprocess.
"""

from __future__ import annotations

import datetime
import io
import re
from collections.abc import AsyncIterator, Awaitable, Callable
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import trio
from top_kubectl import Run, newest_kubectl, run_kubectl, run_top, versioned_kubectls
from usage_cluster import (
    API_GROUP_LIST,
    API_RESOURCE_LIST,
    NODE_METRICS_LIST,
    V1BETA1,
    pod_metrics_list,
    serve_cluster,
    shop_pod,
    sim_metrics,
)

from k8s_metrics.tabwriter import tabwrite
from k8s_metrics.top import main, render_nodes
from k8s_metrics.usage import NodeUsage
from kubesim import SimCluster

if TYPE_CHECKING:
    from conftest import FakeApiServer

WriteKubeconfig = Callable[..., Path]
Setup = Callable[["FakeApiServer"], None]


def nothing(server: FakeApiServer) -> None:
    pass


def plain_503(server: FakeApiServer) -> None:
    server.reply(f"{V1BETA1}/nodes", 503, b"service unavailable\n", content_type="text/plain; charset=utf-8")


def forbidden(server: FakeApiServer) -> None:
    message = (
        'pods.metrics.k8s.io is forbidden: User "jane" cannot list resource "pods" in API group '
        '"metrics.k8s.io" in the namespace "kube-system"'
    )
    document = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": "Forbidden",
        "details": {"group": "metrics.k8s.io", "kind": "pods"},
        "code": 403,
    }
    server.reply_json(f"{V1BETA1}/namespaces/kube-system/pods", 403, document)


def pod_not_found(server: FakeApiServer) -> None:
    document = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'podmetrics.metrics.k8s.io "default/web-9" not found',
        "reason": "NotFound",
        "details": {"name": "default/web-9", "group": "metrics.k8s.io", "kind": "podmetrics"},
        "code": 404,
    }
    server.reply_json(f"{V1BETA1}/namespaces/default/pods/web-9", 404, document)


def discovery_error(code: int) -> Setup:
    def setup(server: FakeApiServer) -> None:
        if code == 503:
            server.reply("/apis", 503, b"service unavailable", content_type="text/plain")
        else:
            document = {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure"}
            server.reply_json("/apis", code, {**document, "message": "why", "reason": "Why", "code": code})

    return setup


def no_metrics_api(server: FakeApiServer) -> None:
    server.reply_json("/apis", 200, {**API_GROUP_LIST, "groups": []})


def no_node_metrics(server: FakeApiServer) -> None:
    server.reply_json(f"{V1BETA1}/nodes", 200, {**NODE_METRICS_LIST, "items": []})


def empty_namespace(server: FakeApiServer) -> None:
    server.reply_json(f"{V1BETA1}/namespaces/empty/pods", 200, pod_metrics_list([]))
    server.reply_json(
        "/api/v1/namespaces/empty/pods", 200, {"kind": "PodList", "apiVersion": "v1", "items": []}
    )


def young_pods(server: FakeApiServer) -> None:
    server.reply_json(f"{V1BETA1}/namespaces/new/pods", 200, pod_metrics_list([]))
    pod = shop_pod("fresh")
    pod["metadata"]["creationTimestamp"] = (datetime.datetime.now(datetime.UTC)).strftime(
        "%Y-%m-%dT%H:%M:%SZ"
    )
    server.reply_json(
        "/api/v1/namespaces/new/pods", 200, {"kind": "PodList", "apiVersion": "v1", "items": [pod]}
    )


def old_pods(server: FakeApiServer) -> None:
    server.reply_json(f"{V1BETA1}/namespaces/shop/pods", 200, pod_metrics_list([]))
    pods = {"kind": "PodList", "apiVersion": "v1", "items": [shop_pod("web-0"), shop_pod("web-1")]}
    server.reply_json("/api/v1/namespaces/shop/pods", 200, pods)


CASES: dict[str, tuple[tuple[str, ...], Setup]] = {
    "nodes": (("nodes",), nothing),
    "node-sorted-by-memory": (("node", "--sort-by=memory"), nothing),
    "node-sorted-by-cpu-no-headers": (("no", "--sort-by", "cpu", "--no-headers"), nothing),
    "nodes-by-label": (("nodes", "-l", "pool=blue"), nothing),
    "one-node": (("node", "node-a"), nothing),
    "nodes-capacity": (("nodes", "--show-capacity"), nothing),
    "pods-all-namespaces": (("pods", "-A"), nothing),
    "pods-containers": (("pods", "-A", "--containers"), nothing),
    "pods-containers-of-a-namespace": (("pod", "-n", "monitoring", "--containers"), nothing),
    "pods-sum": (("pods", "-A", "--sum"), nothing),
    "pods-sum-containers": (("pods", "--namespace=default", "--containers", "--sum"), nothing),
    "pods-sum-no-headers": (("pods", "-A", "--sum", "--no-headers"), nothing),
    "pods-sorted-by-cpu": (("po", "--all-namespaces", "--sort-by=cpu"), nothing),
    "containers-sorted-by-memory": (
        ("pods", "-n", "monitoring", "--containers", "--sort-by=memory"),
        nothing,
    ),
    "default-namespace": (("pods",), nothing),
    "one-pod": (("pod", "-n", "kube-system", "coredns-558bd4d5db-4dpjz"), nothing),
    "bad-sort": (("pods", "-A", "--sort-by=name"), nothing),
    "name-and-selector": (("nodes", "node-a", "-l", "pool=blue"), nothing),
    "pod-name-and-selector": (("pods", "web-0", "--field-selector", "metadata.name=web-0"), nothing),
    "bad-field-selector": (("pods", "--field-selector", "bad"), nothing),
    "node-not-found": (("node", "node-x"), nothing),
    "pod-not-found": (("pod", "web-9"), pod_not_found),
    "aggregator-503": (("nodes",), plain_503),
    "forbidden": (("pods", "-n", "kube-system"), forbidden),
    "no-metrics-api": (("pods", "-A"), no_metrics_api),
    "discovery-403": (("nodes",), discovery_error(403)),
    "discovery-500": (("nodes",), discovery_error(500)),
    "discovery-503": (("pods",), discovery_error(503)),
    "discovery-409": (("pods",), discovery_error(409)),
    "no-node-metrics": (("nodes",), no_node_metrics),
    "empty-namespace": (("pods", "-n", "empty"), empty_namespace),
    "young-pods": (("pods", "-n", "new"), young_pods),
    "old-pods": (("pods", "-n", "shop"), old_pods),
}


def in_process(kubeconfig: Path, *args: str) -> Run:
    out, err = io.StringIO(), io.StringIO()
    code = main(["top", *args, f"--kubeconfig={kubeconfig}"], out=out, err=err)
    return Run(code, out.getvalue(), err.getvalue())


def without_age(text: str) -> str:
    # The age is measured at run time, to the nanosecond: kubectl's and ours cannot agree.
    return re.sub(r"age: \S+$", "age: <age>", text, flags=re.M)


@pytest.fixture
def kubeconfig(api_server: FakeApiServer, write_kubeconfig: WriteKubeconfig, tmp_path: Path) -> Path:
    serve_cluster(api_server)
    return write_kubeconfig(
        tmp_path / "kubeconfig", server_url=api_server.url, ca_pem=api_server.ca_pem, token=api_server.token
    )


@pytest.mark.parametrize("case", CASES)
async def test_same_as_kubectl(
    case: str, kubeconfig: Path, api_server: FakeApiServer, tmp_path: Path
) -> None:
    args, setup = CASES[case]
    setup(api_server)
    _, kubectl = newest_kubectl()
    theirs = await run_kubectl(kubectl, kubeconfig, tmp_path, "top", *args)
    ours = await trio.to_thread.run_sync(in_process, kubeconfig, *args)
    assert ours.out.splitlines() == theirs.out.splitlines()
    assert (ours.code, ours.out, without_age(ours.err)) == (theirs.code, theirs.out, without_age(theirs.err))


async def test_the_expected_tables(kubeconfig: Path) -> None:
    """What both print, written out, so that a change in kubectl or in our code shows here."""
    nodes = await trio.to_thread.run_sync(in_process, kubeconfig, "nodes")
    assert nodes.out.splitlines() == [
        "NAME         CPU(cores)   CPU(%)      MEMORY(bytes)   MEMORY(%)   ",
        "node-a       138m         3%          1575Mi          20%         ",
        "node-b       1500m        37%         2048Mi          12%         ",
        "node-c       1m           0%          0Mi             0%          ",
        "node-ghost   1000m        512Mi       ",
        "node-d       <unknown>    <unknown>   <unknown>       <unknown>   ",
    ]
    pods = await trio.to_thread.run_sync(in_process, kubeconfig, "pods", "-A", "--sum")
    assert pods.out.splitlines() == [
        "NAMESPACE     NAME                       CPU(cores)   MEMORY(bytes)   ",
        "default       web-0                      12m          5Mi             ",
        "default       web-1                      251m         64Mi            ",
        "jobs          batch-7                    0m           0Mi             ",
        "kube-system   coredns-558bd4d5db-4dpjz   3m           11Mi            ",
        "monitoring    prometheus-k8s-0           1204m        2580Mi          ",
        "                                         ________     ________        ",
        "                                         1468m        2661Mi          ",
    ]
    assert (nodes.code, nodes.err, pods.code, pods.err) == (0, "", 0, "")


async def test_module_entry_point_matches_kubectl(kubeconfig: Path, tmp_path: Path) -> None:
    _, kubectl = newest_kubectl()
    cases = [("nodes",), ("pods", "-A"), ("pods", "-A", "--containers")]
    results: dict[int, tuple[Run, Run]] = {}

    async def compare(i: int, args: tuple[str, ...]) -> None:
        home = tmp_path / f"home-{i}"
        home.mkdir()
        results[i] = (
            await run_top(kubeconfig, *args),
            await run_kubectl(kubectl, kubeconfig, home, "top", *args),
        )

    async with trio.open_nursery() as nursery:
        for i, args in enumerate(cases):
            nursery.start_soon(compare, i, args)
    for i in range(len(cases)):
        ours, theirs = results[i]
        assert ours == theirs
        assert ours.code == 0 and len(ours.out.splitlines()) > 5


async def test_legacy_headers_match_older_kubectl(kubeconfig: Path, tmp_path: Path) -> None:
    binaries = versioned_kubectls()
    older = max(v for v in binaries if v < (1, 32))
    theirs = await run_kubectl(binaries[older], kubeconfig, tmp_path, "top", "node", "--sort-by=memory")
    ours = await trio.to_thread.run_sync(
        in_process, kubeconfig, "node", "--sort-by=memory", "--legacy-headers"
    )
    assert ours == theirs
    assert ours.out.startswith("NAME         CPU(cores)   CPU%        MEMORY(bytes)   MEMORY%   \n")


async def test_unauthorized_like_kubectl(
    api_server: FakeApiServer, write_kubeconfig: WriteKubeconfig, tmp_path: Path
) -> None:
    serve_cluster(api_server)
    kubeconfig = write_kubeconfig(
        tmp_path / "kc", server_url=api_server.url, ca_pem=api_server.ca_pem, token="x"
    )
    _, kubectl = newest_kubectl()
    theirs = await run_kubectl(kubectl, kubeconfig, tmp_path, "top", "pods")
    ours = await trio.to_thread.run_sync(in_process, kubeconfig, "pods")
    # kubectl fails at discovery, and reports discovery errors by status code alone
    why = "the server has asked for the client to provide credentials"
    assert ours == theirs == Run(1, "", f"error: You must be logged in to the server ({why})\n")


async def test_connection_and_config_errors(write_kubeconfig: WriteKubeconfig, tmp_path: Path) -> None:
    kubeconfig = write_kubeconfig(tmp_path / "kc", server_url="https://127.0.0.21:1", token="t")
    run = await trio.to_thread.run_sync(in_process, kubeconfig, "nodes")
    assert run.code == 1 and run.out == ""
    assert run.err.startswith("Unable to connect to the server: ConnectError: ")
    run = await trio.to_thread.run_sync(in_process, tmp_path / "missing", "nodes")
    assert run.code == 1 and run.err.startswith("error: ") and "missing" in run.err


# -- through the simulated cluster (sim/kubesim): its apiserver, its Nodes and its aggregator


@pytest.fixture
async def sim(tmp_path: Path) -> AsyncIterator[SimCluster]:
    async with SimCluster(
        nodes=3, pods_per_node=2, seed=11, state_dir=tmp_path / "sim", address_prefix=(127, 78)
    ) as c:
        yield c


async def test_through_the_simulated_aggregator(
    sim: SimCluster, start_api_server: Callable[..., Awaitable[FakeApiServer]], tmp_path: Path
) -> None:
    """No metrics server yet: the group is Stale in aggregated discovery; then a backend behind the
    aggregator: the
    tables, with the simulated Nodes' allocatable, equal kubectl's."""
    _, kubectl = newest_kubectl()
    kubeconfig = sim.paths.kubeconfig
    unavailable: list[tuple[str, ...]] = [("nodes",), ("pods", "-A")]
    for args in unavailable:
        theirs = await run_kubectl(kubectl, kubeconfig, tmp_path, "top", *args)
        ours = await trio.to_thread.run_sync(in_process, kubeconfig, *args)
        assert ours == theirs
    # kube-aggregator publishes the unavailable APIService as Stale in aggregated discovery.
    assert ours.err == "error: Metrics API not available\n"

    backend = await start_api_server(token=None)  # the aggregator authenticates with its proxy certificate
    nodes, pods = sim_metrics(sim)
    backend.reply_json(f"{V1BETA1}/nodes", 200, nodes)
    backend.reply_json(f"{V1BETA1}/pods", 200, pods)
    backend.reply_json(V1BETA1, 200, API_RESOURCE_LIST)  # what the availability probe asks for
    sim.set_metrics_server_url(backend.url)
    await sim.aggregator.probe_once()
    assert sim.aggregator.available
    available: list[tuple[str, ...]] = [("nodes",), ("pods", "-A", "--containers", "--sum")]
    for args in available:
        theirs = await run_kubectl(kubectl, kubeconfig, tmp_path, "top", *args)
        ours = await trio.to_thread.run_sync(in_process, kubeconfig, *args)
        assert ours == theirs
        assert ours.code == 0 and "<unknown>" not in ours.out
    assert len(ours.out.splitlines()) == 1 + sum(len(p.containers) for p in sim.pods()) + 2


# -- the pieces, exactly


def test_tabwriter_remembers_widths_across_blocks() -> None:
    # The third column has two blocks (line 2 has no cell there); the second is as wide as the first.
    text = "NAME\tLONG-HEADER\tLONGER-X\t\na\tb\t\nc\td\te\t\n"
    assert tabwrite(text).split("\n") == [
        "NAME   LONG-HEADER   LONGER-X   ",
        "a      b             ",
        "c      d             e          ",
        "",
    ]
    assert tabwrite("") == "" and tabwrite("no tabs\nat all") == "no tabs\nat all"


def node_usage(millicores: int, memory: int) -> NodeUsage[Decimal]:
    at = datetime.datetime(2026, 1, 1, tzinfo=datetime.UTC)
    cpu = Decimal(millicores) / 1000
    return NodeUsage("n", {}, at, datetime.timedelta(0), cpu, millicores * 10**6, memory)


def test_percentages_truncate_like_go() -> None:
    # float64(29) / float64(100) * 100 is 28.999999999999996 in Go and Python alike: kubectl prints 28%.
    allocatable = {"n": {"cpu": Decimal("0.1"), "memory": Decimal(3 * 2**20)}}
    text = render_nodes([node_usage(29, 2**20)], allocatable, no_headers=True)
    assert text == "n     29m   28%   1Mi   33%   \n"
    zero = render_nodes([node_usage(0, 0)], {"n": {"cpu": Decimal(0)}}, no_headers=True)  # zero allocatable
    assert zero == "n     0m    0%    0Mi   \n"
    assert render_nodes([], allocatable) == ""


async def test_malformed_core_objects_are_reported(kubeconfig: Path, api_server: FakeApiServer) -> None:
    api_server.reply_json("/api/v1/nodes", 200, {"kind": "NodeList", "items": [{"status": {}}]})
    run = await trio.to_thread.run_sync(in_process, kubeconfig, "nodes")
    assert run == Run(1, "", "error: unexpected response from the server: KeyError('metadata')\n")
