"""JSON encoding of NodeMetrics / PodMetrics (objects, lists, Tables) with a per-snapshot fragment cache.

Every served object is `{"metadata":{..., "creationTimestamp":"<now>", "labels":{...}}, "timestamp":
..., "window": ..., "usage"|"containers": ...}` in the Go field order. Only `creationTimestamp`
changes between requests (metrics-server sets it to the response time), so each object is encoded
once per snapshot into a `Fragment` — the bytes before and after that timestamp — and a response
is a `b"".join` of fragments and the current time. Quantities, durations and times come from
`api.quantity` (the one place those formats live).

Cost, measured with `tests/server/api/bench_encode.py 150000 --no-gc --gets` (150,000 pods x 2
containers, 55 MB body, the ASGI app called as hypercorn does, a 2-core machine shared with other
work, so read orders of magnitude):

* cold list (first after a new snapshot, every fragment encoded, ~10-25 us/pod): 1.7-2.0 s;
* warm list (same snapshot, fragments reused): 0.5-0.8 s;
* longest event-loop stall: ~9 ms (was ~37 ms with one 55 MB join and 1000-object cold steps,
  and the whole request before chunking); single gets sent meanwhile took at most ~15-18 ms
  (a get needs several loop steps and waits behind one list step at each).
* CPython's cyclic GC adds gen-2 pauses of up to ~1 s once millions of objects are alive (pod
  cache + fragments); `--no-gc` removes them. That is a process-wide choice for whoever owns
  start-up (e.g. `gc.freeze()` after the caches sync), not this module's.

`FragmentCache` keeps the fragments of the two most recent snapshots so that requests straddling
a publish do not thrash it. Large responses are produced in chunks (`CHUNK` objects per piece) so
the caller can yield to the event loop between pieces. `cached_node_fragment` /
`cached_pod_fragment` are the one-object forms for gets.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import NamedTuple

import orjson

from metrics_server.api.quantity import cpu_quantity, go_duration, memory_quantity, rfc3339_seconds
from metrics_server.kube.objects import NodeInfo, PodInfo
from metrics_server.storage.snapshot import NodeUsage, PodUsage

API_VERSION = "metrics.k8s.io/v1beta1"
CHUNK = 1000
"""Objects per unit of work between event-loop checkpoints (~10 ms when encoding cold)."""

_dumps = orjson.dumps


class Fragment(NamedTuple):
    """One object's encoding around its `creationTimestamp`: `head + now + meta_tail + body_tail`."""

    head: bytes
    """`{"metadata":{"name":...[,"namespace":...],"creationTimestamp":"`"""
    meta_tail: bytes
    """`"[,"labels":{...}]}` (closes metadata)"""
    body_tail: bytes
    """`,"timestamp":...,"window":...,"usage"|"containers":...}`"""
    timestamp_ns: int
    cells: tuple[str, ...]
    """Table cells after Name: the quantities of `columns` (pod values summed), then the window."""
    columns: tuple[str, ...]
    """The usage resource names of this object, sorted (`cpu`, `memory`[, `swap`])."""
    name: str


def _usage(cpu: int, memory: int, swap: int | None) -> dict[str, str]:
    usage = {"cpu": cpu_quantity(cpu), "memory": memory_quantity(memory)}
    if swap is not None:
        usage["swap"] = memory_quantity(swap)
    return usage


class Generation:
    """The cache of one snapshot: fragments by object key, and the time strings its objects share."""

    __slots__ = ("entries", "times", "windows")

    def __init__(self) -> None:
        self.entries: dict[object, tuple[object, object, Fragment]] = {}
        self.times: dict[int, str] = {}
        self.windows: dict[int, str] = {}

    def time(self, ns: int) -> str:
        text = self.times.get(ns)
        if text is None:
            text = self.times[ns] = rfc3339_seconds(ns)
        return text

    def window(self, ns: int) -> str:
        text = self.windows.get(ns)
        if text is None:
            text = self.windows[ns] = go_duration(ns)
        return text


_PLACEHOLDER = "\x00"
_PLACEHOLDER_JSON = b"\\u0000"
_BODY_START = b',"timestamp":'


def _encode(
    meta: dict[str, object], labels: Mapping[str, str], rest: dict[str, object]
) -> tuple[bytes, bytes, bytes]:
    """One orjson call for the whole object, split around the creationTimestamp placeholder.

    Safe because names and label keys/values are validated by the kube-apiserver: they cannot hold
    NUL or the `,"timestamp":` sequence.
    """
    meta["creationTimestamp"] = _PLACEHOLDER
    if labels:
        meta["labels"] = dict(sorted(labels.items()))  # Go encodes maps with sorted keys
    encoded = _dumps({"metadata": meta, **rest})
    head, tail = encoded.split(_PLACEHOLDER_JSON, 1)
    cut = tail.index(_BODY_START)
    return head, tail[:cut], tail[cut:]


