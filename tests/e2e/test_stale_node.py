"""Stopped kubelets: their nodes turn `<unknown>` after --metric-staleness, the others keep their numbers.

The `stale` cluster runs the server with --metric-resolution=10s --metric-staleness=20s; as soon
as metrics covered every node and pod, sim-node-0001's kubelet started refusing connections and
sim-node-0002's started hanging (the server gives up after --kubelet-request-timeout=5s). The
server is a separate process on real time, so the first test polls `kubectl top node` once per
scrape cycle (paced by a healthy kubelet receiving its next request) until both faulted nodes
are `<unknown>`, with a deadline; the others then check the steady state with every kubectl.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from e2ehelpers import (
    STALE_FAULTS,
    STALE_HEALTHY,
    ClusterHarness,
    GroundTruth,
    Kubectl,
    KubectlBinary,
    find_kubectls,
    ground_truth,
    top_node_headers,
)

pytestmark = pytest.mark.e2e

UNKNOWN = ["<unknown>"] * 4
# staleness (20s) + one cycle for the last good scrape to age + one to notice + kubectl slack
STALE_DEADLINE_S = 90.0


@pytest.fixture(scope="session")
def stale_truth(stale: ClusterHarness, e2e_root: Path) -> GroundTruth:
    """Wait (bounded) until both faulted nodes are `<unknown>`; then return the ground truth.

    At every poll, each healthy node must still show its numbers.
    """
    plain = find_kubectls()[0][0]
    kubectl = Kubectl(plain, stale.kubeconfig, e2e_root / "home-stale" / "poll")
    truth = stale.call(ground_truth, stale.cluster)
    healthy_rows = sorted(truth.nodes[name].top_row() for name in STALE_HEALTHY)
    deadline = time.monotonic() + STALE_DEADLINE_S
    while True:
        result = kubectl("top", "node", "--no-headers")
        assert (result.code, result.err) == (0, ""), result
        rows = {row[0]: row for row in result.rows()}
        assert sorted(rows.get(name, [name, "missing"]) for name in STALE_HEALTHY) == healthy_rows
        if all(rows[name][1:] == UNKNOWN for name in STALE_FAULTS):
            return truth
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"faulted nodes still have metrics after {STALE_DEADLINE_S:g}s: {rows}"
        stale.wait_kubelet_requests(STALE_HEALTHY[0], 1, within_s=remaining)


@pytest.fixture
def stale_kubectl(kubectl_binary: KubectlBinary, stale: ClusterHarness, e2e_root: Path) -> Kubectl:
    return Kubectl(kubectl_binary, stale.kubeconfig, e2e_root / "home-stale" / kubectl_binary.label)


def test_stopped_kubelets_show_unknown(
    stale_kubectl: Kubectl, kubectl_binary: KubectlBinary, stale_truth: GroundTruth
) -> None:
    result = stale_kubectl("top", "node")
    assert (result.code, result.err) == (0, ""), result
    header, *rows = result.rows()
    assert header in top_node_headers(kubectl_binary)
    expected = [stale_truth.nodes[name].top_row() for name in STALE_HEALTHY]
    expected += [[name, *UNKNOWN] for name in STALE_FAULTS]
    assert sorted(rows) == sorted(expected)


def test_stopped_kubelet_node_has_no_metrics(stale_kubectl: Kubectl, stale_truth: GroundTruth) -> None:
    result = stale_kubectl("top", "node", "sim-node-0001")
    assert (result.code, result.out, result.err) == (
        1,
        "",
        'Error from server (NotFound): nodemetrics.metrics.k8s.io "sim-node-0001" not found\n',
    )


def test_pods_of_stopped_kubelets_have_no_metrics(stale_kubectl: Kubectl, stale_truth: GroundTruth) -> None:
    result = stale_kubectl("top", "pod", "-A", "--no-headers")
    assert (result.code, result.err) == (0, ""), result
    assert sorted(result.rows()) == sorted(
        [p.namespace, p.name, *p.top_cells()] for p in stale_truth.pods.values() if p.node in STALE_HEALTHY
    )
    # A Running pod whose metrics are gone: metrics-server's "<ns>/<name>" NotFound.
    lost = sorted(p for p in stale_truth.pods if stale_truth.pods[p].node in STALE_FAULTS)
    assert lost
    namespace, name = lost[0]
    result = stale_kubectl("top", "pod", name, "-n", namespace)
    assert (result.code, result.out, result.err) == (
        1,
        "",
        f'Error from server (NotFound): podmetrics.metrics.k8s.io "{namespace}/{name}" not found\n',
    )
