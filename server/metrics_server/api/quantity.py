"""Wire formatting of the values the Metrics API serves: quantities, durations, timestamps.

The one place these formats live. Each function reproduces the Go library's output byte for byte:

* `cpu_quantity` / `memory_quantity`: `resource.Quantity.String()` of the quantities metrics-server
  builds (`NewScaledQuantity(nanocores, -9)`, DecimalSI; `NewQuantity(bytes, BinarySI)`);
* `go_duration`: `time.Duration.String()` (`"15.012s"`, `"1m0.729s"`, `"1µs"`, `"0s"`);
* `rfc3339_seconds`: `metav1.Time` JSON (`"2026-04-25T17:20:42Z"`, second precision, UTC).

Pure functions over ints; all raise nothing for in-range input (the int64 range the Go types have).
"""

from __future__ import annotations

import time

_DECIMAL_SUFFIXES = {-9: "n", -6: "u", -3: "m", 0: "", 3: "k", 6: "M", 9: "G", 12: "T", 15: "P", 18: "E"}
_BINARY_SUFFIXES = ("", "Ki", "Mi", "Gi", "Ti", "Pi", "Ei")


def _decimal_canonical(value: int, scale: int) -> str:
    """`int64Amount.AsCanonicalBytes` + the DecimalSI suffixer for `value * 10**scale`.

    Trailing zero digits move into the exponent, which is then lowered to a multiple of 3 by
    padding the mantissa (Go multiplies by 10 or 100; Python's floor modulo gives the same pad).
    """
    if value == 0:
        return "0"
    digits = str(-value if value < 0 else value)
    stripped = digits.rstrip("0")
    exponent = scale + len(digits) - len(stripped)
    pad = exponent % 3
    suffix = _DECIMAL_SUFFIXES.get(exponent - pad)
    if suffix is None:
        suffix = f"e{exponent - pad}"
    return f"{'-' if value < 0 else ''}{stripped}{'0' * pad}{suffix}"


def cpu_quantity(nanocores: int) -> str:
    """CPU usage as metrics-server prints it: `168064370n`, `5u`, `12m`, `2`, `0`."""
    if nanocores % 1000:
        # The usual case (measured rates are rarely round): at most two trailing zeros, which the
        # canonical form pads back, so it stays in nanocores (~0.15 us instead of ~1.5 us).
        return f"{nanocores}n"
    return _decimal_canonical(nanocores, -9)


def memory_quantity(num_bytes: int) -> str:
    """A BinarySI byte quantity: `1948212Ki`, `5Mi`, `1000000`; below 1024 it is DecimalSI (`1k`)."""
    if -1024 < num_bytes < 1024:
        return _decimal_canonical(num_bytes, 0)
    if num_bytes & 1023:
        return str(num_bytes)  # not a whole KiB (two's complement: the same test for negatives)
    if num_bytes & 1_048_575:  # whole KiB, not MiB: the usual working set (pages of 4 KiB)
        return f"{num_bytes >> 10}Ki"
    amount = -num_bytes if num_bytes < 0 else num_bytes
    power = 0
    while not amount & 1023:  # int64 cannot hold 1024**7, so the suffix table suffices
        amount >>= 10
        power += 1
    return f"{'-' if num_bytes < 0 else ''}{amount}{_BINARY_SUFFIXES[power]}"


def go_duration(ns: int) -> str:
    """`time.Duration(ns).String()`.

    Under a second: the largest unit of ns/µs/ms that keeps the integer part non-zero, with the
    fraction trimmed of trailing zeros (`"1.5ms"`, `"1µs"`). Otherwise `[h][m]s` with a trimmed
    fractional second (`"15.012s"`, `"1m0.729s"`, `"2h0m0s"`). Zero is `"0s"`.
    """
    if ns == 0:
        return "0s"
    sign = "-" if ns < 0 else ""
    u = -ns if ns < 0 else ns
    if u < 1_000_000_000:
        if u < 1_000:
            return f"{sign}{u}ns"
        if u < 1_000_000:
            return f"{sign}{_frac(u, 1_000)}µs"
        return f"{sign}{_frac(u, 1_000_000)}ms"
    secs, frac_ns = divmod(u, 1_000_000_000)
    text = f"{secs % 60}"
    if frac_ns:
        text += "." + f"{frac_ns:09d}".rstrip("0")
    text += "s"
    mins = secs // 60
    if mins:
        text = f"{mins % 60}m{text}"
        hours = mins // 60
        if hours:
            text = f"{hours}h{text}"
    return sign + text


def _frac(value: int, unit: int) -> str:
    whole, rest = divmod(value, unit)
    if not rest:
        return str(whole)
    digits = len(str(unit)) - 1
    return f"{whole}." + f"{rest:0{digits}d}".rstrip("0")


def rfc3339_seconds(ns: int) -> str:
    """A Unix time in ns as `metav1.Time` JSON: UTC, truncated to the second, `Z` suffix."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(ns // 1_000_000_000))
