"""WorkerPool with real worker processes against fake TLS kubelets.

Each test starts real `python -m metrics_server.shard.worker` processes (~0.3-0.5 s each), which
load credentials from a kubeconfig (bearer token, the fake kubelets' CA) exactly as the server's
workers do. What is checked: the served snapshot equals the one a single in-process store builds
from the same bodies; a worker killed mid-cycle costs its nodes that cycle only (their values kept
until staleness, also through the restarted worker's first cycle); a hung kubelet fails its node
alone; a stopped (stuck) worker is killed and restarted; nodes added and removed keep the others
where they were; cancelling the pool ends every worker process; workers run at the lowered
priority they are given.
"""

from __future__ import annotations

import base64
import os
import signal
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import pytest
import trio
import trustme
import yaml

from metrics_server.kube.objects import NodeInfo
from metrics_server.scrape.batch import ScrapeError
from metrics_server.scrape.config import MANIFEST_ADDRESS_TYPES, KubeletClientConfig
from metrics_server.scrape.prometheus import parse_resource_metrics
from metrics_server.shard import protocol as p
from metrics_server.shard.pool import WorkerPool
from metrics_server.shard.ring import HashRing
from metrics_server.storage.store import Cycle, Storage
from tests.server.scrape.fakes import (
    RESOURCE,
    FakeKubelet,
    Hang,
    RequireAuth,
    Serve,
    node_for,
    server_context,
)

NS = 1_000_000_000
STALENESS = 60 * NS
T0_MS = 1_700_000_000_000
TOKEN = "worker-token"
HOST = "127.0.0.1"


def body(node: int, pods: int, step: int) -> bytes:
    """A canonical /metrics/resource body: node `node`'s pods `p<node>-<i>` in namespace
    `ns<i % 2>`, one container each, sampled at step `step` (10 s apart), CPU growing with it."""
    t = T0_MS + step * 10_000
    start = (T0_MS - 3_600_000) / 1000
    lines = [
        "# TYPE container_cpu_usage_seconds_total counter",
        *(
            f'container_cpu_usage_seconds_total{{container="c",namespace="ns{i % 2}",pod="p{node}-{i}"}} '
            f"{(step + 1) * (i + 1) * 0.5 + node} {t}"
            for i in range(pods)
        ),
        "# TYPE container_memory_working_set_bytes gauge",
        *(
            f'container_memory_working_set_bytes{{container="c",namespace="ns{i % 2}",pod="p{node}-{i}"}} '
            f"{(node + 1) * 1_000_000 + i} {t}"
            for i in range(pods)
        ),
        "# TYPE container_start_time_seconds gauge",
        *(
            f'container_start_time_seconds{{container="c",namespace="ns{i % 2}",pod="p{node}-{i}"}} '
            f"{start} {t}"
            for i in range(pods)
        ),
        "# TYPE node_cpu_usage_seconds_total counter",
        f"node_cpu_usage_seconds_total {(step + 1) * 3.0 + node} {t}",
        "# TYPE node_memory_working_set_bytes gauge",
        f"node_memory_working_set_bytes {(node + 1) * 50_000_000} {t}",
    ]
    return ("\n".join(lines) + "\n").encode()


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def kubeconfig(tmp_path: Path, ca: trustme.CA) -> Path:
    """Credentials as a worker loads them: a token, and the CA the fake kubelets' certificates
    chain to (the apiserver itself is never contacted)."""
    path = tmp_path / "kubeconfig"
    ca_data = base64.b64encode(ca.cert_pem.bytes()).decode()
    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {"name": "c", "cluster": {"server": "https://127.0.0.1:1", "certificate-authority-data": ca_data}}
        ],
        "users": [{"name": "u", "user": {"token": TOKEN}}],
        "contexts": [{"name": "x", "context": {"cluster": "c", "user": "u"}}],
        "current-context": "x",
    }
    path.write_text(yaml.safe_dump(config))
    return path


