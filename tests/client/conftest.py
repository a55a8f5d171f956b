"""Shared fixtures for the client tests: a real HTTPS server on loopback with canned responses, and
kubeconfig files pointing at it.

* ``ca`` - a trustme CA (session-wide) that signs the server certificate (and client certificates).
* ``start_api_server`` - ``await start_api_server(token=..., client_ca=...)`` starts a quart-trio app under
  hypercorn on 127.0.0.21, port 0, in the test's nursery, and returns a ``FakeApiServer``.
* ``api_server`` - one such server with the default bearer token ``TOKEN``.
* ``write_kubeconfig`` - ``write_kubeconfig(path, server_url=..., ca_pem=..., token=...)`` writes a
  kubeconfig file (JSON, which is YAML).

Test modules cannot import this file (pytest imports each directory's conftest under the same name), so
everything is reached through the fixtures: ``server.reply_json(...)``, ``server.reply(...)``,
``server.requests``, ``server.token``, ``server.ca_pem``, ``server.url``.

The server answers ``routes[path + "?" + query]`` if present, else ``routes[path]``, else the
apiserver's generic 404 Status. When the server has a token, a request without
``Authorization: Bearer <token>`` gets the apiserver's 401 Status. Every request is recorded.
"""

from __future__ import annotations

import base64
import itertools
import json
import ssl
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path

import pytest
import trio
import trustme
from hypercorn.config import Config
from hypercorn.trio import serve
from quart import Response, request
from quart_trio import QuartTrio

HOST = "127.0.0.21"
TOKEN = "metrics-reader-token-0123456789"


@dataclass(frozen=True)
class Canned:
    """One canned response: status, body, content type and extra headers."""

    status: int
    body: bytes
    content_type: str = "application/json"
    headers: tuple[tuple[str, str], ...] = ()

    @classmethod
    def json(cls, status: int, document: object) -> Canned:
        # Go's encoding/json output: compact, non-ASCII kept as is.
        return cls(status, json.dumps(document, separators=(",", ":"), ensure_ascii=False).encode())


@dataclass(frozen=True)
class Recorded:
    """What the server saw of one request."""

    method: str
    path: str
    query: str  # raw query string, as sent
    headers: dict[str, str]  # lower-case names


# The apiserver's answers to a request without valid credentials and to an unknown path.
UNAUTHORIZED = Canned.json(
    401,
    {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "Unauthorized",
        "reason": "Unauthorized",
        "code": 401,
    },
)
UNKNOWN_PATH = Canned.json(
    404,
    {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "the server could not find the requested resource",
        "reason": "NotFound",
        "details": {},
        "code": 404,
    },
)


@dataclass
class FakeApiServer:
    """A running HTTPS server. Mutate ``routes`` to change its answers; read ``requests``."""

    url: str
    ca: trustme.CA
    token: str | None
    routes: dict[str, Canned] = field(default_factory=dict)
    requests: list[Recorded] = field(default_factory=list)

    @property
    def ca_pem(self) -> bytes:
        return self.ca.cert_pem.bytes()

    def reply_json(self, route: str, status: int, document: object) -> None:
        """Answer ``route`` (a path, or ``path?query`` as sent) with a JSON document."""
        self.routes[route] = Canned.json(status, document)

    def reply(
        self,
        route: str,
        status: int,
        body: bytes,
        content_type: str = "application/json",
        headers: tuple[tuple[str, str], ...] = (),
    ) -> None:
        """Answer ``route`` with exactly these bytes."""
        self.routes[route] = Canned(status, body, content_type, headers)

    def answer(self, recorded: Recorded) -> Canned:
        if self.token is not None and recorded.headers.get("authorization") != f"Bearer {self.token}":
            return UNAUTHORIZED
        if recorded.query and f"{recorded.path}?{recorded.query}" in self.routes:
            return self.routes[f"{recorded.path}?{recorded.query}"]
        return self.routes.get(recorded.path, UNKNOWN_PATH)


def _write_kubeconfig(
    path: Path,
    *,
    server_url: str,
    ca_pem: bytes | None = None,
    token: str | None = None,
    context: str = "test",
    extra_contexts: tuple[str, ...] = (),
) -> Path:
    """Write a kubeconfig (as JSON, which is YAML) with one cluster and user, and a context named
    ``context`` (the current one) plus ``extra_contexts`` using the same cluster and user."""
    cluster: dict[str, object] = {"server": server_url}
    if ca_pem is not None:
        cluster["certificate-authority-data"] = base64.b64encode(ca_pem).decode()
    user: dict[str, object] = {} if token is None else {"token": token}
    document = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "test-cluster", "cluster": cluster}],
        "users": [{"name": "test-user", "user": user}],
        "contexts": [
            {"name": name, "context": {"cluster": "test-cluster", "user": "test-user"}}
            for name in (context, *extra_contexts)
        ],
        "current-context": context,
        "preferences": {},
    }
    path.write_text(json.dumps(document, indent=2))
    return path


def _app(server: FakeApiServer) -> QuartTrio:
    app = QuartTrio(__name__)

    @app.route("/", defaults={"path": ""})
    @app.route("/<path:path>")
    async def any_path(path: str) -> Response:
        recorded = Recorded(
            method=request.method,
            path=request.path,
            query=request.query_string.decode("ascii"),
            headers={name.lower(): value for name, value in request.headers.items()},
        )
        server.requests.append(recorded)
        canned = server.answer(recorded)
        return Response(
            canned.body, status=canned.status, content_type=canned.content_type, headers=dict(canned.headers)
        )

    return app


@pytest.fixture
def write_kubeconfig() -> Callable[..., Path]:
    """``write_kubeconfig(path, *, server_url, ca_pem=None, token=None, context="test",
    extra_contexts=())`` writes the file and returns its path."""
    return _write_kubeconfig


@pytest.fixture(scope="session")
def ca() -> trustme.CA:
    return trustme.CA()


StartApiServer = Callable[..., Awaitable[FakeApiServer]]


@pytest.fixture
def start_api_server(ca: trustme.CA, nursery: trio.Nursery, tmp_path: Path) -> StartApiServer:
    """Return ``start(token=TOKEN, client_ca=None)``; with ``client_ca`` the server requires a client
    certificate signed by it. Servers stop when the test ends (the nursery is cancelled)."""

    numbers = itertools.count()

    async def start(*, token: str | None = TOKEN, client_ca: trustme.CA | None = None) -> FakeApiServer:
        cert = ca.issue_cert(HOST, "localhost")
        directory = tmp_path / f"server-{next(numbers)}"
        directory.mkdir()
        config = Config()
        config.bind = [f"{HOST}:0"]
        config.certfile = str(directory / "tls.crt")
        config.keyfile = str(directory / "tls.key")
        cert.cert_chain_pems[0].write_to_path(config.certfile)
        for extra in cert.cert_chain_pems[1:]:
            extra.write_to_path(config.certfile, append=True)
        cert.private_key_pem.write_to_path(config.keyfile)
        if client_ca is not None:
            config.ca_certs = str(directory / "client-ca.crt")
            client_ca.cert_pem.write_to_path(config.ca_certs)
            config.verify_mode = ssl.CERT_REQUIRED
        config.accesslog = None
        server = FakeApiServer(url="", ca=ca, token=token)
        urls = await nursery.start(partial(serve, _app(server), config))
        server.url = urls[0]
        return server

    return start


@pytest.fixture
async def api_server(start_api_server: StartApiServer) -> FakeApiServer:
    return await start_api_server()
