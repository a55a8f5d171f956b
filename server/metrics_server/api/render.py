"""JSON encoding of NodeMetrics / PodMetrics (objects, lists, Tables) with a per-snapshot fragment cache.

Every served object is `{"metadata":{..., "creationTimestamp":"<now>", "labels":{...}}, "timestamp":
..., "window": ..., "usage"|"containers": ...}` in the Go field order. Only `creationTimestamp`
changes between requests (metrics-server sets it to the response time), so each object is encoded
once per snapshot into a `Fragment` — the bytes before and after that timestamp — and a response
is a `b"".join` of fragments and the current time. Quantities, durations and times come from
`api.quantity` (the one place those formats live).

Static parts (`head`, `meta_tail`: name, namespace, labels) are kept by info identity across
snapshots (`Generation.static_parts`), so per snapshot only timestamp, window and usage are
formatted, by hand (quantities from `api.quantity`, container names through orjson); Table cells
are formatted only when a Table asks for them.

Cost at 150,000 pods x 2 containers (`python -m bench.micro.api_encode 150000 --no-gc`, CPU time
of the request): a cold all-pods list ~1.2-1.8 s, a warm one ~0.1-0.15 s (`api.listcache`); the
generation that falls out after two snapshots is freed in `sweep` steps of ~1 ms. Figures and
their history: docs/performance.md.

`FragmentCache` keeps the fragments of the two most recent snapshots so that requests straddling
a publish do not thrash it; what falls out goes to its trash, emptied in steps by `sweep` (from a
task of its own, `steps.Sweeper`, so no request pays for it). Large
responses are produced in chunks (`CHUNK` objects per piece) so the caller can yield to the event
loop between pieces. `cached_node_fragment` /
`cached_pod_fragment` are the one-object forms for gets.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, Final, cast

import orjson

from k8s_metrics.durations import format_duration as go_duration
from k8s_metrics.quantity import cpu_quantity, memory_quantity
from metrics_server.api.timestamps import rfc3339_seconds
from metrics_server.kube.objects import NodeInfo, PodInfo
from metrics_server.memory import old_dicts
from metrics_server.storage.snapshot import NodeUsage, PodUsageTuple

API_VERSION = "metrics.k8s.io/v1beta1"
CHUNK = 1000
"""Objects per unit of work between event-loop checkpoints (~10 ms when encoding cold)."""

_dumps = orjson.dumps


Fragment = tuple[bytes, bytes, bytes, int, str, "NodeUsage | PodUsageTuple", bool, bool]
"""One object's encoding around its `creationTimestamp`, a plain tuple read by index:

* `HEAD`: `{"metadata":{"name":...[,"namespace":...],"creationTimestamp":"`;
* `META_TAIL`: `"[,"labels":{...}]}` (closes metadata);
* `BODY_TAIL`: `,"timestamp":...,"window":...,"usage"|"containers":...}`;
* `TIMESTAMP` (ns), `NAME`, `USAGE` (what it was encoded from), `SERVE_SWAP`, `IS_POD`.

The object is `head + now + meta_tail + body_tail`. Table cells are formatted from `USAGE` only
when a Table asks for them (`columns_and_cells`): a JSON list never pays for them.