def configure(kubeconfig: Path, request_timeout: float = 5.0) -> Callable[[int], p.Configure]:
    kubelet = KubeletClientConfig(
        use_node_status_port=True,
        preferred_address_types=MANIFEST_ADDRESS_TYPES,
        request_timeout=request_timeout,
    )
    settings = p.kubelet_settings(kubelet)

    def make(index: int) -> p.Configure:
        return p.Configure(
            p.PROTOCOL_VERSION, index, str(kubeconfig), settings, 10 * NS, STALENESS, "text", 0
        )

    return make


class Cluster:
    """`count` fake kubelets named n0..n<count-1>, all on 127.0.0.1 (each its own port)."""

    def __init__(self, ca: trustme.CA, count: int, pods: int = 3) -> None:
        self.pods = pods
        ctx = server_context(ca, HOST)
        self.fakes = {f"n{i}": FakeKubelet(HOST, ctx) for i in range(count)}
        self.step = 0
        self.serve_step(0)

    def serve_step(self, step: int) -> None:
        self.step = step
        for i, fake in enumerate(self.fakes.values()):
            if not isinstance(fake.routes.get(RESOURCE), Hang):
                served = Serve(body=body(i, self.pods, step))
                fake.routes[RESOURCE] = RequireAuth(f"Bearer {TOKEN}", served)

    def nodes(self, names: Iterable[str] | None = None) -> list[NodeInfo]:
        return [node_for(n, self.fakes[n]) for n in (names if names is not None else self.fakes)]

    async def start(self, nursery: trio.Nursery) -> None:
        for fake in self.fakes.values():
            await nursery.start(fake.serve)


class Recorder:
    def __init__(self) -> None:
        self.requests: list[tuple[str, bool]] = []
        self.forgotten: list[str] = []

    def record_kubelet_request(
        self, node: str, *, success: bool, duration_s: float | None, now_unix_s: float
    ) -> None:
        self.requests.append((node, success))

    def forget_nodes(self, nodes: Iterable[str]) -> None:
        self.forgotten += nodes


def ingest(cycle: Cycle) -> Callable[[p.NodeResult], None]:
    def add(result: p.NodeResult) -> None:
        cycle.add_usages(result.node, result.usage, result.pods, first=result.first)

    return add


async def cycle(
    pool: WorkerPool, storage: Storage, nodes: Sequence[NodeInfo], *, deadline_s: float = 5.0
) -> dict[str, ScrapeError]:
    """One scrape through the pool into `storage`, published; the failed nodes."""
    c = storage.begin(T0_MS * 1_000_000)
    result = await pool.scrape(nodes, trio.current_time() + deadline_s, ingest(c))
    c.publish(result.failed, now_ns=(T0_MS + 30_000) * 1_000_000)
    return result.failed


def in_process(cluster: Cluster, steps: Sequence[int], names: Sequence[str]) -> Storage:
    """What one in-process store publishes from the same bodies (the reference)."""
    storage = Storage(staleness_ns=STALENESS, resolution_ns=10 * NS)
    for step in steps:
        c = storage.begin(T0_MS * 1_000_000)
        for i, name in enumerate(cluster.fakes):
            if name in names:
                c.add(parse_resource_metrics(body(i, cluster.pods, step), node=name, request_time_ns=0))
        c.publish(())
    return storage


def owners(names: Iterable[str], workers: int) -> dict[str, int]:
    ring = HashRing(workers)
    return {name: ring.owner(name) for name in names}


