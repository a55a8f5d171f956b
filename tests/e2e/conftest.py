"""Session fixtures for the end-to-end tests: two simulated clusters, each with a real metrics server.

* `shared`: every kubectl test runs against it. All usage profiles are Steady, so every number
  kubectl prints is known exactly from the simulator's ground truth (`shared_truth`).
* `stale`: kubelets of two nodes stop answering (one refuses connections, one hangs) as soon as
  metrics are ready; the tests check those nodes turn `<unknown>` after --metric-staleness while
  the others keep their numbers.
* `autoscale`: workloads (kubesim's Deployments, StatefulSets, ReplicaSets) for the client's
  autoscaler features: the HPA example scaling from metrics, `watch_pods`, and every code block of
  client/README.md. Its tests change it (they scale), so it is apart from the others; it starts
  the first time it is needed.

Both clusters start together, in background threads, the first time either is needed, and stop
(server terminated, listeners closed) at the end of the session. Every kubectl test is
parametrized over the kubectl binaries found (`kubectl_binary`).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from e2ehelpers import (
    AUTOSCALE_MILLICORES,
    STALE_FAULTS,
    ClusterHarness,
    GroundTruth,
    Kubectl,
    KubectlBinary,
    find_kubectls,
    ground_truth,
)

from kubesim import MI, ContainerSpec, SimCluster, Steady
from kubesim.simulation import SimulateConfig
from kubesim.workloads import ContainerTemplate

# Loopback prefixes of the kubelets: distinct from tests/sim (127.77), tests/client (127.78, 127.86) and
# the default 127.1; test_simulate_cli.py uses 127.83 and 127.84.
SHARED_PREFIX = (127, 81)
STALE_PREFIX = (127, 82)
AUTOSCALE_PREFIX = (127, 85)
READY_TIMEOUT_S = 150.0
RESOLUTION = "10s"
STALENESS = "20s"

FOUND_KUBECTLS = find_kubectls()[0]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    if "kubectl_binary" in metafunc.fixturenames:
        # Without any kubectl, run (and fail) with a placeholder rather than skip on an empty set.
        binaries = FOUND_KUBECTLS or [KubectlBinary("missing", Path("kubectl-not-on-PATH"))]
        metafunc.parametrize("kubectl_binary", binaries, ids=[b.label for b in binaries])


def add_shared_pods(cluster: SimCluster) -> None:
    """Pods with hand-picked usage in namespace e2e (and one in team-a, the limited user's)."""
    n0, n1, n2 = cluster.node_names()[:3]
    cluster.add_pod(
        n0,
        "e2e",
        "steady-a",
        [
            ContainerSpec("app", Steady(0, millicores=250, memory=300 * MI)),
            ContainerSpec("sidecar", Steady(0, millicores=50, memory=20 * MI)),
        ],
        labels={"app": "steady", "tier": "web"},
    )
    cluster.add_pod(
        n1,
        "e2e",
        "steady-b",
        [ContainerSpec("app", Steady(0, millicores=100, memory=64 * MI))],
        labels={"app": "steady"},
    )
    cluster.add_pod(
        n1,
        "e2e",
        "other",
        [ContainerSpec("app", Steady(0, millicores=10, memory=8 * MI + 4096))],
        labels={"app": "other"},
    )
    cluster.add_pod(
        n2,
        "e2e",
        "pending",
        [ContainerSpec("app", Steady(0, millicores=10, memory=8 * MI))],
        labels={"app": "steady"},
        phase="Pending",
    )
    cluster.add_pod(
        n2,
        "team-a",
        "steady-team",
        [ContainerSpec("app", Steady(0, millicores=120, memory=100 * MI))],
        labels={"app": "team"},
    )


def inject_faults(cluster: SimCluster) -> None:
    for node, mode in STALE_FAULTS.items():
        cluster.set_fault(node, mode)


@dataclass
class Clusters:
    shared: ClusterHarness
    stale: ClusterHarness


@pytest.fixture(scope="session")
def e2e_root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("e2e")


@pytest.fixture(scope="session")
def clusters(e2e_root: Path) -> Iterator[Clusters]:
    shared = ClusterHarness(
        SimulateConfig(
            state_dir=e2e_root / "shared",
            nodes=4,
            pods_per_node=3,
            seed=11,
            address_prefix=SHARED_PREFIX,
            kubelet_port=0,
            profile_kinds=("steady",),
            metric_resolution=RESOLUTION,
            ready_timeout_s=READY_TIMEOUT_S,
        ),
        prepare=add_shared_pods,
    )
    stale = ClusterHarness(
        SimulateConfig(
            state_dir=e2e_root / "stale",
            nodes=4,
            pods_per_node=2,
            seed=12,
            address_prefix=STALE_PREFIX,
            kubelet_port=0,
            profile_kinds=("steady",),
            metric_resolution=RESOLUTION,
            metric_staleness=STALENESS,
            ready_timeout_s=READY_TIMEOUT_S,
        ),
        after_ready=inject_faults,
    )
    shared.start()
    stale.start()
    try:
        yield Clusters(shared, stale)
    finally:
        try:
            shared.stop()
        finally:
            stale.stop()


@pytest.fixture(scope="session")
def shared(clusters: Clusters) -> ClusterHarness:
    clusters.shared.wait_ready(READY_TIMEOUT_S + 30)
    return clusters.shared


@pytest.fixture(scope="session")
def shared_truth(shared: ClusterHarness) -> GroundTruth:
    return shared.call(ground_truth, shared.cluster)


@pytest.fixture(scope="session")
def stale(clusters: Clusters) -> ClusterHarness:
    clusters.stale.wait_ready(READY_TIMEOUT_S + 30)
    return clusters.stale


@pytest.fixture
def kubectl(kubectl_binary: KubectlBinary, shared: ClusterHarness, e2e_root: Path) -> Kubectl:
    """The parametrized kubectl binary, against the shared cluster."""
    return Kubectl(kubectl_binary, shared.kubeconfig, e2e_root / "home" / kubectl_binary.label)


def add_workloads(cluster: SimCluster) -> None:
    """Workloads whose pods started an hour ago (past the HPA's CPU initialisation period)."""
    an_hour_ago = cluster.now_ns() - 3600 * 10**9
    app = [ContainerTemplate("app", AUTOSCALE_MILLICORES, 128 * MI)]
    for namespace, name, kind, replicas in (
        ("autoscale", "api", "deployments", 2),  # the HPA example, once
        ("autoscale", "loop", "deployments", 2),  # the HPA example, --watch
        ("autoscale", "db", "statefulsets", 2),
        ("watch", "samples", "replicasets", 3),  # watch_pods
        ("shop", "web", "deployments", 3),  # the README
    ):
        cluster.workloads.add(kind, namespace, name, replicas=replicas, containers=app, start_ns=an_hour_ago)


@pytest.fixture(scope="session")
def autoscale(e2e_root: Path) -> Iterator[ClusterHarness]:
    harness = ClusterHarness(
        SimulateConfig(
            state_dir=e2e_root / "autoscale",
            nodes=2,
            pods_per_node=2,
            seed=13,
            address_prefix=AUTOSCALE_PREFIX,
            kubelet_port=0,
            profile_kinds=("steady",),
            metric_resolution=RESOLUTION,
            ready_timeout_s=READY_TIMEOUT_S,
        ),
        prepare=add_workloads,
    ).start()
    try:
        harness.wait_ready(READY_TIMEOUT_S + 30)
        yield harness
    finally:
        harness.stop()
