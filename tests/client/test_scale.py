"""k8s_metrics.scale against the simulated cluster (kubesim's workloads: Deployments, StatefulSets and
ReplicaSets whose pods follow replicas): sync, trio and asyncio forms, the errors of the apiserver, and
real ``kubectl scale`` on the same objects."""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import sniffio
import trio

from k8s_metrics import (
    ApiError,
    Conflict,
    Forbidden,
    Invalid,
    MetricsClient,
    NotFound,
    ResponseError,
    Scale,
    ScaleClient,
    open_async_scale,
    open_metrics,
    open_scale,
)
from kubesim import SimCluster
from kubesim.workloads import ContainerTemplate

MODES = ("sync", "trio", "asyncio")


@pytest.fixture
async def sim(tmp_path: Path) -> AsyncIterator[SimCluster]:
    async with SimCluster(
        nodes=2, pods_per_node=1, seed=4, state_dir=tmp_path / "sim", address_prefix=(127, 86)
    ) as cluster:
        app = [ContainerTemplate("app", millicores=140)]
        cluster.workloads.add("deployments", "shop", "web", replicas=2, containers=app)
        cluster.workloads.add("statefulsets", "shop", "db", replicas=3, containers=app, labels={"app": "db"})
        cluster.workloads.add(
            "replicasets", "shop", "cache", replicas=1, containers=app, labels={"tier": "c"}
        )
        yield cluster


async def run(mode: str, kubeconfig: Path, body: Callable[..., Any], context: str = "admin") -> Any:
    """Run ``body(scales)`` with a client of ``mode``: sync in a worker thread, trio here, or asyncio in a
    worker thread; ``body`` is a coroutine function for the async modes."""
    if mode == "sync":

        def sync() -> Any:
            with open_scale(kubeconfig=kubeconfig, context=context) as scales:
                return body(scales)

        return await trio.to_thread.run_sync(sync)

    async def in_loop(library: str) -> Any:
        assert sniffio.current_async_library() == library
        async with open_async_scale(kubeconfig=kubeconfig, context=context) as scales:
            return await body(scales)

    if mode == "trio":
        return await in_loop("trio")
    return await trio.to_thread.run_sync(lambda: asyncio.run(in_loop("asyncio")))


def pod_names(sim: SimCluster, labels: dict[str, str]) -> list[str]:
    return sorted(p.name for p in sim.pods() if p.namespace == "shop" and labels.items() <= p.labels.items())


@pytest.mark.parametrize("mode", MODES)
async def test_read_and_scale_a_deployment(mode: str, sim: SimCluster) -> None:
    if mode == "sync":

        def body(scales: Any) -> tuple[Scale, Scale, Scale]:
            return scales.get("deployment", "shop", "web"), scales.set_replicas("deploy", "shop", "web", 4), \
                scales.get("Deployment", "shop", "web")  # fmt: skip
    else:

        async def body(scales: Any) -> tuple[Scale, Scale, Scale]:
            before = await scales.get("deployment", "shop", "web")
            return (
                before,
                await scales.set_replicas("deploy", "shop", "web", 4),
                await scales.get("Deployment", "shop", "web"),
            )

    before, returned, after = await run(mode, sim.paths.kubeconfig, body)
    assert (before.kind, before.namespace, before.name) == ("Deployment", "shop", "web")
    assert (before.replicas, before.current_replicas, before.selector) == (2, 2, "app=web")
    assert (returned.replicas, returned.current_replicas) == (4, 4)
    assert after == returned and after.resource_version != before.resource_version
    web = pod_names(sim, {"app": "web"})
    assert len(web) == 4 and all(name.startswith("web-") and len(name.split("-")) == 3 for name in web)