async def test_two_workers_publish_what_one_process_does(ca: trustme.CA, kubeconfig: Path) -> None:
    cluster = Cluster(ca, 6)
    metrics = Recorder()
    storage = Storage(staleness_ns=STALENESS, resolution_ns=10 * NS)
    async with trio.open_nursery() as nursery:
        await cluster.start(nursery)
        pool = WorkerPool(2, configure(kubeconfig), request_timeout=5.0, metrics=metrics)
        await nursery.start(pool.run)
        await pool.wait_started()
        assert sorted(set(owners(cluster.fakes, 2).values())) == [0, 1]  # both workers have nodes
        for step in (0, 1, 2):
            cluster.serve_step(step)
            assert await cycle(pool, storage, cluster.nodes()) == {}
        nursery.cancel_scope.cancel()
    expected = in_process(cluster, (0, 1, 2), list(cluster.fakes)).snapshot()
    served = storage.snapshot()
    assert dict(served.nodes) == dict(expected.nodes)
    assert dict(served.pods) == dict(expected.pods)
    assert len(served.pods) == 6 * 3
    assert sorted(metrics.requests) == sorted((n, True) for n in cluster.fakes for _ in range(3))
    assert storage.points() == (6, 18)


async def test_worker_killed_mid_cycle_costs_its_nodes_one_cycle_and_restarts(
    ca: trustme.CA, kubeconfig: Path
) -> None:
    cluster = Cluster(ca, 6)
    owner = owners(cluster.fakes, 2)
    victim = owner["n0"]
    theirs = sorted(n for n, w in owner.items() if w == victim)
    others = sorted(n for n, w in owner.items() if w != victim)
    storage = Storage(staleness_ns=STALENESS, resolution_ns=10 * NS)
    async with trio.open_nursery() as nursery:
        await cluster.start(nursery)
        pool = WorkerPool(2, configure(kubeconfig), request_timeout=5.0, restart_delay=0.01)
        await nursery.start(pool.run)
        await pool.wait_started()
        for step in (0, 1):
            cluster.serve_step(step)
            assert await cycle(pool, storage, cluster.nodes()) == {}
        before = dict(storage.snapshot().pods)
        # Cycle 3: n0's kubelet hangs, so the victim is mid-cycle when it is killed.
        cluster.serve_step(2)
        cluster.fakes["n0"].routes[RESOURCE] = Hang()
        cluster.fakes["n0"].request_seen = trio.Event()  # this cycle's request
        victim_pid = pool.worker_pids()[victim]
        async with trio.open_nursery() as inner:
            failed_box: list[dict[str, ScrapeError]] = []

            async def run_cycle() -> None:
                failed_box.append(await cycle(pool, storage, cluster.nodes()))

            inner.start_soon(run_cycle)
            await cluster.fakes["n0"].request_seen.wait()
            os.kill(victim_pid, signal.SIGKILL)
        failed = failed_box[0]
        assert sorted(failed) == theirs
        assert {str(e) for e in failed.values()} == {f"scrape worker {victim} exited"}
        snapshot = storage.snapshot().pods
        # The victim's pods are kept with their old values, the others moved on.
        for key, usage in before.items():
            node = f"n{key[1][1:].split('-')[0]}"
            assert (snapshot[key] == usage) == (node in theirs), key
        # Cycle 4: the restarted worker's store is new (its results are `first`): still kept.
        await pool.wait_started()
        assert pool.worker_pids()[victim] != victim_pid
        cluster.fakes["n0"].routes.clear()
        cluster.serve_step(3)
        assert await cycle(pool, storage, cluster.nodes()) == {}
        snapshot = storage.snapshot().pods
        for key, usage in before.items():
            node = f"n{key[1][1:].split('-')[0]}"
            assert (snapshot[key] == usage) == (node in theirs), key
        # Cycle 5: rates from the restarted worker; every node current again.
        cluster.serve_step(4)
        assert await cycle(pool, storage, cluster.nodes()) == {}
        nursery.cancel_scope.cancel()
    expected = in_process(cluster, (3, 4), list(cluster.fakes)).snapshot()
    assert dict(storage.snapshot().pods) == dict(expected.pods)
    assert others  # the other worker had nodes, and they never failed