A plain tuple of bytes, ints, strings and the (plain tuple) usage rather than an object with
slots: the cyclic collector untracks such a tuple after its first pass, whereas ~150,000 slotted
objects per snapshot, two snapshots kept, were walked by every gen1/gen2 collection
(`bench/micro/storage_gc.py`).
"""
HEAD: Final = 0
META_TAIL: Final = 1
BODY_TAIL: Final = 2
TIMESTAMP: Final = 3
NAME: Final = 4
USAGE: Final = 5
SERVE_SWAP: Final = 6
IS_POD: Final = 7


def columns_and_cells(fragment: Fragment) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """(columns, cells) of a Table row: the usage resource names of the object, sorted (`cpu`,
    `memory`[, `swap`]), and the cells after Name: their quantities (pod values summed), then the
    window. Formatted on each call (Tables are rare; caching them would need a mutable object)."""
    usage = fragment[USAGE]
    if fragment[IS_POD]:
        return _pod_table_values(cast("PodUsageTuple", usage), fragment[SERVE_SWAP])
    return _node_table_values(cast(NodeUsage, usage), fragment[SERVE_SWAP])


def _usage(cpu: int, memory: int, swap: int | None) -> dict[str, str]:
    usage = {"cpu": cpu_quantity(cpu), "memory": memory_quantity(memory)}
    if swap is not None:
        usage["swap"] = memory_quantity(swap)
    return usage


def _node_table_values(usage: NodeUsage, serve_swap: bool) -> tuple[tuple[str, ...], tuple[str, ...]]:
    values = _usage(usage[2], usage[3], usage[4] if serve_swap else None)
    return tuple(values), (*values.values(), go_duration(usage[1]))


def _pod_table_values(usage: PodUsageTuple, serve_swap: bool) -> tuple[tuple[str, ...], tuple[str, ...]]:
    window = go_duration(usage[1])
    if not usage[2]:  # a pod without containers has no usage names (see table_pieces)
        return (), (window,)
    cpu_sum = memory_sum = 0
    swap_sum: int | None = None
    for _, cpu, memory, swap in usage[2]:
        cpu_sum += cpu
        memory_sum += memory
        if serve_swap and swap is not None:
            swap_sum = (swap_sum or 0) + swap
    totals = _usage(cpu_sum, memory_sum, swap_sum)
    return tuple(totals), (*totals.values(), window)


_Static = tuple[object, bytes, bytes]
"""(info, head, meta_tail): the encoding of an info's name, namespace and labels; the info is held so
that its id, the key, cannot be reused while the entry lives."""


class Generation:
    """The cache of one snapshot: fragments by object key, the time strings its objects share, and
    the static parts of objects (`head`, `meta_tail`) by info identity, carried over from the
    previous generation as they are used (pod and node infos outlive many snapshots)."""

    __slots__ = ("entries", "names", "pb", "previous_static", "static", "times", "windows")

    def __init__(
        self,
        previous_static: dict[int, _Static] | None = None,
        names: dict[str, str] | None = None,
        *,
        long_lived: bool = False,
    ) -> None:
        """`previous_static` and `names`: those of the generation this one follows (taken over as
        they are used). `long_lived` (a `FragmentCache`'s generations): the two mappings of one
        entry per object are made in the collector's oldest generation (`memory.old_dicts`, a
        middle collection), as they grow over a snapshot's life."""
        self.entries: dict[object, Fragment]
        """Object key (node name, or (namespace, name)) -> its fragment. Only plain tuples, which
        the collector untracks: the info a fragment was encoded from is checked through the static
        parts it shares (`HEAD`, `META_TAIL`), the usage by `USAGE`."""
        self.static: dict[int, _Static]
        self.entries, self.static = old_dicts(2) if long_lived else ({}, {})
        self.times: dict[int, str] = {}
        self.windows: dict[int, str] = {}
        self.pb: dict[object, tuple[object, object, Any]] = {}
        """Object key -> (info, usage, protobuf fragment) (`api.protobuf`; valid for that very
        info and usage object)."""
        self.previous_static: dict[int, _Static] = {} if previous_static is None else previous_static
        self.names: dict[str, str] = {} if names is None else names
        """Container name -> its JSON string (shared by every generation; bounded by `NAMES`)."""

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

    def static_parts(self, info: NodeInfo | PodInfo, namespace: str | None) -> _Static:
        key = id(info)
        hit = self.static.get(key)
        if hit is None:
            hit = self.previous_static.pop(key, None)
            if hit is None:
                meta: dict[str, object] = {"name": info.name}
                if namespace is not None:
                    meta["namespace"] = namespace
                head, meta_tail = _encode_meta(meta, info.labels)
                hit = (info, head, meta_tail)
            self.static[key] = hit
        return hit

    def container_name(self, name: str) -> str:
        text = self.names.get(name)
        if text is None:
            if len(self.names) >= NAMES:
                self.names.clear()
            text = self.names[name] = _dumps(name).decode()
        return text


NAMES = 4096
"""Distinct container names whose JSON form is remembered (the memo is cleared when full)."""

_PLACEHOLDER = "\x00"
_PLACEHOLDER_JSON = b"\\u0000"


