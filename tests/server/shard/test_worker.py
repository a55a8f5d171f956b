"""The worker's side of the conversation, in-process over memory streams (`serve_worker`)."""

from __future__ import annotations

from pathlib import Path

import trio
import trio.testing

from metrics_server.scrape.config import KubeletClientConfig
from metrics_server.shard import protocol as p
from metrics_server.shard.worker import EXIT_CONFIG, EXIT_PROTOCOL, serve_worker

NS = 1_000_000_000


def configure(kubeconfig: str, **kubelet: object) -> p.Configure:
    settings = p.kubelet_settings(KubeletClientConfig(**kubelet))  # type: ignore[arg-type]
    return p.Configure(p.PROTOCOL_VERSION, 0, kubeconfig, settings, 15 * NS, 30 * NS, "text", 0)


async def converse(*frames: bytes, close_after: int = 0) -> tuple[int, list[p.ToServer]]:
    """Feed `frames` to a worker, end its input once it has sent `close_after` messages; its exit
    code and everything it sent."""
    to_worker, worker_in = trio.testing.memory_stream_one_way_pair()
    worker_out, from_worker = trio.testing.memory_stream_one_way_pair()
    received: list[p.ToServer] = []
    code = -1
    async with trio.open_nursery() as nursery:

        async def run() -> None:
            nonlocal code
            code = await serve_worker(worker_in, worker_out)
            await worker_out.aclose()

        nursery.start_soon(run)
        for frame in frames:
            await to_worker.send_all(frame)
        reader = p.FrameReader(from_worker)
        while True:
            if len(received) == close_after:
                await to_worker.aclose()
            payload = await reader.receive()
            if payload is None:
                break
            received.append(p.decode_from_worker(payload))
    return code, received


async def test_an_unusable_kubeconfig_is_reported_then_the_worker_exits(tmp_path: Path) -> None:
    code, sent = await converse(p.encode(configure(str(tmp_path / "missing"))))
    assert code == EXIT_CONFIG
    assert len(sent) == 1 and isinstance(sent[0], p.Fatal)
    assert "missing" in sent[0].message


async def test_a_first_message_that_is_not_configure_is_refused() -> None:
    code, sent = await converse(p.encode(p.Scrape(1, 1.0)))
    assert code == EXIT_PROTOCOL
    assert sent == [p.Fatal(f"expected Configure version {p.PROTOCOL_VERSION}")]


async def test_garbage_after_configure_ends_the_worker() -> None:
    insecure = configure("", deprecated_completely_insecure=True)
    code, sent = await converse(p.encode(insecure), b"\x00\x00\x00\x02\xc1\xc1")
    assert code == EXIT_PROTOCOL
    assert [type(m) for m in sent] == [p.Ready]


async def test_an_empty_cycle_is_done_at_once_and_closing_the_input_drains() -> None:
    insecure = configure("", deprecated_completely_insecure=True)
    frames = (p.encode(insecure), p.encode(p.Assign([])), p.encode(p.Scrape(1, 5.0)))
    code, sent = await converse(*frames, close_after=2)
    assert code == 0
    assert [type(m) for m in sent] == [p.Ready, p.Done]
    done = sent[1]
    assert isinstance(done, p.Done)
    assert (done.cycle, done.failed, done.requests, done.stats.nodes) == (1, [], [], 0)
    assert done.stats.cpu_seconds > 0 and done.stats.resident_bytes > 0


async def test_a_server_that_stops_reading_ends_the_conversation_cleanly() -> None:
    """The server closed its end of the worker's output (it is stopping) while the worker still
    had a message to send: the message is dropped, and closing the input then ends the worker
    with code 0 (it used to end with an exception group and code 1)."""
    insecure = configure("", deprecated_completely_insecure=True)
    to_worker, worker_in = trio.testing.memory_stream_one_way_pair()
    worker_out, from_worker = trio.testing.memory_stream_one_way_pair()
    code = -1
    async with trio.open_nursery() as nursery:

        async def run() -> None:
            nonlocal code
            code = await serve_worker(worker_in, worker_out)

        nursery.start_soon(run)
        await to_worker.send_all(p.encode(insecure))
        reader = p.FrameReader(from_worker)
        assert isinstance(p.decode_from_worker(await reader.receive() or b""), p.Ready)
        await from_worker.aclose()
        await to_worker.send_all(p.encode(p.Assign([])) + p.encode(p.Scrape(1, 5.0)))
        await trio.testing.wait_all_tasks_blocked()
        await to_worker.aclose()
    assert code == 0
