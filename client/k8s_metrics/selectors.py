"""Label selectors: parsing with the apimachinery grammar and error texts, and matching.

This module and :mod:`k8s_metrics.fieldselectors` are the one place of the project that knows the
selector grammar: the metrics server checks ``labelSelector``/``fieldSelector`` with them, and a
client can validate a selector before sending it, getting the text the server would answer.

``parse_label_selector`` follows ``k8s.io/apimachinery/pkg/labels.Parse`` token for token (lexer,
recursive-descent parser, key/value validation through ``NewRequirement``), so a bad
selector gets the same 400 message as from metrics-server, e.g.
``unable to parse requirement: found '', expected: ',' or ')'``.

It raises :class:`SelectorError` (its ``str`` is the client-facing message), which the field
selectors raise too. Parsed selectors are immutable tuples of requirements; matching is a pure
function over a label mapping.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import NamedTuple

from .gostrings import go_quote

__all__ = [
    "DOES_NOT_EXIST",
    "DOUBLE_EQUALS",
    "EQUALS",
    "EVERYTHING",
    "EXISTS",
    "GREATER_THAN",
    "IN",
    "LESS_THAN",
    "NOT_EQUALS",
    "NOT_IN",
    "POSITIVE",
    "LabelSelector",
    "Requirement",
    "SelectorError",
    "label_key_errors",
    "label_value_errors",
    "parse_label_selector",
]


class SelectorError(ValueError):
    """A selector that does not parse or names an unsupported field. `str(err)` is the API message."""


# --- label selectors --------------------------------------------------------------------------

EXISTS = "exists"
DOES_NOT_EXIST = "!"
EQUALS = "="
DOUBLE_EQUALS = "=="
NOT_EQUALS = "!="
IN = "in"
NOT_IN = "notin"
GREATER_THAN = "gt"
LESS_THAN = "lt"

_BINARY_OPERATORS = (IN, NOT_IN, EQUALS, DOUBLE_EQUALS, NOT_EQUALS, GREATER_THAN, LESS_THAN)


class Requirement(NamedTuple):
    """One label requirement; `operator` uses `selection.Operator` spellings (`in`, `!`, `gt` ...)."""

    key: str
    operator: str
    values: tuple[str, ...]

    def matches(self, labels: Mapping[str, str]) -> bool:
        op = self.operator
        if op in (IN, EQUALS, DOUBLE_EQUALS):
            value = labels.get(self.key)
            return value is not None and value in self.values
        if op in (NOT_IN, NOT_EQUALS):
            value = labels.get(self.key)
            return value is None or value not in self.values
        if op == EXISTS:
            return self.key in labels
        if op == DOES_NOT_EXIST:
            return self.key not in labels
        # gt / lt: both sides must be base-10 int64 (strconv.ParseInt), else no match.
        value = labels.get(self.key)
        if value is None:
            return False
        have = _parse_int64(value)
        want = _parse_int64(self.values[0]) if len(self.values) == 1 else None
        if have is None or want is None:
            return False
        return have > want if op == GREATER_THAN else have < want


POSITIVE = frozenset({IN, EQUALS, DOUBLE_EQUALS})
"""Operators that name the values a matching object must carry (usable with a label index)."""


class LabelSelector(NamedTuple):
    """ANDed requirements, sorted by key as `labels.Parse` sorts them. Empty matches everything."""

    requirements: tuple[Requirement, ...]

    def matches(self, labels: Mapping[str, str]) -> bool:
        return all(r.matches(labels) for r in self.requirements)

    @property
    def empty(self) -> bool:
        return not self.requirements

    def matcher(self) -> Callable[[Mapping[str, str]], bool]:
        """A predicate equal to `matches`, compiled for testing many label sets with one selector.

        Single-valued `=`/`==`/`in` terms (the HPA's `app=x,tier=y`) become one C-level subset test
        of dict items; other terms are tested with `Requirement.matches`, memoised per label-set
        object (the pod cache shares one mapping between pods with equal labels). Build one
        matcher per request: the memo grows with the distinct label sets it sees.
        """
        pinned: dict[str, str] = {}
        rest: list[Requirement] = []
        for r in self.requirements:
            if r.operator in POSITIVE and len(r.values) == 1 and r.key not in pinned:
                pinned[r.key] = r.values[0]
            else:
                rest.append(r)
        items = pinned.items()
        if not rest:
            if not pinned:
                return _always
            return lambda labels: items <= labels.items()
        residual = tuple(rest)
        memo: dict[int, tuple[Mapping[str, str], bool]] = {}

        def match(labels: Mapping[str, str]) -> bool:
            hit = memo.get(id(labels))
            if hit is not None and hit[0] is labels:  # the object itself is kept: its id is not reused
                return hit[1]
            ok = items <= labels.items() and all(r.matches(labels) for r in residual)
            memo[id(labels)] = (labels, ok)
            return ok

        return match


def _always(labels: Mapping[str, str]) -> bool:
    return True


EVERYTHING = LabelSelector(())

# Token kinds of the lexer (names as in the Go source).
_ERROR, _EOS, _CLOSE, _COMMA, _NOT, _DEQ, _EQ, _GT, _IDENT, _IN, _LT, _NEQ, _NOTIN, _OPEN = range(14)
_STRING_TO_TOKEN = {
    ")": _CLOSE,
    ",": _COMMA,
    "!": _NOT,
    "==": _DEQ,
    "=": _EQ,
    ">": _GT,
    "in": _IN,
    "<": _LT,
    "!=": _NEQ,
    "notin": _NOTIN,
    "(": _OPEN,
}
_SPECIAL = frozenset("=!(),><")
_WHITESPACE = frozenset(" \t\r\n")


def _lex(s: str) -> list[tuple[int, str]]:
    """All tokens of `s`, ending with one end-of-string token (`Lexer.Lex` repeated)."""
    items: list[tuple[int, str]] = []
    pos, n = 0, len(s)
    while True:
        while pos < n and s[pos] in _WHITESPACE:
            pos += 1
        if pos >= n:
            items.append((_EOS, ""))
            return items
        if s[pos] in _SPECIAL:
            buffer = ""
            last: tuple[int, str] | None = None
            while pos < n and s[pos] in _SPECIAL:
                buffer += s[pos]
                token = _STRING_TO_TOKEN.get(buffer)
                if token is not None:
                    last = (token, buffer)
                elif last is not None:
                    break
                pos += 1
            items.append(last if last is not None else (_ERROR, f"error expected: keyword found '{buffer}'"))
        else:
            start = pos
            while pos < n and s[pos] not in _SPECIAL and s[pos] not in _WHITESPACE:
                pos += 1
            word = s[start:pos]
            items.append((_STRING_TO_TOKEN.get(word, _IDENT), word))


class _Parser:
    """`labels.Parser`: lookahead/consume over the scanned tokens; in/notin are identifiers in values."""

    def __init__(self, selector: str) -> None:
        self.items = _lex(selector)
        self.pos = 0

    def lookahead(self, values: bool) -> tuple[int, str]:
        tok, lit = self.items[self.pos]
        if values and tok in (_IN, _NOTIN):
            tok = _IDENT
        return tok, lit

    def consume(self, values: bool) -> tuple[int, str]:
        tok, lit = self.lookahead(values)
        self.pos += 1
        return tok, lit

    def parse(self) -> list[Requirement]:
        requirements: list[Requirement] = []
        while True:
            tok, lit = self.lookahead(True)
            if tok in (_IDENT, _NOT):
                try:
                    requirements.append(self.parse_requirement())
                except SelectorError as err:
                    raise SelectorError(f"unable to parse requirement: {err}") from None
                t, lit2 = self.consume(True)
                if t == _EOS:
                    return requirements
                if t == _COMMA:
                    t2, l2 = self.lookahead(True)
                    if t2 not in (_IDENT, _NOT):
                        raise SelectorError(f"found '{l2}', expected: identifier after ','")
                else:
                    raise SelectorError(f"found '{lit2}', expected: ',' or 'end of string'")
            elif tok == _EOS:
                return requirements
            else:
                raise SelectorError(f"found '{lit}', expected: !, identifier, or 'end of string'")

    def parse_requirement(self) -> Requirement:
        key, operator = self.parse_key_and_infer_operator()
        if operator in (EXISTS, DOES_NOT_EXIST):
            return _new_requirement(key, operator, [])
        operator = self.parse_operator()
        values = self.parse_values() if operator in (IN, NOT_IN) else self.parse_exact_value()
        return _new_requirement(key, operator, sorted(values))

    def parse_key_and_infer_operator(self) -> tuple[str, str]:
        operator = ""
        tok, literal = self.consume(True)
        if tok == _NOT:
            operator = DOES_NOT_EXIST
            tok, literal = self.consume(True)
        if tok != _IDENT:
            raise SelectorError(f"found '{literal}', expected: identifier")
        key_errors = label_key_errors(literal)
        if key_errors:
            raise SelectorError(_invalid("<nil>", literal, "; ".join(key_errors)))
        t, _ = self.lookahead(True)
        if t in (_EOS, _COMMA) and operator != DOES_NOT_EXIST:
            operator = EXISTS
        return literal, operator

    def parse_operator(self) -> str:
        tok, lit = self.consume(False)
        operator = _TOKEN_TO_OPERATOR.get(tok)
        if operator is None:
            raise SelectorError(f"found '{lit}', expected: {', '.join(_BINARY_OPERATORS)}")
        return operator

    def parse_values(self) -> set[str]:
        tok, lit = self.consume(True)
        if tok != _OPEN:
            raise SelectorError(f"found '{lit}' expected: '('")
        tok, lit = self.lookahead(True)
        if tok in (_IDENT, _COMMA):
            values = self.parse_identifiers_list()
            if self.consume(True)[0] != _CLOSE:
                raise SelectorError(f"found '{lit}', expected: ')'")
            return values
        if tok == _CLOSE:
            self.consume(True)
            return {""}
        raise SelectorError(f"found '{lit}', expected: ',', ')' or identifier")

    def parse_identifiers_list(self) -> set[str]:
        values: set[str] = set()
        while True:
            tok, lit = self.consume(True)
            if tok == _IDENT:
                values.add(lit)
                tok2, lit2 = self.lookahead(True)
                if tok2 == _COMMA:
                    continue
                if tok2 == _CLOSE:
                    return values
                raise SelectorError(f"found '{lit2}', expected: ',' or ')'")
            if tok == _COMMA:
                if not values:
                    values.add("")  # "(,"
                tok2, _ = self.lookahead(True)
                if tok2 in (_CLOSE, _COMMA):
                    values.add("")  # ",)" and ",,"
                    if tok2 == _CLOSE:
                        return values
                continue
            raise SelectorError(f"found '{lit}', expected: ',', or identifier")

    def parse_exact_value(self) -> set[str]:
        tok, _ = self.lookahead(True)
        if tok in (_EOS, _COMMA):
            return {""}
        tok, lit = self.consume(True)
        if tok == _IDENT:
            return {lit}
        raise SelectorError(f"found '{lit}', expected: identifier")


_TOKEN_TO_OPERATOR = {
    _IN: IN,
    _EQ: EQUALS,
    _DEQ: DOUBLE_EQUALS,
    _GT: GREATER_THAN,
    _LT: LESS_THAN,
    _NOTIN: NOT_IN,
    _NEQ: NOT_EQUALS,
}


def _new_requirement(key: str, operator: str, values: list[str]) -> Requirement:
    """`labels.NewRequirement`'s value checks (the key was checked by the parser already)."""
    errors: list[str] = []
    if operator in (GREATER_THAN, LESS_THAN):
        for i, value in enumerate(values):
            if _parse_int64(value) is None:
                errors.append(
                    _invalid(f"values[{i}]", value, "for 'Gt', 'Lt' operators, the value must be an integer")
                )
    for i, value in enumerate(values):
        value_errors = label_value_errors(value)
        if value_errors:
            errors.append(_invalid(f"values[{i}][{key}]", value, "; ".join(value_errors)))
    if errors:
        raise SelectorError(_aggregate(errors))
    return Requirement(key, operator, tuple(values))


def _invalid(path: str, value: str, detail: str) -> str:
    """`field.Invalid(path, value, detail).Error()`."""
    return f"{path}: Invalid value: {go_quote(value)}: {detail}"


def _aggregate(messages: list[str]) -> str:
    """`utilerrors.NewAggregate(...).Error()`: one message as is, several de-duplicated in brackets."""
    unique = list(dict.fromkeys(messages))
    return unique[0] if len(unique) == 1 else "[" + ", ".join(unique) + "]"


_INT64_RE = re.compile(r"[+-]?[0-9]+")


def _parse_int64(value: str) -> int | None:
    """`strconv.ParseInt(value, 10, 64)`: None on syntax or range errors."""
    if not _INT64_RE.fullmatch(value):
        return None
    number = int(value)
    return number if -(2**63) <= number < 2**63 else None


def parse_label_selector(selector: str) -> LabelSelector:
    """Parse a `labelSelector` query value. Raises `SelectorError` with the library's message."""
    requirements = _Parser(selector).parse()
    requirements.sort(key=lambda r: r.key)
    return LabelSelector(tuple(requirements))


# --- label key / value validation (k8s.io/apimachinery content.IsLabelKey / IsLabelValue) -------

_NAME_FMT = "([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]"
_NAME_RE = re.compile(_NAME_FMT)
_NAME_MSG = (
    "must consist of alphanumeric characters, '-', '_' or '.', and must start and end with an "
    "alphanumeric character"
)
_VALUE_FMT = f"({_NAME_FMT})?"
_VALUE_RE = re.compile(_VALUE_FMT)
_VALUE_MSG = (
    "a valid label must be an empty string or consist of alphanumeric characters, '-', '_' or '.', "
    "and must start and end with an alphanumeric character"
)
_SUBDOMAIN_FMT = "[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*"
_SUBDOMAIN_RE = re.compile(_SUBDOMAIN_FMT)
_SUBDOMAIN_MSG = (
    "a lowercase RFC 1123 subdomain must consist of lower case alphanumeric characters, '-' or '.', "
    "and must start and end with an alphanumeric character"
)


def _regex_error(msg: str, fmt: str, *examples: str) -> str:
    """`content.RegexError`."""
    shown = " or ".join(f"'{e}', " for e in examples)
    return f"{msg} (e.g. {shown}regex used for validation is '{fmt}')"


def _byte_len(s: str) -> int:
    return len(s.encode())


def label_key_errors(key: str) -> list[str]:
    """`content.IsLabelKey`: the reasons `key` is not a label key (empty when it is one)."""
    errors: list[str] = []
    parts = key.split("/")
    if len(parts) == 1:
        name = parts[0]
    elif len(parts) == 2:
        prefix, name = parts
        if not prefix:
            errors.append("prefix part must be non-empty")
        else:
            if _byte_len(prefix) > 253:
                errors.append("prefix part must be no more than 253 bytes")
            if not _SUBDOMAIN_RE.fullmatch(prefix):
                errors.append("prefix part " + _regex_error(_SUBDOMAIN_MSG, _SUBDOMAIN_FMT, "example.com"))
    else:
        return [
            "a valid label key "
            + _regex_error(_NAME_MSG, _NAME_FMT, "MyName", "my.name", "123-abc")
            + " with an optional DNS subdomain prefix and '/' (e.g. 'example.com/MyName')"
        ]
    if not name:
        errors.append("name part must be non-empty")
    elif _byte_len(name) > 63:
        errors.append("name part must be no more than 63 bytes")
    if not _NAME_RE.fullmatch(name):
        errors.append("name part " + _regex_error(_NAME_MSG, _NAME_FMT, "MyName", "my.name", "123-abc"))
    return errors


def label_value_errors(value: str) -> list[str]:
    """`content.IsLabelValue`: the reasons `value` is not a label value (empty when it is one)."""
    errors: list[str] = []
    if _byte_len(value) > 63:
        errors.append("must be no more than 63 bytes")
    if not _VALUE_RE.fullmatch(value):
        errors.append(_regex_error(_VALUE_MSG, _VALUE_FMT, "MyValue", "my_value", "12345"))
    return errors
