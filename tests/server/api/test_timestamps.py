"""`metav1.Time` JSON against Go's output."""

from __future__ import annotations

import pytest

from metrics_server.api.timestamps import rfc3339_seconds


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
