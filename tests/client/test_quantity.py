"""k8s_metrics.quantity: exact values of Kubernetes quantity strings.

The expected values were checked against apimachinery's ParseQuantity through kubectl 1.32
(``kubectl set resources --local --limits=cpu=<q> -o jsonpath=...`` prints the parsed quantity in canonical
form); the canonical form kubectl printed is given in the comments where it is not the input.
"""

from __future__ import annotations

from decimal import Decimal

import pytest

from k8s_metrics.quantity import (
    cpu_cores,
    cpu_millicores,
    cpu_nanocores,
    cpu_quantity,
    memory_bytes,
    memory_quantity,
    parse_quantity,
    to_decimal,
)

D = Decimal
INT64_MAX = 2**63 - 1

VALID: list[tuple[str, Decimal]] = [
    # plain numbers, signs, leading and trailing forms
    ("0", D(0)),
    ("00", D(0)),
    ("-0", D(0)),
    ("+0", D(0)),
    ("1", D(1)),
    ("+1", D(1)),
    ("-1", D(-1)),
    ("1.5", D("1.5")),  # 1500m
    (".5", D("0.5")),  # 500m
    ("-.5", D("-0.5")),
    ("5.", D(5)),
    ("1.", D(1)),
    ("0.", D(0)),
    ("00012", D(12)),
    ("1.G", D(10**9)),
    # decimal SI suffixes
    ("100n", D("0.0000001")),
    ("1n", D("0.000000001")),
    ("1u", D("0.000001")),
    ("1.5u", D("0.0000015")),  # 1500n
    ("250m", D("0.25")),
    ("0.1m", D("0.0001")),  # 100u
    ("1k", D(1000)),
    ("1M", D(10**6)),
    ("1G", D(10**9)),
    ("1T", D(10**12)),
    ("1P", D(10**15)),
    ("1E", D(10**18)),  # "E" alone is exa
    ("12E", D(12 * 10**18)),  # not capped: only binary quantities saturate
    ("1.01E", D(101 * 10**16)),  # 1010P
    ("999999999999999999E", D(999999999999999999 * 10**18)),
    ("1000000000000000000E", D(10**36)),  # kubectl prints "1": its formatter has no suffix for 10^36
    ("168064370n", D("0.168064370")),
    # binary SI suffixes
    ("1Ki", D(1024)),
    ("1948212Ki", D(1948212 * 1024)),
    ("512Mi", D(512 * 2**20)),
    ("1.5Gi", D(3 * 2**29)),  # 1536Mi
    ("7.5Gi", D(7680 * 2**20)),
    ("0.5Mi", D(512 * 1024)),  # 512Ki
    ("0.05Gi", D("53687091.2")),  # 53687091200m
    ("1Ti", D(2**40)),
    ("1Pi", D(2**50)),
    ("1.5Pi", D(1536 * 2**40)),
    ("1Ei", D(2**60)),
    ("7Ei", D(7 * 2**60)),
    ("8Ei", D(INT64_MAX)),  # saturates
    ("-8Ei", D(-INT64_MAX)),
    ("10Ei", D(INT64_MAX)),
    ("9223372036854775807Ki", D(INT64_MAX)),
    # decimal exponents: "E3" after digits is an exponent, not exa
    ("1e3", D(1000)),
    ("1E3", D(1000)),
    ("1e+3", D(1000)),
    ("1e00003", D(1000)),
    ("12e-3", D("0.012")),
    ("1E-3", D("0.001")),
    ("1e0", D(1)),
    ("1e-0", D(1)),
    ("1e18", D(10**18)),
    ("1e19", D(10**19)),  # 10e18
    ("1e-9", D("1e-9")),
    ("1e2147483647", D("1e2147483647")),
    ("1e4294967297", D(10)),  # the exponent is truncated to int32 like Go's int32(x): 1
    ("1e9223372036854775807", D("0.1")),  # int32 truncation gives -1
    # rounded up (away from zero) to whole nano-units
    ("0.1n", D("1e-9")),
    ("0.5n", D("1e-9")),
    ("1.5n", D("2e-9")),
    ("-1.5n", D("-2e-9")),
    ("1.5e-9", D("2e-9")),
    ("123e-12", D("1e-9")),
    ("1e-18", D("1e-9")),
    ("0.0000000001", D("1e-9")),
    ("-0.0000000001", D("-1e-9")),
    ("1.0000000001", D("1.000000001")),  # 1000000001n
    ("0.123456789012345678", D("0.12345679")),  # 123456790n
    ("3.14159265358979323846264338327950288", D("3.141592654")),
    ("0.000000001Ki", D("0.000001024")),  # 1024n
    ("0.0000000001Ki", D("1.03e-7")),  # 103n
    ("0.000000000001Ki", D("2e-9")),  # 2n
    ("0e-10", D(0)),
    # no digits at all: apimachinery treats the missing number as 0
    (".", D(0)),
    ("+", D(0)),
    ("-", D(0)),
    ("Mi", D(0)),
    ("Ki", D(0)),
    ("-.Ki", D(0)),
    ("e-9", D(0)),
    # big integers stay exact
    ("9223372036854775808", D(2**63)),
    ("12345678901234567890", D(12345678901234567890)),
]

