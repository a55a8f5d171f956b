"""The scripts in examples/: run as subprocesses against the HTTPS fake with a kubeconfig (their printed
output, exactly), and the HPA algorithm of the autoscaler example on prepared scenarios."""

from __future__ import annotations

import datetime
import importlib.util
import os
import sys
from collections.abc import Callable
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import pytest
import trio
from top_kubectl import Run
from usage_cluster import SHOP_PODS, V1BETA1, pod_metrics_list, serve_cluster, shop_pod

if TYPE_CHECKING:
    from conftest import FakeApiServer

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
WriteKubeconfig = Callable[..., Path]
SCALE_PATH = "/apis/apps/v1/namespaces/shop/deployments/web/scale"
SCALE = {
    "kind": "Scale",
    "apiVersion": "autoscaling/v1",
    "metadata": {"name": "web", "namespace": "shop"},
    "spec": {"replicas": 6},
    "status": {"replicas": 6, "selector": "app=web"},
}


def load_example(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(f"example_{name}", EXAMPLES / f"{name}.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up
    spec.loader.exec_module(module)
    return module


hpa = load_example("hpa_autoscaler")


@pytest.fixture
def kubeconfig(api_server: FakeApiServer, write_kubeconfig: WriteKubeconfig, tmp_path: Path) -> Path:
    serve_cluster(api_server)
    return write_kubeconfig(
        tmp_path / "kubeconfig", server_url=api_server.url, ca_pem=api_server.ca_pem, token=api_server.token
    )


async def run_example(name: str, kubeconfig: Path, *args: str) -> Run:
    command = [sys.executable, str(EXAMPLES / f"{name}.py"), f"--kubeconfig={kubeconfig}", *args]
    env = {"PATH": os.environ.get("PATH", ""), "HOME": "/nonexistent"}
    result = await trio.run_process(command, capture_stdout=True, capture_stderr=True, check=False, env=env)
    return Run(result.returncode, result.stdout.decode(), result.stderr.decode())


async def run_examples(kubeconfig: Path, *runs: tuple[str, ...]) -> list[Run]:
    """Run several example commands (``(script, *args)``) at once; their results in order."""
    results: dict[int, Run] = {}

    async def one(i: int, name: str, *args: str) -> None:
        results[i] = await run_example(name, kubeconfig, *args)

    async with trio.open_nursery() as nursery:
        for i, (name, *args) in enumerate(runs):
            nursery.start_soon(one, i, name, *args)
    return [results[i] for i in range(len(runs))]


GROUPS = [
    "pods matching app=web in shop: 7",
    "  with metrics and ready: 3",
    "  missing metrics: 1 (web-3)",
    "  unready: 1 (web-5)",
    "  ignored: 2 (web-4, web-6)",
]


async def test_top_memory(kubeconfig: Path) -> None:
    run, two = await run_examples(kubeconfig, ("top_memory",), ("top_memory", "--count=2"))
    assert (run.code, run.err) == (0, "")
    assert run.out.splitlines() == [
        "1. monitoring/prometheus-k8s-0              2580.0 MiB    1204m CPU",
        "2. default/web-1                              64.0 MiB     251m CPU",
        "3. kube-system/coredns-558bd4d5db-4dpjz       12.0 MiB       3m CPU",
        "4. default/web-0                               6.0 MiB      12m CPU",
        "5. jobs/batch-7                                0.0 MiB       0m CPU",
    ]
    assert two.out.splitlines() == [  # the name column is as wide as the longest name shown
        "1. monitoring/prometheus-k8s-0     2580.0 MiB    1204m CPU",
        "2. default/web-1                     64.0 MiB     251m CPU",
    ]


async def test_autoscaler_average_value(kubeconfig: Path, api_server: FakeApiServer) -> None:
    # ready samples 51m (30m + 20000001n rounded up to 21m), 60m, 70m: average 60m, ratio 0.6. On a
    # scale-down the missing web-3 counts as the target, 100m: 281 / 4 = 70 -> ratio 0.7 -> ceil(2.8) = 3.
    # (Without the HPA's missing-pod rule it would be ceil(0.6 × 3) = 2.)
    run = await run_example(
        "hpa_autoscaler", kubeconfig, "-n", "shop", "-l", "app=web", "--target-millicores=100"
    )
    assert (run.code, run.err) == (0, "")
    assert run.out.splitlines() == [
        *GROUPS,
        "target: 100m per pod; usage ratio 0.60 (tolerance 0.1)",
        "desired replicas: 3 (current: 5)",
        "dry run: nothing changed (use --apply with a workload to scale)",
    ]
    assert not [r for r in api_server.requests if r.method != "GET"]


async def test_autoscaler_utilization(kubeconfig: Path) -> None:
    # 181m used of 750m requested: 24% of a 50% target, ratio 0.48; web-3 counted at 100% of its 250m
    # request: 431 / 1000 = 43% -> 0.86 -> ceil(3.44) = 4.
    run = await run_example(
        "hpa_autoscaler", kubeconfig, "-n", "shop", "-l", "app=web", "--target-utilization", "50"
    )
    assert (run.code, run.err) == (0, "")
    assert run.out.splitlines()[-3:] == [
        "target: 50% of requests; usage ratio 0.48 (tolerance 0.1)",
        "desired replicas: 4 (current: 5)",
        "dry run: nothing changed (use --apply with a workload to scale)",
    ]


async def test_autoscaler_reads_and_patches_the_deployment_scale(
    kubeconfig: Path, api_server: FakeApiServer
) -> None:
    # The deployment's scale gives the selector and the current count. The fake apiserver only answers GET,
    # so the PATCH is refused: the error names the verb and object, like kubectl. (Scaling for real is in
    # tests/e2e/test_autoscaler.py, against the simulated cluster.)
    api_server.reply_json(SCALE_PATH, 200, SCALE)
    run = await run_example(
        "hpa_autoscaler",
        kubeconfig,
        "-n",
        "shop",
        "--deployment",
        "web",
        "--target-millicores=100",
        "--apply",
    )
    assert run.out.splitlines()[-2:] == [
        "target: 100m per pod; usage ratio 0.60 (tolerance 0.1)",
        "desired replicas: 3 (current: 6)",
    ]
    refused = "the server does not allow this method on the requested resource (patch deployments.apps web)"
    assert (run.code, run.err) == (1, f"error: MethodNotAllowed (405): {refused}\n")
    assert [r.method for r in api_server.requests if r.path == SCALE_PATH] == ["GET"]
    run = await run_example(
        "hpa_autoscaler", kubeconfig, "--deployment", "web", "-n", "shop", "--target-millicores=65", "--apply"
    )  # ratio 60/65 = 0.92; with web-3 at 65m, 246 // 4 = 61: 0.94 is within tolerance, 6 stays 6
    assert (run.code, run.err, run.out.splitlines()[-2:]) == (
        0,
        "",
        ["desired replicas: 6 (current: 6)", "nothing to change"],
    )


async def test_autoscaler_errors(kubeconfig: Path, api_server: FakeApiServer) -> None:
    api_server.reply_json(
        f"{V1BETA1}/namespaces/shop/pods?labelSelector=app%3Dnone", 200, pod_metrics_list([])
    )
    api_server.reply(f"{V1BETA1}/namespaces/down/pods", 503, b"down", content_type="text/plain")
    no_metrics, unavailable, usage = await run_examples(
        kubeconfig,
        ("hpa_autoscaler", "-n", "shop", "-l", "app=none", "--target-millicores=1"),
        ("hpa_autoscaler", "-n", "down", "-l", "x=y", "--target-utilization=50"),
        ("hpa_autoscaler", "--apply", "--target-millicores=1"),
    )
    assert no_metrics == Run(1, "", "error: no metrics returned from resource metrics API\n")
    expected = "the server is currently unable to handle the request (get pods.metrics.k8s.io)"
    assert unavailable == Run(1, "", f"error: ServiceUnavailable (503): {expected}\n")
    assert usage.code == 2 and usage.err.endswith(
        "error: --apply needs a workload (--deployment, --statefulset or --replicaset)\n"
    )


# -- the algorithm, in-process, on prepared scenarios

NOW = datetime.datetime(2026, 4, 25, 17, 21, tzinfo=datetime.UTC)
LONG_AGO = datetime.datetime(2021, 10, 3, 9, 37, 1, tzinfo=datetime.UTC)


def sample(millicores: int, at: datetime.datetime = NOW) -> Any:
    return hpa.Sample(millicores, at, datetime.timedelta(seconds=15))


def running(names: str) -> list[dict[str, Any]]:
    return [shop_pod(name) for name in names.split()]


def test_no_change_within_tolerance() -> None:
    samples = {"a": sample(105), "b": sample(105)}
    assert hpa.desired_replicas(2, running("a b"), samples, now=NOW, target_millicores=100)[0] == 2
    assert hpa.desired_replicas(2, running("a b"), samples, now=NOW, target_millicores=90)[0] == 3  # 1.16


def test_scale_up_treats_missing_and_unready_pods_as_idle() -> None:
    pods = [*running("a b c"), shop_pod("d", phase="Pending")]
    samples = {"a": sample(300), "b": sample(300)}  # c is missing
    replicas, ratio, groups = hpa.desired_replicas(4, pods, samples, now=NOW, target_millicores=100)
    assert (ratio, groups.ready, groups.missing, groups.unready) == (3.0, 2, {"c"}, {"d"})
    assert replicas == 6  # 600 / 4 = 150 -> 1.5 × 4 pods


def test_direction_reversal_keeps_the_current_count() -> None:
    # ratio 0.95 -> 1.0 < 1.1 with the missing pod counted at 100% of request: within tolerance
    pods = running("a b")
    samples = {"a": sample(190)}
    assert hpa.desired_replicas(2, pods, samples, now=NOW, target_utilization=80)[0] == 2


def test_cpu_initialisation_period_hides_early_samples() -> None:
    fresh = shop_pod("a")
    started = NOW - datetime.timedelta(minutes=1)
    fresh["status"]["startTime"] = started.isoformat()
    fresh["status"]["conditions"][0]["lastTransitionTime"] = (
        started + datetime.timedelta(seconds=20)
    ).isoformat()
    too_soon = {"a": sample(500, at=started + datetime.timedelta(seconds=30)), "b": sample(100)}
    groups = hpa.group_pods([fresh, *running("b")], too_soon, NOW)
    assert (groups.ready, groups.unready) == (1, {"a"})  # sampled before one window after becoming Ready
    in_time = {"a": sample(500, at=started + datetime.timedelta(seconds=40)), "b": sample(100)}
    assert hpa.group_pods([fresh, *running("b")], in_time, NOW).ready == 2
    never_ready = shop_pod("c", ready=False)
    assert hpa.group_pods([never_ready], {"c": sample(1)}, NOW).unready == {"c"}


def test_hpa_errors() -> None:
    with pytest.raises(hpa.ScaleError, match="no pods returned by selector"):
        hpa.desired_replicas(1, [], {}, now=NOW, target_millicores=1)
    with pytest.raises(
        hpa.ScaleError, match=r"did not receive metrics for targeted pods \(pods might be unready\)"
    ):
        hpa.desired_replicas(
            1, [shop_pod("a", phase="Pending")], {"a": sample(1)}, now=NOW, target_millicores=1
        )
    no_request = shop_pod("a", requests=("100m", None))
    with pytest.raises(hpa.ScaleError, match="missing request for cpu in container c1 of Pod a"):
        hpa.desired_replicas(1, [no_request], {"a": sample(1)}, now=NOW, target_utilization=50)


def test_the_prepared_scenario_in_process() -> None:
    samples = {"web-0": sample(51), "web-1": sample(60), "web-2": sample(70), "web-6": sample(900)}
    replicas, ratio, _ = hpa.desired_replicas(5, SHOP_PODS, samples, now=NOW, target_millicores=100)
    assert (replicas, ratio) == (3, 0.6)
    assert hpa.desired_replicas(5, SHOP_PODS, samples, now=NOW, target_utilization=50)[:2] == (4, 0.48)
    assert LONG_AGO < NOW
