"""The --node-selector syntax check."""

from __future__ import annotations

import pytest

from metrics_server.kube.selector import Requirement, parse_label_selector


def test_parses_every_operator() -> None:
    text = "a, !b, c=1, d==2, e!=3, f in (x, y), g notin (z), h>5, i<-1, example.com/j=, k="
    assert parse_label_selector(text) == (
        Requirement("a", "exists", ()),
        Requirement("b", "!", ()),
        Requirement("c", "=", ("1",)),
        Requirement("d", "=", ("2",)),
        Requirement("e", "!=", ("3",)),
        Requirement("f", "in", ("x", "y")),
        Requirement("g", "notin", ("z",)),
        Requirement("h", "gt", ("5",)),
        Requirement("i", "lt", ("-1",)),
        Requirement("example.com/j", "=", ("",)),
        Requirement("k", "=", ("",)),
    )
    assert parse_label_selector("") == ()
    assert parse_label_selector("   ") == ()


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("a in (", "unexpected end of selector 'a in ('"),
        ("a in ()", "for 'in', 'notin' operators, values set can't be empty: 'a in ()'"),
        ("a>x", "for 'Gt', 'Lt' operators, the value must be an integer: 'x'"),
        ("a=b c", "expected ',' but found 'c' in 'a=b c'"),
        ("a,", "trailing ',' in 'a,'"),
        ("-a=b", "invalid label key '-a': name must be at most 63"),
        ("Bad_/x=y", "invalid label key 'Bad_/x': prefix must be a DNS subdomain"),
        ("a=" + "v" * 64, "invalid label value"),
        ("a (b)", "unexpected '(' after key 'a'"),
    ],
)
def test_rejects_bad_selectors(text: str, message: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_label_selector(text)
    assert str(info.value).startswith(message)
