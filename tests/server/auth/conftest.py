"""Fixtures of the auth tests: one set of CAs and certificates per session."""

from __future__ import annotations

from pathlib import Path

import pytest
from auth_testkit import Pki


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    directory: Path = tmp_path_factory.mktemp("pki")
    return Pki(directory)