def node_fragment(
    info: NodeInfo, usage: NodeUsage, serve_swap: bool, gen: Generation | None = None
) -> Fragment:
    gen = gen or Generation()
    swap = usage.swap_bytes if serve_swap else None
    values = _usage(usage.cpu_nanocores, usage.memory_bytes, swap)
    window = gen.window(usage.window_ns)
    rest: dict[str, object] = {"timestamp": gen.time(usage.timestamp_ns), "window": window, "usage": values}
    head, meta_tail, body_tail = _encode({"name": info.name}, info.labels, rest)
    cells = (*values.values(), window)
    return Fragment(head, meta_tail, body_tail, usage.timestamp_ns, cells, tuple(values), info.name)


def pod_fragment(info: PodInfo, usage: PodUsage, serve_swap: bool, gen: Generation | None = None) -> Fragment:
    gen = gen or Generation()
    containers = []
    cpu_sum = memory_sum = 0
    swap_sum: int | None = None
    for c in usage.containers:
        swap = c.swap_bytes if serve_swap else None
        containers.append({"name": c.name, "usage": _usage(c.cpu_nanocores, c.memory_bytes, swap)})
        cpu_sum += c.cpu_nanocores
        memory_sum += c.memory_bytes
        if swap is not None:
            swap_sum = (swap_sum or 0) + swap
    window = gen.window(usage.window_ns)
    rest: dict[str, object] = {
        "timestamp": gen.time(usage.timestamp_ns),
        "window": window,
        "containers": containers,
    }
    head, meta_tail, body_tail = _encode({"name": info.name, "namespace": info.namespace}, info.labels, rest)
    if containers:
        totals = _usage(cpu_sum, memory_sum, swap_sum)
        columns: tuple[str, ...] = tuple(totals)
        cells = (*totals.values(), window)
    else:  # a pod without containers has no usage names (see table_pieces)
        columns, cells = (), (window,)
    return Fragment(head, meta_tail, body_tail, usage.timestamp_ns, cells, columns, info.name)


class FragmentCache:
    """Fragments by object key for the two most recent snapshots (identity-keyed).

    An entry is reused only if the same snapshot produced it and the object's info and usage are
    equal to those it was built from, so a changed label or a re-published usage is never stale.
    Not thread-safe; used from the one event loop.
    """

    def __init__(self) -> None:
        self._generations: list[tuple[object, Generation]] = []

    def generation(self, snapshot: object) -> Generation:
        for snap, gen in self._generations:
            if snap is snapshot:
                return gen
        gen = Generation()
        self._generations = [*self._generations[-1:], (snapshot, gen)]
        return gen


def node_fragments(
    cache: FragmentCache, snapshot: object, items: Iterable[tuple[NodeInfo, NodeUsage]], serve_swap: bool
) -> Iterator[Fragment]:
    gen = cache.generation(snapshot)
    for info, usage in items:
        yield cached_node_fragment(gen, info, usage, serve_swap)


def pod_fragments(
    cache: FragmentCache, snapshot: object, items: Iterable[tuple[PodInfo, PodUsage]], serve_swap: bool
) -> Iterator[Fragment]:
    gen = cache.generation(snapshot)
    for info, usage in items:
        yield cached_pod_fragment(gen, info, usage, serve_swap)


def cached_node_fragment(gen: Generation, info: NodeInfo, usage: NodeUsage, serve_swap: bool) -> Fragment:
    """The node's fragment from `gen` (`FragmentCache.generation(snapshot)`), encoded if missing or stale."""
    hit = gen.entries.get(info.name)
    if hit is not None and (hit[0] is info or hit[0] == info) and (hit[1] is usage or hit[1] == usage):
        return hit[2]
    fragment = node_fragment(info, usage, serve_swap, gen)
    gen.entries[info.name] = (info, usage, fragment)
    return fragment


def cached_pod_fragment(gen: Generation, info: PodInfo, usage: PodUsage, serve_swap: bool) -> Fragment:
    """The pod's fragment from `gen` (`FragmentCache.generation(snapshot)`), encoded if missing or stale."""
    key = (info.namespace, info.name)
    hit = gen.entries.get(key)
    if hit is not None and (hit[0] is info or hit[0] == info) and (hit[1] is usage or hit[1] == usage):
        return hit[2]
    fragment = pod_fragment(info, usage, serve_swap, gen)
    gen.entries[key] = (info, usage, fragment)
    return fragment


# --- bodies -----------------------------------------------------------------------------------


def now_bytes(now_s: float) -> bytes:
    return rfc3339_seconds(int(now_s * 1_000_000_000)).encode()


