"""Go's strconv.Quote, byte for byte."""

from __future__ import annotations

from k8s_metrics.gostrings import go_quote


def test_go_quote() -> None:
    assert go_quote('a"b\\c\n\x01é\u2028') == '"a\\"b\\\\c\\n\\x01é\\u2028"'


def test_go_quote_escapes() -> None:
    assert go_quote("") == '""'
    assert (
        go_quote("tab\there bell\a \x7f \U0001f600 \U000e0001") == '"tab\\there bell\\a \\x7f 😀 \\U000e0001"'
    )