async def test_statefulset_and_replicaset_follow_replicas(sim: SimCluster) -> None:
    async with open_async_scale(kubeconfig=sim.paths.kubeconfig) as scales:
        assert (await scales.set_replicas("statefulset", "shop", "db", 1)).current_replicas == 1
        assert pod_names(sim, {"app": "db"}) == ["db-0"]  # the highest ordinals go first
        assert (await scales.set_replicas("sts", "shop", "db", 2)).current_replicas == 2
        assert pod_names(sim, {"app": "db"}) == ["db-0", "db-1"]
        cache = await scales.set_replicas("rs", "shop", "cache", 3)
        assert (cache.kind, cache.selector, cache.current_replicas) == ("ReplicaSet", "tier=c", 3)
        assert await scales.set_replicas("replicaset", "shop", "cache", 0) == Scale(
            "ReplicaSet",
            "shop",
            "cache",
            0,
            0,
            "tier=c",
            (await scales.get("rs", "shop", "cache")).resource_version,
        )
        assert pod_names(sim, {"tier": "c"}) == []


async def test_the_new_pods_are_in_the_api(sim: SimCluster) -> None:
    def scale_and_list() -> list[dict[str, Any]]:
        with open_scale(kubeconfig=sim.paths.kubeconfig) as scales:
            scales.set_replicas("deployment", "shop", "web", 3)
        with open_metrics(kubeconfig=sim.paths.kubeconfig) as metrics:
            pods: list[dict[str, Any]] = metrics.get_json(
                "/api/v1/namespaces/shop/pods", {"labelSelector": "app=web"}
            )["items"]
            return pods

    pods = await trio.to_thread.run_sync(scale_and_list)
    assert sorted(p["metadata"]["name"] for p in pods) == pod_names(sim, {"app": "web"})
    assert {p["status"]["phase"] for p in pods} == {"Running"}
    assert {p["metadata"]["ownerReferences"][0]["kind"] for p in pods} == {"ReplicaSet"}
    assert {p["spec"]["containers"][0]["resources"]["requests"]["cpu"] for p in pods} == {"140m"}


async def test_resource_version_precondition(sim: SimCluster) -> None:
    async with open_async_scale(kubeconfig=sim.paths.kubeconfig) as scales:
        seen = await scales.get("deployment", "shop", "web")
        await scales.set_replicas("deployment", "shop", "web", 3)  # someone else scales meanwhile
        with pytest.raises(Conflict) as stale:
            await scales.set_replicas("deployment", "shop", "web", 5, resource_version=seen.resource_version)
        fresh = await scales.get("deployment", "shop", "web")
        done = await scales.set_replicas(
            "deployment", "shop", "web", 5, resource_version=fresh.resource_version
        )
    assert str(stale.value) == (
        'Conflict (409): Operation cannot be fulfilled on deployments.apps "web": the object has been '
        "modified; please apply your changes to the latest version and try again"
    )
    assert (done.replicas, done.current_replicas) == (5, 5)


async def test_errors(sim: SimCluster) -> None:
    def body() -> list[ApiError]:
        errors: list[ApiError] = []
        with open_scale(kubeconfig=sim.paths.kubeconfig) as scales:
            for call in (
                lambda: scales.get("deployment", "shop", "nope"),
                lambda: scales.client.get_httpx_client().patch(
                    "/apis/apps/v1/namespaces/shop/deployments/web/scale",
                    content=b'{"spec":{"replicas":-1}}',
                    headers={"Content-Type": "application/merge-patch+json"},
                ),
            ):
                with pytest.raises(ApiError) as caught:
                    call()
                errors.append(caught.value)
            with pytest.raises(ValueError, match="cannot scale 'pods'"):
                scales.get("pods", "shop", "web")
            with pytest.raises(ValueError, match="replicas must be a non-negative integer, not -1"):
                scales.set_replicas("deployment", "shop", "web", -1)
        with open_scale(kubeconfig=sim.paths.kubeconfig, context="limited") as limited:
            with pytest.raises(ApiError) as caught:
                limited.get("deployment", "shop", "web")
            errors.append(caught.value)
        return errors

    missing, invalid, forbidden = await trio.to_thread.run_sync(body)
    assert (type(missing), missing.message) == (NotFound, 'deployments.apps "nope" not found')
    assert (type(invalid), invalid.message) == (
        Invalid,
        'Scale.autoscaling "web" is invalid: spec.replicas: Invalid value: -1: '
        "must be greater than or equal to 0",
    )
    assert type(forbidden) is Forbidden
    assert forbidden.message == (
        'deployments.apps "web" is forbidden: User "jane" cannot get resource "deployments/scale" '
        'in API group "apps" in the namespace "shop"'
    )


