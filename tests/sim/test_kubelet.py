"""Simulated kubelets over real HTTPS: auth, body formats, counters under a MockClock, faults."""

from __future__ import annotations

import json
import re
from pathlib import Path

import httpx
import pytest
import trio
import trio.testing
from simhelpers import cluster_client

from kubesim import LIMITED_USER, METRICS_SERVER_USER, MI, ConfigError, ContainerSpec, SimCluster, Steady
from kubesim.clock import NS_PER_MS

SAMPLES = Path(__file__).resolve().parents[1] / "data" / "kubelet-samples" / "resource"
_LINE = re.compile(r"^(?P<name>[a-z_]+)(?P<labels>\{[^}]*\})? (?P<value>\S+)(?: (?P<ts>-?\d+))?$")


def parse(body: str) -> dict[tuple[str, str], tuple[float, int | None]]:
    """{(metric, labels): (value, timestamp_ms)}; fails on any line it does not understand."""
    out: dict[tuple[str, str], tuple[float, int | None]] = {}
    for line in body.splitlines():
        if line.startswith("#"):
            continue
        m = _LINE.match(line)
        assert m, f"unparseable line {line!r}"
        key = (m["name"], m["labels"] or "")
        assert key not in out, f"duplicate series {key}"
        out[key] = (float(m["value"]), int(m["ts"]) if m["ts"] else None)
    return out


def labels(container: str, namespace: str, pod: str) -> str:
    return f'{{container="{container}",namespace="{namespace}",pod="{pod}"}}'


async def get(cluster: SimCluster, node: str, path: str, token: str | None) -> httpx.Response:
    async with cluster_client(cluster, token=token) as client:
        return await client.get(cluster.kubelet_url(node) + path)


async def test_kubelet_authentication_and_authorization(cluster: SimCluster) -> None:
    node = cluster.node_names()[0]
    r = await get(cluster, node, "/metrics/resource", None)
    assert (r.status_code, r.text) == (401, "Unauthorized")
    r = await get(cluster, node, "/metrics/resource", "not-a-token")
    assert (r.status_code, r.text) == (401, "Unauthorized")
    jane = cluster.token(LIMITED_USER)
    r = await get(cluster, node, "/metrics/resource", jane)
    assert (r.status_code, r.text) == (
        403,
        "Forbidden (user=jane, verb=get, resource=nodes, subresource=metrics)",
    )
    r = await get(cluster, node, "/stats/summary", jane)
    assert (r.status_code, r.text) == (
        403,
        "Forbidden (user=jane, verb=get, resource=nodes, subresource=stats)",
    )
    sa = cluster.token(METRICS_SERVER_USER)
    r = await get(cluster, node, "/metrics/resource", sa)
    assert r.status_code == 200
    assert r.headers["content-type"] == "text/plain; version=0.0.4; charset=utf-8"
    r = await get(cluster, node, "/pods", sa)  # nodes/proxy is not granted to the metrics server
    assert r.status_code == 403 and r.text.endswith("subresource=proxy)")


async def test_kubelet_accepts_client_certificate(cluster: SimCluster) -> None:
    async with cluster_client(cluster, cert=True) as client:  # CN kubernetes-admin, O system:masters
        r = await client.get(cluster.kubelet_url(cluster.node_names()[1]) + "/metrics/resource")
    assert r.status_code == 200


async def test_serving_certificate_has_the_node_ip_san(cluster: SimCluster) -> None:
    # cluster_client verifies hostnames: connecting by IP succeeds only with an IP SAN.
    node = cluster.node_names()[1]
    assert cluster.node_ip(node) == "127.77.0.2"
    r = await get(cluster, node, "/healthz", cluster.token(METRICS_SERVER_USER))
    assert r.status_code == 403  # authenticated over verified TLS, but no nodes/proxy


