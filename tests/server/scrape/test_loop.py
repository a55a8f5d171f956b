"""The tick loop: schedule, deadlines, no overlap, survival of a failing tick, health, metrics; and
one end-to-end run over fake kubelets into the real storage."""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterable, Sequence

import pytest
import trio
import trio.testing
import trustme
from prometheus_client import CollectorRegistry, generate_latest

from metrics_server.kube.objects import NodeInfo
from metrics_server.scrape.batch import KubeletError, NodeBatch
from metrics_server.scrape.config import MANIFEST_ADDRESS_TYPES, KubeletClientConfig
from metrics_server.scrape.kubelet import KubeletClient
from metrics_server.scrape.loop import TIMELY_FAILURE_MESSAGE, ScrapeLoop
from metrics_server.scrape.scraper import Scraper, ScrapeResult
from metrics_server.selfmetrics import SelfMetrics
from metrics_server.storage.store import Storage

from .fakes import SAMPLE_70_PODS, FakeKubelet, Serve, make_node, node_for, server_context, start


class Lister:
    def __init__(self, nodes: list[NodeInfo]) -> None:
        self.nodes = nodes

    def get(self, name: str) -> NodeInfo | None:
        return next((n for n in self.nodes if n.name == name), None)

    def list(self) -> Iterable[NodeInfo]:
        return list(self.nodes)


class RecordingScraper:
    """Returns one batch per node; each call takes `durations[i]` seconds of (mock) time."""

    def __init__(self, durations: Sequence[float] = ()) -> None:
        self.durations = list(durations)
        self.calls: list[tuple[float, float, list[str]]] = []

    async def scrape(self, nodes: Iterable[NodeInfo], deadline: float) -> ScrapeResult:
        names = [n.name for n in nodes]
        self.calls.append((trio.current_time(), deadline, names))
        if self.durations:
            await trio.sleep(self.durations.pop(0))
        return ScrapeResult([NodeBatch(n) for n in names if n != "bad"], {"bad": KubeletError("x")})


class RecordingStorage:
    def __init__(self, fail_on: Collection[int] = ()) -> None:
        self.fail_on = set(fail_on)
        self.calls: list[tuple[list[str], set[str], int]] = []

    def store(self, batches: Sequence[NodeBatch], failed_nodes: Collection[str], now_ns: int) -> None:
        self.calls.append(([b.node for b in batches], set(failed_nodes), now_ns))
        if len(self.calls) in self.fail_on:
            raise RuntimeError("disk on fire")

    def points(self) -> tuple[int, int]:
        return (len(self.calls), 10 * len(self.calls))


async def run_for(loop: ScrapeLoop, seconds: float) -> None:
    async with trio.open_nursery() as nursery:
        await nursery.start(loop.run)
        await trio.sleep(seconds)
        nursery.cancel_scope.cancel()


async def test_ticks_start_at_once_then_every_resolution(autojump_clock: trio.testing.MockClock) -> None:
    scraper, storage = RecordingScraper(durations=[2, 3, 1]), RecordingStorage()
    loop = ScrapeLoop(
        scraper=scraper,
        nodes=Lister([make_node("a"), make_node("bad")]),
        storage=storage,
        resolution=15,
        time_ns=lambda: 42,
    )
    t0 = trio.current_time()
    await run_for(loop, 40)
    assert [(start - t0, deadline - t0, names) for start, deadline, names in scraper.calls] == [
        (0, 15, ["a", "bad"]),
        (15, 30, ["a", "bad"]),
        (30, 45, ["a", "bad"]),
    ]
    assert storage.calls == [(["a"], {"bad"}, 42)] * 3
    assert (loop.ticks, loop.failed_ticks, loop.last_tick_start, loop.last_tick_duration) == (
        3,
        0,
        t0 + 30,
        1,
    )


