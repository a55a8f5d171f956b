"""The tick loop: schedule, deadlines, no overlap, survival of a failing tick, health, metrics;
batches added to the storage cycle as they arrive and published once per tick, in steps; and one
end-to-end run over fake kubelets into the real storage."""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterable, Iterator, Sequence

import pytest
import trio
import trio.testing
import trustme
from prometheus_client import CollectorRegistry, generate_latest

from metrics_server.kube.objects import NodeInfo
from metrics_server.scrape.batch import KubeletError, NodeBatch, Point
from metrics_server.scrape.config import MANIFEST_ADDRESS_TYPES, KubeletClientConfig
from metrics_server.scrape.kubelet import KubeletClient
from metrics_server.scrape.loop import TIMELY_FAILURE_MESSAGE, ScrapeLoop, StorageCycle
from metrics_server.scrape.loop import Storage as LoopStorage
from metrics_server.scrape.scraper import Scraper, ScrapeResult
from metrics_server.selfmetrics import SelfMetrics
from metrics_server.storage.snapshot import ContainerUsage, DictSnapshot, NodeUsage, PodUsage
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
    """One batch per node but "bad", handed to `on_batch` as it "arrives"; each call takes
    `durations[i]` seconds of (mock) time, before the batches arrive."""

    def __init__(self, durations: Sequence[float] = ()) -> None:
        self.durations = list(durations)
        self.calls: list[tuple[float, float, list[str]]] = []

    async def scrape(
        self,
        nodes: Iterable[NodeInfo],
        deadline: float,
        on_batch: Callable[[NodeBatch], None] | None = None,
    ) -> ScrapeResult:
        names = [n.name for n in nodes]
        self.calls.append((trio.current_time(), deadline, names))
        if self.durations:
            await trio.sleep(self.durations.pop(0))
        batches = [NodeBatch(n) for n in names if n != "bad"]
        for batch in batches:
            if on_batch is not None:
                on_batch(batch)
        return ScrapeResult(batches, {"bad": KubeletError("x")})


class RecordingCycle:
    """Records what the loop hands to one storage cycle; its publish takes `steps` steps."""

    def __init__(self, begin_ns: int, *, fail: bool, steps: int, task_steps: TaskSteps) -> None:
        self.task_steps = task_steps
        self.begin_ns = begin_ns
        self.fail = fail
        self.steps = steps
        self.added: list[str] = []
        self.failed: set[str] | None = None
        self.publish_ns: int | None = None
        self.resumed_in_task_step: list[int] = []
        self.published = False

    def add(self, batch: NodeBatch) -> None:
        self.added.append(batch.node)

    def publish_steps(self, failed_nodes: Collection[str], *, now_ns: int | None = None) -> Iterator[None]:
        self.failed, self.publish_ns = set(failed_nodes), now_ns
        if self.fail:
            raise RuntimeError("disk on fire")
        for _ in range(self.steps):
            yield
            self.resumed_in_task_step.append(self.task_steps.count)
        self.published = True


class TaskSteps(trio.abc.Instrument):
    """Counts task steps: two resumptions in one step mean nothing checkpointed in between."""

    def __init__(self) -> None:
        self.count = 0

    def before_task_step(self, task: trio.lowlevel.Task) -> None:
        self.count += 1


class RecordingStorage:
    def __init__(
        self, fail_on: Collection[int] = (), publish_steps: int = 1, task_steps: TaskSteps | None = None
    ) -> None:
        self.fail_on = set(fail_on)
        self.publish_steps = publish_steps
        self.task_steps = task_steps or TaskSteps()
        self.cycles: list[RecordingCycle] = []

    def begin(self, now_ns: int) -> StorageCycle:
        fail = len(self.cycles) + 1 in self.fail_on
        self.cycles.append(
            RecordingCycle(now_ns, fail=fail, steps=self.publish_steps, task_steps=self.task_steps)
        )
        return self.cycles[-1]

    @property
    def calls(self) -> list[tuple[list[str], set[str] | None, int, int | None]]:
        """(added nodes, failed nodes, begin time, publish time) of each cycle."""
        return [(c.added, c.failed, c.begin_ns, c.publish_ns) for c in self.cycles]

    def points(self) -> tuple[int, int]:
        published = sum(c.published for c in self.cycles)
        return (published, 10 * published)


async def run_for(loop: ScrapeLoop, seconds: float) -> None:
    async with trio.open_nursery() as nursery:
        await nursery.start(loop.run)
        await trio.sleep(seconds)
        nursery.cancel_scope.cancel()