def _kubectl_133() -> str:
    plain = shutil.which("kubectl")
    return str(Path(os.path.realpath(plain)).parent / "kubectl.1.33") if plain else "kubectl-not-on-PATH"


async def test_real_kubectl_scales_the_same_objects(sim: SimCluster) -> None:
    command = [_kubectl_133(), f"--kubeconfig={sim.paths.kubeconfig}", "scale", "sts/db", "-n", "shop"]
    done = await trio.run_process([*command, "--replicas=5"], capture_stdout=True, capture_stderr=True)
    assert done.stdout == b"statefulset.apps/db scaled\n"
    with open_scale(kubeconfig=sim.paths.kubeconfig) as scales:
        scale = await trio.to_thread.run_sync(scales.get, "sts", "shop", "db")
    assert (scale.replicas, scale.current_replicas) == (5, 5)
    assert pod_names(sim, {"app": "db"}) == [f"db-{i}" for i in range(5)]
    stale = await trio.run_process(
        [*command, "--replicas=1", "--resource-version=1"], capture_stderr=True, check=False
    )
    assert (stale.returncode, stale.stderr.splitlines()[-1]) == (
        1,
        f"error: Expected resource version to be 1, was {scale.resource_version}".encode(),
    )


def test_scale_client_shares_a_metrics_connection(tmp_path: Path) -> None:
    kubeconfig = tmp_path / "config"
    kubeconfig.write_text(
        '{"clusters":[{"name":"c","cluster":{"server":"https://127.0.0.84:1"}}],'
        '"contexts":[{"name":"x","context":{"cluster":"c"}}],"current-context":"x"}'
    )
    with open_metrics(kubeconfig=kubeconfig) as metrics:
        assert ScaleClient(metrics.client).client is metrics.client


def test_the_requests_on_the_wire() -> None:
    seen: list[httpx.Request] = []
    scale = {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {"name": "web", "namespace": "shop", "resourceVersion": "41"},
        "spec": {"replicas": 3},
        "status": {"replicas": 2, "selector": "app=web"},
    }

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=scale)

    client = MetricsClient(base_url="https://127.0.0.86:1")
    client.set_httpx_client(
        httpx.Client(base_url="https://127.0.0.86:1", transport=httpx.MockTransport(handler))
    )
    with ScaleClient(client) as scales:
        patched = scales.set_replicas("deployment", "shop", "web", 3)
        scales.set_replicas("statefulsets", "shop", "web", 3, resource_version="41")
    assert patched == Scale("Deployment", "shop", "web", 3, 2, "app=web", "41")
    patch, put = seen
    assert (patch.method, patch.url.path) == ("PATCH", "/apis/apps/v1/namespaces/shop/deployments/web/scale")
    assert (patch.headers["content-type"], patch.content) == (
        "application/merge-patch+json",
        b'{"spec":{"replicas":3}}',
    )
    assert (put.method, put.url.path) == ("PUT", "/apis/apps/v1/namespaces/shop/statefulsets/web/scale")
    assert json.loads(put.content) == {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {"name": "web", "namespace": "shop", "resourceVersion": "41"},
        "spec": {"replicas": 3},
    }


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"kind": "Deployment", "metadata": {"name": "x"}}, "kind is 'Deployment'"),
        ({"kind": "Scale", "metadata": {}}, "KeyError('name')"),
        (
            {"kind": "Scale", "metadata": {"name": "x"}, "spec": {"replicas": "3"}},
            "replicas must be integers",
        ),
        ([], "AttributeError"),
    ],
)
def test_a_body_that_is_not_a_scale(document: Any, message: str) -> None:
    with pytest.raises(ResponseError, match=f"^unexpected Scale document: .*{re.escape(message)}"):
        Scale.from_document("Deployment", document)