INVALID: list[tuple[str, str]] = [
    ("", "empty string"),
    ("1.2.3", "unexpected character '.' at position 3"),
    ("1..5", "unexpected character '.' at position 2"),
    ("1ki", "unknown suffix 'ki'"),
    ("1K", "unknown suffix 'K'"),
    ("1KiB", "unexpected character 'B' at position 3"),
    ("1 Gi", "unexpected character ' ' at position 1"),
    (" 1", "unexpected character ' ' at position 0"),
    ("1 ", "unexpected character ' ' at position 1"),
    ("1e", "unknown suffix 'e'"),
    ("1e+", "unknown suffix 'e+'"),
    ("-3.01e-", "unknown suffix 'e-'"),
    ("1e+-3", "unexpected character '-' at position 3"),
    ("1e3k", "unexpected character 'k' at position 3"),
    ("1E3Ki", "unexpected character 'K' at position 3"),
    ("1e1.5", "unexpected character '.' at position 3"),
    ("eE3", "unknown suffix 'eE3'"),
    ("1e9223372036854775808", "unknown suffix 'e9223372036854775808'"),
    ("--1", "unknown suffix '-1'"),
    ("++1", "unknown suffix '+1'"),
    ("1-", "unknown suffix '-'"),
    ("1i", "unknown suffix 'i'"),
    (".5i", "unknown suffix 'i'"),
    ("0.1mi", "unknown suffix 'mi'"),
    ("1mi", "unknown suffix 'mi'"),
    ("1uu", "unknown suffix 'uu'"),
    ("0.1am", "unexpected character 'a' at position 3"),
    ("1Zi", "unexpected character 'Z' at position 1"),
    ("1µ", "unexpected character 'µ' at position 1"),
    ("１", "unexpected character '１' at position 0"),  # a full-width digit is not a digit here
    ("1_000", "unexpected character '_' at position 1"),
    ("0x10", "unexpected character 'x' at position 1"),
    ("1,5", "unexpected character ',' at position 1"),
    ("Inf", "unexpected character 'I' at position 0"),
    ("NaN", "unexpected character 'N' at position 0"),
    ("aoeu", "unexpected character 'a' at position 0"),
    ("e-10", "no digits in the numeric part"),  # too small for the int64 path, and nothing to parse
    (".e-10", "no digits in the numeric part"),
]


@pytest.mark.parametrize(("text", "expected"), VALID)
def test_valid(text: str, expected: Decimal) -> None:
    value = parse_quantity(text)
    assert value == expected
    assert not value.is_signed() or value != 0  # never a negative zero


