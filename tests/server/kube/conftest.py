"""Fixtures for the kube/ tests: a fake kube-apiserver over real TLS and a client for it."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
import trio
import trustme
from kubefake import Connection, FakeApiServer

from metrics_server.kube.connection import make_api_client


@pytest.fixture(scope="session")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
async def fake(nursery: trio.Nursery, ca: trustme.CA) -> AsyncIterator[FakeApiServer]:
    server = FakeApiServer(ca)
    await server.bind()
    server.start_listening(nursery)
    yield server
    server.close()


@pytest.fixture
async def client(fake: FakeApiServer) -> AsyncIterator[httpx.AsyncClient]:
    async with make_api_client(Connection(fake.url, fake.client_ssl_context())) as api:
        yield api