async def test_metrics_match_ground_truth(cluster: SimCluster) -> None:
    node_name = cluster.node_names()[0]
    r = await get(cluster, node_name, "/metrics/resource", cluster.token(METRICS_SERVER_USER))
    series = parse(r.text)
    node = cluster.model.node(node_name)
    pods = [p for p in cluster.pods(node_name) if p.phase == "Running"]
    assert len(pods) == 3
    for pod in pods:
        for c in pod.containers:
            cpu, ts = series[("container_cpu_usage_seconds_total", labels(c.name, pod.namespace, pod.name))]
            assert ts is not None
            assert cpu == c.counter_ns(ts * NS_PER_MS) / 1e9
            mem, mts = series[("container_memory_working_set_bytes", labels(c.name, pod.namespace, pod.name))]
            assert (mem, mts) == (float(c.profile.memory_bytes(ts * NS_PER_MS)), ts)
            start, sts = series[("container_start_time_seconds", labels(c.name, pod.namespace, pod.name))]
            assert (start, sts) == (c.instance_start_ns / 1e9, None)
        pod_cpu, pts = series[
            ("pod_cpu_usage_seconds_total", f'{{namespace="{pod.namespace}",pod="{pod.name}"}}')
        ]
        assert pts is not None and pod_cpu == pod.cpu_ns(pts * NS_PER_MS) / 1e9
    node_cpu, nts = series[("node_cpu_usage_seconds_total", "")]
    assert nts is not None and node_cpu == node.cpu_ns(nts * NS_PER_MS) / 1e9
    assert series[("resource_scrape_error", "")] == (0.0, None)
    # Families sorted by name, samples by label values, as a real kubelet writes them.
    names = [line.split()[2] for line in r.text.splitlines() if line.startswith("# HELP")]
    assert names == sorted(names)
    cpu_lines = [
        line for line in r.text.splitlines() if line.startswith("container_cpu_usage_seconds_total{")
    ]
    assert cpu_lines == sorted(cpu_lines)


async def test_cpu_counter_advances_with_time(
    cluster: SimCluster, mock_clock: trio.testing.MockClock
) -> None:
    node = cluster.node_names()[0]
    cluster.add_pod(
        node, "team-a", "steady", [ContainerSpec("app", Steady(0, millicores=250, memory=300 * MI))]
    )
    assert cluster.expected_cpu_millicores("team-a", "steady") == 250.0
    key = ("container_cpu_usage_seconds_total", labels("app", "team-a", "steady"))
    sa = cluster.token(METRICS_SERVER_USER)
    mock_clock.jump(10)  # next housekeeping tick: the new pod has been sampled
    first = parse((await get(cluster, node, "/metrics/resource", sa)).text)
    mock_clock.jump(15)
    second = parse((await get(cluster, node, "/metrics/resource", sa)).text)
    (v0, t0), (v1, t1) = first[key], second[key]
    assert t0 is not None and t1 is not None and t1 - t0 in (10_000, 20_000)
    assert round((v1 - v0) / ((t1 - t0) / 1000), 9) == 0.25  # 250m exactly
    assert cluster.expected_cpu_rate("team-a", "steady", "app", t0 * NS_PER_MS, t1 * NS_PER_MS) == 250.0
    assert second[("container_memory_working_set_bytes", labels("app", "team-a", "steady"))][0] == 300 * MI


async def test_body_is_cached_within_a_housekeeping_tick(cluster: SimCluster) -> None:
    node = cluster.node_names()[0]
    sa = cluster.token(METRICS_SERVER_USER)
    a = await get(cluster, node, "/metrics/resource", sa)
    renders = cluster.kubelets.kubelet(node).renderer.renders
    b = await get(cluster, node, "/metrics/resource", sa)
    assert a.content == b.content
    assert cluster.kubelets.kubelet(node).renderer.renders == renders == 1