async def test_a_hung_kubelet_fails_its_node_alone(ca: trustme.CA, kubeconfig: Path) -> None:
    cluster = Cluster(ca, 4)
    cluster.fakes["n1"].routes[RESOURCE] = Hang()
    storage = Storage(staleness_ns=STALENESS, resolution_ns=10 * NS)
    async with trio.open_nursery() as nursery:
        await cluster.start(nursery)
        pool = WorkerPool(2, configure(kubeconfig, request_timeout=1.0), request_timeout=1.0)
        await nursery.start(pool.run)
        await pool.wait_started()
        pids = pool.worker_pids()
        for step in (0, 1):
            cluster.serve_step(step)
            failed = await cycle(pool, storage, cluster.nodes(), deadline_s=1.0)
            assert list(failed) == ["n1"]
            assert "timeout" in str(failed["n1"]).lower() or "deadline" in str(failed["n1"]).lower()
        assert pool.worker_pids() == pids  # nobody restarted
        assert pool.restarts() == [0, 0]
        nursery.cancel_scope.cancel()
    assert sorted({key[1].split("-")[0] for key in storage.snapshot().pods}) == ["p0", "p2", "p3"]


async def test_a_stuck_worker_is_killed_and_restarted(ca: trustme.CA, kubeconfig: Path) -> None:
    cluster = Cluster(ca, 4)
    storage = Storage(staleness_ns=STALENESS, resolution_ns=10 * NS)
    async with trio.open_nursery() as nursery:
        await cluster.start(nursery)
        pool = WorkerPool(
            2,
            configure(kubeconfig, request_timeout=1.0),
            request_timeout=1.0,
            done_grace=0.5,
            restart_delay=0.01,
        )
        await nursery.start(pool.run)
        await pool.wait_started()
        stuck = pool.worker_pids()[0]
        os.kill(stuck, signal.SIGSTOP)
        failed = await cycle(pool, storage, cluster.nodes(), deadline_s=1.0)
        mine = sorted(n for n, w in owners(cluster.fakes, 2).items() if w == 0)
        assert sorted(failed) == mine
        assert {str(e) for e in failed.values()} == {"scrape worker 0 did not finish the cycle in time"}
        await pool.wait_started()
        assert pool.worker_pids()[0] != stuck
        assert pool.restarts() == [1, 0]
        assert await cycle(pool, storage, cluster.nodes()) == {}
        nursery.cancel_scope.cancel()


async def test_nodes_added_and_removed_leave_the_others_in_place(ca: trustme.CA, kubeconfig: Path) -> None:
    cluster = Cluster(ca, 8)
    metrics = Recorder()
    storage = Storage(staleness_ns=STALENESS, resolution_ns=10 * NS)
    first = [f"n{i}" for i in range(6)]
    then = [*(f"n{i}" for i in range(1, 6)), "n6", "n7"]
    async with trio.open_nursery() as nursery:
        await cluster.start(nursery)
        pool = WorkerPool(3, configure(kubeconfig), request_timeout=5.0, metrics=metrics)
        await nursery.start(pool.run)
        await pool.wait_started()
        assert await cycle(pool, storage, cluster.nodes(first)) == {}
        before = pool.assignments()
        cluster.serve_step(1)
        assert await cycle(pool, storage, cluster.nodes(then)) == {}
        after = pool.assignments()
        nursery.cancel_scope.cancel()
    assert metrics.forgotten == ["n0"]
    ring = HashRing(3)
    for worker in range(3):
        assert before[worker] == sorted(n for n in first if ring.owner(n) == worker)
        assert after[worker] == sorted(n for n in then if ring.owner(n) == worker)
        # Nodes present in both cycles stayed with their worker.
        assert set(before[worker]) & set(then) == set(after[worker]) & set(first)
    # n1..n5 have rates (two scrapes); n6 and n7 have one point only; n0 was forgotten.
    assert sorted(storage.snapshot().nodes) == ["n1", "n2", "n3", "n4", "n5"]


