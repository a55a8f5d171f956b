"""One scrape cycle over fake kubelets over real TLS: partial results, deadlines (no new request after
it, in-flight ones finish), one log line per distinct failure with its real cause and one summary per
cycle, stagger, a fixed worker pool, duplicate names, self-metrics."""

from __future__ import annotations

import logging
import math
from collections.abc import Collection

import pytest
import trio
import trio.testing
import trustme
from prometheus_client import CollectorRegistry

from metrics_server.kube.objects import NodeInfo
from metrics_server.logs import KlogTextFormatter
from metrics_server.scrape.batch import KubeletError, NodeBatch
from metrics_server.scrape.config import MANIFEST_ADDRESS_TYPES, KubeletClientConfig
from metrics_server.scrape.kubelet import KubeletClient, KubeletTimeoutError
from metrics_server.scrape.scraper import NOT_SENT, InternalScrapeError, Scraper, stagger_bound
from metrics_server.selfmetrics import SelfMetrics

from .fakes import (
    RESOURCE,
    SAMPLE_70_PODS,
    Drip,
    FakeKubelet,
    Hang,
    Reset,
    Serve,
    make_node,
    node_for,
    server_context,
    start,
)

AUTOJUMP_THRESHOLD = 0.1  # see test_kubelet.py
SUMMARY = "Scrape cycle finished"


@pytest.fixture(scope="module")
def ca() -> trustme.CA:
    return trustme.CA()


def kubelet_config(ca: trustme.CA, **overrides: object) -> KubeletClientConfig:
    return KubeletClientConfig(
        use_node_status_port=True,
        preferred_address_types=MANIFEST_ADDRESS_TYPES,
        cluster_ca_data=ca.cert_pem.bytes().decode(),
        **overrides,  # type: ignore[arg-type]
    )


def no_jitter(bound: float) -> float:
    return 0.0


def node_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    """The scraper's per-node records (every line but the cycle summary)."""
    return [r for r in caplog.records if r.name == "metrics_server.scrape.scraper" and hasattr(r, "node")]


def summaries(caplog: pytest.LogCaptureFixture) -> list[tuple[int, dict[str, object]]]:
    """(level, fields) of each cycle summary line."""
    keys = ("ok", "failed", "duration", "failed_nodes", "not_sent")
    return [
        (r.levelno, {k: getattr(r, k) for k in keys if hasattr(r, k)})
        for r in caplog.records
        if r.name == "metrics_server.scrape.scraper" and r.getMessage() == SUMMARY
    ]


def failure_lines(caplog: pytest.LogCaptureFixture) -> list[tuple[int, str, dict[str, object]]]:
    """(level, message, structured fields) of the scraper's log records."""
    out = []
    for r in caplog.records:
        if r.name == "metrics_server.scrape.scraper" and r.getMessage() != SUMMARY:
            fields = {k: getattr(r, k) for k in ("node", "err", "timeout") if hasattr(r, k)}
            out.append((r.levelno, r.getMessage(), fields))
    return out


