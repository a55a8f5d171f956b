"""The worker <-> server frame protocol: round trips, and every way a peer can send garbage."""

from __future__ import annotations

import pytest
import trio
import trio.testing

from metrics_server.scrape.config import KubeletClientConfig
from metrics_server.shard import protocol as p
from metrics_server.storage.snapshot import NodeUsage

CONFIGURE = p.Configure(
    p.PROTOCOL_VERSION, 1, "/k", p.kubelet_settings(KubeletClientConfig()), 15, 30, "json", 4
)
RESULTS = p.Results(
    7,
    [
        p.NodeResult(
            "n1",
            False,
            NodeUsage(10, 15, 250_000_000, 1 << 30, None),
            {("ns", "pod"): (9, 15, (("a", 1, 2, None), ("b", 3, 4, 5)))},
        ),
        p.NodeResult("n2", True, None, {}),
    ],
)
DONE = p.Done(
    7,
    [("n3", "request failed")],
    [("n1", True, 0.01, 1.7e9), ("n3", False, None, 1.7e9)],
    p.WorkerStats(1.5, 100, 90, 2.0, 3),
)


def test_messages_round_trip_in_their_direction() -> None:
    for message in (
        CONFIGURE,
        p.Assign([p.NodeSpec("n", "u", (("InternalIP", "1.2.3.4"),), 10250, None, True)]),
        p.Scrape(3, 1.5),
    ):
        assert p.decode_from_server(p.encode(message)[4:]) == message
    for message in (p.Ready(p.PROTOCOL_VERSION, 42), p.Fatal("no"), RESULTS, DONE):
        assert p.decode_from_worker(p.encode(message)[4:]) == message


def test_decoded_usages_are_the_stores_plain_tuples() -> None:
    decoded = p.decode_from_worker(p.encode(RESULTS)[4:])
    assert isinstance(decoded, p.Results)
    pods = decoded.nodes[0].pods
    usage = pods[("ns", "pod")]
    assert type(usage) is tuple and type(usage[2]) is tuple and type(usage[2][0]) is tuple
    assert type(next(iter(pods))) is tuple
    assert decoded.nodes[0].usage == NodeUsage(10, 15, 250_000_000, 1 << 30, None)


def test_kubelet_settings_carry_every_field_but_credentials() -> None:
    config = KubeletClientConfig(port=1, request_timeout=3.0, max_concurrency=7, insecure_tls=True)
    again = p.kubelet_config(p.kubelet_settings(config))
    assert again == config


def test_a_message_of_the_other_direction_is_refused() -> None:
    with pytest.raises(p.ProtocolError, match="bad message from a worker"):
        p.decode_from_worker(p.encode(CONFIGURE)[4:])
    with pytest.raises(p.ProtocolError, match="bad message from the server"):
        p.decode_from_server(p.encode(DONE)[4:])
    with pytest.raises(p.ProtocolError):
        p.decode_from_worker(b"\xc1garbage")


async def reader_over(
    data: bytes, max_bytes: int = p.MAX_FRAME_BYTES
) -> tuple[list[bytes], BaseException | None]:
    send, receive = trio.testing.memory_stream_one_way_pair()
    reader = p.FrameReader(receive, max_bytes=max_bytes)
    frames: list[bytes] = []
    error: BaseException | None = None
    async with trio.open_nursery() as nursery:

        async def feed() -> None:
            # Byte by byte: frames are reassembled whatever the chunking.
            for i in range(len(data)):
                await send.send_all(data[i : i + 1])
            await send.aclose()

        nursery.start_soon(feed)
        try:
            while (frame := await reader.receive()) is not None:
                frames.append(frame)
        except p.ProtocolError as exc:
            error = exc
    return frames, error


async def test_frames_split_anywhere_are_reassembled_and_end_cleanly() -> None:
    data = p.encode(p.Scrape(1, 2.0)) + p.encode(p.Ready(1, 2))
    frames, error = await reader_over(data)
    assert error is None
    assert [p.decode_from_server(frames[0]), p.decode_from_worker(frames[1])] == [
        p.Scrape(1, 2.0),
        p.Ready(1, 2),
    ]


async def test_every_frame_is_a_checkpoint_also_when_already_buffered() -> None:
    send, receive = trio.testing.memory_stream_one_way_pair()
    reader = p.FrameReader(receive)
    await send.send_all(b"".join(p.encode(p.Scrape(i, 2.0)) for i in range(3)))  # one read holds all
    for i in range(3):
        with trio.testing.assert_checkpoints():
            frame = await reader.receive()
        assert frame is not None and p.decode_from_server(frame) == p.Scrape(i, 2.0)


async def test_a_truncated_frame_is_a_protocol_error() -> None:
    frames, error = await reader_over(p.encode(p.Scrape(1, 2.0))[:-1])
    assert frames == []
    assert str(error) == "stream ended inside a frame (17 of 18 bytes)"


async def test_an_oversized_frame_is_refused_before_reading_it() -> None:
    frames, error = await reader_over(b"\x00\x01\x00\x00" + b"x" * 10, max_bytes=1000)
    assert frames == []
    assert str(error) == "frame of 65536 bytes exceeds the limit of 1000"
