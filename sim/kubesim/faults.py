"""What a faulty simulated kubelet sends (`Node.fault`, see `model.FAULT_MODES`).

Connection faults (`kubelet.Kubelet.handle`): `hang` accepts and never answers, `refuse` closes
the listening socket, `garbage` answers any request with bytes that are not HTTP (after a
successful TLS handshake), then closes.

Body faults, on `/metrics/resource` and `/stats/summary` after authentication and authorization
(`body_fault`), so that fault tests need no hand-written kubelet:

* `error`: 500 (in `kubelet`); `scrape_error`: the scrape-error gauge set to 1 (in `kubelet`);
* `huge`: a `HUGE_BODY_BYTES` body with its `Content-Length` (past the server's default
  `--kubelet-max-response-bytes` of 64 MiB); `huge_chunked`: the same, chunked, so the length is
  only known by counting. Both are streamed in `CHUNK` pieces: the simulator never holds them;
* `drip`: the real body, one byte per `DRIP_INTERVAL_S` (real time);
* `reset`: the real body's head and `Content-Length`, half the body, then a TCP reset;
* `badvalues`: the real body with unusable samples: in Prometheus text, values cycle through
  `NaN`, `-1` and `+Inf` (the scrape-error gauge is left alone); in the summary JSON, CPU and
  memory figures are negative (JSON has no NaN).

`Stats.body_bytes` counts what the streamed faults handed to the connection (for tests that
check the server stopped reading).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson
import trio

from .httpserver import Response, Send

BODY_FAULTS = ("huge", "huge_chunked", "drip", "reset", "badvalues")
HUGE_BODY_BYTES = 80 << 20
CHUNK = 64 << 10
DRIP_INTERVAL_S = 1.0
GARBAGE = b"\x00\xff\x15\x03\x03 this is not HTTP \x80\x81\r\n\r\n" * 64
_BAD_VALUES = (b"NaN", b"-1", b"+Inf")
_SUMMARY_USAGE_KEYS = frozenset(("usageCoreNanoSeconds", "usageNanoCores", "workingSetBytes"))


@dataclass(slots=True)
class Stats:
    body_bytes: int = 0


def garbage() -> Response:
    return Response(0, raw=GARBAGE)


def body_fault(mode: str, content_type: str, body: bytes, stats: Stats) -> Response:
    """The response of body fault `mode` in place of a 200 with `body` (`content_type`)."""
    headers = [("Content-Type", content_type)]
    if mode in ("huge", "huge_chunked"):

        async def huge(send: Send) -> None:
            piece = b"#" * (CHUNK - 1) + b"\n"  # comment lines: a parser reading on finds nothing wrong
            for _ in range(HUGE_BODY_BYTES // CHUNK):
                await send(piece)
                stats.body_bytes += len(piece)

        length = HUGE_BODY_BYTES if mode == "huge" else None
        return Response(200, headers, producer=huge, content_length=length)
    if mode == "drip":

        async def drip(send: Send) -> None:
            for i in range(len(body)):
                await send(body[i : i + 1])
                stats.body_bytes += 1
                await trio.sleep(DRIP_INTERVAL_S)

        return Response(200, headers, producer=drip, content_length=len(body))
    if mode == "reset":
        return Response(200, headers, body, reset_after=len(body) // 2)
    if mode == "badvalues":
        bad = bad_summary_values(body) if content_type == "application/json" else bad_prometheus_values(body)
        return Response(200, headers, bad)
    raise ValueError(f"not a body fault: {mode!r}")


def bad_prometheus_values(body: bytes) -> bytes:
    """Every sample value (but the scrape-error gauge's) replaced by NaN, -1, +Inf in turn."""
    out: list[bytes] = []
    n = 0
    for line in body.split(b"\n"):
        if line and not line.startswith(b"#") and b"scrape_error" not in line:
            if b"}" in line:  # `name{labels} value [timestamp]`
                head, _, rest = line.rpartition(b"}")
                head, rest = head + b"}", rest.lstrip(b" ")
            else:  # `name value [timestamp]`
                head, _, rest = line.partition(b" ")
            _value, _, timestamp = rest.partition(b" ")
            bad = _BAD_VALUES[n % len(_BAD_VALUES)]
            n += 1
            line = head + b" " + bad + (b" " + timestamp if timestamp else b"")
        out.append(line)
    return b"\n".join(out)


def bad_summary_values(body: bytes) -> bytes:
    """The summary with every CPU and memory figure negative."""

    def walk(value: Any) -> Any:
        if isinstance(value, dict):
            return {
                k: (-1 - v if k in _SUMMARY_USAGE_KEYS and isinstance(v, int) else walk(v))
                for k, v in value.items()
            }
        if isinstance(value, list):
            return [walk(v) for v in value]
        return value

    return orjson.dumps(walk(orjson.loads(body)))
