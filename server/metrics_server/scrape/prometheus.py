"""Parse a kubelet `/metrics/resource` body (Prometheus text format 0.0.4) into a `NodeBatch`.

Also home of the rules both kubelet formats share (`assemble_batch`): which samples make a complete
node or container point, how duplicates are resolved and which pods are left out. `summary.py` feeds
the same rules, so one kubelet state gives the same batch whichever endpoint it was read from.

Accepted text: every variant kubelets have served since 1.14: `[ALPHA]`/`[STABLE]` HELP lines (or
none), samples with or without millisecond timestamps, the `_total` names and 1.18.0's short
`node_cpu_usage_seconds`/`container_cpu_usage_seconds`, CPU declared as gauge (`/v1alpha1`), any
label order, extra labels, escaped label values, blank and comment lines, CRLF line ends.

Rules (where we differ from metrics-server, it says so):

* Values. CPU seconds become integer nanoseconds as `round(v * 1e9)`. That equals the kubelet's own
  integer counter exactly up to 4e15 ns (about 46 core-days); above it the float64 the kubelet printed
  no longer holds every nanosecond and the result is off by a few ns (at most about a dozen at 1e17 ns),
  far below what a 15 s rate window can see. Bytes become `int(v)` (truncation, as metrics-server).
  A value that is NaN, infinite, negative, or does not fit in int64 once converted is *unusable*:
  for CPU or memory that drops the node point or the pod (as a missing sample would); for swap it
  gives `swap_bytes=None`. (The swap underflow `1.8446743709127774e+19` is such a value.)
* Timestamps are milliseconds; a sample without one gets `request_time_ns`. A timestamp that is not
  in (0, 2^63) ns is unusable: such a CPU sample drops the node point or the pod.
* Duplicate series (same name and labels) keep the sample with the newest timestamp; on a tie, the
  larger value (the rule of metrics-server PR #1779), so the result does not depend on line order.
  CPU, memory, start time and swap are each resolved on their own.
* `Point.timestamp_ns` is the CPU sample's time (metrics-server takes whichever of CPU and memory
  came last). Start times <= 0 (Go's zero time) are ignored (start_time_ns=0); the timestamp on a
  start-time sample is ignored. Node points have start_time_ns=0: the text form cannot say it.
* Node point: dropped when its CPU timestamp is unusable or CPU or memory is missing, 0 or unusable.
* Pods: a pod any of whose containers lacks CPU or memory, or has either 0 or unusable, is left out
  entirely. One exception (ours): a container whose CPU *and* memory are both exactly 0 is a finished
  container (a terminated init container on Windows, whose usage the kubelet still reports as 0):
  it is left out of its pod and the pod is kept. It adds nothing to a sum; metrics-server would drop
  the pod for as long as the kubelet lists the old container. A pod with no containers left is omitted.
* Series with `container=""` or `container="POD"` (cAdvisor sandbox conventions) are ignored.
* `scrape_error`/`resource_scrape_error` non-zero with nothing usable parsed -> `KubeletError`;
  with usable samples, the batch is returned. A Prometheus client-library error page
  (`An error has occurred while serving metrics`) -> `KubeletError`.

Errors: `ParseError` names the line number and quotes an excerpt. Every sample line is checked, not
only the families we read (a malformed line means the body cannot be trusted, e.g. it was cut off);
so are the labels of the container families (`container`, `namespace`, `pod` present, the last two
non-empty). HELP/TYPE/other comment lines are not checked. A body with no samples at all gives an
empty batch. No other exception escapes, for any bytes.

Speed: `_parse_canonical` reads a body in the kubelet's canonical shape a family at a time (split
into columns, converted with C-level map/zip); anything else, and every error, goes through the exact
line parser `parse_lines`, which also serves as the reference (test_parser_fuzz.py checks they agree).
Measured 2026-11-27 on CPython 3.11, one core of a 2-core machine shared with other jobs (load 4-6),
old and new interleaved, best of 15, CPU time: kubesim's 30-pod stable body (193 lines, 22 KB)
0.338 -> 0.297 ms; the 70-pod kind 1.21 capture 0.529 -> 0.426 ms; a 110-pod x 2-container
1.29-style body 1.73 -> 1.45 ms (1.15-1.25x); instructions per 30-pod parse (valgrind) 3.63M -> 3.14M.
Most of what is left is inherent: float()/int() of every number and a string per label value.
Command: `.venv/bin/python tests/server/scrape/test_prometheus.py`.
"""

