"""Label and field selectors with the grammar and error texts of k8s.io/apimachinery.

`parse_label_selector` follows `labels.Parse`; `parse_field_selector` follows
`fields.ParseSelector`. Both raise `SelectorError` with the upstream message, which the
apiserver returns as a 400 BadRequest.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

from .errors import SelectorError

_KEY_NAME = re.compile(r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$")
_VALUE = re.compile(r"^([A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?)?$")
_SPECIAL = "=!(),<>"


@dataclass(frozen=True, slots=True)
class Requirement:
    """One label requirement; `op` is one of = != in notin exists !exists gt lt."""

    key: str
    op: str
    values: tuple[str, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        op = self.op
        if op == "exists":
            return self.key in labels
        if op == "!exists":
            return self.key not in labels
        if op in ("=", "in"):
            return self.key in labels and labels[self.key] in self.values
        if op in ("!=", "notin"):
            return self.key not in labels or labels[self.key] not in self.values
        if self.key not in labels:
            return False
        try:
            have = int(labels[self.key])
        except ValueError:
            return False
        want = int(self.values[0])
        return have > want if op == "gt" else have < want


@dataclass(frozen=True, slots=True)
class LabelSelector:
    requirements: tuple[Requirement, ...] = ()

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(r.matches(labels) for r in self.requirements)


def _tokens(text: str) -> list[str]:
    out: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        if ch.isspace():
            i += 1
        elif ch in "(),":
            out.append(ch)
            i += 1
        elif ch in "=!<>":
            two = text[i : i + 2]
            if two in ("==", "!="):
                out.append(two)
                i += 2
            else:
                out.append(ch)
                i += 1
        else:
            j = i
            while j < len(text) and not text[j].isspace() and text[j] not in _SPECIAL:
                j += 1
            out.append(text[i:j])
            i = j
    return out


def _check_key(key: str) -> None:
    prefix, _, name = key.rpartition("/")
    if "/" in key and (not prefix or len(prefix) > 253):
        raise SelectorError(
            f"unable to parse requirement: invalid label key {key!r}: prefix part must be non-empty"
        )
    if len(name) > 63 or not _KEY_NAME.match(name):
        raise SelectorError(
            f"unable to parse requirement: invalid label key {key!r}: name part must consist of alphanumeric "
            "characters, '-', '_' or '.', and must start and end with an alphanumeric character"
        )


def _check_value(value: str) -> None:
    if len(value) > 63 or not _VALUE.match(value):
        raise SelectorError(
            f"unable to parse requirement: invalid label value: {value!r}: a valid label must be an empty "
            "string or consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
            "alphanumeric character"
        )


def parse_label_selector(text: str) -> LabelSelector:
    """Parse `a=b,c in (x,y),!d,e`; an empty string selects everything."""
    toks = _tokens(text)
    reqs: list[Requirement] = []
    pos = 0

    def peek() -> str:
        return toks[pos] if pos < len(toks) else ""

    while pos < len(toks):
        negate = False
        if peek() == "!":
            negate = True
            pos += 1
        key = peek()
        if not key or key in _SPECIAL or key in ("==", "!="):
            raise SelectorError(f"unable to parse requirement: found '{key}', expected: identifier")
        _check_key(key)
        pos += 1
        op = peek()
        if negate:
            if op not in ("", ","):
                raise SelectorError(
                    f"unable to parse requirement: found '{op}', expected: ',' or 'end of string'"
                )
            reqs.append(Requirement(key, "!exists"))
        elif op in ("", ","):
            reqs.append(Requirement(key, "exists"))
        elif op in ("=", "==", "!="):
            pos += 1
            value = peek()
            if value in (",", ""):
                value = ""
            elif value in _SPECIAL or value in ("==", "!="):
                raise SelectorError(f"unable to parse requirement: found '{value}', expected: identifier")
            else:
                pos += 1
            _check_value(value)
            reqs.append(Requirement(key, "!=" if op == "!=" else "=", (value,)))
        elif op in ("in", "notin"):
            pos += 1
            if peek() != "(":
                raise SelectorError(f"unable to parse requirement: found '{peek()}', expected: '('")
            pos += 1
            values: list[str] = []
            while True:
                tok = peek()
                if tok in (",", ")"):
                    values.append("")
                elif tok == "" or tok in _SPECIAL:
                    raise SelectorError(
                        f"unable to parse requirement: found '{tok}', expected: ',', ')' or identifier"
                    )
                else:
                    values.append(tok)
                    pos += 1
                tok = peek()
                if tok == ",":
                    pos += 1
                    continue
                if tok == ")":
                    pos += 1
                    break
                raise SelectorError(f"unable to parse requirement: found '{tok}', expected: ',' or ')'")
            for value in values:
                _check_value(value)
            reqs.append(Requirement(key, op, tuple(values)))
        elif op in ("<", ">"):
            pos += 1
            value = peek()
            pos += 1
            if not value.isdigit():
                raise SelectorError(
                    "unable to parse requirement: for 'Gt', 'Lt' operators, the value must be an integer"
                )
            reqs.append(Requirement(key, "gt" if op == ">" else "lt", (value,)))
        else:
            raise SelectorError(
                f"unable to parse requirement: found '{op}', expected: '=', '!=', '==', 'in', notin'"
            )
        if pos < len(toks):
            if peek() != ",":
                raise SelectorError(
                    f"unable to parse requirement: found '{peek()}', expected: ',' or 'end of string'"
                )
            pos += 1
            if pos == len(toks):
                raise SelectorError("unable to parse requirement: found '', expected: identifier")
    return LabelSelector(tuple(reqs))


@dataclass(frozen=True, slots=True)
class FieldRequirement:
    field: str
    equal: bool
    value: str


@dataclass(frozen=True, slots=True)
class FieldSelector:
    requirements: tuple[FieldRequirement, ...] = ()

    def matches(self, fields: Mapping[str, str]) -> bool:
        return all((fields.get(r.field, "") == r.value) == r.equal for r in self.requirements)

    def exact(self, field: str) -> str | None:
        """The value required by an exact `field=value` term, if any (used for authorization names)."""
        for r in self.requirements:
            if r.field == field and r.equal:
                return r.value
        return None


def _split_unescaped(text: str, sep: str) -> list[str]:
    parts, cur, i = [], [], 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            cur.append(text[i : i + 2])
            i += 2
            continue
        if ch == sep:
            parts.append("".join(cur))
            cur = []
        else:
            cur.append(ch)
        i += 1
    parts.append("".join(cur))
    return parts


def _unescape(value: str) -> str:
    out, i = [], 0
    while i < len(value):
        if value[i] == "\\":
            if i + 1 >= len(value) or value[i + 1] not in ",=!\\":
                raise SelectorError(f"invalid field selector: invalid escape sequence in {value!r}")
            out.append(value[i + 1])
            i += 2
        else:
            out.append(value[i])
            i += 1
    return "".join(out)


def parse_field_selector(text: str, known: frozenset[str]) -> FieldSelector:
    """Parse `a=b,c!=d`; fields outside `known` fail as the core API does (`field label not supported`)."""
    if not text:
        return FieldSelector()
    reqs: list[FieldRequirement] = []
    for term in _split_unescaped(text, ","):
        for op in ("!=", "==", "="):
            idx = _find_unescaped(term, op)
            if idx >= 0:
                field, value = term[:idx], term[idx + len(op) :]
                break
        else:
            raise SelectorError(f"invalid selector: '{text}'; can't understand '{term}'")
        if field not in known:
            raise SelectorError(f"field label not supported: {field}")
        reqs.append(FieldRequirement(field, op != "!=", _unescape(value)))
    return FieldSelector(tuple(reqs))


def _find_unescaped(term: str, op: str) -> int:
    i = 0
    while i < len(term):
        if term[i] == "\\":
            i += 2
            continue
        if term.startswith(op, i):
            return i
        i += 1
    return -1
