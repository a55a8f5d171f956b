"""The exact line parser of the text format: every body the fast path (`canonical.py`) declines.

`parse_lines` reads any body line by line: the kubelet's canonical lines through a quick split,
every other line through the format's exact grammar (`_SLOW_LINE`). It is the reference the fast
path is tested against, and every `ParseError` message (line number, excerpt) comes from here.
"""

from __future__ import annotations

import re
from typing import Final

from metrics_server.scrape.assemble import (
    C_CPU,
    C_MEM,
    C_START,
    C_SWAP,
    CPU_SECONDS_LIMIT,
    FLOAT_INT64_LIMIT,
    IGNORED,
    INT64_LIMIT,
    LABEL_NAME,
    METRIC_NAME,
    WANTED,
    Samples,
    excerpt,
)
from metrics_server.scrape.batch import NodeBatch, ParseError

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


class _LineError(Exception):
    """A sample line is malformed; the caller adds the line number and excerpt."""


def _unescape(match: re.Match[str]) -> str:
    try:
        return _ESCAPES[match.group(1)]
    except KeyError:
        raise _LineError(f"invalid escape sequence {match.group(0)!r} in a label value") from None


def _slow_line(line: str, line_no: int) -> tuple[str, dict[str, str], str, str | None] | None:
    """Parse line `line_no` exactly: (name, labels, value, timestamp), None for blank and comment
    lines. Raises ParseError."""
    stripped = line.strip(" \t")
    if not stripped or stripped[0] == "#":
        return None
    m = _SLOW_LINE.fullmatch(line)
    if m is None:
        raise ParseError(
            f"line {line_no}: not a sample line (name{{labels}} value [timestamp]): {excerpt(line)}"
        )
    labels: dict[str, str] = {}
    raw = m.group("labels")
    if raw:
        for pair in _SLOW_PAIR.finditer(raw):
            key, value = pair.group(1), pair.group(2)
            if key in labels:
                raise ParseError(f"line {line_no}: label {key!r} given twice: {excerpt(line)}")
            try:
                labels[key] = _ESCAPE.sub(_unescape, value) if "\\" in value else value
            except _LineError as exc:
                raise ParseError(f"line {line_no}: {exc}: {excerpt(line)}") from None
    value_tok, ts_tok = m.group("value"), m.group("ts")
    # Python's float()/int() also take `1_0` and non-ASCII digits; the format does not.
    if (
        "_" in value_tok
        or (ts_tok is not None and "_" in ts_tok)
        or not (value_tok.isascii() and (ts_tok is None or ts_tok.isascii()))
    ):
        raise ParseError(f"line {line_no}: malformed number: {excerpt(line)}")
    return m.group("name"), labels, value_tok, ts_tok


def _decode(body: bytes) -> str:
    try:
        return body.decode("utf-8")
    except UnicodeDecodeError as exc:
        line_no = body.count(b"\n", 0, exc.start) + 1
        raise ParseError(f"line {line_no}: not UTF-8 (byte {exc.start}: {exc.reason})") from None


def parse_lines(body: bytes, *, node: str, request_time_ns: int) -> NodeBatch:
    """`parse_resource_metrics` line by line, for any body (the error page aside): the exact path.

    Every error message (line number, excerpt) comes from here; `parse_resource_metrics` hands
    it whatever its whole-body fast path does not accept.
    """
    text = _decode(body)
    ascii_body = text.isascii()
    samples = Samples()
    cpu, mem, start, swap = samples.cpu, samples.mem, samples.start, samples.swap
    # Per-call caches of validated line heads and label separators (None: take the slow path).
    heads: dict[str, tuple[int, str] | None] = {}
    seps: dict[str, str | None] = {}
    wanted = WANTED

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
                    elif METRIC_NAME.fullmatch(name):
                        kind = IGNORED
                    labels = {}
                    value_tok = toks[1]
                    ts_tok = toks[2] if len(toks) == 3 else None
                    if "_" in value_tok or (ts_tok is not None and "_" in ts_tok):
                        kind = -1
        if kind < 0:
            parsed = _slow_line(line, line_no)
            if parsed is None:
                continue
            name, labels, value_tok, ts_tok = parsed
            kind = wanted.get(name, IGNORED)
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
        if kind == IGNORED:
            continue

        if C_CPU <= kind <= C_SWAP:
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
            if kind == C_CPU:
                c = round(v * 1e9) if 0.0 <= v < CPU_SECONDS_LIMIT else -1
                old = cpu.get(key)
                if old is None or (ts, c) > old:
                    cpu[key] = (ts, c)
            elif kind == C_MEM:
                b = int(v) if 0.0 <= v < FLOAT_INT64_LIMIT else -1
                old = mem.get(key)
                if old is None or (ts, b) > old:
                    mem[key] = (ts, b)
            elif kind == C_START:
                st = round(v * 1e9) if 0.0 < v < CPU_SECONDS_LIMIT else 0
                old = start.get(key)
                if old is None or (ts, st) > old:
                    start[key] = (ts, st)
            else:
                b = int(v) if 0.0 <= v < FLOAT_INT64_LIMIT else -1
                old = swap.get(key)
                if old is None or (ts, b) > old:
                    swap[key] = (ts, b)
        else:
            samples.node_sample(kind, ts, v)

    return samples.finish(node)


def _check_head(head: str, wanted: dict[str, int]) -> tuple[int, str] | None:
    """`name{key=` -> (family kind, key), or None when it is not in canonical form."""
    brace = head.find("{")
    if brace <= 0 or head[-1] != "=":
        return None
    name = head[:brace]
    key = head[brace + 1 : -1]
    if not METRIC_NAME.fullmatch(name) or not LABEL_NAME.fullmatch(key):
        return None
    return wanted.get(name, IGNORED), key


def _check_sep(sep: str) -> str | None:
    """`,key=` (between two label values) -> key, or None when it is not in canonical form."""
    if len(sep) < 3 or sep[0] != "," or sep[-1] != "=":
        return None
    key = sep[1:-1]
    return key if LABEL_NAME.fullmatch(key) else None
