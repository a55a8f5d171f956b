"""Every kubectl found (plain and `kubectl.1.27` … `kubectl.1.33`) against the real metrics server.

Path of each request: kubectl → simulated kube-apiserver (authentication, RBAC) → aggregator
(front-proxy certificate, X-Remote-* headers) → the metrics server process → its delegated
TokenReview/SubjectAccessReview and its scrapes of the simulated kubelets. All usage is Steady,
so the expected output is computed exactly from the simulator's ground truth.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest
import yaml
from e2ehelpers import (
    ClusterHarness,
    GroundTruth,
    Kubectl,
    KubectlBinary,
    PodTruth,
    find_kubectls,
    go_cpu,
    go_memory,
    top_cpu,
    top_memory,
    top_node_headers,
)

pytestmark = pytest.mark.e2e

API = "/apis/metrics.k8s.io/v1beta1"
TOP_POD_HEADER = ["NAME", "CPU(cores)", "MEMORY(bytes)"]
WINDOW = re.compile(r"^\d+(\.\d+)?s$")


def test_every_versioned_kubectl_is_installed() -> None:
    found, missing = find_kubectls()
    assert missing == []
    assert [b.label for b in found] == ["plain", "1.27", "1.28", "1.29", "1.30", "1.31", "1.32", "1.33"]


def ok(result: Any) -> None:
    assert (result.code, result.err) == (0, ""), result


def failed(result: Any, message: str) -> None:
    assert (result.code, result.out, result.err) == (1, "", message + "\n")


# --- kubectl top node ----------------------------------------------------------------------------


def test_top_node(kubectl: Kubectl, kubectl_binary: KubectlBinary, shared_truth: GroundTruth) -> None:
    result = kubectl("top", "node")
    ok(result)
    header, *rows = result.rows()
    assert header in top_node_headers(kubectl_binary)
    assert sorted(rows) == sorted(node.top_row() for node in shared_truth.nodes.values())


def test_top_node_by_name(kubectl: Kubectl, kubectl_binary: KubectlBinary, shared_truth: GroundTruth) -> None:
    node = shared_truth.nodes["sim-node-0002"]
    result = kubectl("top", "node", node.name)
    ok(result)
    header, *rows = result.rows()
    assert header in top_node_headers(kubectl_binary)
    assert rows == [node.top_row()]


def test_top_node_sorted_by_memory(kubectl: Kubectl, shared_truth: GroundTruth) -> None:
    result = kubectl("top", "node", "--sort-by=memory", "--no-headers")
    ok(result)
    expected = sorted(shared_truth.nodes.values(), key=lambda n: n.memory, reverse=True)
    assert result.rows() == [n.top_row() for n in expected]


# --- kubectl top pod -----------------------------------------------------------------------------


def test_top_pod_all_namespaces(kubectl: Kubectl, shared_truth: GroundTruth) -> None:
    result = kubectl("top", "pod", "-A")
    ok(result)
    header, *rows = result.rows()
    assert header == ["NAMESPACE", *TOP_POD_HEADER]
    assert sorted(rows) == sorted([p.namespace, p.name, *p.top_cells()] for p in shared_truth.pods.values())
    # The hand-made pods, spelled out: 250m+50m and 300Mi+20Mi.
    assert ["e2e", "steady-a", "300m", "320Mi"] in rows
    assert ["e2e", "other", "10m", "8Mi"] in rows
    assert not any(row[1] == "pending" for row in rows)


def test_top_pod_selector_containers(kubectl: Kubectl, shared_truth: GroundTruth) -> None:
    result = kubectl("top", "pod", "-n", "e2e", "-l", "app=steady", "--containers")
    ok(result)
    header, *rows = result.rows()
    assert header == ["POD", *TOP_POD_HEADER]
    assert sorted(rows) == [
        ["steady-a", "app", "250m", "300Mi"],
        ["steady-a", "sidecar", "50m", "20Mi"],
        ["steady-b", "app", "100m", "64Mi"],
    ]
    truth = [
        [p.name, c.name, top_cpu(c.nanocores), top_memory(c.memory)]
        for p in shared_truth.pods_in("e2e")
        if p.labels.get("app") == "steady"
        for c in p.containers
    ]
    assert sorted(rows) == sorted(truth)


def test_top_pod_sum_sorted_by_cpu(kubectl: Kubectl, shared_truth: GroundTruth) -> None:
    result = kubectl("top", "pod", "-n", "e2e", "--sum", "--sort-by=cpu")
    ok(result)
    pods = sorted(shared_truth.pods_in("e2e"), key=lambda p: p.nanocores, reverse=True)
    total_cpu = sum(p.nanocores for p in pods)
    total_memory = sum(p.memory for p in pods)
    assert result.rows() == [
        TOP_POD_HEADER,
        *([p.name, *p.top_cells()] for p in pods),
        ["________", "________"],
        [top_cpu(total_cpu), top_memory(total_memory)],
    ]
    assert result.rows()[1:4] == [
        ["steady-a", "300m", "320Mi"],
        ["steady-b", "100m", "64Mi"],
        ["other", "10m", "8Mi"],
    ]
    assert result.rows()[-1] == ["410m", "392Mi"]


# --- kubectl get (Table) -------------------------------------------------------------------------


def test_get_podmetrics_all_namespaces(kubectl: Kubectl, shared_truth: GroundTruth) -> None:
    result = kubectl("get", "podmetrics", "-A")
    ok(result)
    header, *rows = result.rows()
    assert header == ["NAMESPACE", "NAME", "CPU", "MEMORY", "WINDOW"]
    assert sorted(row[:4] for row in rows) == sorted(
        [p.namespace, p.name, go_cpu(p.nanocores), go_memory(p.memory)] for p in shared_truth.pods.values()
    )
    assert all(WINDOW.match(row[4]) for row in rows), rows


def test_get_nodemetrics(kubectl: Kubectl, shared_truth: GroundTruth) -> None:
    result = kubectl("get", "nodemetrics")
    ok(result)
    header, *rows = result.rows()
    assert header == ["NAME", "CPU", "MEMORY", "WINDOW"]
    assert sorted(row[:3] for row in rows) == sorted(
        [n.name, go_cpu(n.nanocores), go_memory(n.memory)] for n in shared_truth.nodes.values()
    )
    assert all(WINDOW.match(row[3]) for row in rows), rows


# --- kubectl get --raw -------------------------------------------------------------------------


def node_item(shared: ClusterHarness, truth: GroundTruth, name: str) -> dict[str, Any]:
    labels = shared.call(lambda: dict(shared.cluster.model.node(name).labels))
    node = truth.nodes[name]
    return {
        "metadata": {"name": name, "labels": labels},
        "usage": {"cpu": go_cpu(node.nanocores), "memory": go_memory(node.memory)},
    }


def pod_item(pod: PodTruth) -> dict[str, Any]:
    return {
        "metadata": {"name": pod.name, "namespace": pod.namespace, "labels": pod.labels},
        "containers": [
            {"name": c.name, "usage": {"cpu": go_cpu(c.nanocores), "memory": go_memory(c.memory)}}
            for c in pod.containers
        ],
    }


def comparable(item: dict[str, Any]) -> dict[str, Any]:
    """The parts of a metrics object that do not depend on when it was scraped."""
    assert WINDOW.match(item.pop("window")), item
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", item.pop("timestamp")), item
    meta = item["metadata"]
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", meta.pop("creationTimestamp")), item
    return item


def raw(kubectl: Kubectl, path: str) -> dict[str, Any]:
    result = kubectl("get", "--raw", path)
    ok(result)
    document: dict[str, Any] = json.loads(result.out)
    return document


def test_raw_node_list(kubectl: Kubectl, shared: ClusterHarness, shared_truth: GroundTruth) -> None:
    doc = raw(kubectl, f"{API}/nodes")
    assert (doc["kind"], doc["apiVersion"], doc["metadata"]) == (
        "NodeMetricsList",
        "metrics.k8s.io/v1beta1",
        {},
    )
    items = sorted((comparable(i) for i in doc["items"]), key=lambda i: i["metadata"]["name"])
    assert items == [node_item(shared, shared_truth, name) for name in sorted(shared_truth.nodes)]


def test_raw_node(kubectl: Kubectl, shared: ClusterHarness, shared_truth: GroundTruth) -> None:
    doc = raw(kubectl, f"{API}/nodes/sim-node-0001")
    assert (doc.pop("kind"), doc.pop("apiVersion")) == ("NodeMetrics", "metrics.k8s.io/v1beta1")
    assert comparable(doc) == node_item(shared, shared_truth, "sim-node-0001")


def test_raw_pod_list_all_namespaces(kubectl: Kubectl, shared_truth: GroundTruth) -> None:
    doc = raw(kubectl, f"{API}/pods")
    assert (doc["kind"], doc["apiVersion"], doc["metadata"]) == (
        "PodMetricsList",
        "metrics.k8s.io/v1beta1",
        {},
    )
    items = sorted(
        (comparable(i) for i in doc["items"]),
        key=lambda i: (i["metadata"]["namespace"], i["metadata"]["name"]),
    )
    assert items == [pod_item(shared_truth.pods[key]) for key in sorted(shared_truth.pods)]


def test_raw_pod_list_namespace(kubectl: Kubectl, shared_truth: GroundTruth) -> None:
    doc = raw(kubectl, f"{API}/namespaces/e2e/pods")
    assert (doc["kind"], doc["apiVersion"], doc["metadata"]) == (
        "PodMetricsList",
        "metrics.k8s.io/v1beta1",
        {},
    )
    items = sorted((comparable(i) for i in doc["items"]), key=lambda i: i["metadata"]["name"])
    assert items == [pod_item(p) for p in sorted(shared_truth.pods_in("e2e"), key=lambda p: p.name)]
    assert [i["metadata"]["name"] for i in items] == ["other", "steady-a", "steady-b"]


def test_raw_pod(kubectl: Kubectl) -> None:
    doc = raw(kubectl, f"{API}/namespaces/e2e/pods/steady-a")
    assert (doc.pop("kind"), doc.pop("apiVersion")) == ("PodMetrics", "metrics.k8s.io/v1beta1")
    assert comparable(doc) == {
        "metadata": {"name": "steady-a", "namespace": "e2e", "labels": {"app": "steady", "tier": "web"}},
        "containers": [
            {"name": "app", "usage": {"cpu": "250m", "memory": "300Mi"}},
            {"name": "sidecar", "usage": {"cpu": "50m", "memory": "20Mi"}},
        ],
    }


GROUP_VERSION = {"groupVersion": "metrics.k8s.io/v1beta1", "version": "v1beta1"}
METRICS_GROUP = {"name": "metrics.k8s.io", "versions": [GROUP_VERSION], "preferredVersion": GROUP_VERSION}


def test_raw_discovery_apis(kubectl: Kubectl) -> None:
    doc = raw(kubectl, "/apis")
    assert (doc["kind"], doc["apiVersion"]) == ("APIGroupList", "v1")
    assert [g for g in doc["groups"] if g["name"] == "metrics.k8s.io"] == [METRICS_GROUP]


def test_raw_discovery_group(kubectl: Kubectl) -> None:
    assert raw(kubectl, "/apis/metrics.k8s.io") == {"kind": "APIGroup", "apiVersion": "v1", **METRICS_GROUP}


def test_raw_discovery_group_version(kubectl: Kubectl) -> None:
    assert raw(kubectl, API) == {
        "kind": "APIResourceList",
        "apiVersion": "v1",
        "groupVersion": "metrics.k8s.io/v1beta1",
        "resources": [
            {
                "name": "nodes",
                "singularName": "",
                "namespaced": False,
                "kind": "NodeMetrics",
                "verbs": ["get", "list"],
            },
            {
                "name": "pods",
                "singularName": "",
                "namespaced": True,
                "kind": "PodMetrics",
                "verbs": ["get", "list"],
            },
        ],
    }


def test_raw_openapi_v2_from_the_server(
    kubectl_binary: KubectlBinary, shared: ClusterHarness, e2e_root: Path
) -> None:
    """The aggregator does not proxy /openapi/v2, so ask the metrics server itself (bearer token,
    delegated TokenReview), verifying its self-signed serving certificate."""
    kubeconfig = e2e_root / "direct.kubeconfig"
    cert = shared.config.state_dir / "ms-certs" / "apiserver.crt"
    kubeconfig.write_text(
        yaml.safe_dump(
            {
                "apiVersion": "v1",
                "kind": "Config",
                "clusters": [
                    {
                        "name": "ms",
                        "cluster": {
                            "server": shared.simulation.server_url,
                            "certificate-authority": str(cert),
                        },
                    }
                ],
                "users": [{"name": "admin", "user": {"token": shared.cluster.token("kubernetes-admin")}}],
                "contexts": [{"name": "ms", "context": {"cluster": "ms", "user": "admin"}}],
                "current-context": "ms",
            }
        )
    )
    direct = Kubectl(kubectl_binary, kubeconfig, e2e_root / "home-direct" / kubectl_binary.label)
    doc = raw(direct, "/openapi/v2")
    assert doc["swagger"] == "2.0"
    assert {f"{API}/nodes", f"{API}/nodes/{{name}}", f"{API}/pods"} <= set(doc["paths"])


# --- errors ------------------------------------------------------------------------------------


def test_limited_user_top_pod_in_other_namespace_is_forbidden(kubectl: Kubectl) -> None:
    failed(
        kubectl("top", "pod", "-n", "e2e", context="limited"),
        'Error from server (Forbidden): pods.metrics.k8s.io is forbidden: User "jane" cannot list resource '
        '"pods" in API group "metrics.k8s.io" in the namespace "e2e"',
    )


def test_limited_user_top_node_is_forbidden(kubectl: Kubectl) -> None:
    failed(
        kubectl("top", "node", context="limited"),
        'Error from server (Forbidden): nodes.metrics.k8s.io is forbidden: User "jane" cannot list resource '
        '"nodes" in API group "metrics.k8s.io" at the cluster scope',
    )


def test_limited_user_list_all_pods_is_forbidden(kubectl: Kubectl) -> None:
    failed(
        kubectl("get", "--raw", f"{API}/pods", context="limited"),
        'Error from server (Forbidden): pods.metrics.k8s.io is forbidden: User "jane" cannot list resource '
        '"pods" in API group "metrics.k8s.io" at the cluster scope',
    )


def test_limited_user_top_pod_in_own_namespace(kubectl: Kubectl, shared_truth: GroundTruth) -> None:
    result = kubectl("top", "pod", context="limited")
    ok(result)
    header, *rows = result.rows()
    assert header == TOP_POD_HEADER
    assert sorted(rows) == sorted([p.name, *p.top_cells()] for p in shared_truth.pods_in("team-a"))
    assert ["steady-team", "120m", "100Mi"] in rows


def test_top_missing_pod_is_not_found(kubectl: Kubectl) -> None:
    failed(kubectl("top", "pod", "nope", "-n", "e2e"), 'Error from server (NotFound): pods "nope" not found')


def test_top_pending_pod_is_not_found(kubectl: Kubectl) -> None:
    """Like metrics-server, only Running pods are known: a Pending pod is `pods "x" not found`."""
    failed(
        kubectl("top", "pod", "pending", "-n", "e2e"),
        'Error from server (NotFound): pods "pending" not found',
    )


def test_top_missing_node_is_not_found(kubectl: Kubectl) -> None:
    failed(kubectl("top", "node", "nope"), 'Error from server (NotFound): node "nope" not found')