from __future__ import annotations

import re
from itertools import groupby, repeat
from math import isnan
from operator import itemgetter
from typing import Final, cast

from metrics_server.scrape.batch import KubeletError, NodeBatch, ParseError, PodKey, Point

ContainerKey = tuple[str, str, str]
"""(namespace, pod name, container name)."""

Sample = tuple[int, int]
"""(timestamp ns, value) after conversion; value -1 means unusable, timestamp 0 means unusable."""

INT64_LIMIT: Final = 1 << 63
# 2^63 as a float: the first float whose int() no longer fits in int64.
_FLOAT_INT64_LIMIT: Final = 9.223372036854775808e18
# Above this many core-seconds, round(v * 1e9) would not fit in int64.
_CPU_SECONDS_LIMIT: Final = 9223372036.854775

# The families we read (container kinds are contiguous: the parser tests a range).
_NODE_CPU: Final = 1
_NODE_MEM: Final = 2
_NODE_SWAP: Final = 3
_C_CPU: Final = 4
_C_MEM: Final = 5
_C_START: Final = 6
_C_SWAP: Final = 7
_ERR: Final = 8
_IGNORED: Final = 0
_NS_PER_MS: Final = 1_000_000
_NS_PER_S_FLOAT: Final = 1e9
_WANTED: Final[dict[str, int]] = {
    "node_cpu_usage_seconds_total": _NODE_CPU,
    "node_cpu_usage_seconds": _NODE_CPU,  # 1.18.0 before k8s PR #89540
    "node_memory_working_set_bytes": _NODE_MEM,
    "node_swap_usage_bytes": _NODE_SWAP,
    "container_cpu_usage_seconds_total": _C_CPU,
    "container_cpu_usage_seconds": _C_CPU,
    "container_memory_working_set_bytes": _C_MEM,
    "container_start_time_seconds": _C_START,
    "container_swap_usage_bytes": _C_SWAP,
    "scrape_error": _ERR,
    "resource_scrape_error": _ERR,
}

_METRIC_NAME: Final = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
_LABEL_NAME: Final = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")
_WS: Final = "[ \t]*"
_LABEL_PAIR: Final = rf'([a-zA-Z_][a-zA-Z0-9_]*){_WS}={_WS}"((?:[^"\\]|\\.)*)"'
# The exact grammar of a sample line (used for every line the fast path does not take).
# No two `[ \t]*` are ever adjacent, so a failing match cannot backtrack quadratically.
_SLOW_LINE: Final = re.compile(
    rf"{_WS}(?P<name>[a-zA-Z_:][a-zA-Z0-9_:]*)"
    rf"(?:{_WS}\{{{_WS}(?P<labels>(?:{_LABEL_PAIR}{_WS},{_WS})*(?:{_LABEL_PAIR}{_WS}(?:,{_WS})?)?)\}})?"
    rf"{_WS}(?<=[ \t}}])(?P<value>[^ \t]+)(?:[ \t]+(?P<ts>[^ \t]+))?{_WS}"
)
_SLOW_PAIR: Final = re.compile(_LABEL_PAIR)
_ESCAPE: Final = re.compile(r"\\(.)")
_ESCAPES: Final[dict[str, str]] = {"\\": "\\", '"': '"', "n": "\n"}

_ERROR_PAGE: Final = b"An error has occurred while serving metrics"
_EXCERPT_LEN: Final = 80


class _LineError(Exception):
    """A sample line is malformed; the caller adds the line number and excerpt."""


def excerpt(text: str) -> str:
    """A short quoted piece of bad input for an error message."""
    if len(text) > _EXCERPT_LEN:
        text = text[:_EXCERPT_LEN] + "..."
    return repr(text)


def _unescape(match: re.Match[str]) -> str:
    try:
        return _ESCAPES[match.group(1)]
    except KeyError:
        raise _LineError(f"invalid escape sequence {match.group(0)!r} in a label value") from None