async def test_ticks_start_at_once_then_every_resolution(autojump_clock: trio.testing.MockClock) -> None:
    scraper, storage = RecordingScraper(durations=[2, 3, 1]), RecordingStorage()
    clock = iter(range(40, 50))
    loop = ScrapeLoop(
        scraper=scraper,
        nodes=Lister([make_node("a"), make_node("bad")]),
        storage=storage,
        resolution=15,
        time_ns=lambda: next(clock),
    )
    t0 = trio.current_time()
    await run_for(loop, 40)
    assert [(start - t0, deadline - t0, names) for start, deadline, names in scraper.calls] == [
        (0, 15, ["a", "bad"]),
        (15, 30, ["a", "bad"]),
        (30, 45, ["a", "bad"]),
    ]
    # The wall clock is read when the cycle begins and again when it is published.
    assert storage.calls == [(["a"], {"bad"}, 40, 41), (["a"], {"bad"}, 42, 43), (["a"], {"bad"}, 44, 45)]
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


async def test_each_publish_step_is_followed_by_a_checkpoint(autojump_clock: trio.testing.MockClock) -> None:
    task_steps = TaskSteps()
    storage = RecordingStorage(publish_steps=3, task_steps=task_steps)
    loop = ScrapeLoop(
        scraper=RecordingScraper(), nodes=Lister([make_node("a")]), storage=storage, resolution=15
    )
    trio.lowlevel.add_instrument(task_steps)
    try:
        await loop.tick()
    finally:
        trio.lowlevel.remove_instrument(task_steps)
    [cycle] = storage.cycles
    assert cycle.published
    first, second, third = cycle.resumed_in_task_step
    assert first < second < third


# --- batches flow into a real storage cycle --------------------------------------------------------

S = 1_000_000_000
T0 = 1_700_000_000 * S
START = T0 - 3600 * S


class CycleClient:
    """A network-free NodeClient for the real Scraper. Node number i of `order` answers i + 1
    seconds into the cycle, with its node sample and one pod ("ns", node) sampled at
    T0 + 15 s x `tick`, CPU tick² s (so every tick has its own rate). A node in `failing`
    answers with a KubeletError. Each answer records the snapshot served at that moment."""

    def __init__(self, storage: Storage, order: list[str]) -> None:
        self.storage = storage
        self.order = order
        self.tick = 0
        self.failing: set[str] = set()
        self.seen: list[tuple[str, DictSnapshot]] = []

    async def scrape(self, node: NodeInfo) -> NodeBatch:
        await trio.sleep(self.order.index(node.name) + 1)
        self.seen.append((node.name, self.storage.snapshot()))
        if node.name in self.failing:
            raise KubeletError('request failed, status: "500 Internal Server Error"')
        ts, cpu = T0 + self.tick * 15 * S, self.tick**2 * S
        return NodeBatch(
            node.name, Point(ts, cpu, 1000), {("ns", node.name): {"c": Point(ts, cpu, 2000, START)}}
        )

    async def retain(self, names: Collection[str]) -> list[str]:
        return []


def usage(tick: int) -> tuple[NodeUsage, PodUsage]:
    """What CycleClient's samples of `tick` and `tick - 1` give."""
    rate = (tick**2 - (tick - 1) ** 2) * S // 15
    ts = T0 + tick * 15 * S
    return NodeUsage(ts, 15 * S, rate, 1000), PodUsage(ts, 15 * S, (ContainerUsage("c", rate, 2000),))


def served(storage: Storage, node: str) -> tuple[NodeUsage | None, PodUsage | None]:
    return storage.snapshot().node(node), storage.snapshot().pod("ns", node)