def _encode_meta(meta: dict[str, object], labels: Mapping[str, str]) -> tuple[bytes, bytes]:
    """`metadata` in one orjson call, split around the creationTimestamp placeholder: (head, meta_tail).

    Safe because names and label keys/values are validated by the kube-apiserver: they cannot hold
    NUL.
    """
    meta["creationTimestamp"] = _PLACEHOLDER
    if labels:
        meta["labels"] = dict(sorted(labels.items()))  # Go encodes maps with sorted keys
    head, tail = _dumps({"metadata": meta}).split(_PLACEHOLDER_JSON, 1)
    return head, tail[:-1]  # without the brace closing the outer object


def _usage_json(cpu: int, memory: int, swap: int | None) -> str:
    """`_usage(...)` as orjson writes it: quantities hold nothing JSON escapes."""
    if swap is None:
        return f'{{"cpu":"{cpu_quantity(cpu)}","memory":"{memory_quantity(memory)}"}}'
    memory_text = memory_quantity(memory)
    return f'{{"cpu":"{cpu_quantity(cpu)}","memory":"{memory_text}","swap":"{memory_quantity(swap)}"}}'


def node_fragment(
    info: NodeInfo, usage: NodeUsage, serve_swap: bool, gen: Generation | None = None
) -> Fragment:
    gen = gen or Generation()
    _, head, meta_tail = gen.static_parts(info, None)
    ts, window, cpu, memory, swap = usage
    body_tail = (
        f',"timestamp":"{gen.time(ts)}","window":"{gen.window(window)}",'
        f'"usage":{_usage_json(cpu, memory, swap if serve_swap else None)}}}'
    ).encode()
    return (head, meta_tail, body_tail, ts, info.name, usage, serve_swap, False)


def pod_fragment(
    info: PodInfo, usage: PodUsageTuple, serve_swap: bool, gen: Generation | None = None
) -> Fragment:
    """Times, durations and quantities contain nothing JSON escapes, and container names go
    through orjson (`Generation.container_name`), so the hand-assembled text is orjson's."""
    gen = gen or Generation()
    _, head, meta_tail = gen.static_parts(info, info.namespace)
    names = gen.names
    if serve_swap:
        containers = ",".join(
            [
                f'{{"name":{names.get(name) or gen.container_name(name)},"usage":'
                f"{_usage_json(cpu, memory, swap)}}}"
                for name, cpu, memory, swap in usage[2]
            ]
        )
    else:  # the usual case, inlined: ~1 us less per pod
        containers = ",".join(
            [
                f'{{"name":{names.get(name) or gen.container_name(name)},"usage":{{"cpu":"'
                f'{cpu_quantity(cpu)}","memory":"{memory_quantity(memory)}"}}}}'
                for name, cpu, memory, _ in usage[2]
            ]
        )
    ts, window_ns, _ = usage
    time = gen.times.get(ts) or gen.time(ts)
    window = gen.windows.get(window_ns) or gen.window(window_ns)
    body_tail = f',"timestamp":"{time}","window":"{window}","containers":[{containers}]}}'.encode()
    return (head, meta_tail, body_tail, ts, info.name, usage, serve_swap, True)