def _slow_line(line: str) -> tuple[str, dict[str, str], str, str | None] | None:
    """Parse one line exactly; None for blank and comment lines. Raises _LineError."""
    stripped = line.strip(" \t")
    if not stripped or stripped[0] == "#":
        return None
    m = _SLOW_LINE.fullmatch(line)
    if m is None:
        raise _LineError("not a sample line (name{labels} value [timestamp])")
    labels: dict[str, str] = {}
    raw = m.group("labels")
    if raw:
        for pair in _SLOW_PAIR.finditer(raw):
            key, value = pair.group(1), pair.group(2)
            if key in labels:
                raise _LineError(f"label {key!r} given twice")
            labels[key] = _ESCAPE.sub(_unescape, value) if "\\" in value else value
    return m.group("name"), labels, m.group("value"), m.group("ts")


def assemble_batch(
    node: str,
    node_cpu: Sample | None,
    node_mem: Sample | None,
    node_swap: Sample | None,
    cpu: dict[ContainerKey, Sample],
    mem: dict[ContainerKey, Sample],
    start: dict[ContainerKey, Sample],
    swap: dict[ContainerKey, Sample],
) -> NodeBatch:
    """Apply the dropping rules (module docstring) to resolved samples and build the batch.

    CPU values are nanoseconds, memory and swap bytes, start times nanoseconds since the epoch;
    each is -1 when unusable (and start times 0 when unknown). Timestamps are 0 when unusable.
    """
    batch = NodeBatch(node=node)
    if (
        node_cpu is not None
        and node_mem is not None
        and node_cpu[0] > 0
        and node_cpu[1] > 0
        and node_mem[1] > 0
    ):
        node_swap_bytes = node_swap[1] if node_swap is not None and node_swap[1] >= 0 else None
        batch.node_point = Point(node_cpu[0], node_cpu[1], node_mem[1], 0, node_swap_bytes)

    pods = batch.pods
    new_point = tuple.__new__  # Point's own __new__ is a Python function: 3x slower
    bad: set[PodKey] = set()
    cpu_keys = cpu.keys()
    for others in (mem, start, swap):
        if others:
            for key in others.keys() - cpu_keys:
                bad.add((key[0], key[1]))
    for key, c in cpu.items():
        namespace, pod, container = key
        pod_key = (namespace, pod)
        if pod_key in bad:
            continue
        m = mem.get(key)
        if m is None:
            bad.add(pod_key)
            continue
        cpu_ns = c[1]
        memory = m[1]
        if cpu_ns == 0 and memory == 0:
            continue  # a finished container: see the module docstring
        if cpu_ns <= 0 or memory <= 0 or c[0] <= 0:
            bad.add(pod_key)
            continue
        s = start.get(key)
        w = swap.get(key)
        start_ns = s[1] if s is not None else 0
        swap_bytes = w[1] if w is not None and w[1] >= 0 else None
        point = new_point(Point, (c[0], cpu_ns, memory, start_ns, swap_bytes))
        containers = pods.get(pod_key)
        if containers is None:
            pods[pod_key] = {container: point}
        else:
            containers[container] = point
    for pod_key in bad:
        pods.pop(pod_key, None)
    return batch


def parse_resource_metrics(body: bytes, *, node: str, request_time_ns: int) -> NodeBatch:
    """Parse a `/metrics/resource` (or `/metrics/resource/v1alpha1`) body into a NodeBatch.

    `request_time_ns` (just before the request was sent) stands in for missing timestamps.
    Raises ParseError for malformed input (line number + excerpt), KubeletError for a body that only
    reports a failure. Never raises anything else.
    """
    if body.startswith(_ERROR_PAGE):
        page = " ".join(body[len(_ERROR_PAGE) : len(_ERROR_PAGE) + 400].decode("utf-8", "replace").split())
        raise KubeletError(f"kubelet served a metrics error page: {excerpt(page)}")
    if body.isascii() and b"\\" not in body and b"\t" not in body and b"\r" not in body:
        batch = _parse_canonical(body.decode("ascii"), node, request_time_ns)
        if batch is not None:
            return batch
    return parse_lines(body, node=node, request_time_ns=request_time_ns)