async def test_overrunning_tick_delays_the_next_without_overlap(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    scraper = RecordingScraper(durations=[20, 1, 1])
    loop = ScrapeLoop(
        scraper=scraper, nodes=Lister([make_node("a")]), storage=RecordingStorage(), resolution=15
    )
    t0 = trio.current_time()
    await run_for(loop, 36)
    assert [start - t0 for start, _, _ in scraper.calls] == [0, 20, 35]
    assert [
        (r.getMessage(), getattr(r, "duration", None), getattr(r, "resolution", None))
        for r in caplog.records
        if r.levelno == logging.WARNING
    ] == [("Scrape tick overran the resolution; starting the next one now", "20.000s", "15s")]


async def test_cycle_timeout_can_be_shorter_than_resolution(autojump_clock: trio.testing.MockClock) -> None:
    scraper = RecordingScraper()
    loop = ScrapeLoop(
        scraper=scraper, nodes=Lister([]), storage=RecordingStorage(), resolution=60, cycle_timeout=54
    )
    t0 = trio.current_time()
    await run_for(loop, 1)
    assert [(s - t0, d - t0) for s, d, _ in scraper.calls] == [(0, 54)]


async def test_a_failing_tick_is_logged_counted_and_the_loop_goes_on(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    storage = RecordingStorage(fail_on={1})
    loop = ScrapeLoop(
        scraper=RecordingScraper(), nodes=Lister([make_node("a")]), storage=storage, resolution=15
    )
    await run_for(loop, 20)
    assert (len(storage.calls), loop.ticks, loop.failed_ticks) == (2, 2, 1)
    [record] = [r for r in caplog.records if r.levelno == logging.ERROR]
    assert record.getMessage() == "Scrape tick failed; the next tick runs as scheduled"
    assert record.exc_info is not None and str(record.exc_info[1]) == "disk on fire"


async def test_node_filter_applies_before_scraping(autojump_clock: trio.testing.MockClock) -> None:
    scraper = RecordingScraper()
    loop = ScrapeLoop(
        scraper=scraper,
        nodes=Lister([make_node("a"), make_node("skip-me"), make_node("b")]),
        storage=RecordingStorage(),
        resolution=15,
        node_filter=lambda node: not node.name.startswith("skip"),
    )
    await loop.tick()
    assert scraper.calls[0][2] == ["a", "b"]


async def test_collection_timely(autojump_clock: trio.testing.MockClock) -> None:
    loop = ScrapeLoop(scraper=RecordingScraper(), nodes=Lister([]), storage=RecordingStorage(), resolution=15)
    assert loop.collection_timely()  # before the first tick
    t0 = trio.current_time()
    await loop.tick()
    assert loop.first_tick_done.is_set()
    assert loop.collection_timely(now=t0 + 22.5)
    assert not loop.collection_timely(now=t0 + 22.501)
    await trio.sleep(23)
    assert not loop.collection_timely()
    assert TIMELY_FAILURE_MESSAGE == "metric collection didn't finish on time"


async def test_tick_records_duration_and_storage_points(autojump_clock: trio.testing.MockClock) -> None:
    registry = CollectorRegistry()
    metrics = SelfMetrics(registry, 15)
    loop = ScrapeLoop(
        scraper=RecordingScraper(durations=[12]),
        nodes=Lister([make_node("a")]),
        storage=RecordingStorage(),
        resolution=15,
        metrics=metrics,
    )
    await loop.tick()
    text = generate_latest(registry).decode()
    assert 'metrics_server_manager_tick_duration_seconds_bucket{le="10.0"} 0.0' in text
    assert 'metrics_server_manager_tick_duration_seconds_bucket{le="12.5"} 1.0' in text
    assert "metrics_server_manager_tick_duration_seconds_sum 12.0" in text
    assert 'metrics_server_storage_points{type="node"} 1.0' in text
    assert 'metrics_server_storage_points{type="container"} 10.0' in text


def test_resolution_must_be_positive() -> None:
    with pytest.raises(ValueError, match="resolution must be positive, got 0"):
        ScrapeLoop(scraper=RecordingScraper(), nodes=Lister([]), storage=RecordingStorage(), resolution=0)


async def test_end_to_end_two_ticks_into_storage(nursery: trio.Nursery) -> None:
    ca = trustme.CA()
    good = FakeKubelet("127.0.3.1", server_context(ca, "127.0.3.1"))
    broken = FakeKubelet("127.0.3.2", server_context(ca, "127.0.3.2"), routes={})
    await start(nursery, good, broken)
    config = KubeletClientConfig(
        use_node_status_port=True,
        preferred_address_types=MANIFEST_ADDRESS_TYPES,
        cluster_ca_data=ca.cert_pem.bytes().decode(),
    )
    storage = Storage(staleness_ns=30 * 10**9, resolution_ns=15 * 10**9)
    async with KubeletClient(config) as client:
        scraper = Scraper(client, request_timeout=10, max_concurrency=8, jitter=lambda bound: 0.0)
        loop = ScrapeLoop(
            scraper=scraper,
            nodes=Lister([node_for("good", good), node_for("broken", broken)]),
            storage=storage,
            resolution=15,
        )
        await loop.tick()
        # The second sample of the node: the counter moved 15 s of CPU in 15 s of samples.
        good.routes["/metrics/resource"] = Serve(body=_advance(SAMPLE_70_PODS, 15))
        await loop.tick()
    assert good.accepted == 1
    node = storage.snapshot().node("good")
    assert node is not None
    assert (node.window_ns, node.cpu_nanocores, node.memory_bytes) == (15 * 10**9, 10**9, 1616273408)
    assert storage.snapshot().node("broken") is None
    assert loop.failed_ticks == 0


def _advance(body: bytes, seconds: int) -> bytes:
    """The node lines of the sample moved `seconds` later with `seconds` more CPU-seconds."""
    out = []
    for line in body.decode().splitlines():
        if line.startswith("node_cpu_usage_seconds_total "):
            _, value, ts = line.split()
            line = f"node_cpu_usage_seconds_total {float(value) + seconds} {int(ts) + seconds * 1000}"
        elif line.startswith("node_memory_working_set_bytes "):
            _, value, ts = line.split()
            line = f"node_memory_working_set_bytes {value} {int(ts) + seconds * 1000}"
        out.append(line)
    return ("\n".join(out) + "\n").encode()
