"""kubesim's deterministic mode (exact rates whichever samples are paired) and aggregated discovery."""

from __future__ import annotations

from itertools import combinations
from pathlib import Path

import orjson
import pytest
import trio
import trio.testing
from simhelpers import START_NS, cluster_client, start_fake_metrics_server
from test_kubelet import get, labels, parse

from kubesim import ADMIN_USER, METRICS_SERVER_USER, ConfigError, SimCluster
from kubesim.clock import NS_PER_MS, NS_PER_S
from kubesim.deterministic import EXACT_NANOCORES, Linear, aligned_ns, comparison_workload

V2 = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
V2BETA1 = "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"


def rate(c0: float, t0: int, c1: float, t1: int) -> int:
    """What metrics-server computes: uint64(seconds * 1e9) counters, floor((c1 - c0) / window)."""
    return int((int(c1 * 1e9) - int(c0 * 1e9)) / ((t1 - t0) / 1000))


async def test_deterministic_rates_are_exact_for_any_pair_of_samples(
    tmp_path: Path, mock_clock: trio.testing.MockClock
) -> None:
    async with SimCluster(
        nodes=5,
        pods_per_node=2,
        seed=3,
        state_dir=tmp_path / "state",
        address_prefix=(127, 79),
        start_epoch_ns=START_NS + 123 * NS_PER_MS,  # not on a whole second
        sample_interval_s=1.0,
        deterministic=True,
    ) as cluster:
        workload = comparison_workload(cluster)
        node = cluster.node_names()[0]
        sa = cluster.token(METRICS_SERVER_USER)
        samples = []
        mock_clock.jump(2.5)  # the workload's pods start on the next whole second, then are sampled
        for step in (1.3, 7.0, 2.2, 11.5):
            mock_clock.jump(step)
            samples.append(parse((await get(cluster, node, "/metrics/resource", sa)).text))
        for pod in [p for p in cluster.pods(node) if p.phase == "Running"]:
            for c in pod.containers:
                assert isinstance(c.profile, Linear)
                key = ("container_cpu_usage_seconds_total", labels(c.name, pod.namespace, pod.name))
                points = [(s[key][0], s[key][1]) for s in samples]
                assert all(ts is not None and ts % 1000 == 0 for _, ts in points)  # whole seconds
                for (c0, t0), (c1, t1) in combinations(points, 2):
                    assert t0 is not None and t1 is not None
                    assert rate(c0, t0, c1, t1) == c.profile.nanocores
                assert c.profile.nanocores % EXACT_NANOCORES == 0
        node_key = ("node_cpu_usage_seconds_total", "")
        node_points = [s[node_key] for s in samples]
        rates = {rate(c0, t0 or 0, c1, t1 or 0) for (c0, t0), (c1, t1) in combinations(node_points, 2)}
        assert len(rates) == 1  # one exact node rate too
        # The workload's cases.
        assert cluster.pods(workload.empty_node) == []
        assert cluster.model.node(workload.failing_node).fault == "error"
        assert cluster.model.pod(*workload.init_pod).init_containers == ("init-db", "init-cfg")
        assert cluster.model.pod(*workload.pending_pod).phase == "Pending"
        # Changes take effect on a whole second.
        cluster.restart_container(*workload.multi_pod, "app")
        started = cluster.model.pod(*workload.multi_pod).container("app").instance_start_ns
        assert started == aligned_ns(cluster.now_ns()) and started % NS_PER_S == 0


def test_deterministic_mode_needs_whole_second_sampling(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="whole seconds"):
        SimCluster(nodes=1, state_dir=tmp_path, sample_interval_s=0.5, deterministic=True)


async def test_aggregated_discovery_of_api_and_apis(cluster: SimCluster) -> None:
    async with cluster_client(cluster, token=cluster.token(ADMIN_USER)) as admin:
        core = await admin.get(cluster.api_url + "/api", headers={"Accept": f"{V2},application/json"})
        assert core.headers["content-type"] == V2
        item = core.json()["items"][0]
        assert "name" not in item["metadata"]
        pods = next(r for r in item["versions"][0]["resources"] if r["resource"] == "pods")
        assert pods == {
            "resource": "pods",
            "responseKind": {"group": "", "version": "v1", "kind": "Pod"},
            "scope": "Namespaced",
            "singularResource": "pod",
            "verbs": ["get", "list", "watch"],
            "shortNames": ["po"],
            "categories": ["all"],
        }
        again = await admin.get(
            cluster.api_url + "/api", headers={"Accept": V2, "If-None-Match": core.headers["etag"]}
        )
        assert (again.status_code, again.content, "content-type" in again.headers) == (304, b"", False)
        legacy = await admin.get(cluster.api_url + "/apis", headers={"Accept": f"application/json,{V2}"})
        assert legacy.json()["kind"] == "APIGroupList"
        # No metrics server: the APIService is published Stale, without resources.
        apis = await admin.get(cluster.api_url + "/apis", headers={"Accept": f"{V2BETA1},application/json"})
        assert apis.headers["content-type"] == V2BETA1
        metrics = next(i for i in apis.json()["items"] if i["metadata"]["name"] == "metrics.k8s.io")
        assert metrics["versions"] == [{"version": "v1beta1", "freshness": "Stale"}]


async def test_backend_discovery_passed_through_or_converted(cluster: SimCluster) -> None:
    document = {
        "kind": "APIGroupDiscoveryList",
        "apiVersion": "apidiscovery.k8s.io/v2",
        "metadata": {},
        "items": [
            {
                "metadata": {"name": "metrics.k8s.io", "creationTimestamp": None},
                "versions": [
                    {
                        "version": "v1beta1",
                        "resources": [{"resource": "nodes", "singularResource": "node", "verbs": ["get"]}],
                        "freshness": "Current",
                    }
                ],
            }
        ],
    }
    async with trio.open_nursery() as nursery:
        backend = await start_fake_metrics_server(nursery, cluster.paths.front_proxy_ca_cert)
        cluster.set_metrics_server_url(backend.url)
        await cluster.wait_apiservice_available()
        # The fake answers plain JSON: the aggregator converted its group-version document.
        assert cluster.aggregator.discovery.source == "legacy"

        backend.typed["/apis"] = (V2, orjson.dumps(document))
        await cluster.aggregator.probe_once()
        assert cluster.aggregator.discovery.source == "aggregated"
        async with cluster_client(cluster, token=cluster.token(ADMIN_USER)) as admin:
            apis = await admin.get(cluster.api_url + "/apis", headers={"Accept": V2})
        metrics = next(i for i in apis.json()["items"] if i["metadata"]["name"] == "metrics.k8s.io")
        assert metrics["versions"] == document["items"][0]["versions"]  # type: ignore[index]
        nursery.cancel_scope.cancel()