def _parse_canonical(text: str, node: str, request_time_ns: int) -> NodeBatch | None:
    """The fast path: a body in the kubelet's canonical shape, a family at a time; else None.

    Canonical: printable ASCII lines (no tab, CR or backslash), `name value[ ts]` or
    `name{k="v",...} value[ ts]` with single spaces. Comment lines cut the body into runs of
    sample lines; a run whose lines share one shape (same name, same label names in the same
    order, all with or all without timestamps) is split into columns and converted with C-level
    `map`/`zip` instead of a Python step per line; other runs are cut into such groups.
    Anything else, and any number int() or float() refuses, returns None: `parse_lines` then
    parses the body again and makes every error message. What this accepts, `parse_lines`
    accepts with the same result (tests/server/scrape/test_parser_fuzz.py compares the two).
    """
    if text[-1:] == "\n":
        text = text[:-1]
    columns = _Columns(request_time_ns)
    try:
        for block in ("\n" + text).split("\n#"):
            lines = block.split("\n")
            del lines[0]  # the rest of a comment line (or the empty string before the first line)
            if lines and not columns.add(lines):
                return None
    except ValueError:
        return None
    return _finish(
        node,
        columns.node_cpu,
        columns.node_mem,
        columns.node_swap,
        columns.cpu,
        columns.mem,
        columns.start,
        columns.swap,
        columns.failed,
    )


def _series_name(line: str) -> str:
    """What a sample line starts with up to its label block or value (grouping key of odd runs)."""
    brace, space = line.find("{"), line.find(" ")
    end = brace if 0 <= brace < space or space < 0 else space
    return line[:end] if end >= 0 else line


_LabelSet = tuple[str, ...]
"""A checked label block: (namespace, pod, container) for a container series, `_SANDBOX` for one
of the sandbox series we ignore, `_OTHER` for any other label set."""
_SANDBOX: Final[_LabelSet] = ("sandbox",)
_OTHER: Final[_LabelSet] = ()


def _label_set(block: str) -> _LabelSet | None:
    """`{k="v",...}` in canonical form (no escapes: the caller excluded backslashes) -> its
    `_LabelSet`; None when the block is not canonical or repeats a label."""
    parts = block[1:-1].split('"')
    n = len(parts)
    if n < 3 or not n & 1 or parts[-1]:
        return None
    first = parts[0]
    if first[-1:] != "=" or not _LABEL_NAME.fullmatch(first[:-1]):
        return None
    labels = {first[:-1]: parts[1]}
    for i in range(2, n - 1, 2):
        sep = parts[i]
        if sep[:1] != "," or sep[-1:] != "=" or not _LABEL_NAME.fullmatch(sep[1:-1]):
            return None
        labels[sep[1:-1]] = parts[i + 1]
    if len(labels) != n >> 1:
        return None
    container, namespace, pod = labels.get("container"), labels.get("namespace"), labels.get("pod")
    if container is None or not namespace or not pod:
        return _OTHER
    if not container or container == "POD":
        return _SANDBOX
    return (namespace, pod, container)


