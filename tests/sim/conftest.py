"""Fixtures for the simulator tests: a small cluster and HTTPS clients for it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from simhelpers import START_NS, TEST_PREFIX, cluster_client

from kubesim import ADMIN_USER, METRICS_SERVER_USER, SimCluster


@pytest.fixture
async def cluster(tmp_path: Path) -> AsyncIterator[SimCluster]:
    async with SimCluster(
        nodes=2,
        pods_per_node=3,
        seed=7,
        state_dir=tmp_path / "state",
        address_prefix=TEST_PREFIX,
        start_epoch_ns=START_NS,
    ) as c:
        yield c


@pytest.fixture
async def admin(cluster: SimCluster) -> AsyncIterator[httpx.AsyncClient]:
    async with cluster_client(cluster, token=cluster.token(ADMIN_USER)) as client:
        client.base_url = httpx.URL(cluster.api_url)
        yield client


@pytest.fixture
async def sa_client(cluster: SimCluster) -> AsyncIterator[httpx.AsyncClient]:
    """The metrics server's service account, as it talks to kubelets."""
    async with cluster_client(cluster, token=cluster.token(METRICS_SERVER_USER)) as client:
        yield client
