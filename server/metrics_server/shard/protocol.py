"""The scrape worker <-> serving process protocol: typed messages over any reliable byte stream.

A worker owns a share of the nodes: it keeps their kubelet connections, parses the bodies and
keeps their two-point store; the serving process (the "server" here) owns the node list, the
merged snapshot and the API. They talk only through this stream of messages, so a shard could as
well live in another replica across the network (a TCP or TLS stream instead of a pipe), never
through shared memory or host tricks.

Framing: each message is a 4-byte big-endian length, then that many bytes of MessagePack
(msgspec). Every message is a tagged, array-like `msgspec.Struct`: the tag is its first element.
A frame larger than `MAX_FRAME_BYTES`, a truncated frame, or bytes that are not a message of the
expected direction raise `ProtocolError`: only that stream (that worker) suffers.

Conversation (server -> worker: `Configure`, `Assign`, `Scrape`; worker -> server: `Ready`,
`Results`, `Done`, `Fatal`):

1. server: `Configure` (the first message, once); worker: `Ready`, or `Fatal` then exit when its
   configuration cannot work (an unreadable kubeconfig).
2. server: `Assign` whenever the worker's share of nodes changed (the whole share, replacing the
   previous one), then `Scrape(cycle, deadline_s)`: scrape every assigned node, no request starting
   more than `deadline_s` seconds after receipt (relative: the two ends' clocks need not agree).
3. worker: zero or more `Results(cycle, nodes)` as nodes answer (each node once per cycle), then
   one `Done(cycle, failed, requests, stats)`; only then may the next `Scrape` come.
4. End of stream from the server: the worker stops what it does and exits (drain). End of stream
   from a worker: it is gone; the server restarts it.

Why msgspec MessagePack: 5000 nodes x 30 pods of usages are 12.8 MiB per cycle, encoded in
20-40 ms and decoded straight into the store's tuples (keys, usages) in 130-180 ms; orjson (JSON)
would be 19.3 MiB, 60 ms to encode and 80 ms to decode into lists that then need converting to
those tuples, element by element (`bench/micro/shard_protocol.py`, shared machine).
"""

from __future__ import annotations

import struct
from typing import Any, Final

import msgspec
import trio

from metrics_server.scrape.batch import PodKey
from metrics_server.scrape.config import KubeletClientConfig
from metrics_server.storage.snapshot import NodeUsage, PodUsageTuple

__all__ = [
    "MAX_FRAME_BYTES",
    "PROTOCOL_VERSION",
    "Assign",
    "Configure",
    "Done",
    "Fatal",
    "FrameReader",
    "NodeResult",
    "NodeSpec",
    "ProtocolError",
    "Ready",
    "Results",
    "Scrape",
    "WorkerStats",
    "decode_from_server",
    "decode_from_worker",
    "encode",
    "kubelet_config",
    "kubelet_settings",
    "send_frame",
]

PROTOCOL_VERSION: Final = 1
"""Bumped on any incompatible change; `Configure` and `Ready` carry it and both ends refuse another."""
MAX_FRAME_BYTES: Final = 64 * 1024 * 1024
"""The largest frame either end accepts (a `Results` frame is ~13 KB: `RESULTS_PER_FRAME` nodes)."""
_LENGTH = struct.Struct(">I")


class ProtocolError(Exception):
    """The peer sent something that is not a valid frame or message; the stream is unusable."""


class KubeletSettings(msgspec.Struct, frozen=True):
    """The `scrape.config.KubeletClientConfig` fields a worker needs, credentials excepted: a
    worker loads its own (`Configure.kubeconfig`), as another replica would."""

    port: int
    use_node_status_port: bool
    preferred_address_types: tuple[str, ...]
    insecure_tls: bool
    certificate_authority: str | None
    client_certificate: str | None
    client_key: str | None
    request_timeout: float
    metrics_source: str
    max_response_bytes: int
    max_concurrency: int
    deprecated_completely_insecure: bool
    user_agent: str


class Configure(msgspec.Struct, tag="configure", array_like=True, frozen=True):
    version: int
    worker: int
    """The worker's index (its logs and self-metrics name it)."""
    kubeconfig: str
    """The kubeconfig to load kubelet credentials from (empty: in-cluster), as --kubeconfig."""
    kubelet: KubeletSettings
    resolution_ns: int
    staleness_ns: int
    log_format: str
    verbosity: int


class NodeSpec(msgspec.Struct, array_like=True, frozen=True):
    """What scraping needs of a `kube.objects.NodeInfo` (not its labels)."""

    name: str
    uid: str
    addresses: tuple[tuple[str, str], ...]
    kubelet_port: int
    metrics_path: str | None
    ready: bool


class Assign(msgspec.Struct, tag="assign", array_like=True, frozen=True):
    nodes: list[NodeSpec]


class Scrape(msgspec.Struct, tag="scrape", array_like=True, frozen=True):
    cycle: int
    deadline_s: float