class Timeline:
    """A real Storage whose cycles record when (trio time) each batch is added, and at which of
    the publish steps the served snapshot changes."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self.events: list[tuple[str, object]] = []

    def begin(self, now_ns: int) -> StorageCycle:
        return TimedCycle(self, self.storage.begin(now_ns))

    def points(self) -> tuple[int, int]:
        return self.storage.points()


class TimedCycle:
    def __init__(self, timeline: Timeline, inner: StorageCycle) -> None:
        self.timeline = timeline
        self.inner = inner
        self.fail_add: set[str] = set()

    def add(self, batch: NodeBatch) -> None:
        self.timeline.events.append(("add", (batch.node, trio.current_time())))
        self.inner.add(batch)

    def publish_steps(self, failed_nodes: Collection[str], *, now_ns: int | None = None) -> Iterator[None]:
        before = self.timeline.storage.snapshot()
        swaps = []
        for step, _ in enumerate(self.inner.publish_steps(failed_nodes, now_ns=now_ns)):
            if self.timeline.storage.snapshot() is not before:
                swaps.append(step)
                before = self.timeline.storage.snapshot()
            yield
        self.timeline.events.append(("publish", (trio.current_time(), swaps)))


def cycle_loop(storage: LoopStorage, client: CycleClient, time_ns: Callable[[], int]) -> ScrapeLoop:
    return ScrapeLoop(
        scraper=Scraper(client, request_timeout=10, max_concurrency=8, jitter=lambda bound: 0.0),
        nodes=Lister([make_node(name, "127.0.0.1") for name in client.order]),
        storage=storage,
        resolution=15,
        time_ns=time_ns,
    )


async def test_batches_are_added_as_they_arrive_and_published_once_per_tick(
    autojump_clock: trio.testing.MockClock,
) -> None:
    storage = Storage(staleness_ns=30 * S, resolution_ns=15 * S)
    timeline = Timeline(storage)
    client = CycleClient(storage, ["a", "b", "c"])
    loop = cycle_loop(timeline, client, lambda: T0 + client.tick * 15 * S + 5 * S)
    for tick in range(3):
        client.tick = tick
        before = storage.snapshot()
        start = trio.current_time()
        await loop.tick()
        # Each batch went into the cycle when it arrived; the nodes answering later still saw
        # the previous cycle served, not a mix. The snapshot changed at exactly one publish step.
        assert [(kind, value) for kind, value in timeline.events] == [
            ("add", ("a", start + 1)),
            ("add", ("b", start + 2)),
            ("add", ("c", start + 3)),
            ("publish", (start + 3, [0])),
        ]
        assert [(name, snap is before) for name, snap in client.seen] == [
            ("a", True),
            ("b", True),
            ("c", True),
        ]
        assert storage.snapshot() is not before
        timeline.events.clear()
        client.seen.clear()
    assert [served(storage, name) for name in "abc"] == [usage(2)] * 3
    assert loop.failed_ticks == 0


async def test_failed_nodes_keep_their_points_until_stale_at_publish_time(
    autojump_clock: trio.testing.MockClock,
) -> None:
    storage = Storage(staleness_ns=30 * S, resolution_ns=15 * S)
    client = CycleClient(storage, ["a", "b"])
    # Read once when a cycle begins, once when it is published.
    wall = iter([T0, T0, T0 + 15 * S, T0 + 15 * S, T0 + 30 * S, T0 + 30 * S, T0 + 45 * S, T0 + 45 * S + 1])
    loop = cycle_loop(storage, client, lambda: next(wall))
    for tick in range(2):
        client.tick = tick
        await loop.tick()
    assert served(storage, "b") == usage(1)
    client.tick, client.failing = 2, {"b"}
    await loop.tick()
    assert (served(storage, "a"), served(storage, "b")) == (usage(2), usage(1))
    # b's points were sampled at T0 + 15 s: still within the 30 s staleness when this cycle
    # began, but not when it was published.
    client.tick = 3
    await loop.tick()
    assert (served(storage, "a"), served(storage, "b")) == (usage(3), (None, None))
    assert storage.points() == (1, 1)
    assert loop.failed_ticks == 0


class FailingAdd:
    """A real Storage whose cycles raise from `add` for the nodes in `fail`."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self.fail: set[str] = set()

    def begin(self, now_ns: int) -> StorageCycle:
        cycle = self.storage.begin(now_ns)
        fail = set(self.fail)

        class Cycle:
            def add(self, batch: NodeBatch) -> None:
                if batch.node in fail:
                    raise RuntimeError("boom")
                cycle.add(batch)

            def publish_steps(
                self, failed_nodes: Collection[str], *, now_ns: int | None = None
            ) -> Iterator[None]:
                return cycle.publish_steps(failed_nodes, now_ns=now_ns)

        return Cycle()

    def points(self) -> tuple[int, int]:
        return self.storage.points()


async def test_an_exception_adding_one_batch_costs_only_that_node(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    storage = Storage(staleness_ns=30 * S, resolution_ns=15 * S)
    failing = FailingAdd(storage)
    client = CycleClient(storage, ["a", "b", "c"])
    loop = cycle_loop(failing, client, lambda: T0 + client.tick * 15 * S + 5 * S)
    for tick in range(3):
        client.tick = tick
        failing.fail = {"b"} if tick == 2 else set()
        await loop.tick()
    # b counts as a failed node this cycle: it keeps its previous points; a and c moved on.
    assert [served(storage, name) for name in "abc"] == [usage(2), usage(1), usage(2)]
    assert loop.failed_ticks == 0
    record, summary = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert (summary.getMessage(), summary.ok, summary.failed, summary.failed_nodes) == (  # type: ignore[attr-defined]
        "Scrape cycle finished",
        2,
        1,
        "b",
    )
    assert (record.getMessage(), record.node, record.err) == (  # type: ignore[attr-defined]
        "Failed to scrape node",
        "b",
        "internal error storing the batch: RuntimeError: boom",
    )
    assert record.exc_info is not None and str(record.exc_info[1]) == "boom"


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
