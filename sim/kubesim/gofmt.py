"""Value formatting exactly as Go's standard library does it (what kubelets and apiservers emit)."""

from __future__ import annotations

import datetime as _dt
import functools
import math

from .clock import NS_PER_S


def go_float(value: float) -> str:
    """`strconv.FormatFloat(v, 'g', -1, 64)` as used by Prometheus' text encoder.

    Shortest round-trip digits. Go picks the exponent form when the decimal exponent is < -4
    or >= 6 (it uses precision 6 for that choice when formatting shortest), so 12533760 is
    written `1.253376e+07` and 495616 stays `495616`. Prometheus writes 0, 1 and -1 literally.
    """
    if value == 0:
        return "0"
    if value == 1:
        return "1"
    if value == -1:
        return "-1"
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    text = repr(value)
    sign = ""
    if text[0] == "-":
        sign, text = "-", text[1:]
    exp10 = 0
    if "e" in text:
        text, exp_text = text.split("e")
        exp10 = int(exp_text)
    point = text.find(".")
    if point < 0:
        digits, dp = text, len(text)
    else:
        digits, dp = text[:point] + text[point + 1 :], point
    dp += exp10
    stripped = digits.lstrip("0")
    dp -= len(digits) - len(stripped)
    digits = stripped.rstrip("0") or "0"
    nd = len(digits)
    exp = dp - 1
    if exp < -4 or exp >= 6:
        mantissa = digits[0] + ("." + digits[1:] if nd > 1 else "")
        return f"{sign}{mantissa}e{'-' if exp < 0 else '+'}{abs(exp):02d}"
    if dp <= 0:
        return f"{sign}0.{'0' * -dp}{digits}"
    if dp >= nd:
        return f"{sign}{digits}{'0' * (dp - nd)}"
    return f"{sign}{digits[:dp]}.{digits[dp:]}"


def rfc3339(epoch_ns: int) -> str:
    """Second-precision UTC RFC 3339, as metav1.Time marshals: `2025-11-04T19:18:28Z`."""
    return _rfc3339_seconds(epoch_ns // NS_PER_S)


@functools.lru_cache(maxsize=65536)
def _rfc3339_seconds(seconds: int) -> str:
    return _dt.datetime.fromtimestamp(seconds, _dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
