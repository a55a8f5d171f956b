"""The client's autoscaler features end to end, against the `autoscale` cluster (kubesim with workloads,
and a real metrics server scraping it): examples/hpa_autoscaler.py scaling Deployments from metrics,
once and in its --watch loop, and `watch_pods` in its sync, trio and asyncio forms."""

from __future__ import annotations

import asyncio
import datetime
import signal
import subprocess
import sys
import threading
from functools import partial
from pathlib import Path
from typing import Any

import pytest
import trio
from e2ehelpers import AUTOSCALE_MILLICORES, ClusterHarness

from k8s_metrics import PodUsage, open_async_metrics, open_metrics, open_scale

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "hpa_autoscaler.py"
TIMEOUT_S = 120  # a bound on waits for new samples (one every 10 s): never reached when all is well


def report(name: str, pods: int, current: int, desired: int) -> list[str]:
    """What the example prints for a workload whose `pods` ready pods all use AUTOSCALE_MILLICORES."""
    return [
        f"pods matching app={name} in autoscale: {pods}",
        f"  with metrics and ready: {pods}",
        "  missing metrics: 0",
        "  unready: 0",
        "  ignored: 0",
        f"target: 1000m per pod; usage ratio {AUTOSCALE_MILLICORES / 1000:.2f} (tolerance 0.1)",
        f"desired replicas: {desired} (current: {current})",
    ]


def example(autoscale: ClusterHarness, *args: str) -> list[str]:
    return [sys.executable, str(EXAMPLE), f"--kubeconfig={autoscale.kubeconfig}", "-n", "autoscale", *args]


def workload_pods(autoscale: ClusterHarness, namespace: str, app: str) -> list[str]:
    with open_metrics(kubeconfig=autoscale.kubeconfig) as metrics:
        pods = metrics.get_json(f"/api/v1/namespaces/{namespace}/pods", {"labelSelector": f"app={app}"})
    return sorted(p["metadata"]["name"] for p in pods["items"] if p["status"]["phase"] == "Running")


async def test_the_hpa_example_scales_a_deployment_from_metrics(autoscale: ClusterHarness) -> None:
    command = example(autoscale, "--deployment", "api", "--target-millicores=1000", "--apply")
    done = await trio.run_process(command, capture_stdout=True, capture_stderr=True)
    assert (done.stderr, done.stdout.decode().splitlines()) == (
        b"",
        [*report("api", 2, 2, 3), "scaled deployment autoscale/api to 3"],
    )
    with open_scale(kubeconfig=autoscale.kubeconfig) as scales:
        scale = await trio.to_thread.run_sync(scales.get, "deployment", "autoscale", "api")
    assert (scale.replicas, scale.current_replicas, scale.selector) == (3, 3, "app=api")
    assert len(await trio.to_thread.run_sync(workload_pods, autoscale, "autoscale", "api")) == 3


async def test_the_hpa_example_for_a_statefulset(autoscale: ClusterHarness) -> None:
    done = await trio.run_process(
        example(autoscale, "--statefulset", "db", "--target-millicores=1000", "--max-replicas=4"),
        capture_stdout=True,
        capture_stderr=True,
    )
    assert done.stdout.decode().splitlines() == [
        *report("db", 2, 2, 3),
        "dry run: nothing changed (use --apply with a workload to scale)",
    ]


async def test_the_hpa_example_watch_loop(autoscale: ClusterHarness) -> None:
    command = example(autoscale, "--deployment", "loop", "--target-millicores=1000", "--apply", "--watch")
    lines: list[str] = []
    async with trio.open_nursery() as nursery:
        process = await nursery.start(partial(trio.run_process, command, stdout=subprocess.PIPE, check=False))
        assert process.stdout is not None
        buffer = b""
        with trio.fail_after(TIMEOUT_S):
            while "scaled deployment autoscale/loop to 3" not in lines:
                chunk = await process.stdout.receive_some()
                assert chunk, f"the loop ended early: {lines}"
                buffer += chunk
                *complete, buffer = buffer.split(b"\n")
                lines += [line.decode() for line in complete]
        process.send_signal(signal.SIGINT)  # Ctrl-C: the loop ends with status 130
    assert process.returncode == 130
    assert lines == [*report("loop", 2, 2, 3), "scaled deployment autoscale/loop to 3"]