class FragmentCache:
    """Fragments by object key for the two most recent snapshots (identity-keyed).

    An entry is reused only if the same snapshot produced it, its usage is equal to the one it was
    built from and the object's name, namespace and labels encode the same (`_fresh`), so a changed
    label or a re-published usage is never stale.
    Not thread-safe; used from the one event loop.

    A generation that falls out holds ~150,000 entries at the benchmark's size; freeing them in
    one go held the event loop for ~100-250 ms, so its containers go to `trash`, emptied in steps
    (`sweep`) by whoever `on_trash` hands it to.
    """

    def __init__(self, on_trash: Callable[[Callable[[int], bool]], object] | None = None) -> None:
        """`on_trash(sweep)` is called whenever the trash goes from empty to not empty, with this
        cache's `sweep` (`steps.Sweeper.wake` empties it in a task of its own)."""
        self._generations: list[tuple[object, Generation]] = []
        self._trash: list[tuple[dict[Any, Any] | list[Any], int]] = []
        self._on_trash = on_trash
        self._carried: tuple[dict[int, _Static], dict[str, str]] | None = None
        """The static parts and names of the newest generation, dropped before any newer one was
        made (`keep_only` of snapshots that have none yet): the next generation takes them over."""

    def generation(self, snapshot: object) -> Generation:
        for snap, gen in self._generations:
            if snap is snapshot:
                return gen
        if self._generations:
            newest = self._generations[-1][1]
            gen = Generation(newest.static, newest.names, long_lived=True)
        else:
            static, names = self._carried or (None, None)
            gen = Generation(static, names, long_lived=True)
        self._carried = None
        if len(self._generations) == 2:
            self._drop(0)
        self._generations = [*self._generations, (snapshot, gen)]
        return gen

    def keep_only(self, *snapshots: object) -> None:
        """Drop the generations of every other snapshot (once no new request is served them: at
        150,000 pods a generation and the snapshot usages its fragments hold are ~135 MB)."""
        for i in reversed(range(len(self._generations))):
            if not any(self._generations[i][0] is snapshot for snapshot in snapshots):
                self._drop(i)

    def _drop(self, index: int) -> None:
        """Drop a generation. Its static parts (the encodings of 150,000 pods' names and labels at
        the benchmark's size, ~1 s of CPU to make again) go only once no generation can take them
        over: a newer generation takes them over as they are used (its `previous_static`), and
        with no generation left the next one made will (`_carried`). Throwing them away in that
        case made the next generation encode every object's static parts again, and the serving
        process then held those of two generations at once: a step of ~80 MiB that it kept, and
        150,000 new tracked tuples per cycle for the collector's middle generation to walk (a
        60-cycle bench run at 5000 x 30, docs/performance.md round 8)."""
        old_snapshot, old = self._generations.pop(index)
        static = old.static
        containers: list[dict[Any, Any]] = [old.entries, old.pb]
        if not self._generations:
            if self._carried is not None:
                containers.append(self._carried[0])
            self._carried = (static, old.names)
        elif not self._static_in_use(static):
            containers.append(static)
        if not self._static_in_use(old.previous_static):
            containers.append(old.previous_static)
        # A request still holding `old` then finds empty dicts and encodes again: the fragments
        # it already has are its own references, never mutated.
        old.entries, old.static, old.previous_static, old.pb = {}, {}, {}, {}
        # Swept first (the trash is a stack): the snapshot, if this was its last reference, then
        # frees only its own dict, the usage objects later with the entries, in steps.
        self._throw([*((c, 1) for c in containers), ([old_snapshot], 1)])

    def _static_in_use(self, static: dict[int, _Static]) -> bool:
        """Whether a generation left (or the next one, `_carried`) still reads `static`."""
        if self._carried is not None and self._carried[0] is static:
            return True
        return any(gen.static is static or gen.previous_static is static for _, gen in self._generations)

    def discard(self, references: Iterable[object], weight: int) -> None:
        """Drop `references` in `sweep` steps, each counting as `weight` items (what dropping it may
        free). The objects themselves are not touched: whoever still holds one keeps it whole."""
        self._throw([(list(references), weight)])

    def _throw(self, items: list[tuple[dict[Any, Any] | list[Any], int]]) -> None:
        was_empty = not self._trash
        self._trash += items
        if was_empty and self._on_trash is not None:
            self._on_trash(self.sweep)

    def sweep(self, budget: int) -> bool:
        """Free up to about `budget` items of dropped caches; True when nothing is left."""
        trash = self._trash
        while trash and budget > 0:
            container, weight = trash[-1]
            take = min(-(-budget // weight), len(container))
            if isinstance(container, dict):
                popitem = container.popitem
                for _ in range(take):
                    popitem()
            else:
                del container[len(container) - take :]
            budget -= take * weight
            if not container:
                trash.pop()
        return not trash


def node_fragments(
    cache: FragmentCache, snapshot: object, items: Iterable[tuple[NodeInfo, NodeUsage]], serve_swap: bool
) -> Iterator[Fragment]:
    gen = cache.generation(snapshot)
    for info, usage in items:
        yield cached_node_fragment(gen, info, usage, serve_swap)


def pod_fragments(
    cache: FragmentCache, snapshot: object, items: Iterable[tuple[PodInfo, PodUsageTuple]], serve_swap: bool
) -> Iterator[Fragment]:
    gen = cache.generation(snapshot)
    for info, usage in items:
        yield cached_pod_fragment(gen, info, usage, serve_swap)


def cached_node_fragment(gen: Generation, info: NodeInfo, usage: NodeUsage, serve_swap: bool) -> Fragment:
    """The node's fragment from `gen` (`FragmentCache.generation(snapshot)`), encoded if missing or stale."""
    hit = gen.entries.get(info.name)
    if hit is not None and _fresh(hit, gen.static_parts(info, None), usage):
        return hit
    fragment = node_fragment(info, usage, serve_swap, gen)
    gen.entries[info.name] = fragment
    return fragment


def cached_pod_fragment(gen: Generation, info: PodInfo, usage: PodUsageTuple, serve_swap: bool) -> Fragment:
    """The pod's fragment from `gen` (`FragmentCache.generation(snapshot)`), encoded if missing or stale."""
    key = (info.namespace, info.name)
    hit = gen.entries.get(key)
    if hit is not None and _fresh(hit, gen.static_parts(info, info.namespace), usage):
        return hit
    fragment = pod_fragment(info, usage, serve_swap, gen)
    gen.entries[key] = fragment
    return fragment


def _fresh(hit: Fragment, static: _Static, usage: object) -> bool:
    """Whether `hit` is what encoding `usage` with the info of `static` gives: the same usage, and
    the same name, namespace and labels (all the fragment shows of the info), i.e. equal static
    parts (usually the very same objects: compared by identity first)."""
    used = hit[USAGE]
    return (
        (used is usage or used == usage)
        and (hit[HEAD] is static[1] or hit[HEAD] == static[1])
        and (hit[META_TAIL] is static[2] or hit[META_TAIL] == static[2])
    )


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
    return b"".join((prefix, fragment[HEAD][1:], now, fragment[META_TAIL], fragment[BODY_TAIL], b"\n"))


LIST_TAIL = b"]}\n"
"""What closes a `<Kind>List` body after its items."""


def list_head(list_kind: str) -> bytes:
    """A `<Kind>List` body up to its first item."""
    return (
        b'{"kind":"'
        + list_kind.encode()
        + b'","apiVersion":"'
        + API_VERSION.encode()
        + b'","metadata":{},"items":['
    )


def list_pieces(list_kind: str, fragments: Sequence[Fragment], now: bytes) -> Iterator[bytes]:
    """A `<Kind>List` body in pieces of at most `CHUNK` objects (join them for the full body)."""
    yield list_head(list_kind)
    for start in range(0, len(fragments), CHUNK):
        parts: list[bytes] = []
        for i, f in enumerate(fragments[start : start + CHUNK], start):
            if i:
                parts.append(b",")
            parts += (f[HEAD], now, f[META_TAIL], f[BODY_TAIL])
        yield b"".join(parts)
    yield LIST_TAIL


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
    first = next((i for i, f in enumerate(fragments) if columns_and_cells(f)[0]), len(fragments))
    columns = columns_and_cells(fragments[first])[0] if first < len(fragments) else ()
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
            own, cells = columns_and_cells(f)
            if i >= first and own != columns:
                cells = _cells(own, cells, columns)
            parts += (b'{"cells":', _dumps([f[NAME], *cells]), b',"object":')
            if include == INCLUDE_NONE:
                parts.append(b"null}")
            elif include == INCLUDE_OBJECT:
                parts += (prefix, f[HEAD][1:], now, f[META_TAIL], f[BODY_TAIL], b"}")
            else:
                parts += (prefix, f[HEAD][1:], now, f[META_TAIL], b"}}")
        yield b"".join(parts)
    yield b"]}\n"


def _cells(own: tuple[str, ...], cells: tuple[str, ...], columns: tuple[str, ...]) -> tuple[str, ...]:
    # An object whose usage names differ from the first one's: Go looks each column up and prints
    # the zero Quantity ("0") for a missing one.
    values = dict(zip(own, cells, strict=False))
    return (*(values.get(c, "0") for c in columns), cells[-1])