async def test_cancelling_the_pool_ends_every_worker_mid_cycle(ca: trustme.CA, kubeconfig: Path) -> None:
    cluster = Cluster(ca, 4)
    for fake in cluster.fakes.values():
        fake.routes[RESOURCE] = Hang()
    storage = Storage(staleness_ns=STALENESS, resolution_ns=10 * NS)
    async with trio.open_nursery() as nursery:
        await cluster.start(nursery)
        pool = WorkerPool(2, configure(kubeconfig), request_timeout=5.0, stop_timeout=5.0)
        async with trio.open_nursery() as owner:
            await owner.start(pool.run)
            await pool.wait_started()
            processes = pool.processes()
            owner.start_soon(cycle, pool, storage, cluster.nodes())
            for fake in cluster.fakes.values():
                await fake.request_seen.wait()
            owner.cancel_scope.cancel()
        # Each worker saw its input close and exited by itself (code 0), well before being killed.
        assert [proc.returncode for proc in processes] == [0, 0]
        nursery.cancel_scope.cancel()


@pytest.mark.parametrize("niceness", [0, 7, 19])
async def test_workers_run_at_the_servers_nice_value_plus_niceness(kubeconfig: Path, niceness: int) -> None:
    """`--scrape-worker-niceness`: each worker's nice value is the server's plus `niceness`, at
    most 19 (Linux's lowest priority); 0 leaves it equal."""
    own = os.getpriority(os.PRIO_PROCESS, 0)
    async with trio.open_nursery() as nursery:
        pool = WorkerPool(2, configure(kubeconfig), request_timeout=5.0, niceness=niceness)
        await nursery.start(pool.run)
        await pool.wait_started()
        pids = pool.worker_pids()
        seen = [os.getpriority(os.PRIO_PROCESS, pid) for pid in pids if pid is not None]
        nursery.cancel_scope.cancel()
    assert seen == [min(19, own + niceness)] * 2


async def test_a_worker_that_cannot_start_fails_its_nodes_and_is_retried(
    ca: trustme.CA, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cluster = Cluster(ca, 2)
    storage = Storage(staleness_ns=STALENESS, resolution_ns=10 * NS)
    async with trio.open_nursery() as nursery:
        await cluster.start(nursery)
        pool = WorkerPool(1, configure(tmp_path / "missing"), request_timeout=5.0, restart_delay=30.0)
        await nursery.start(pool.run)
        await pool.wait_started()
        failed = await cycle(pool, storage, cluster.nodes())
        nursery.cancel_scope.cancel()
    assert {name: str(error) for name, error in failed.items()} == {
        "n0": "scrape worker 0 is not running",
        "n1": "scrape worker 0 is not running",
    }
    starts = [r for r in caplog.records if r.getMessage() == "Scrape worker failed to start"]
    assert len(starts) == 1 and "missing" in starts[0].err  # type: ignore[attr-defined]
    assert pool.restarts() == [1]


async def test_a_result_that_cannot_be_stored_fails_its_node_only(
    ca: trustme.CA, kubeconfig: Path, caplog: pytest.LogCaptureFixture
) -> None:
    cluster = Cluster(ca, 3)
    stored: list[str] = []

    def on_batch(result: p.NodeResult) -> None:
        if result.node == "n1":
            raise KeyError("a bug")
        stored.append(result.node)

    async with trio.open_nursery() as nursery:
        await cluster.start(nursery)
        pool = WorkerPool(1, configure(kubeconfig), request_timeout=5.0)
        await nursery.start(pool.run)
        await pool.wait_started()
        result = await pool.scrape(cluster.nodes(), trio.current_time() + 5.0, on_batch)
        nursery.cancel_scope.cancel()
    assert sorted(stored) == ["n0", "n2"]
    assert {name: str(error) for name, error in result.failed.items()} == {
        "n1": "internal error storing the result: KeyError: 'a bug'"
    }
    assert pool.restarts() == [0]
    assert [r.getMessage() for r in caplog.records if r.levelname == "ERROR"] == [
        "Storing a scrape worker's result failed"
    ]