class Clock:
    """`now_bytes` for the current second, formatted once per second rather than per request."""

    __slots__ = ("_second", "_text")

    def __init__(self) -> None:
        self._second: int | None = None
        self._text = b""

    def now_bytes(self, now_s: float) -> bytes:
        second = int(now_s * 1_000_000_000) // 1_000_000_000  # the second now_bytes prints
        if second != self._second:
            self._second, self._text = second, now_bytes(now_s)
        return self._text


_OBJECT_PREFIX = {
    kind: b'{"kind":"' + kind.encode() + b'","apiVersion":"' + API_VERSION.encode() + b'",'
    for kind in ("NodeMetrics", "PodMetrics")
}


def object_body(kind: str, fragment: Fragment, now: bytes) -> bytes:
    """A single object with `kind`/`apiVersion`, as a get returns it."""
    prefix = _OBJECT_PREFIX.get(kind)
    if prefix is None:
        prefix = b'{"kind":"' + kind.encode() + b'","apiVersion":"' + API_VERSION.encode() + b'",'
    return b"".join((prefix, fragment.head[1:], now, fragment.meta_tail, fragment.body_tail, b"\n"))


def list_pieces(list_kind: str, fragments: Sequence[Fragment], now: bytes) -> Iterator[bytes]:
    """A `<Kind>List` body in pieces of at most `CHUNK` objects (join them for the full body)."""
    yield (
        b'{"kind":"'
        + list_kind.encode()
        + b'","apiVersion":"'
        + API_VERSION.encode()
        + b'","metadata":{},"items":['
    )
    for start in range(0, len(fragments), CHUNK):
        parts: list[bytes] = []
        for i, f in enumerate(fragments[start : start + CHUNK], start):
            if i:
                parts.append(b",")
            parts += (f.head, now, f.meta_tail, f.body_tail)
        yield b"".join(parts)
    yield b"]}\n"


INCLUDE_NONE = "None"
INCLUDE_METADATA = "Metadata"
INCLUDE_OBJECT = "Object"


def table_pieces(
    table_version: str, kind: str, fragments: Sequence[Fragment], now: bytes, include: str
) -> Iterator[bytes]:
    """A `meta.k8s.io/<table_version>` Table of `fragments` (metrics-server's columns) in pieces.

    Columns: Name, the usage names of the first object with usage (sorted), Window; with no objects Go leaves
    `columnDefinitions` and `rows` nil, which encode as `null`. `include` is the `includeObject`
    option: `None` (`"object":null`), `Metadata` (PartialObjectMetadata, default) or `Object`.
    """
    meta_gv = f"meta.k8s.io/{table_version}".encode()
    head = b'{"kind":"Table","apiVersion":"' + meta_gv + b'","metadata":{},"columnDefinitions":'
    if not fragments:
        yield head + b'null,"rows":null}\n'
        return
    # Go recomputes the column names until an object has usage (`names == nil` stays true for an
    # object without containers), so the columns come from the first object with usage, and the
    # objects before it get rows of just Name and Window.
    first = next((i for i, f in enumerate(fragments) if f.columns), len(fragments))
    columns = fragments[first].columns if first < len(fragments) else ()
    definitions = [
        {
            "name": "Name",
            "type": "string",
            "format": "name",
            "description": "Name of the resource",
            "priority": 0,
        },
        *(
            {"name": c, "type": "string", "format": "quantity", "description": "", "priority": 0}
            for c in columns
        ),
        {"name": "Window", "type": "string", "format": "duration", "description": "", "priority": 0},
    ]
    yield head + _dumps(definitions) + b',"rows":['
    if include == INCLUDE_OBJECT:
        prefix = b'{"kind":"' + kind.encode() + b'","apiVersion":"' + API_VERSION.encode() + b'",'
    else:
        prefix = b'{"kind":"PartialObjectMetadata","apiVersion":"' + meta_gv + b'",'
    for start in range(0, len(fragments), CHUNK):
        parts: list[bytes] = []
        for i, f in enumerate(fragments[start : start + CHUNK], start):
            if i:
                parts.append(b",")
            cells = f.cells if i < first else _cells(f, columns)
            parts += (b'{"cells":', _dumps([f.name, *cells]), b',"object":')
            if include == INCLUDE_NONE:
                parts.append(b"null}")
            elif include == INCLUDE_OBJECT:
                parts += (prefix, f.head[1:], now, f.meta_tail, f.body_tail, b"}")
            else:
                parts += (prefix, f.head[1:], now, f.meta_tail, b"}}")
        yield b"".join(parts)
    yield b"]}\n"


def _cells(fragment: Fragment, columns: tuple[str, ...]) -> tuple[str, ...]:
    if fragment.columns == columns:
        return fragment.cells
    # An object whose usage names differ from the first one's: Go looks each column up and prints
    # the zero Quantity ("0") for a missing one.
    values = dict(zip(fragment.columns, fragment.cells, strict=False))
    return (*(values.get(c, "0") for c in columns), fragment.cells[-1])
