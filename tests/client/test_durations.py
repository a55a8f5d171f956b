"""k8s_metrics.durations: Go's time.ParseDuration and time.Duration.String(), byte for byte."""

from __future__ import annotations

import datetime
import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from k8s_metrics.durations import format_duration, parse_duration, parse_duration_ns

td = datetime.timedelta
INT64_MAX = 2**63 - 1


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("0", 0),
        ("+0", 0),
        ("-0", 0),
        ("0s", 0),
        ("7ns", 7),
        ("10us", 10_000),
        ("10µs", 10_000),  # micro sign
        ("10μs", 10_000),  # Greek mu
        ("300ms", 300_000_000),
        ("1.5s", 1_500_000_000),
        ("15.012s", 15_012_000_000),
        ("1m0.729s", 60_729_000_000),
        (".5m", 30_000_000_000),
        ("5.s", 5_000_000_000),
        ("1h30m", 5_400_000_000_000),
        ("1h2m3.000000001s", 3_723_000_000_001),
        ("1.0000000009s", 1_000_000_000),  # finer than a nanosecond: dropped
        ("-2s", -2_000_000_000),
        ("2562047h47m16.854775807s", INT64_MAX),
        ("-2562047h47m16.854775808s", -(2**63)),
    ],
)
def test_parse(text: str, ns: int) -> None:
    assert parse_duration_ns(text) == ns


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", ""),
        ("+", ""),
        ("s", ""),
        (".s", ""),
        (" 1s", ""),
        ("1.2.3s", ": missing unit"),
        ("15", ": missing unit"),
        ("1m5", ": missing unit"),
        ("1d", ": unknown unit 'd'"),
        ("1m x", ": unknown unit 'm x'"),
        ("2562047h47m16.854775808s", ": out of range"),
    ],
)
def test_parse_refuses_what_go_refuses(text: str, reason: str) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(f'invalid duration {text!r}{reason}')}$"):
        parse_duration_ns(text)


def test_parse_as_timedelta() -> None:
    cases = {
        "15.012s": td(seconds=15, milliseconds=12),
        "1h2m3.5s": td(hours=1, minutes=2, seconds=3.5),
        "1µs": td(microseconds=1),
        "1500ns": td(microseconds=2),  # rounded half to even, to microseconds
        "2500ns": td(microseconds=2),
        "2501ns": td(microseconds=3),
        "-1.5s": td(seconds=-1.5),
        "-1500ns": td(microseconds=-2),
    }
    assert {text: parse_duration(text) for text in cases} == cases


@pytest.mark.parametrize(
    ("ns", "text"),
    [
        (0, "0s"),
        (1, "1ns"),
        (999, "999ns"),
        (1_000, "1µs"),
        (1_500, "1.5µs"),
        (1_000_000, "1ms"),
        (1_234_567, "1.234567ms"),
        (500_000_000, "500ms"),
        (1_000_000_000, "1s"),
        (14_997_000_000, "14.997s"),
        (15_012_000_000, "15.012s"),
        (30_000_000_000, "30s"),
        (60_000_000_000, "1m0s"),
        (60_729_000_000, "1m0.729s"),
        (90_000_000_000, "1m30s"),
        (3_600_000_000_000, "1h0m0s"),
        (3_723_000_000_001, "1h2m3.000000001s"),
        (-1_500_000_000, "-1.5s"),
        (INT64_MAX, "2562047h47m16.854775807s"),
    ],
)
def test_format(ns: int, text: str) -> None:
    assert format_duration(ns) == text


def test_format_timedelta() -> None:
    cases = {
        td(0): "0s",
        td(microseconds=1500): "1.5ms",
        td(seconds=59, microseconds=123456): "59.123456s",
        td(days=3, minutes=3, seconds=0.5): "72h3m0.5s",
        td(seconds=-90): "-1m30s",
    }
    assert {k: format_duration(k) for k in cases} == cases


@given(st.integers(min_value=-(2**63) + 1, max_value=INT64_MAX))
def test_format_then_parse_is_the_identity(ns: int) -> None:
    assert parse_duration_ns(format_duration(ns)) == ns
