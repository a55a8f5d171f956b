"""The fast path of the text parser: a body in the kubelet's canonical shape, a family at a time.

Comment lines cut the body into runs of sample lines; a run whose lines share one shape is split
into columns and converted with C-level `map`/`zip` instead of a Python step per line. What this
accepts, `lines.parse_lines` accepts with the same result (tests/server/scrape/test_parser_fuzz.py
compares the two); anything else is left to it.
"""

from __future__ import annotations

from itertools import groupby, repeat
from math import isnan
from operator import itemgetter
from typing import Final, cast

from metrics_server.scrape.assemble import (
    C_CPU,
    C_MEM,
    C_START,
    C_SWAP,
    CPU_SECONDS_LIMIT,
    ERR,
    FLOAT_INT64_LIMIT,
    IGNORED,
    INT64_LIMIT,
    LABEL_NAME,
    METRIC_NAME,
    WANTED,
    ContainerKey,
    Samples,
)
from metrics_server.scrape.batch import NodeBatch

_NS_PER_MS: Final = 1_000_000
_NS_PER_S_FLOAT: Final = 1e9


def parse_canonical(text: str, node: str, request_time_ns: int) -> NodeBatch | None:
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
    return columns.finish(node)


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
    if first[-1:] != "=" or not LABEL_NAME.fullmatch(first[:-1]):
        return None
    labels = {first[:-1]: parts[1]}
    for i in range(2, n - 1, 2):
        sep = parts[i]
        if sep[:1] != "," or sep[-1:] != "=" or not LABEL_NAME.fullmatch(sep[1:-1]):
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


class _Columns(Samples):
    """The samples `parse_canonical` has read so far (the same as `parse_lines` keeps)."""

    __slots__ = ("label_sets", "request_time_ns")

    def __init__(self, request_time_ns: int) -> None:
        super().__init__()
        self.request_time_ns = request_time_ns
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
        if kind == IGNORED:
            return True
        if kind < C_CPU or kind == ERR:
            for ts, v in zip(stamps, values, strict=True):
                self.node_sample(kind, ts, v)
            return True
        if kind == C_CPU:
            target, ints = self.cpu, _scaled(values, 0.0)
        elif kind == C_START:
            target, ints = self.start, _scaled(values, None)
        else:
            target, ints = (self.mem if kind == C_MEM else self.swap), _truncated(values)
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
        if not cols or len(set(names)) != len(names) or not all(map(LABEL_NAME.fullmatch, names)):
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
        if kind < 0 or C_CPU <= kind <= C_SWAP:
            return False  # malformed, or a container series without labels
        self.node_sample(kind, ts, v)
        return True


def _scaled(values: list[float], low: float | None) -> list[int]:
    """Seconds -> ns as `round(v * 1e9)`; out of range: -1 (CPU, `low` 0.0: 0 allowed) or 0 (start
    times, `low` None: 0 not allowed)."""
    if (
        values
        and not any(map(isnan, values))
        and (min(values) >= 0.0 if low is not None else min(values) > 0.0)
        and max(values) < CPU_SECONDS_LIMIT
    ):
        return list(map(round, map(_NS_PER_S_FLOAT.__mul__, values)))
    if low is not None:
        return [round(v * 1e9) if 0.0 <= v < CPU_SECONDS_LIMIT else -1 for v in values]
    return [round(v * 1e9) if 0.0 < v < CPU_SECONDS_LIMIT else 0 for v in values]


def _truncated(values: list[float]) -> list[int]:
    """Bytes as `int(v)`; out of range: -1."""
    if values and not any(map(isnan, values)) and min(values) >= 0.0 and max(values) < FLOAT_INT64_LIMIT:
        return list(map(int, values))
    return [int(v) if 0.0 <= v < FLOAT_INT64_LIMIT else -1 for v in values]


def _name_kind(name: str) -> int:
    """A metric name's family kind (`IGNORED` for the ones we do not read); -1 when malformed."""
    kind = WANTED.get(name)
    if kind is None:
        return IGNORED if METRIC_NAME.fullmatch(name) else -1
    return kind