@pytest.mark.parametrize(("text", "reason"), INVALID)
def test_invalid(text: str, reason: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_quantity(text)
    assert str(info.value) == f"invalid quantity {text!r}: {reason}"


def test_huge_exponent_is_fast() -> None:
    # Go's big-number path makes kubectl hang on this input; the result is simply one nano-unit.
    assert parse_quantity("1e-2147483648") == D("1e-9")
    assert parse_quantity("1e2147483648") == D("1e-9")  # int32 truncation: 1e-2147483648


@pytest.mark.parametrize(
    ("canonical", "expected"),
    [
        ("1Gi", 2**30),
        ("1536Mi", 3 * 2**29),
        ("250m", D("0.25")),
        ("1500n", D("0.0000015")),
        ("10e18", 10**19),
    ],
)
def test_canonical_strings_round_trip(canonical: str, expected: int | Decimal) -> None:
    # Canonical strings a server writes (hand-written here; formatting is the server's job).
    assert parse_quantity(canonical) == expected


def test_to_decimal_accepts_parsed_values() -> None:
    assert to_decimal("2Ki") == 2048
    assert to_decimal(D("0.25")) == D("0.25")
    assert to_decimal(3) == 3
    with pytest.raises(TypeError, match="not float"):
        to_decimal(0.5)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="not bool"):
        to_decimal(True)
    with pytest.raises(ValueError, match="not a finite number"):
        to_decimal(D("NaN"))
    with pytest.raises(TypeError, match="must be a str, not int"):
        parse_quantity(5)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("quantity", "cores", "millicores", "nanocores"),
    [
        ("250m", D("0.25"), 250, 250_000_000),
        ("168064370n", D("0.16806437"), 169, 168_064_370),  # kubectl top shows 169m
        ("1n", D("1e-9"), 1, 1),  # rounded up to 1m, never to 0m
        ("0", D(0), 0, 0),
        ("2", D(2), 2000, 2_000_000_000),
        ("1.5", D("1.5"), 1500, 1_500_000_000),
        ("1000001n", D("0.001000001"), 2, 1_000_001),
        ("-1n", D("-1e-9"), -1, -1),  # away from zero, like MilliValue()
        (D("0.0000000001"), D("1e-10"), 1, 1),  # finer than nano only through a Decimal
        (3, D(3), 3000, 3_000_000_000),
    ],
)
def test_cpu_helpers(quantity: str | Decimal | int, cores: Decimal, millicores: int, nanocores: int) -> None:
    assert cpu_cores(quantity) == cores
    assert cpu_millicores(quantity) == millicores
    assert cpu_nanocores(quantity) == nanocores


@pytest.mark.parametrize(
    ("quantity", "expected"),
    [
        ("1948212Ki", 1_994_969_088),
        ("1Gi", 1_073_741_824),
        ("1.5Gi", 1_610_612_736),
        ("123456789", 123_456_789),
        ("1500m", 2),  # 1.5 bytes rounds up
        ("1m", 1),
        ("0.05Gi", 53_687_092),
        ("1e3", 1000),
        ("8Ei", INT64_MAX),
        (D("1024.000"), 1024),
        (0, 0),
    ],
)
def test_memory_bytes(quantity: str | Decimal | int, expected: int) -> None:
    assert memory_bytes(quantity) == expected


def test_integer_helpers_refuse_absurd_sizes() -> None:
    with pytest.raises(ValueError, match="too large to convert to an integer"):
        memory_bytes("1e2147483647")


# Formatting (Quantity.String()), against Go's output


@pytest.mark.parametrize(
    ("nanocores", "text"),
    [
        (0, "0"),
        (1, "1n"),
        (10, "10n"),
        (999, "999n"),
        (1000, "1u"),
        (5000, "5u"),
        (1500, "1500n"),
        (1_000_000, "1m"),
        (12_000_000, "12m"),
        (12_005_000, "12005u"),
        (137_491_625, "137491625n"),
        (168_064_370, "168064370n"),
        (250_000_000, "250m"),
        (1_000_000_000, "1"),
        (1_500_000_000, "1500m"),
        (2_000_000_000, "2"),
        (10_000_000_000, "10"),
        (1_000_000_000_000, "1k"),
        (64_000_000_000_000, "64k"),
        (-5000, "-5u"),
    ],
)
def test_cpu_quantity(nanocores: int, text: str) -> None:
    assert cpu_quantity(nanocores) == text


@pytest.mark.parametrize(
    ("num_bytes", "text"),
    [
        (0, "0"),
        (1, "1"),
        (500, "500"),
        (1000, "1k"),  # below 1024 Go switches to DecimalSI
        (1023, "1023"),
        (1024, "1Ki"),
        (2048, "2Ki"),
        (1025, "1025"),
        (1_000_000, "1000000"),
        (12_533_760, "12240Ki"),
        (1_994_969_088, "1948212Ki"),
        (5 * 1024**2, "5Mi"),
        (1024**3, "1Gi"),
        (3 * 1024**4, "3Ti"),
        (1024**5, "1Pi"),
        (1024**6, "1Ei"),
        (8 * 1024**6, "8Ei"),
        (-2048, "-2Ki"),
    ],
)
def test_memory_quantity(num_bytes: int, text: str) -> None:
    assert memory_quantity(num_bytes) == text
