"""Real kubectl against the simulated apiserver (and the aggregator, with a fake metrics backend)."""

from __future__ import annotations

import math
import os
import shutil
from pathlib import Path

import pytest
import trio
from simhelpers import start_fake_metrics_server

from kubesim import MI, ContainerSpec, SimCluster, Steady

KUBECTL = shutil.which("kubectl")
pytestmark = pytest.mark.e2e


async def kubectl(cluster: SimCluster, tmp_path: Path, *args: str) -> tuple[int, str, str]:
    assert KUBECTL is not None, "kubectl must be on PATH for these tests"
    env = {**os.environ, "HOME": str(tmp_path)}
    cmd = [KUBECTL, f"--kubeconfig={cluster.paths.kubeconfig}", f"--cache-dir={tmp_path / 'cache'}", *args]
    result = await trio.run_process(cmd, capture_stdout=True, capture_stderr=True, check=False, env=env)
    return result.returncode, result.stdout.decode(), result.stderr.decode()


async def test_kubectl_get(cluster: SimCluster, tmp_path: Path) -> None:
    code, out, err = await kubectl(cluster, tmp_path, "get", "nodes")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].split() == ["NAME", "STATUS", "ROLES", "AGE", "VERSION"]
    assert [line.split()[:2] for line in lines[1:]] == [[n, "Ready"] for n in cluster.node_names()]
    code, out, err = await kubectl(cluster, tmp_path, "get", "--raw", "/api/v1/nodes")
    assert code == 0 and '"kind":"NodeList"' in out
    code, out, err = await kubectl(
        cluster, tmp_path, "--context", "admin-cert", "get", "pods", "-A", "-o", "name"
    )
    assert code == 0, err
    assert sorted(out.split()) == sorted(f"pod/{p.name}" for p in cluster.pods())


async def test_kubectl_top_through_the_aggregator(cluster: SimCluster, tmp_path: Path) -> None:
    node = cluster.node_names()[0]
    cluster.add_pod(
        node, "team-a", "steady-250", [ContainerSpec("app", Steady(0, millicores=250, memory=300 * MI))]
    )
    node_obj = cluster.model.node(node)
    async with trio.open_nursery() as nursery:
        backend = await start_fake_metrics_server(nursery, cluster.paths.front_proxy_ca_cert)
        mc = cluster.expected_cpu_millicores("team-a", "steady-250")
        mem = cluster.expected_memory_bytes("team-a", "steady-250")
        backend.responses["/apis/metrics.k8s.io/v1beta1/namespaces/team-a/pods"] = {
            "kind": "PodMetricsList",
            "apiVersion": "metrics.k8s.io/v1beta1",
            "metadata": {},
            "items": [
                {
                    "metadata": {"name": "steady-250", "namespace": "team-a"},
                    "timestamp": "2026-01-01T00:00:00Z",
                    "window": "15s",
                    "containers": [
                        {"name": "app", "usage": {"cpu": f"{int(mc * 1e6)}n", "memory": f"{mem // 1024}Ki"}}
                    ],
                }
            ],
        }
        backend.responses["/apis/metrics.k8s.io/v1beta1/nodes"] = {
            "kind": "NodeMetricsList",
            "apiVersion": "metrics.k8s.io/v1beta1",
            "metadata": {},
            "items": [
                {
                    "metadata": {"name": node},
                    "timestamp": "2026-01-01T00:00:00Z",
                    "window": "15s",
                    "usage": {"cpu": "1500m", "memory": "2048Mi"},
                }
            ],
        }
        cluster.set_metrics_server_url(backend.url)
        await cluster.wait_apiservice_available()

        code, out, err = await kubectl(cluster, tmp_path, "top", "pod", "-n", "team-a")
        assert code == 0, err
        assert out.splitlines()[1].split() == ["steady-250", "250m", "300Mi"]

        code, out, err = await kubectl(cluster, tmp_path, "top", "node")
        assert code == 0, err
        rows = {line.split()[0]: line.split() for line in out.splitlines()[1:]}
        cpu_pct = math.trunc(1500 / node_obj.cpu_allocatable_mc * 100)
        mem_pct = math.trunc(2048 * MI / node_obj.memory_allocatable * 100)
        assert rows[node] == [node, "1500m", f"{cpu_pct}%", "2048Mi", f"{mem_pct}%"]
        other = cluster.node_names()[1]
        assert rows[other] == [other, "<unknown>", "<unknown>", "<unknown>", "<unknown>"]

        code, out, err = await kubectl(
            cluster, tmp_path, "--context", "limited", "top", "pod", "-n", "default"
        )
        assert code == 1
        assert err.strip() == (
            'Error from server (Forbidden): pods.metrics.k8s.io is forbidden: User "jane" cannot list '
            'resource "pods" in API group "metrics.k8s.io" in the namespace "default"'
        )
        nursery.cancel_scope.cancel()


async def test_kubectl_top_without_metrics_server(cluster: SimCluster, tmp_path: Path) -> None:
    code, _, err = await kubectl(cluster, tmp_path, "top", "node")
    assert code == 1
    # With aggregated discovery (kubectl 1.27+), an unavailable APIService is published as Stale
    # and kubectl drops the group before asking for metrics, as against a real kube-apiserver.
    assert err.strip() == "error: Metrics API not available"
