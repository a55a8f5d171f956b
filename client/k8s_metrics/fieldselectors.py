"""Field selectors: ``fields.ParseSelector`` (backslash escapes in values, terms sorted) and the
apiserver's field-label conversion (``check_fields``: ``"x" is not a known field selector: only
"metadata.name", "metadata.namespace"``), with the library's error texts.

Errors are :class:`k8s_metrics.selectors.SelectorError`, as for label selectors. A parsed selector
is an immutable tuple of requirements; matching is a pure function over a field getter.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import NamedTuple

from .gostrings import go_quote
from .selectors import EQUALS, NOT_EQUALS, SelectorError

__all__ = [
    "EVERY_FIELD",
    "META_FIELDS",
    "FieldRequirement",
    "FieldSelector",
    "check_fields",
    "parse_field_selector",
]


class FieldRequirement(NamedTuple):
    """`field` `=` or `!=` `value` (`==` is folded into `=`, as the library does)."""

    field: str
    operator: str
    value: str


class FieldSelector(NamedTuple):
    requirements: tuple[FieldRequirement, ...]

    @property
    def empty(self) -> bool:
        return not self.requirements

    def matches(self, get: Callable[[str], str]) -> bool:
        """`get(field)` returns the object's value for a field (`""` when it has none, as Go's Set)."""
        return all((get(r.field) == r.value) == (r.operator == EQUALS) for r in self.requirements)

    def exact(self, field: str) -> str | None:
        """`RequiresExactMatch`: the value an `=` term pins `field` to, if any."""
        for r in self.requirements:
            if r.field == field and r.operator == EQUALS:
                return r.value
        return None


EVERY_FIELD = FieldSelector(())


def _split_terms(selector: str) -> list[str]:
    terms: list[str] = []
    start = 0
    in_slash = False
    for i, ch in enumerate(selector):
        if in_slash:
            in_slash = False
        elif ch == "\\":
            in_slash = True
        elif ch == ",":
            terms.append(selector[start:i])
            start = i + 1
    terms.append(selector[start:])
    return terms


def _split_term(term: str) -> tuple[str, str, str] | None:
    for i in range(len(term)):
        for op in ("!=", "==", "="):
            if term.startswith(op, i):
                return term[:i], op, term[i + len(op) :]
    return None


def _unescape(value: str) -> str:
    if not any(c in value for c in "\\,="):
        return value
    out: list[str] = []
    in_slash = False
    for ch in value:
        if in_slash:
            if ch not in "\\,=":
                raise SelectorError(f"invalid field selector: invalid escape sequence: \\{ch}")
            out.append(ch)
            in_slash = False
        elif ch == "\\":
            in_slash = True
        elif ch in ",=":
            # Go prints the rune with %v, i.e. its code point.
            raise SelectorError(f"invalid field selector: unescapedRune character in value: {ord(ch)}")
        else:
            out.append(ch)
    if in_slash:
        raise SelectorError("invalid field selector: invalid escape sequence: \\")
    return "".join(out)


def parse_field_selector(selector: str) -> FieldSelector:
    """Parse a `fieldSelector` query value (`fields.ParseSelector`). Raises `SelectorError`."""
    if not selector:
        return EVERY_FIELD
    requirements: list[FieldRequirement] = []
    for part in sorted(_split_terms(selector)):
        if not part:
            continue
        split = _split_term(part)
        if split is None:
            raise SelectorError(f"invalid selector: '{selector}'; can't understand '{part}'")
        lhs, op, rhs = split
        requirements.append(FieldRequirement(lhs, NOT_EQUALS if op == "!=" else EQUALS, _unescape(rhs)))
    return FieldSelector(tuple(requirements))


META_FIELDS = ("metadata.name", "metadata.namespace")
"""The field labels every kind accepts (`DefaultMetaV1FieldSelectorConversion`)."""


def check_fields(selector: FieldSelector, allowed: Iterable[str]) -> None:
    """The apiserver's field-label conversion: raise `SelectorError` for the first unknown field.

    The message lists `allowed` in the library's words: `"status.phase" is not a known field
    selector: only "metadata.name", "metadata.namespace"`.
    """
    allowed = tuple(allowed)
    for r in selector.requirements:
        if r.field not in allowed:
            only = ", ".join(go_quote(a) for a in allowed)
            raise SelectorError(f"{go_quote(r.field)} is not a known field selector: only {only}")