class _Columns:
    """The samples `_parse_canonical` has read so far (the same as `parse_lines` keeps)."""

    __slots__ = (
        "cpu",
        "failed",
        "label_sets",
        "mem",
        "node_cpu",
        "node_mem",
        "node_swap",
        "request_time_ns",
        "start",
        "swap",
    )

    def __init__(self, request_time_ns: int) -> None:
        self.request_time_ns = request_time_ns
        self.node_cpu: Sample | None = None
        self.node_mem: Sample | None = None
        self.node_swap: Sample | None = None
        self.cpu: dict[ContainerKey, Sample] = {}
        self.mem: dict[ContainerKey, Sample] = {}
        self.start: dict[ContainerKey, Sample] = {}
        self.swap: dict[ContainerKey, Sample] = {}
        self.failed = False
        self.label_sets: dict[str, _LabelSet | None] = {}

    def add(self, lines: list[str]) -> bool:
        """Read a run of sample lines; False when it is not canonical. ValueError: a bad number."""
        count = len(lines)
        toks = list(map(str.split, lines, repeat(" ")))
        n = len(toks[0])
        if n not in (2, 3) or (count > 1 and list(map(len, toks)).count(n) != count):
            return self._grouped(lines)
        cols = list(zip(*toks, strict=True))
        series = cols[0]
        first = series[0]
        brace = first.find("{")
        if brace < 0:
            return all(map(self._plain, lines))
        if count > 1 and not all(map(str.startswith, series, repeat(first[: brace + 1]))):
            return self._grouped(lines)
        kind = _name_kind(first[:brace])
        if kind < 0 or not all(map(str.endswith, series, repeat("}"))):
            return False
        if "_" in "".join(cols[1]) or (n == 3 and "_" in "".join(cols[2])):
            return False
        values = list(map(float, cols[1]))
        stamps = self._stamps(cols[2]) if n == 3 else [self.request_time_ns] * count
        # The label blocks, `{...}`: each distinct one is checked once per body.
        blocks = list(map(itemgetter(slice(brace, None)), series))
        label_sets = self.label_sets
        keys = list(map(label_sets.get, blocks))
        if None in keys:
            if not self._learn(blocks):
                return False
            keys = list(map(label_sets.__getitem__, blocks))
        if kind == _IGNORED:
            return True
        if kind < _C_CPU or kind == _ERR:
            for ts, v in zip(stamps, values, strict=True):
                self._node_sample(kind, ts, v)
            return True
        if kind == _C_CPU:
            target, ints = self.cpu, _scaled(values, 0.0)
        elif kind == _C_START:
            target, ints = self.start, _scaled(values, None)
        else:
            target, ints = (self.mem if kind == _C_MEM else self.swap), _truncated(values)
        samples = list(zip(stamps, ints, strict=True))
        if _OTHER in keys or _SANDBOX in keys:
            if _OTHER in keys:
                return False  # a label missing or empty: parse_lines says which
            kept = [i for i, key in enumerate(keys) if key is not _SANDBOX]
            keys = [keys[i] for i in kept]
            samples = [samples[i] for i in kept]
        container_keys = cast("list[ContainerKey]", keys)  # every key is (namespace, pod, container)
        new = dict(zip(container_keys, samples, strict=True))
        if len(new) == len(container_keys) and target.keys().isdisjoint(new):
            target.update(new)
        else:
            for key, sample in zip(container_keys, samples, strict=True):
                old = target.get(key)
                if old is None or sample > old:
                    target[key] = sample
        return True

    def _learn(self, blocks: list[str]) -> bool:
        """Check label blocks not seen before and remember their `_LabelSet`s; False when one is
        not canonical. Blocks of one shape are split into columns at once."""
        label_sets = self.label_sets
        blocks = [block for block in dict.fromkeys(blocks) if block not in label_sets]
        count = len(blocks)
        rows = list(map(str.split, blocks, repeat('"')))
        width = len(rows[0])
        cols = list(zip(*rows, strict=True)) if list(map(len, rows)).count(width) == count else []
        if width < 3 or not width & 1 or not cols or cols[-1].count("}") != count:
            cols = []
        names = []
        for i in range(0, width - 1, 2) if cols else ():
            sep = cols[i][0]
            if sep[:1] != ("{" if i == 0 else ",") or sep[-1:] != "=" or cols[i].count(sep) != count:
                cols = []
                break
            names.append(sep[1:-1])
        if not cols or len(set(names)) != len(names) or not all(map(_LABEL_NAME.fullmatch, names)):
            # Mixed shapes (or a bad block): one by one.
            for block in blocks:
                label_set = label_sets[block] = _label_set(block)
                if label_set is None:
                    return False
            return True
        if "container" not in names or "namespace" not in names or "pod" not in names:
            label_sets.update(dict.fromkeys(blocks, _OTHER))
            return True
        container = cols[2 * names.index("container") + 1]
        namespace = cols[2 * names.index("namespace") + 1]
        pod = cols[2 * names.index("pod") + 1]
        if "" in namespace or "" in pod or "" in container or "POD" in container:
            for block in blocks:
                label_sets[block] = _label_set(block)  # the block is canonical: never None
            return True
        label_sets.update(zip(blocks, zip(namespace, pod, container, strict=True), strict=True))
        return True

    def _stamps(self, tokens: tuple[str, ...]) -> list[int]:
        stamps = list(map(_NS_PER_MS.__mul__, map(int, tokens)))
        if min(stamps) <= 0 or max(stamps) >= INT64_LIMIT:
            return [ts if 0 < ts < INT64_LIMIT else 0 for ts in stamps]
        return stamps

    def _grouped(self, lines: list[str]) -> bool:
        """A run mixing shapes: read each group of consecutive lines with one head on its own."""
        groups = [list(group) for _, group in groupby(lines, _series_name)]
        if len(groups) == 1:
            return False  # one head, but the lines differ in shape
        return all(map(self.add, groups))

    def _plain(self, line: str) -> bool:
        """A sample line without labels."""
        toks = line.split(" ")
        if len(toks) == 3:
            name, value, ts_tok = toks
            if "_" in ts_tok:
                return False
            ts = int(ts_tok) * 1_000_000
            if not 0 < ts < INT64_LIMIT:
                ts = 0
        elif len(toks) == 2:
            name, value = toks
            ts = self.request_time_ns
        else:
            return False
        if "_" in value:
            return False
        v = float(value)
        kind = _name_kind(name)
        if kind < 0 or _C_CPU <= kind <= _C_SWAP:
            return False  # malformed, or a container series without labels
        self._node_sample(kind, ts, v)
        return True

    def _node_sample(self, kind: int, ts: int, v: float) -> None:
        if kind == _NODE_CPU:
            sample = (ts, round(v * 1e9) if 0.0 <= v < _CPU_SECONDS_LIMIT else -1)
            if self.node_cpu is None or sample > self.node_cpu:
                self.node_cpu = sample
        elif kind == _NODE_MEM:
            sample = (ts, int(v) if 0.0 <= v < _FLOAT_INT64_LIMIT else -1)
            if self.node_mem is None or sample > self.node_mem:
                self.node_mem = sample
        elif kind == _NODE_SWAP:
            sample = (ts, int(v) if 0.0 <= v < _FLOAT_INT64_LIMIT else -1)
            if self.node_swap is None or sample > self.node_swap:
                self.node_swap = sample
        elif kind == _ERR and v != 0.0:
            self.failed = True


