"""Label selector syntax check for `--node-selector` (the selector itself is evaluated by the apiserver).

Grammar (apimachinery `labels.Parse`): comma-separated requirements, each one of
`key`, `!key`, `key=value`, `key==value`, `key!=value`, `key in (v1,v2)`, `key notin (v1,v2)`,
`key>N`, `key<N`. Keys are qualified names (`[prefix/]name`), values are label values.
"""

from __future__ import annotations

import re
from typing import NamedTuple

_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")
_DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
_TOKEN = re.compile(r"\s*(!=|==|=|!|\(|\)|,|<|>|[^\s!=(),<>]+)")


class Requirement(NamedTuple):
    key: str
    operator: str
    """One of: exists, !, =, !=, in, notin, gt, lt (`==` is reported as `=`)."""
    values: tuple[str, ...]


def _check_key(key: str) -> None:
    prefix, slash, name = key.rpartition("/")
    if slash and (not prefix or len(prefix) > 253 or not _DNS_SUBDOMAIN.match(prefix)):
        raise ValueError(f"invalid label key {key!r}: prefix must be a DNS subdomain")
    if len(name) > 63 or not _NAME.match(name):
        raise ValueError(
            f"invalid label key {key!r}: name must be at most 63 alphanumeric characters, "
            "'-', '_' or '.', starting and ending with an alphanumeric character"
        )


def _check_value(value: str) -> None:
    if value and (len(value) > 63 or not _NAME.match(value)):
        raise ValueError(
            f"invalid label value {value!r}: must be empty or at most 63 alphanumeric characters, "
            "'-', '_' or '.', starting and ending with an alphanumeric character"
        )


def _tokens(text: str) -> list[str]:
    tokens: list[str] = []
    pos = 0
    stripped_end = len(text.rstrip())
    while pos < stripped_end:
        match = _TOKEN.match(text, pos)
        if match is None:  # pragma: no cover - every non-space character starts some token
            raise ValueError(f"unexpected character at position {pos}")
        tokens.append(match.group(1))
        pos = match.end()
    return tokens


def parse_label_selector(text: str) -> tuple[Requirement, ...]:
    """Parse a label selector; raise ValueError naming the problem. "" selects everything."""
    tokens = _tokens(text)
    requirements: list[Requirement] = []
    i = 0

    def take() -> str:
        nonlocal i
        if i >= len(tokens):
            raise ValueError(f"unexpected end of selector {text!r}")
        i += 1
        return tokens[i - 1]

    while i < len(tokens):
        tok = take()
        if tok == "!":
            key = take()
            _check_key(key)
            requirements.append(Requirement(key, "!", ()))
        else:
            _check_key(tok)
            key = tok
            if i >= len(tokens) or tokens[i] == ",":
                requirements.append(Requirement(key, "exists", ()))
            else:
                op = take()
                if op in ("=", "==", "!="):
                    value = tokens[i] if i < len(tokens) and tokens[i] != "," else ""
                    if value:
                        i += 1
                    _check_value(value)
                    requirements.append(Requirement(key, "!=" if op == "!=" else "=", (value,)))
                elif op in ("in", "notin"):
                    if take() != "(":
                        raise ValueError(f"expected '(' after {op!r} in {text!r}")
                    values: list[str] = []
                    while True:
                        nxt = take()
                        if nxt == ")":
                            break
                        if nxt == ",":
                            continue
                        _check_value(nxt)
                        values.append(nxt)
                    if not values:
                        raise ValueError(f"for 'in', 'notin' operators, values set can't be empty: {text!r}")
                    requirements.append(Requirement(key, op, tuple(values)))
                elif op in ("<", ">"):
                    value = take()
                    if not re.fullmatch(r"-?[0-9]+", value):
                        raise ValueError(f"for 'Gt', 'Lt' operators, the value must be an integer: {value!r}")
                    requirements.append(Requirement(key, "gt" if op == ">" else "lt", (value,)))
                else:
                    raise ValueError(f"unexpected {op!r} after key {key!r} in {text!r}")
        if i < len(tokens):
            if tokens[i] != ",":
                raise ValueError(f"expected ',' but found {tokens[i]!r} in {text!r}")
            i += 1
            if i >= len(tokens):
                raise ValueError(f"trailing ',' in {text!r}")
    return tuple(requirements)
