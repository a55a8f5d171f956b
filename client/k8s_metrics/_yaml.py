"""A small YAML reader for kubeconfig files (private to k8s_metrics).

The client depends on httpx and attrs only, so kubeconfig files are read with this instead of PyYAML.
It covers what kubectl, kind, minikube and the cloud CLIs write and what people write by hand: block
mappings and sequences (including ``- key: value`` items and sequences indented like their parent key),
flow collections (so JSON documents too), plain, single- and double-quoted scalars over several lines with
YAML folding, ``|``/``>`` block scalars with chomping and indentation indicators, comments, ``---``, ``...``.

Refused with :class:`YamlError` naming the line: anchors, aliases, tags, directives, complex keys, duplicate
keys, several documents, tab indentation.

Scalars are not typed: plain ones come back as :class:`Plain` (a ``str``), quoted ones as ``str``, and plain
``null``/``~``/empty as ``None``. The consumer decides what a field means, as sigs.k8s.io/yaml does for Go
structs (``token: 0123`` stays ``"0123"``); :func:`resolve_plain` applies YAML 1.2 core-schema typing where a
generic value is wanted.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Final

__all__ = ["Plain", "YamlError", "parse_yaml", "resolve_plain"]


class YamlError(ValueError):
    """The text is not YAML, or uses a feature outside the supported subset. The message names the line."""


class Plain(str):
    """A plain (unquoted) scalar; quoted scalars are ``str``. Only plain scalars can be booleans."""

    __slots__ = ()


_NULLS: Final = frozenset({"null", "Null", "NULL", "~", ""})
_ESCAPES: Final = {
    "0": "\0", "a": "\a", "b": "\b", "t": "\t", "\t": "\t", "n": "\n", "v": "\v", "f": "\f", "r": "\r",
    "e": "\x1b", " ": " ", '"': '"', "/": "/", "\\": "\\", "N": "\x85", "_": "\xa0", "L": "\u2028",
    "P": "\u2029",
}  # fmt: skip
_HEX_ESCAPES: Final = {"x": 2, "u": 4, "U": 8}


@dataclass
class _Line:
    indent: int
    text: str  # without indentation or line break
    number: int  # 1-based, for messages


class _Incomplete(Exception):
    pass


class _YamlReader:
    def __init__(self, text: str, source: str) -> None:
        self.source = source
        self.raw = text.removeprefix("\ufeff").splitlines()
        self.lines: list[_Line] = []
        for number, raw in enumerate(self.raw, 1):
            body = raw.lstrip(" ")
            if body.startswith("\t") and body.strip():
                raise self.error(number, "tab characters cannot indent YAML")
            self.lines.append(_Line(len(raw) - len(body), body.rstrip(), number))
        self.pos = 0

    def error(self, number: int, message: str) -> YamlError:
        return YamlError(f"{self.source}: line {number}: {message}")

    # -- line navigation --------------------------------------------------------------------------
    def _significant(self, start: int) -> int:
        i = start
        while i < len(self.lines) and (not self.lines[i].text or self.lines[i].text.startswith("#")):
            i += 1
        return i

    @staticmethod
    def _is_item(text: str) -> bool:
        return text == "-" or text.startswith(("- ", "-\t"))

    def document(self) -> object:
        i = self._significant(0)
        if i < len(self.lines) and self.lines[i].text.startswith("%"):
            raise self.error(self.lines[i].number, "YAML directives are not supported")
        if i < len(self.lines) and re.fullmatch(r"---(\s+#.*)?", self.lines[i].text):
            i = self._significant(i + 1)
        if i >= len(self.lines):
            return None
        self.pos = i
        first = self.lines[i]
        if self._is_item(first.text) or self._split_key(first) is not None:
            node = self._block(first.indent)
        else:
            self.pos = i + 1
            node = self._value(first.text, -1, first.number, in_map=False)
        end = self._significant(self.pos)
        if end < len(self.lines) and self.lines[end].text == "...":
            end = self._significant(end + 1)
        if end < len(self.lines):
            line = self.lines[end]
            if line.text.startswith("---"):
                raise self.error(line.number, "multiple YAML documents are not supported")
            raise self.error(line.number, "unexpected content (wrong indentation?)")
        return node

    def _block(self, indent: int) -> object:
        line = self.lines[self.pos]
        if self._is_item(line.text):
            return self._sequence(indent)
        return self._mapping(indent)

    # -- block collections ------------------------------------------------------------------------
    def _split_key(self, line: _Line) -> tuple[str, str] | None:
        text = line.text
        if text[0] in "\"'":
            try:
                key, end = self._quoted_one_line(text, line.number)
            except _Incomplete:
                return None
            rest = text[end:].lstrip()
            if rest.startswith(":") and (len(rest) == 1 or rest[1] in " \t"):
                return key, rest[1:].lstrip()
            return None
        if text[0] in "[{#&*!|>%@`?":
            if text.startswith("? "):
                raise self.error(line.number, "complex mapping keys are not supported")
            return None
        match = re.search(r":(\s|$)", text)
        if match is None or re.search(r"\s#", text[: match.start()]):
            return None
        return text[: match.start()].rstrip(), text[match.end() :].lstrip()

    def _mapping(self, indent: int) -> dict[str, object]:
        result: dict[str, object] = {}
        while True:
            i = self._significant(self.pos)
            if i >= len(self.lines) or self.lines[i].indent < indent:
                return result
            line = self.lines[i]
            if line.indent > indent:
                raise self.error(line.number, "unexpected indentation")
            if line.text in ("...", "---") or line.text.startswith("--- "):
                return result
            split = self._split_key(line)
            if split is None:
                raise self.error(line.number, "expected 'key: value'")
            key, rest = split
            if key in result:
                raise self.error(line.number, f"duplicate key {key!r}")
            self.pos = i + 1
            result[key] = self._value(rest, indent, line.number, in_map=True)

    def _sequence(self, indent: int) -> list[object]:
        items: list[object] = []
        while True:
            i = self._significant(self.pos)
            if i >= len(self.lines) or self.lines[i].indent < indent:
                return items
            line = self.lines[i]
            if line.indent > indent:
                raise self.error(line.number, "unexpected indentation")
            if not self._is_item(line.text):
                if self._split_key(line) is not None:
                    return items  # the mapping that holds this sequence continues
                raise self.error(line.number, "expected '- item'")
            rest = line.text[1:]
            body = rest.lstrip(" \t")
            self.pos = i + 1
            if not body or body.startswith("#"):
                j = self._significant(self.pos)
                if j < len(self.lines) and self.lines[j].indent > indent:
                    self.pos = j
                    items.append(self._block(self.lines[j].indent))
                else:
                    items.append(None)
                continue
            column = indent + 1 + len(rest) - len(body)
            virtual = _Line(column, body, line.number)
            if self._is_item(body) or self._split_key(virtual) is not None:
                # "- key: value" / "- - x": a nested block whose first line starts after the dash.
                self.lines[i] = virtual
                self.pos = i
                items.append(self._block(column))
            else:
                items.append(self._value(body, indent, line.number, in_map=False))

    # -- values -----------------------------------------------------------------------------------
    def _value(self, text: str, parent: int, number: int, *, in_map: bool) -> object:
        """Parse the value that starts with ``text`` on line ``number``; continuation lines must be indented
        more than ``parent``. ``self.pos`` is the line after ``number`` and is advanced past the value."""
        if not text or text.startswith("#"):
            j = self._significant(self.pos)
            if j < len(self.lines):
                nxt = self.lines[j]
                if nxt.indent > parent:
                    self.pos = j
                    if self._is_item(nxt.text) or self._split_key(nxt) is not None:
                        return self._block(nxt.indent)
                    self.pos = j + 1
                    return self._value(nxt.text, parent, nxt.number, in_map=False)
                if in_map and nxt.indent == parent and self._is_item(nxt.text):
                    self.pos = j
                    return self._sequence(parent)
            return None
        first = text[0]
        if first in "&*!":
            raise self.error(number, "YAML anchors, aliases and tags are not supported")
        if first in "%@`":
            raise self.error(number, f"a plain value cannot start with {first!r}")
        if first in "|>":
            return self._block_scalar(text, parent, number)
        if first in "\"'":
            return self._multiline(text, number, self._quoted_whole)
        if first in "[{":
            return self._multiline(text, number, self._flow_whole)
        return self._plain(text, parent, number)

    def _multiline(self, text: str, number: int, parse: Callable[[str, int], tuple[object, str]]) -> object:
        """Parse a quoted or flow value, adding following raw lines until it is complete."""
        buffer = text
        while True:
            try:
                value, trailing = parse(buffer, number)
            except _Incomplete:
                if self.pos >= len(self.raw):
                    raise self.error(number, "unterminated quoted string or flow collection") from None
                buffer += "\n" + self.raw[self.pos]
                self.pos += 1
                continue
            if trailing.strip() and not trailing.lstrip().startswith("#"):
                raise self.error(number, f"unexpected text after the value: {trailing.strip()!r}")
            return value

    def _plain(self, text: str, parent: int, number: int) -> object:
        pieces = [self._strip_comment(text)]
        ended = pieces[0] != text.rstrip()
        while not ended and self.pos < len(self.lines):
            line = self.lines[self.pos]
            if not line.text:
                pieces.append("")
                self.pos += 1
                continue
            if line.indent <= parent or line.text.startswith("#"):
                break
            piece = self._strip_comment(line.text)
            ended = piece != line.text
            pieces.append(piece)
            self.pos += 1
        while pieces and not pieces[-1]:
            pieces.pop()
        for piece in pieces:
            if re.search(r":(\s|$)", piece):
                raise self.error(number, "a plain value cannot contain ': ' (quote it)")
        value = _fold(pieces)
        return None if value in _NULLS else Plain(value)

    @staticmethod
    def _strip_comment(text: str) -> str:
        match = re.search(r"\s#", text)
        return (text[: match.start()] if match else text).rstrip()

    def _block_scalar(self, header: str, parent: int, number: int) -> str:
        match = re.fullmatch(r"([|>])([+-]?)([1-9]?)([+-]?)(\s+#.*)?", header)
        if match is None or (match.group(2) and match.group(4)):
            raise self.error(number, f"bad block scalar header {header!r}")
        literal = match.group(1) == "|"
        chomp = match.group(2) or match.group(4)
        body: list[str] = []
        content_indent = max(parent, 0) + int(match.group(3)) if match.group(3) else None
        while self.pos < len(self.raw):
            raw = self.raw[self.pos]
            if not raw.strip():
                body.append("")
                self.pos += 1
                continue
            indent = len(raw) - len(raw.lstrip(" "))
            if content_indent is None:
                if indent <= parent:
                    break
                content_indent = indent
            if indent < content_indent:
                break
            body.append(raw[content_indent:])
            self.pos += 1
        trailing = 0
        while body and not body[-1].strip():
            body.pop()
            trailing += 1
        text = "\n".join(line if line.strip() else "" for line in body) if literal else _fold_block(body)
        if not body or chomp == "-":
            return text if chomp != "+" else text + "\n" * trailing
        return text + "\n" + ("\n" * trailing if chomp == "+" else "")

    # -- quoted scalars and flow collections ------------------------------------------------------
    def _quoted_one_line(self, text: str, number: int) -> tuple[str, int]:
        value, rest = self._quoted_whole(text, number)
        return value, len(text) - len(rest)

    def _quoted_whole(self, text: str, number: int) -> tuple[str, str]:
        """Parse the quoted scalar at the start of ``text`` (which may span lines); return it and the rest."""
        quote = text[0]
        i = 1
        while True:
            if i >= len(text):
                raise _Incomplete
            ch = text[i]
            if quote == '"' and ch == "\\":
                i += 2
                continue
            if ch == quote:
                if quote == "'" and text[i + 1 : i + 2] == "'":
                    i += 2
                    continue
                break
            i += 1
        pieces = text[1:i].split("\n")
        if quote == "'":
            return _fold(pieces, trim=True).replace("''", "'"), text[i + 1 :]
        return self._unescape_lines(pieces, number), text[i + 1 :]

    def _unescape_lines(self, pieces: list[str], number: int) -> str:
        out: list[str] = []
        empties = 0
        joined_escaped = False
        for index, piece in enumerate(pieces):
            if index:
                piece = piece.lstrip(" \t")
            last = index == len(pieces) - 1
            escaped_break = False
            if not last:
                bare = piece.rstrip(" \t")
                if (len(bare) - len(bare.rstrip("\\"))) % 2 == 1:
                    piece, escaped_break = bare[:-1], True
                else:
                    piece = bare
            if index and not last and not piece and not escaped_break:
                empties += 1
                continue
            if index:
                out.append("\n" * empties if empties or joined_escaped else " ")
            empties = 0
            out.append(self._unescape(piece, number))
            joined_escaped = escaped_break
        return "".join(out)

    def _unescape(self, text: str, number: int) -> str:
        out: list[str] = []
        i = 0
        while i < len(text):
            ch = text[i]
            if ch != "\\":
                out.append(ch)
                i += 1
                continue
            code = text[i + 1 : i + 2]
            if code in _ESCAPES:
                out.append(_ESCAPES[code])
                i += 2
            elif code in _HEX_ESCAPES:
                width = _HEX_ESCAPES[code]
                digits = text[i + 2 : i + 2 + width]
                if len(digits) != width or not re.fullmatch(r"[0-9A-Fa-f]+", digits):
                    raise self.error(number, f"bad escape \\{code}{digits}")
                out.append(chr(int(digits, 16)))
                i += 2 + width
            else:
                raise self.error(number, f"unknown escape \\{code}")
        # JSON writes characters outside the BMP as \u surrogate pairs; join them.
        return "".join(out).encode("utf-16", "surrogatepass").decode("utf-16")

    def _flow_whole(self, text: str, number: int) -> tuple[object, str]:
        parser = _FlowParser(text, self, number)
        value = parser.value()
        return value, text[parser.pos :]


class _FlowParser:
    def __init__(self, text: str, reader: _YamlReader, number: int) -> None:
        self.text = text
        self.pos = 0
        self.reader = reader
        self.number = number

    def _skip(self) -> None:
        text = self.text
        while self.pos < len(text):
            ch = text[self.pos]
            if ch in " \t\n":
                self.pos += 1
            elif ch == "#" and (self.pos == 0 or text[self.pos - 1] in " \t\n"):
                end = text.find("\n", self.pos)
                self.pos = len(text) if end < 0 else end
            else:
                return

    def _peek(self) -> str:
        self._skip()
        if self.pos >= len(self.text):
            raise _Incomplete
        return self.text[self.pos]

    def value(self) -> object:
        ch = self._peek()
        if ch == "[":
            self.pos += 1
            items: list[object] = []
            while self._peek() != "]":
                items.append(self.value())
                if self._peek() == ",":
                    self.pos += 1
                elif self._peek() != "]":
                    raise self.reader.error(self.number, "expected ',' or ']' in a flow sequence")
            self.pos += 1
            return items
        if ch == "{":
            self.pos += 1
            mapping: dict[str, object] = {}
            while self._peek() != "}":
                key = self.value()
                if not isinstance(key, str):
                    raise self.reader.error(self.number, "flow mapping keys must be strings")
                value: object = None
                if self._peek() == ":":
                    self.pos += 1
                    if self._peek() not in ",}":
                        value = self.value()
                mapping[str(key)] = value
                if self._peek() == ",":
                    self.pos += 1
                elif self._peek() != "}":
                    raise self.reader.error(self.number, "expected ',' or '}' in a flow mapping")
            self.pos += 1
            return mapping
        if ch in "\"'":
            value, rest = self.reader._quoted_whole(self.text[self.pos :], self.number)
            self.pos = len(self.text) - len(rest)
            return value
        if ch in "]},&*!|>%@`":
            raise self.reader.error(self.number, f"unexpected {ch!r} in a flow collection")
        start = self.pos
        text = self.text
        while self.pos < len(text):
            c = text[self.pos]
            if c in ",[]{}":
                break
            if c == ":" and (self.pos + 1 == len(text) or text[self.pos + 1] in " \t\n,[]{}"):
                break
            if c == "#" and text[self.pos - 1] in " \t\n":
                break
            self.pos += 1
        if self.pos >= len(text):
            raise _Incomplete
        plain = " ".join(text[start : self.pos].split())
        return None if plain in _NULLS else Plain(plain)


def _fold(pieces: list[str], *, trim: bool = False) -> str:
    """YAML line folding: one line break is a space, n+1 breaks (n empty lines) are n newlines.

    ``trim`` removes the white space around each line break (for quoted scalars; plain pieces come trimmed).
    """
    if trim and len(pieces) > 1:
        pieces = [pieces[0].rstrip(" \t"), *(p.strip(" \t") for p in pieces[1:-1]), pieces[-1].lstrip(" \t")]
    out: list[str] = []
    empties = 0
    for index, piece in enumerate(pieces):
        if index and not piece and index < len(pieces) - 1:
            empties += 1
            continue
        if index:
            out.append("\n" * empties if empties else " ")
        empties = 0
        out.append(piece)
    return "".join(out)


def _fold_block(lines: list[str]) -> str:
    """Folding for ``>`` block scalars: more-indented lines and empty lines keep their line breaks."""
    out: list[str] = []
    previous: str | None = None
    empties = 0
    for line in lines:
        if not line.strip():
            empties += 1
            continue
        kind = "more" if line[0] in " \t" else "normal"
        if previous is None:
            out.append("\n" * empties)
        elif previous == "normal" and kind == "normal":
            out.append("\n" * empties if empties else " ")
        else:
            out.append("\n" * (empties + 1))
        out.append(line)
        previous, empties = kind, 0
    return "".join(out)


def parse_yaml(text: str, source: str = "<string>") -> object:
    """Parse one YAML (or JSON) document into dicts, lists, ``str`` and ``None``.

    Plain scalars stay strings (``"true"``, ``"12"``): see the module docstring. Raises :class:`YamlError`
    naming ``source`` and the line for anything that is not YAML or is outside the supported subset.
    """
    return _YamlReader(text, source).document()


def resolve_plain(node: object) -> object:
    """YAML 1.2 core-schema typing for data passed through to a plugin (cluster extension config)."""
    if isinstance(node, dict):
        return {k: resolve_plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [resolve_plain(v) for v in node]
    if isinstance(node, Plain):
        if node in ("true", "True", "TRUE"):
            return True
        if node in ("false", "False", "FALSE"):
            return False
        if re.fullmatch(r"[-+]?[0-9]+", node):
            return int(node)
        if re.fullmatch(r"[-+]?(\.[0-9]+|[0-9]+(\.[0-9]*)?)([eE][-+]?[0-9]+)?", node):
            return float(node)
        return str(node)
    return node