async def test_restart_resets_container_counter(
    cluster: SimCluster, mock_clock: trio.testing.MockClock
) -> None:
    node = cluster.node_names()[1]
    cluster.add_pod(node, "default", "r", [ContainerSpec("c", Steady(0, millicores=500, memory=64 * MI))])
    sa = cluster.token(METRICS_SERVER_USER)
    mock_clock.jump(100)
    before = parse((await get(cluster, node, "/metrics/resource", sa)).text)
    cluster.restart_container("default", "r", "c")
    restart_ns = cluster.now_ns()
    mock_clock.jump(20)
    after = parse((await get(cluster, node, "/metrics/resource", sa)).text)
    key = labels("c", "default", "r")
    assert before[("container_cpu_usage_seconds_total", key)][0] > 40
    cpu, ts = after[("container_cpu_usage_seconds_total", key)]
    assert ts is not None and cpu == (ts * NS_PER_MS - restart_ns) * 500 // 1000 / 1e9
    assert after[("container_start_time_seconds", key)][0] == restart_ns / 1e9
    pod_key = '{namespace="default",pod="r"}'  # the pod cgroup keeps counting across the restart
    assert (
        after[("pod_cpu_usage_seconds_total", pod_key)][0]
        > before[("pod_cpu_usage_seconds_total", pod_key)][0]
    )
    assert cluster.model.pod("default", "r").containers[0].restarts == 1


async def test_pod_leaves_kubelet_when_it_stops_running(cluster: SimCluster) -> None:
    node = cluster.node_names()[0]
    pod = next(p for p in cluster.pods(node))
    sa = cluster.token(METRICS_SERVER_USER)
    before = (await get(cluster, node, "/metrics/resource", sa)).text
    assert f'pod="{pod.name}"' in before
    cluster.set_pod_phase(pod.namespace, pod.name, "Succeeded")
    after = (await get(cluster, node, "/metrics/resource", sa)).text
    assert f'pod="{pod.name}"' not in after


def _help_lines(text: str) -> set[str]:
    return {line for line in text.splitlines() if line.startswith("# ")}