def _scaled(values: list[float], low: float | None) -> list[int]:
    """Seconds -> ns as `round(v * 1e9)`; out of range: -1 (CPU, `low` 0.0: 0 allowed) or 0 (start
    times, `low` None: 0 not allowed)."""
    if (
        values
        and not any(map(isnan, values))
        and (min(values) >= 0.0 if low is not None else min(values) > 0.0)
        and max(values) < _CPU_SECONDS_LIMIT
    ):
        return list(map(round, map(_NS_PER_S_FLOAT.__mul__, values)))
    if low is not None:
        return [round(v * 1e9) if 0.0 <= v < _CPU_SECONDS_LIMIT else -1 for v in values]
    return [round(v * 1e9) if 0.0 < v < _CPU_SECONDS_LIMIT else 0 for v in values]


def _truncated(values: list[float]) -> list[int]:
    """Bytes as `int(v)`; out of range: -1."""
    if values and not any(map(isnan, values)) and min(values) >= 0.0 and max(values) < _FLOAT_INT64_LIMIT:
        return list(map(int, values))
    return [int(v) if 0.0 <= v < _FLOAT_INT64_LIMIT else -1 for v in values]


def _name_kind(name: str) -> int:
    """A metric name's family kind (`_IGNORED` for the ones we do not read); -1 when malformed."""
    kind = _WANTED.get(name)
    if kind is None:
        return _IGNORED if _METRIC_NAME.fullmatch(name) else -1
    return kind