async def test_mixed_cycle_keeps_every_healthy_node_and_logs_each_failure_once(
    nursery: trio.Nursery,
    ca: trustme.CA,
    mock_clock: trio.testing.MockClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    mock_clock.autojump_threshold = AUTOJUMP_THRESHOLD
    caplog.set_level(logging.DEBUG)
    good1 = FakeKubelet("127.0.1.1", server_context(ca, "127.0.1.1"))
    good2 = FakeKubelet("127.0.1.2", server_context(ca, "127.0.1.2"))
    forbidden = FakeKubelet(
        "127.0.1.3", server_context(ca, "127.0.1.3"), routes={RESOURCE: Serve(status=403)}
    )
    hang = FakeKubelet("127.0.1.4", server_context(ca, "127.0.1.4"), routes={RESOURCE: Hang()})
    reset = FakeKubelet("127.0.1.5", server_context(ca, "127.0.1.5"), routes={RESOURCE: Reset()})
    no_san = FakeKubelet("127.0.1.6", server_context(ca, "kubelet.example"))
    not_ready = FakeKubelet(
        "127.0.1.7", server_context(ca, "127.0.1.7"), routes={RESOURCE: Serve(status=500)}
    )
    await start(nursery, good1, good2, forbidden, hang, reset, no_san, not_ready)
    nodes = [
        node_for("good-1", good1),
        node_for("forbidden", forbidden),
        node_for("hang", hang),
        node_for("reset", reset),
        node_for("no-san", no_san),
        node_for("not-ready", not_ready, ready=False),
        make_node("no-address"),
        node_for("good-2", good2),
    ]
    registry = CollectorRegistry()
    metrics = SelfMetrics(registry, 15)
    async with KubeletClient(kubelet_config(ca)) as client:
        scraper = Scraper(client, request_timeout=10, max_concurrency=64, metrics=metrics, jitter=no_jitter)
        start_time = trio.current_time()
        result = await scraper.scrape(nodes, deadline=start_time + 15)
        elapsed = trio.current_time() - start_time

    assert elapsed == pytest.approx(10.0)  # the hanging node's request timeout, not the deadline
    assert sorted(b.node for b in result.batches) == ["good-1", "good-2"]
    assert all(len(b.pods) == 70 for b in result.batches)
    errors = {name: str(err) for name, err in result.failed.items()}
    assert errors == {
        "forbidden": 'request failed, status: "403 Forbidden"',
        "hang": f'Get "https://127.0.1.4:{hang.port}/metrics/resource": no complete response within '
        "--kubelet-request-timeout (10s)",
        "reset": f'Get "https://127.0.1.5:{reset.port}/metrics/resource": '
        "[Errno 104] Connection reset by peer",
        "no-san": f'Get "https://127.0.1.6:{no_san.port}/metrics/resource": [SSL: CERTIFICATE_VERIFY_FAILED] '
        "certificate verify failed: IP address mismatch, certificate is not valid for '127.0.1.6'.",
        "not-ready": 'request failed, status: "500 Internal Server Error"',
        "no-address": "no address matched types [InternalIP ExternalIP Hostname]",
    }
    expected = []
    for name in ["forbidden", "hang", "reset", "no-san", "not-ready", "no-address"]:
        fields: dict[str, object] = {"node": name, "err": errors[name]}
        if name == "hang":
            fields["timeout"] = "10s"
            expected.append((logging.ERROR, "Failed to scrape node, timeout to access kubelet", fields))
        elif name == "not-ready":
            expected.append((logging.DEBUG, "Failed to scrape node, node is not ready", fields))
        else:
            expected.append((logging.ERROR, "Failed to scrape node", fields))
    assert sorted(failure_lines(caplog), key=repr) == sorted(expected, key=repr)
    # As the server's klog text formatter renders one of them.
    [forbidden_record] = [r for r in caplog.records if getattr(r, "node", None) == "forbidden"]
    assert KlogTextFormatter().format(forbidden_record).split("] ", 1)[1] == (
        '"Failed to scrape node" node="forbidden" err="request failed, status: \\"403 Forbidden\\""'
    )
    [(level, summary)] = summaries(caplog)
    assert level == logging.WARNING
    assert sorted(str(summary.pop("failed_nodes")).split(",")) == sorted(errors)
    assert summary == {"ok": 2, "failed": 6, "duration": "10.000s"}
    text = generate(registry)
    assert 'metrics_server_kubelet_request_total{success="true"} 2.0' in text
    assert 'metrics_server_kubelet_request_total{success="false"} 6.0' in text
    assert 'metrics_server_kubelet_request_duration_seconds_count{node="hang"} 1.0' in text
    assert 'metrics_server_kubelet_request_duration_seconds_sum{node="hang"} 10.0' in text


async def test_the_deadline_stops_new_requests_and_lets_in_flight_ones_finish(
    nursery: trio.Nursery,
    ca: trustme.CA,
    mock_clock: trio.testing.MockClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    mock_clock.autojump_threshold = AUTOJUMP_THRESHOLD
    good = FakeKubelet("127.0.2.1", server_context(ca, "127.0.2.1"))
    hang = FakeKubelet("127.0.2.2", server_context(ca, "127.0.2.2"), routes={RESOURCE: Hang()})
    queued = FakeKubelet("127.0.2.3", server_context(ca, "127.0.2.3"))
    # Four pieces one second apart: the body is complete 3 s after the request, past the deadline.
    drip_body = Drip(SAMPLE_70_PODS, chunk=len(SAMPLE_70_PODS) // 4 + 1, interval=1.0)
    drip = FakeKubelet("127.0.2.4", server_context(ca, "127.0.2.4"), routes={RESOURCE: drip_body})
    await start(nursery, good, hang, queued, drip)
    # Two requests at a time: good, then hang and drip hold both workers past the deadline (3 s),
    # so queued never gets to send its request, while hang and drip go on within their timeout.
    delays = {"good": 0.0, "hang": 0.5, "drip": 1.0, "queued": 1.5}
    nodes = [node_for(name, fake) for name, fake in [("hang", hang), ("queued", queued), ("drip", drip)]]
    nodes.append(node_for("good", good))
    received: list[tuple[str, float]] = []
    async with KubeletClient(kubelet_config(ca)) as client:
        scraper = Scraper(
            client, request_timeout=10, max_concurrency=2, jitter=lambda bound: delays[next(order)]
        )
        order = iter(n.name for n in nodes)
        start_time = trio.current_time()
        result = await scraper.scrape(
            nodes,
            deadline=start_time + 3,
            on_batch=lambda b: received.append((b.node, trio.current_time() - start_time)),
        )
        # hang's own request timeout (0.5 + 10 s) ends the cycle, not the deadline.
        assert trio.current_time() - start_time == pytest.approx(10.5)
        assert [(name, round(at)) for name, at in received] == [("good", 0), ("drip", 4)]
        assert [b.node for b in result.batches] == ["good", "drip"]
        assert {name: str(err) for name, err in result.failed.items()} == {
            "hang": f'Get "https://127.0.2.2:{hang.port}/metrics/resource": no complete response '
            "within --kubelet-request-timeout (10s)",
            "queued": "scrape cycle deadline passed before the request was sent",
        }
        assert all(isinstance(err, KubeletTimeoutError) for err in result.failed.values())
        # Only hang is logged by name; queued (never sent) is counted in the cycle summary.
        assert [fields["node"] for _, _, fields in failure_lines(caplog)] == ["hang"]
        assert [summary.get("not_sent") for _, summary in summaries(caplog)] == [1]
        assert [r.target for r in queued.requests] == []

        # The next cycle: drip's connection outlived the deadline; hang's timed out and was closed.
        hang.routes[RESOURCE] = drip.routes[RESOURCE] = Serve(body=SAMPLE_70_PODS)
        order = iter(n.name for n in nodes)
        result = await scraper.scrape(nodes, deadline=trio.current_time() + 3)
        assert sorted(b.node for b in result.batches) == ["drip", "good", "hang", "queued"]
    assert (good.accepted, drip.accepted, hang.accepted, queued.accepted) == (1, 1, 2, 1)


class StubClient:
    """A NodeClient without network: per-node canned results."""

    def __init__(self, outcomes: dict[str, NodeBatch | Exception]) -> None:
        self.outcomes = outcomes
        self.scraped: list[str] = []
        self.retained: list[set[str]] = []
        self.known: set[str] = set()

    async def scrape(self, node: NodeInfo) -> NodeBatch:
        self.scraped.append(node.name)
        self.known.add(node.name)
        await trio.lowlevel.checkpoint()
        outcome = self.outcomes[node.name]
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    async def retain(self, names: Collection[str]) -> list[str]:
        self.retained.append(set(names))
        gone = sorted(self.known - set(names))
        self.known -= set(gone)
        return gone


async def test_a_bug_in_one_node_costs_only_that_node(caplog: pytest.LogCaptureFixture) -> None:
    client = StubClient({"a": NodeBatch("a"), "bug": RuntimeError("parser exploded"), "b": NodeBatch("b")})
    scraper = Scraper(client, request_timeout=10, max_concurrency=8, jitter=no_jitter)
    nodes = [make_node("a", "127.0.0.1"), make_node("bug", "127.0.0.1"), make_node("b", "127.0.0.1")]
    result = await scraper.scrape(nodes, deadline=trio.current_time() + 15)
    assert sorted(b.node for b in result.batches) == ["a", "b"]
    assert isinstance(result.failed["bug"], InternalScrapeError)
    assert str(result.failed["bug"]) == "internal error: RuntimeError: parser exploded"
    [record] = node_records(caplog)
    assert record.getMessage() == "Failed to scrape node"
    assert (record.node, record.err) == ("bug", "internal error: RuntimeError: parser exploded")  # type: ignore[attr-defined]
    assert record.exc_info is not None and isinstance(record.exc_info[1], RuntimeError)


async def test_duplicate_node_names_first_wins() -> None:
    client = StubClient({"a": NodeBatch("a"), "b": NodeBatch("b")})
    scraper = Scraper(client, request_timeout=10, max_concurrency=8, jitter=no_jitter)
    first, second = make_node("a", "127.0.0.1"), make_node("a", "127.0.0.2")
    result = await scraper.scrape(
        [first, make_node("b", "127.0.0.3"), second], deadline=trio.current_time() + 15
    )
    assert sorted(client.scraped) == ["a", "b"]
    assert sorted(b.node for b in result.batches) == ["a", "b"]
    assert result.failed == {}


async def test_on_batch_receives_each_batch_as_it_arrives(autojump_clock: trio.testing.MockClock) -> None:
    delays = {"slow": 3.0, "a": 1.0, "bad": 2.0, "b": 2.5}

    class Delayed(StubClient):
        async def scrape(self, node: NodeInfo) -> NodeBatch:
            await trio.sleep(delays[node.name])
            return await super().scrape(node)

    batches = {name: NodeBatch(name) for name in ["slow", "a", "b"]}
    client = Delayed({**batches, "bad": KubeletError("nope")})
    received: list[tuple[NodeBatch, float]] = []
    scraper = Scraper(client, request_timeout=10, max_concurrency=8, jitter=no_jitter)
    t0 = trio.current_time()
    nodes = [make_node(n, "127.0.0.1") for n in ["slow", "a", "bad", "b"]] + [make_node("a", "127.0.0.2")]
    result = await scraper.scrape(
        nodes, t0 + 15, on_batch=lambda b: received.append((b, trio.current_time() - t0))
    )
    # Once per node that answered (the first node named "a" only), in arrival order, on arrival.
    assert [(b.node, round(t, 6)) for b, t in received] == [("a", 1.0), ("b", 2.5), ("slow", 3.0)]
    assert [b for b, _ in received] == [batches["a"], batches["b"], batches["slow"]]
    assert all(received_b is batch for (received_b, _), batch in zip(received, result.batches, strict=True))
    assert list(result.failed) == ["bad"]


async def test_nothing_starts_after_the_deadline_and_nothing_outlives_deadline_plus_timeout(
    autojump_clock: trio.testing.MockClock,
) -> None:
    durations = {"a": 1.0, "late": 20.0, "stuck": math.inf, "unsent": 1.0}
    starts = {"a": 0.0, "late": 0.0, "stuck": 0.0, "unsent": 16.0}

    class Slow(StubClient):
        """Ignores the request timeout, as a client bug would."""

        async def scrape(self, node: NodeInfo) -> NodeBatch:
            await trio.sleep(durations[node.name])
            return await super().scrape(node)

    client = Slow({name: NodeBatch(name) for name in durations})
    received: list[tuple[str, float]] = []
    scraper = Scraper(client, request_timeout=30, max_concurrency=8, jitter=no_jitter)
    nodes = [make_node(name, "127.0.0.1") for name in durations]
    order = iter(starts[n.name] for n in nodes)
    scraper._jitter = lambda bound: next(order)
    t0 = trio.current_time()
    result = await scraper.scrape(
        nodes, t0 + 15, on_batch=lambda b: received.append((b.node, trio.current_time() - t0))
    )
    # In flight at the deadline: late finishes within its timeout and is kept; stuck is cut at
    # deadline + request timeout; unsent was not eligible before the deadline and never starts.
    assert trio.current_time() - t0 == 45
    assert received == [("a", 1.0), ("late", 20.0)]
    assert [b.node for b in result.batches] == ["a", "late"]
    assert {name: str(err) for name, err in result.failed.items()} == {
        "stuck": "scrape cycle deadline passed before the kubelet answered",
        "unsent": "scrape cycle deadline passed before the request was sent",
    }
    assert all(isinstance(err, KubeletTimeoutError) for err in result.failed.values())
    assert sorted(client.scraped) == ["a", "late"]


async def test_on_batch_raising_fails_only_that_node(caplog: pytest.LogCaptureFixture) -> None:
    registry = CollectorRegistry()
    metrics = SelfMetrics(registry, 15)
    client = StubClient({"a": NodeBatch("a"), "b": NodeBatch("b"), "c": NodeBatch("c")})
    stored: list[str] = []

    def on_batch(batch: NodeBatch) -> None:
        if batch.node == "b":
            raise KeyError("lost")
        stored.append(batch.node)

    scraper = Scraper(client, request_timeout=10, max_concurrency=8, metrics=metrics, jitter=no_jitter)
    nodes = [make_node(n, "127.0.0.1") for n in "abc"]
    result = await scraper.scrape(nodes, trio.current_time() + 15, on_batch=on_batch)
    assert (sorted(stored), sorted(b.node for b in result.batches)) == (["a", "c"], ["a", "c"])
    [error] = result.failed.values()
    assert isinstance(error, InternalScrapeError) and list(result.failed) == ["b"]
    assert str(error) == "internal error storing the batch: KeyError: 'lost'"
    [record] = node_records(caplog)
    assert (record.getMessage(), record.node, record.err) == (  # type: ignore[attr-defined]
        "Failed to scrape node",
        "b",
        "internal error storing the batch: KeyError: 'lost'",
    )
    assert record.exc_info is not None and isinstance(record.exc_info[1], KeyError)
    # The kubelet did answer: the request counts as a success.
    assert 'metrics_server_kubelet_request_total{success="true"} 3.0' in generate(registry)


async def test_kubelet_error_is_a_failure_not_an_exception() -> None:
    client = StubClient({"a": KubeletError('request failed, status: "401 Unauthorized"')})
    scraper = Scraper(client, request_timeout=10, max_concurrency=8, jitter=no_jitter)
    result = await scraper.scrape([make_node("a", "127.0.0.1")], deadline=trio.current_time() + 15)
    assert (result.batches, list(result.failed)) == ([], ["a"])


@pytest.mark.parametrize(("count", "bound"), [(1, 0.008), (3, 0.024), (499, 3.992), (500, 4.0), (501, 4.0)])
async def test_stagger_bound_is_8ms_per_node_up_to_4s(count: int, bound: float) -> None:
    seen: list[float] = []

    def jitter(b: float) -> float:
        seen.append(b)
        return 0.0

    client = StubClient({f"n{i}": NodeBatch(f"n{i}") for i in range(count)})
    scraper = Scraper(client, request_timeout=10, max_concurrency=256, jitter=jitter)
    result = await scraper.scrape(
        [make_node(f"n{i}", "127.0.0.1") for i in range(count)], trio.current_time() + 15
    )
    assert len(result.batches) == count
    assert seen == [pytest.approx(bound)] * count
    assert stagger_bound(count) == pytest.approx(bound)


async def test_requests_start_after_their_stagger(autojump_clock: trio.testing.MockClock) -> None:
    started: dict[str, float] = {}

    class Timed(StubClient):
        async def scrape(self, node: NodeInfo) -> NodeBatch:
            started[node.name] = trio.current_time()
            return await super().scrape(node)

    client = Timed({"a": NodeBatch("a"), "b": NodeBatch("b")})
    delays = iter([0.004, 0.011])
    scraper = Scraper(client, request_timeout=10, max_concurrency=8, jitter=lambda bound: next(delays))
    t0 = trio.current_time()
    await scraper.scrape([make_node("a", "127.0.0.1"), make_node("b", "127.0.0.1")], t0 + 15)
    assert {k: round(v - t0, 6) for k, v in started.items()} == {"a": 0.004, "b": 0.011}


async def test_a_fixed_pool_of_workers_takes_nodes_in_stagger_order(
    autojump_clock: trio.testing.MockClock,
) -> None:
    class Spawns(trio.abc.Instrument):
        def __init__(self) -> None:
            self.times: list[float] = []

        def task_spawned(self, task: trio.lowlevel.Task) -> None:
            if task.name.startswith("metrics_server.scrape."):
                self.times.append(trio.current_time())

    started: dict[str, float] = {}

    class Timed(StubClient):
        async def scrape(self, node: NodeInfo) -> NodeBatch:
            started[node.name] = trio.current_time()
            await trio.sleep(1)
            return await super().scrape(node)

    spawns = Spawns()
    client = Timed({n: NodeBatch(n) for n in "abcde"})
    delays = iter([2.0, 0.0, 1.0, 0.5, 0.6])
    scraper = Scraper(client, request_timeout=10, max_concurrency=2, jitter=lambda bound: next(delays))
    t0 = trio.current_time()
    trio.lowlevel.add_instrument(spawns)
    try:
        result = await scraper.scrape([make_node(n, "127.0.0.1") for n in "abcde"], t0 + 15)
    finally:
        trio.lowlevel.remove_instrument(spawns)
    # Two tasks for five nodes, both at once. A node starts at its stagger time, or when a
    # worker is free if both are busy then (e at 1.0, not 0.6; c at 1.5, not 1.0).
    assert [round(t - t0, 6) for t in spawns.times] == [0.0, 0.0]
    assert {k: round(v - t0, 6) for k, v in started.items()} == {
        "b": 0.0,
        "d": 0.5,
        "e": 1.0,
        "c": 1.5,
        "a": 2.0,
    }
    assert [b.node for b in result.batches] == ["b", "d", "e", "c", "a"]


async def test_each_failure_is_logged_once_per_distinct_error_and_recovery_once(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG, logger="metrics_server.scrape.scraper")
    client = StubClient({})
    # One worker: the nodes fail, and are logged, in node order.
    scraper = Scraper(client, request_timeout=10, max_concurrency=1, jitter=no_jitter)
    ok: dict[str, NodeBatch | Exception] = {name: NodeBatch(name) for name in "abc"}
    nodes = {
        "a": make_node("a", "127.0.0.1"),
        "b": make_node("b", "127.0.0.1"),
        "c": make_node("c", "127.0.0.1", ready=False),
    }

    async def cycle(
        outcomes: dict[str, NodeBatch | Exception], names: str = "abc"
    ) -> list[tuple[str, str, str]]:
        caplog.clear()
        client.outcomes = outcomes
        await scraper.scrape([nodes[n] for n in names], trio.current_time() + 15)
        return [
            (r.levelname, r.getMessage(), str(getattr(r, "err", None) or getattr(r, "previous_err", "")))
            for r in node_records(caplog)
        ]

    x, y, z = KubeletError("x"), KubeletError("y"), KubeletError("z")
    assert await cycle({"a": ok["a"], "b": x, "c": y}) == [
        ("ERROR", "Failed to scrape node", "x"),
        ("DEBUG", "Failed to scrape node, node is not ready", "y"),
    ]
    assert summaries(caplog) == [
        (logging.WARNING, {"ok": 1, "failed": 2, "duration": "0.000s", "failed_nodes": "b,c"})
    ]
    # The same errors again: only the summary.
    assert await cycle({"a": ok["a"], "b": x, "c": y}) == []
    assert len(summaries(caplog)) == 1
    # b's error changed; c answers again.
    assert await cycle({"a": ok["a"], "b": z, "c": ok["c"]}) == [
        ("ERROR", "Failed to scrape node", "z"),
        ("INFO", "Scraping node again", "y"),
    ]
    assert await cycle(ok) == [("INFO", "Scraping node again", "z")]
    assert summaries(caplog) == [(logging.DEBUG, {"ok": 3, "failed": 0, "duration": "0.000s"})]
    # After a recovery, the same error is news again; so it is after the node left and came back.
    assert await cycle({**ok, "b": z}) == [("ERROR", "Failed to scrape node", "z")]
    assert await cycle(ok, "ac") == []
    assert await cycle({**ok, "b": z}) == [("ERROR", "Failed to scrape node", "z")]


async def test_the_summary_names_at_most_ten_failed_nodes(caplog: pytest.LogCaptureFixture) -> None:
    names = [f"n{i:02}" for i in range(12)]
    client = StubClient({name: KubeletError("x") for name in names})
    scraper = Scraper(client, request_timeout=10, max_concurrency=1, jitter=no_jitter)
    await scraper.scrape([make_node(name, "127.0.0.1") for name in names], trio.current_time() + 15)
    [(_, summary)] = summaries(caplog)
    assert summary["failed_nodes"] == ",".join(names[:10])
    assert (summary["ok"], summary["failed"]) == (0, 12)


async def test_nodes_left_unsent_are_counted_in_the_summary_not_logged_by_name(
    autojump_clock: trio.testing.MockClock, caplog: pytest.LogCaptureFixture
) -> None:
    class Slow(StubClient):
        async def scrape(self, node: NodeInfo) -> NodeBatch:
            await trio.sleep(10)
            return await super().scrape(node)

    names = ["a", "b", "c"]
    client = Slow({name: NodeBatch(name) for name in names})
    # One worker, 10 s per node, a 15 s deadline: two nodes are scraped, one is left unsent.
    scraper = Scraper(client, request_timeout=10, max_concurrency=1, jitter=no_jitter)
    nodes = [make_node(name, "127.0.0.1") for name in names]
    result = await scraper.scrape(nodes, trio.current_time() + 15)
    assert {name: str(err) for name, err in result.failed.items()} == {"c": NOT_SENT}
    assert failure_lines(caplog) == []
    assert summaries(caplog) == [
        (logging.WARNING, {"ok": 2, "failed": 1, "duration": "20.000s", "failed_nodes": "c", "not_sent": 1})
    ]
    # Next cycle c goes first and answers: no "Scraping node again", it was never logged as failing.
    caplog.clear()
    result = await scraper.scrape(nodes[2:] + nodes[:2], trio.current_time() + 15)
    assert (sorted(b.node for b in result.batches), list(result.failed)) == (["a", "c"], ["b"])
    assert failure_lines(caplog) == []
    assert [summary["not_sent"] for _, summary in summaries(caplog)] == [1]


def test_max_concurrency_must_be_positive() -> None:
    with pytest.raises(ValueError, match="max_concurrency must be positive, got 0"):
        Scraper(StubClient({}), request_timeout=10, max_concurrency=0)


async def test_default_jitter_stays_within_the_bound() -> None:
    client = StubClient({})
    scraper = Scraper(client, request_timeout=10, max_concurrency=1)
    draws = [scraper._jitter(0.5) for _ in range(200)]
    assert all(0.0 <= d <= 0.5 for d in draws)
    assert len(set(draws)) > 100  # actually random, not a constant


async def test_nodes_that_leave_are_forgotten_by_client_and_metrics() -> None:
    registry = CollectorRegistry()
    metrics = SelfMetrics(registry, 15)
    client = StubClient({"a": NodeBatch("a"), "b": NodeBatch("b")})
    scraper = Scraper(client, request_timeout=10, max_concurrency=8, metrics=metrics, jitter=no_jitter)
    await scraper.scrape([make_node("a", "127.0.0.1"), make_node("b", "127.0.0.1")], trio.current_time() + 15)
    assert 'node="b"' in generate(registry)
    await scraper.scrape([make_node("a", "127.0.0.1")], trio.current_time() + 15)
    assert client.retained == [{"a", "b"}, {"a"}]
    text = generate(registry)
    assert 'node="b"' not in text and 'node="a"' in text


async def test_empty_node_list() -> None:
    client = StubClient({})
    scraper = Scraper(client, request_timeout=10, max_concurrency=8)
    result = await scraper.scrape([], trio.current_time() + 15)
    assert (result.batches, result.failed) == ([], {})


def generate(registry: CollectorRegistry) -> str:
    from prometheus_client import generate_latest

    return generate_latest(registry).decode()