async def test_kubelet_formats_match_real_captures(cluster: SimCluster) -> None:
    node = cluster.node_names()[0]
    sa = cluster.token(METRICS_SERVER_USER)
    stable = (await get(cluster, node, "/metrics/resource", sa)).text
    real_stable = _help_lines((SAMPLES / "ersilia-eks-2025-stable-no-scrape_error.txt").read_text())
    real_stable |= _help_lines((SAMPLES / "issue-kata-5391-kubeadm-v1.29-stable-excerpt.txt").read_text())
    assert _help_lines(stable) <= real_stable | _help_lines(
        (SAMPLES / "k8s-upstream-expected-scrape-error-1.txt").read_text()
    )
    assert "scrape_error 0" not in stable.replace("resource_scrape_error", "")

    cluster.set_kubelet_format(node, "1.21")
    old = (await get(cluster, node, "/metrics/resource", sa)).text
    assert _help_lines(old) == _help_lines((SAMPLES / "metrics-server-kind-v1.21-70pods.txt").read_text())
    assert "container_start_time_seconds" not in old and old.endswith("scrape_error 0\n")

    cluster.set_kubelet_format(node, "1.28")
    mid = parse((await get(cluster, node, "/metrics/resource", sa)).text)
    pod = cluster.pods(node)[0]
    c = pod.containers[0]
    value, ts = mid[("container_start_time_seconds", labels(c.name, pod.namespace, pod.name))]
    assert (value, ts) == (c.instance_start_ns / 1e9, c.instance_start_ns // NS_PER_MS)  # 1.22-1.28 quirk
    assert mid[("scrape_error", "")] == (0.0, None)
    node_obj = cluster.model.api_nodes.get("", node)
    assert node_obj is not None and b'"kubeletVersion":"v1.28.15"' in node_obj.body


async def test_stats_summary(cluster: SimCluster) -> None:
    node_name = cluster.node_names()[0]
    r = await get(cluster, node_name, "/stats/summary", cluster.token(METRICS_SERVER_USER))
    assert r.status_code == 200 and r.headers["content-type"] == "application/json"
    assert r.text.startswith('{\n "node": {\n  "nodeName"')  # one space per level, like the kubelet
    doc = json.loads(r.text)
    assert doc["node"]["nodeName"] == node_name
    pods = {(p["podRef"]["namespace"], p["podRef"]["name"]): p for p in doc["pods"]}
    for pod in cluster.pods(node_name):
        entry = pods[pod.key]
        assert entry["podRef"]["uid"] == pod.uid
        for c_doc, c in zip(entry["containers"], pod.containers, strict=True):
            assert c_doc["name"] == c.name
            assert c_doc["memory"]["workingSetBytes"] > 0
            assert c_doc["cpu"]["usageCoreNanoSeconds"] > 0
    only = await get(
        cluster, node_name, "/stats/summary?only_cpu_and_memory=true", cluster.token(METRICS_SERVER_USER)
    )
    slim = json.loads(only.text)
    assert "fs" not in slim["node"] and "network" not in slim["pods"][0]
    assert slim["pods"][0]["cpu"] == doc["pods"][0]["cpu"]


async def test_faults(cluster: SimCluster, mock_clock: trio.testing.MockClock) -> None:
    node = cluster.node_names()[0]
    sa = cluster.token(METRICS_SERVER_USER)
    cluster.set_fault(node, "error")
    r = await get(cluster, node, "/metrics/resource", sa)
    assert r.status_code == 500 and r.text.startswith("An error has occurred while serving metrics:")
    cluster.set_fault(node, "scrape_error")
    r = await get(cluster, node, "/metrics/resource", sa)
    assert r.status_code == 200 and parse(r.text) == {("resource_scrape_error", ""): (1.0, None)}
    cluster.set_fault(node, "refuse")
    await trio.testing.wait_all_tasks_blocked()
    with pytest.raises(httpx.ConnectError):
        await get(cluster, node, "/metrics/resource", sa)
    other = cluster.node_names()[1]  # one node's fault touches no other node
    assert (await get(cluster, other, "/metrics/resource", sa)).status_code == 200
    cluster.set_fault(node, "ok")
    await trio.testing.wait_all_tasks_blocked()
    assert (await get(cluster, node, "/metrics/resource", sa)).status_code == 200

    cluster.set_fault(node, "hang")
    kubelet = cluster.kubelets.kubelet(node)
    outcome: list[str] = []

    async def scrape() -> None:
        async with cluster_client(cluster, token=sa) as client:
            try:
                await client.get(cluster.kubelet_url(node) + "/metrics/resource", timeout=5)
            except httpx.ReadTimeout:
                outcome.append("timeout")

    async with trio.open_nursery() as nursery:
        nursery.start_soon(scrape)
        await kubelet.wait_request()
        await trio.testing.wait_all_tasks_blocked()
        mock_clock.jump(6)
    assert outcome == ["timeout"]
    cluster.set_fault(node, "ok")


async def test_unknown_fault_mode_is_refused(cluster: SimCluster) -> None:
    with pytest.raises(ConfigError, match="unknown fault mode 'sleep'"):
        cluster.set_fault(cluster.node_names()[0], "sleep")


async def test_state_dir_files(cluster: SimCluster) -> None:
    p = cluster.paths
    for path in (
        p.ca_cert,
        p.front_proxy_ca_cert,
        p.front_proxy_client_cert,
        p.front_proxy_client_key,
        p.kubeconfig,
        p.metrics_server_kubeconfig,
        p.kubelet_ca,
    ):
        assert path.is_file(), path
    assert cluster.metrics_server_args(secure_port=4443, cert_dir=p.root / "ms")[:5] == [
        f"--kubeconfig={p.metrics_server_kubeconfig}",
        f"--authentication-kubeconfig={p.metrics_server_kubeconfig}",
        f"--authorization-kubeconfig={p.metrics_server_kubeconfig}",
        f"--kubelet-certificate-authority={p.ca_cert}",
        "--kubelet-preferred-address-types=InternalIP",
    ]