def names_and_times(batch: list[PodUsage[Any]]) -> list[tuple[str, datetime.datetime]]:
    return [(p.name, p.timestamp) for p in batch]


async def test_watch_pods_in_every_form(autoscale: ClusterHarness) -> None:
    """Each form yields every pod first, then the pods again once each has a newer sample."""
    kubeconfig = autoscale.kubeconfig
    results: dict[str, list[list[PodUsage[Any]]]] = {}

    def sync_form() -> None:
        with open_metrics(kubeconfig=kubeconfig) as metrics:
            watch = metrics.watch_pods("watch", label_selector="app=samples")
            results["sync"] = [next(watch), next(watch)]
            watch.close()

    async def async_form() -> list[list[PodUsage[Any]]]:
        batches = []
        async with open_async_metrics(kubeconfig=kubeconfig) as metrics:
            async for batch in metrics.watch_pods("watch", label_selector={"app": "samples"}):
                batches.append(batch)
                if len(batches) == 2:
                    break
        return batches

    async def trio_form() -> None:
        results["trio"] = await async_form()

    def asyncio_form() -> None:
        results["asyncio"] = asyncio.run(async_form())

    with trio.fail_after(TIMEOUT_S):
        async with trio.open_nursery() as nursery:
            nursery.start_soon(trio.to_thread.run_sync, sync_form)
            nursery.start_soon(trio_form)
            nursery.start_soon(trio.to_thread.run_sync, asyncio_form)
    pods = await trio.to_thread.run_sync(workload_pods, autoscale, "watch", "samples")
    assert len(pods) == 3
    for form, (first, second) in results.items():
        assert [p.name for p in first] == [p.name for p in second] == pods, form
        assert all(
            b > a for (_, a), (_, b) in zip(names_and_times(first), names_and_times(second), strict=True)
        )
        assert {round(c.cpu_nanocores / 10**6) for p in first + second for c in p.containers} == {
            AUTOSCALE_MILLICORES
        }


async def test_watch_pods_stops_and_is_cancelled(autoscale: ClusterHarness) -> None:
    kubeconfig = autoscale.kubeconfig

    def sync_stop() -> list[int]:
        stop = threading.Event()
        sizes = []
        with open_metrics(kubeconfig=kubeconfig) as metrics:
            for batch in metrics.watch_pods("watch", stop=stop):
                sizes.append(len(batch))
                stop.set()  # e.g. from a signal handler's thread: the wait ends at once
        return sizes

    assert await trio.to_thread.run_sync(sync_stop) == [3]

    got: list[int] = []
    async with open_async_metrics(kubeconfig=kubeconfig) as metrics:
        with trio.CancelScope() as scope:
            async for batch in metrics.watch_pods("watch"):
                got.append(len(batch))
                scope.cancel()  # the watch's next wait is cancelled
    assert (got, scope.cancelled_caught) == ([3], True)

    async def asyncio_cancel() -> tuple[list[int], bool]:
        seen: list[int] = []
        first = asyncio.Event()

        async def watch() -> None:
            async with open_async_metrics(kubeconfig=kubeconfig) as m:
                async for batch in m.watch_pods("watch"):
                    seen.append(len(batch))
                    first.set()

        task = asyncio.ensure_future(watch())
        await first.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return seen, task.cancelled()

    assert await trio.to_thread.run_sync(lambda: asyncio.run(asyncio_cancel())) == ([3], True)


async def test_wait_until_available_returns_once_served(autoscale: ClusterHarness) -> None:
    async with open_async_metrics(kubeconfig=autoscale.kubeconfig) as metrics:
        await metrics.wait_until_available(timeout=TIMEOUT_S)
    with open_metrics(kubeconfig=autoscale.kubeconfig) as sync_metrics:
        await trio.to_thread.run_sync(sync_metrics.wait_until_available)
