"""Go durations (``time.Duration``): parsing and formatting, byte for byte as Go does.

The Metrics API serves each sample's ``window`` as Go prints a duration (``"15.012s"``, ``"1m0.729s"``),
and metrics-server's flags take durations in Go syntax (``--metric-resolution=15s``). This module is the
one place those formats live:

* :func:`parse_duration_ns` is ``time.ParseDuration``: signed decimal numbers with units ``ns``, ``us``
  (or ``µs``, ``μs``), ``ms``, ``s``, ``m``, ``h`` (``"1h30m"``, ``"1.5s"``, ``".5ms"``, ``"-2m"``), or a
  bare ``"0"``. Fractions finer than a nanosecond are dropped, as Go does. No surrounding whitespace.
* :func:`parse_duration` is the same, as a :class:`datetime.timedelta` (rounded half to even to whole
  microseconds, ``timedelta``'s resolution).
* :func:`format_duration` is ``time.Duration.String()``: ``"0s"``, ``"1.5ms"``, ``"1µs"``, ``"15.012s"``,
  ``"1m0s"``, ``"72h3m0.5s"``; it takes integer nanoseconds or a ``timedelta``.

Parsing raises :class:`ValueError` ``invalid duration '<text>'`` (with the reason: missing or unknown
unit, out of the int64 range of ``time.Duration``) for anything Go refuses; formatting raises nothing.
"""

from __future__ import annotations

import datetime
import re
from typing import Final

__all__ = ["format_duration", "parse_duration", "parse_duration_ns"]

_UNITS_NS: Final = {
    "ns": 1,
    "us": 10**3,
    "µs": 10**3,  # U+00B5 micro sign
    "μs": 10**3,  # U+03BC Greek small letter mu
    "ms": 10**6,
    "s": 10**9,
    "m": 60 * 10**9,
    "h": 3600 * 10**9,
}
# One term: digits, an optional fraction, then the unit (everything up to the next digit or dot, as in
# Go, so an unknown unit is reported rather than mis-split).
_TERM: Final = re.compile(r"([0-9]*)(?:\.([0-9]*))?([^0-9.]*)")
_INT64_MAX: Final = 2**63 - 1


def parse_duration_ns(text: str) -> int:
    """``time.ParseDuration(text)`` in integer nanoseconds. Raises ValueError quoting ``text``."""
    negative = text[:1] == "-"
    body = text[1:] if text[:1] in "+-" else text
    if body == "0":
        return 0
    if not body:
        raise ValueError(f"invalid duration {text!r}")
    total = 0
    pos = 0
    while pos < len(body):
        match = _TERM.match(body, pos)
        assert match is not None  # every part of the pattern may be empty
        whole, fraction, unit = match[1], match[2], match[3]
        if not whole and not fraction:
            raise ValueError(f"invalid duration {text!r}")
        if not unit:
            raise ValueError(f"invalid duration {text!r}: missing unit")
        scale = _UNITS_NS.get(unit)
        if scale is None:
            raise ValueError(f"invalid duration {text!r}: unknown unit {unit!r}")
        total += int(whole or "0") * scale
        if fraction:
            total += int(fraction) * scale // 10 ** len(fraction)
        if total > _INT64_MAX + negative:
            raise ValueError(f"invalid duration {text!r}: out of range")
        pos = match.end()
    return -total if negative else total


def parse_duration(text: str) -> datetime.timedelta:
    """``time.ParseDuration(text)`` as a ``timedelta``, rounded half to even to whole microseconds.
    Raises ValueError quoting ``text``."""
    ns = parse_duration_ns(text)
    micros, rest = divmod(abs(ns), 1000)
    if rest > 500 or (rest == 500 and micros % 2):
        micros += 1
    return datetime.timedelta(microseconds=-micros if ns < 0 else micros)


def format_duration(duration: int | datetime.timedelta) -> str:
    """``time.Duration.String()`` of integer nanoseconds or a ``timedelta``.

    Under a second: the largest unit of ns/µs/ms that keeps the integer part non-zero, with the fraction
    trimmed of trailing zeros (``"1.5ms"``, ``"1µs"``). Otherwise ``[h][m]s`` with a trimmed fractional
    second (``"15.012s"``, ``"1m0.729s"``, ``"2h0m0s"``). Zero is ``"0s"``.
    """
    if isinstance(duration, datetime.timedelta):
        ns = ((duration.days * 86400 + duration.seconds) * 10**6 + duration.microseconds) * 1000
    else:
        ns = duration
    if ns == 0:
        return "0s"
    sign = "-" if ns < 0 else ""
    u = -ns if ns < 0 else ns
    if u < 10**9:
        if u < 10**3:
            return f"{sign}{u}ns"
        if u < 10**6:
            return f"{sign}{_fraction(u, 10**3)}µs"
        return f"{sign}{_fraction(u, 10**6)}ms"
    seconds, fraction_ns = divmod(u, 10**9)
    text = f"{seconds % 60}"
    if fraction_ns:
        text += "." + f"{fraction_ns:09d}".rstrip("0")
    text += "s"
    minutes = seconds // 60
    if minutes:
        text = f"{minutes % 60}m{text}"
        hours = minutes // 60
        if hours:
            text = f"{hours}h{text}"
    return sign + text


def _fraction(value: int, unit: int) -> str:
    whole, rest = divmod(value, unit)
    if not rest:
        return str(whole)
    digits = len(str(unit)) - 1
    return f"{whole}." + f"{rest:0{digits}d}".rstrip("0")