class Ready(msgspec.Struct, tag="ready", array_like=True, frozen=True):
    version: int
    pid: int


class Fatal(msgspec.Struct, tag="fatal", array_like=True, frozen=True):
    message: str


class NodeResult(msgspec.Struct, array_like=True, frozen=True, gc=False):
    """One node's usages from the worker's store (`storage.store.NodeResult`)."""

    node: str
    first: bool
    usage: NodeUsage | None
    pods: dict[PodKey, PodUsageTuple]


class Results(msgspec.Struct, tag="results", array_like=True, frozen=True):
    cycle: int
    nodes: list[NodeResult]


class WorkerStats(msgspec.Struct, array_like=True, frozen=True):
    """The worker's own figures, sent with every `Done` (its self-metrics on the server)."""

    cpu_seconds: float
    """User + system CPU time of the worker process since it started."""
    resident_bytes: int
    proportional_bytes: int
    """PSS (resident pages, shared ones divided among their users); 0 where unknown."""
    duration_s: float
    """This cycle's scrape and store in the worker."""
    nodes: int


class Done(msgspec.Struct, tag="done", array_like=True, frozen=True):
    cycle: int
    failed: list[tuple[str, str]]
    """(node, error message) for every assigned node that has no result this cycle."""
    requests: list[tuple[str, bool, float | None, float]]
    """(node, success, duration_s or None when never sent, Unix time): the kubelet request records
    for the server's per-node self-metrics."""
    stats: WorkerStats


ToWorker = Configure | Assign | Scrape
ToServer = Ready | Fatal | Results | Done

_encoder = msgspec.msgpack.Encoder()
_to_worker = msgspec.msgpack.Decoder(ToWorker)
_to_server = msgspec.msgpack.Decoder(ToServer)


def encode(message: ToWorker | ToServer) -> bytes:
    """One whole frame (length prefix included) holding `message`."""
    body = _encoder.encode(message)
    return _LENGTH.pack(len(body)) + body


def decode_from_server(payload: bytes) -> ToWorker:
    try:
        return _to_worker.decode(payload)
    except msgspec.DecodeError as exc:
        raise ProtocolError(f"bad message from the server: {exc}") from None


def decode_from_worker(payload: bytes) -> ToServer:
    try:
        return _to_server.decode(payload)
    except msgspec.DecodeError as exc:
        raise ProtocolError(f"bad message from a worker: {exc}") from None


async def send_frame(stream: trio.abc.SendStream, frame: bytes) -> None:
    """Write one frame made by `encode` (the caller serialises writers)."""
    await stream.send_all(frame)


class FrameReader:
    """Frames from a byte stream, one payload per `receive()`; None at a clean end of stream."""

    def __init__(self, stream: trio.abc.ReceiveStream, *, max_bytes: int = MAX_FRAME_BYTES) -> None:
        self._stream = stream
        self._max = max_bytes
        self._buffer = bytearray()
        self._eof = False
        self._read = False

    async def receive(self) -> bytes | None:
        """The next frame's payload. Raises `ProtocolError` for an oversized or truncated frame.

        Always a checkpoint, also when the frame was already buffered: a 64 KiB read holds
        several frames, and a reader that fell behind handled every buffered frame in one
        event-loop step (12-16 ms at 5000 x 30, bench slow-step log, docs/performance.md round 7)."""
        self._read = False
        head = await self._exactly(_LENGTH.size, allow_eof=True)
        if head is None:
            return None
        (length,) = _LENGTH.unpack(head)
        if length > self._max:
            raise ProtocolError(f"frame of {length} bytes exceeds the limit of {self._max}")
        body = await self._exactly(length, allow_eof=False)
        assert body is not None
        if not self._read:
            await trio.lowlevel.checkpoint()
        return body

    async def _exactly(self, n: int, *, allow_eof: bool) -> bytes | None:
        buffer = self._buffer
        while len(buffer) < n:
            if self._eof:
                break
            self._read = True
            chunk = await self._stream.receive_some(max(65536, n - len(buffer)))
            if not chunk:
                self._eof = True
                break
            buffer += chunk
        if len(buffer) < n:
            if allow_eof and not buffer:
                return None
            raise ProtocolError(f"stream ended inside a frame ({len(buffer)} of {n} bytes)")
        out = bytes(buffer[:n])
        del buffer[:n]
        return out


def kubelet_settings(config: KubeletClientConfig) -> KubeletSettings:
    """What a worker needs of `config` (not `auth` nor `cluster_ca_data`: it loads its own)."""
    return KubeletSettings(**{name: getattr(config, name) for name in KubeletSettings.__struct_fields__})


def kubelet_config(settings: KubeletSettings) -> KubeletClientConfig:
    """The `KubeletClientConfig` of `settings`, without credentials."""
    fields: dict[str, Any] = {name: getattr(settings, name) for name in settings.__struct_fields__}
    fields["preferred_address_types"] = tuple(fields["preferred_address_types"])
    return KubeletClientConfig(**fields)
