"""Table tests of the wire formats against Go's resource.Quantity / time.Duration / metav1.Time output."""

from __future__ import annotations

import pytest

from metrics_server.api.quantity import cpu_quantity, go_duration, memory_quantity, rfc3339_seconds


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
    ],
)
def test_go_duration(ns: int, text: str) -> None:
    assert go_duration(ns) == text


@pytest.mark.parametrize(
    ("ns", "text"),
    [
        (0, "1970-01-01T00:00:00Z"),
        (1_745_601_642_999_999_999, "2025-04-25T17:20:42Z"),
        (1_633_253_812_125_000_000, "2021-10-03T09:36:52Z"),
    ],
)
def test_rfc3339_seconds(ns: int, text: str) -> None:
    assert rfc3339_seconds(ns) == text