def _finish(
    node: str,
    node_cpu: Sample | None,
    node_mem: Sample | None,
    node_swap: Sample | None,
    cpu: dict[ContainerKey, Sample],
    mem: dict[ContainerKey, Sample],
    start: dict[ContainerKey, Sample],
    swap: dict[ContainerKey, Sample],
    failed: bool,
) -> NodeBatch:
    batch = assemble_batch(node, node_cpu, node_mem, node_swap, cpu, mem, start, swap)
    if failed and batch.node_point is None and not batch.pods:
        raise KubeletError("kubelet reported scrape_error/resource_scrape_error and no usable samples")
    return batch


def parse_lines(body: bytes, *, node: str, request_time_ns: int) -> NodeBatch:
    """`parse_resource_metrics` line by line, for any body (the error page aside): the exact path.

    Every error message (line number, excerpt) comes from here; `parse_resource_metrics` hands
    it whatever its whole-body fast path does not accept.
    """
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as exc:
        line_no = body.count(b"\n", 0, exc.start) + 1
        raise ParseError(f"line {line_no}: not UTF-8 (byte {exc.start}: {exc.reason})") from None
    ascii_body = text.isascii()

    node_cpu: Sample | None = None
    node_mem: Sample | None = None
    node_swap: Sample | None = None
    cpu: dict[ContainerKey, Sample] = {}
    mem: dict[ContainerKey, Sample] = {}
    start: dict[ContainerKey, Sample] = {}
    swap: dict[ContainerKey, Sample] = {}
    failed = False
    # Per-call caches of validated line heads and label separators (None: take the slow path).
    heads: dict[str, tuple[int, str] | None] = {}
    seps: dict[str, str | None] = {}
    wanted = _WANTED

    if "\r" in text:
        text = text.replace("\r\n", "\n")
    # Lines with a backslash or a tab always take the exact path; most bodies have none at all.
    simple = "\\" not in text and "\t" not in text
    line_no = 0
    for line in text.split("\n"):
        line_no += 1
        if not line or line[0] == "#":
            continue
        kind = -1
        labels: dict[str, str] | None = None
        # Fast path: the kubelet's canonical `name{k="v",...} value[ ts]` or `name value[ ts]`.
        if simple or ("\\" not in line and "\t" not in line):
            if "{" in line:
                parts = line.split('"')
                n = len(parts)
                rest = parts[-1]
                if n & 1 and n >= 3 and rest[:2] == "} " and "_" not in rest:
                    head = parts[0]
                    try:
                        cached = heads[head]
                    except KeyError:
                        cached = heads[head] = _check_head(head, wanted)
                    toks = rest[2:].split(" ")
                    if cached is not None and len(toks) <= 2 and "" not in toks:
                        kind, key0 = cached
                        if (
                            n == 7
                            and key0 == "container"
                            and parts[2] == ",namespace="
                            and parts[4] == ",pod="
                        ):
                            container, ns, pod = parts[1], parts[3], parts[5]
                        else:
                            labels = {key0: parts[1]}
                            for i in range(2, n - 1, 2):
                                sep = parts[i]
                                lkey = seps[sep] if sep in seps else seps.setdefault(sep, _check_sep(sep))
                                if lkey is None:
                                    kind = -1
                                    break
                                labels[lkey] = parts[i + 1]
                            if len(labels) != n >> 1:
                                kind = -1  # a repeated label: the slow path says so
                        value_tok = toks[0]
                        ts_tok = toks[1] if len(toks) == 2 else None
            else:
                toks = line.split(" ")
                if 2 <= len(toks) <= 3 and "" not in toks:
                    name = toks[0]
                    if name in wanted:
                        kind = wanted[name]
                    elif _METRIC_NAME.fullmatch(name):
                        kind = _IGNORED
                    labels = {}
                    value_tok = toks[1]
                    ts_tok = toks[2] if len(toks) == 3 else None
                    if "_" in value_tok or (ts_tok is not None and "_" in ts_tok):
                        kind = -1
        if kind < 0:
            try:
                parsed = _slow_line(line)
            except _LineError as exc:
                raise ParseError(f"line {line_no}: {exc}: {excerpt(line)}") from None
            if parsed is None:
                continue
            name, labels, value_tok, ts_tok = parsed
            # Python's float()/int() also take `1_0` and non-ASCII digits; the format does not.
            if (
                "_" in value_tok
                or (ts_tok is not None and "_" in ts_tok)
                or not (value_tok.isascii() and (ts_tok is None or ts_tok.isascii()))
            ):
                raise ParseError(f"line {line_no}: malformed number: {excerpt(line)}")
            kind = wanted.get(name, _IGNORED)
        elif not ascii_body and not (value_tok.isascii() and (ts_tok is None or ts_tok.isascii())):
            raise ParseError(f"line {line_no}: malformed number: {excerpt(line)}")

        try:
            v = float(value_tok)
        except ValueError:
            raise ParseError(
                f"line {line_no}: malformed value {excerpt(value_tok)}: {excerpt(line)}"
            ) from None
        if ts_tok is None:
            ts = request_time_ns
        else:
            try:
                ts = int(ts_tok) * 1_000_000
            except ValueError:
                raise ParseError(
                    f"line {line_no}: malformed timestamp {excerpt(ts_tok)}: {excerpt(line)}"
                ) from None
            if not 0 < ts < INT64_LIMIT:
                ts = 0
        if kind == _IGNORED:
            continue

        if _C_CPU <= kind <= _C_SWAP:
            if labels is not None:
                try:
                    container, ns, pod = labels["container"], labels["namespace"], labels["pod"]
                except KeyError as exc:
                    raise ParseError(
                        f"line {line_no}: a container series without a {exc.args[0]!r} label: {excerpt(line)}"
                    ) from None
            if not ns or not pod:
                raise ParseError(f"line {line_no}: empty namespace or pod label: {excerpt(line)}")
            if not container or container == "POD":
                continue
            key = (ns, pod, container)
            if kind == _C_CPU:
                c = round(v * 1e9) if 0.0 <= v < _CPU_SECONDS_LIMIT else -1
                old = cpu.get(key)
                if old is None or (ts, c) > old:
                    cpu[key] = (ts, c)
            elif kind == _C_MEM:
                b = int(v) if 0.0 <= v < _FLOAT_INT64_LIMIT else -1
                old = mem.get(key)
                if old is None or (ts, b) > old:
                    mem[key] = (ts, b)
            elif kind == _C_START:
                st = round(v * 1e9) if 0.0 < v < _CPU_SECONDS_LIMIT else 0
                old = start.get(key)
                if old is None or (ts, st) > old:
                    start[key] = (ts, st)
            else:
                b = int(v) if 0.0 <= v < _FLOAT_INT64_LIMIT else -1
                old = swap.get(key)
                if old is None or (ts, b) > old:
                    swap[key] = (ts, b)
        elif kind == _NODE_CPU:
            sample = (ts, round(v * 1e9) if 0.0 <= v < _CPU_SECONDS_LIMIT else -1)
            if node_cpu is None or sample > node_cpu:
                node_cpu = sample
        elif kind == _NODE_MEM:
            sample = (ts, int(v) if 0.0 <= v < _FLOAT_INT64_LIMIT else -1)
            if node_mem is None or sample > node_mem:
                node_mem = sample
        elif kind == _NODE_SWAP:
            sample = (ts, int(v) if 0.0 <= v < _FLOAT_INT64_LIMIT else -1)
            if node_swap is None or sample > node_swap:
                node_swap = sample
        elif v != 0.0:  # _ERR
            failed = True

    return _finish(node, node_cpu, node_mem, node_swap, cpu, mem, start, swap, failed)


def _check_head(head: str, wanted: dict[str, int]) -> tuple[int, str] | None:
    """`name{key=` -> (family kind, key), or None when it is not in canonical form."""
    brace = head.find("{")
    if brace <= 0 or head[-1] != "=":
        return None
    name = head[:brace]
    key = head[brace + 1 : -1]
    if not _METRIC_NAME.fullmatch(name) or not _LABEL_NAME.fullmatch(key):
        return None
    return wanted.get(name, _IGNORED), key


def _check_sep(sep: str) -> str | None:
    """`,key=` (between two label values) -> key, or None when it is not in canonical form."""
    if len(sep) < 3 or sep[0] != "," or sep[-1] != "=":
        return None
    key = sep[1:-1]
    return key if _LABEL_NAME.fullmatch(key) else None
