"""The apiserver library's request, authentication and authorization metrics, recorded by
`AuthMiddleware`: which requests count, under which labels, and the exposition text (names,
labels, buckets as metrics-server v0.8.0's `/metrics` has them)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from auth_testkit import FakeAccess, FakeConfigSource, FakeTokens, Pki, allow_all
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from metrics_server.asgi import Message, Receive, Scope, Send
from metrics_server.auth.authn import Authenticator
from metrics_server.auth.authz import Authorizer
from metrics_server.auth.middleware import AuthMiddleware
from metrics_server.auth.requestinfo import resolve
from metrics_server.auth.requestmetrics import RequestMetrics, compress_username, request_labels
from metrics_server.auth.user import Attributes, Decision, UserInfo
from metrics_server.kube.restmetrics import MeasuredTransport, RestClientMetrics
from metrics_server.promtext import exposition

API = "/apis/metrics.k8s.io/v1beta1"
ADMIN = UserInfo("admin", "uid-admin", ("system:masters",))
JANE = UserInfo("jane@example.com", "uid-jane", ("dev",))

# From metrics-server v0.8.0's /metrics (the reference binary).
REFERENCE_FAMILIES = {
    "apiserver_request_total": (
        "counter",
        ["code", "component", "dry_run", "group", "resource", "scope", "subresource", "verb", "version"],
    ),
    "apiserver_request_duration_seconds": (
        "histogram",
        ["component", "dry_run", "group", "resource", "scope", "subresource", "verb", "version"],
    ),
    "apiserver_response_sizes": (
        "histogram",
        ["component", "group", "resource", "scope", "subresource", "verb", "version"],
    ),
    "authenticated_user_requests": ("counter", ["username"]),
    "authentication_attempts": ("counter", ["result"]),
    "authentication_duration_seconds": ("histogram", ["result"]),
    "authorization_attempts_total": ("counter", ["result"]),
    "authorization_duration_seconds": ("histogram", ["result"]),
    "rest_client_requests_total": ("counter", ["code", "host", "method"]),
    "rest_client_request_duration_seconds": ("histogram", ["host", "verb"]),
}
AUTH_BUCKETS = "0.001 0.002 0.004 0.008 0.016 0.032 0.064 0.128 0.256 0.512 1.024 2.048 4.096 8.192 16.384"
REFERENCE_BUCKETS = {
    "apiserver_request_duration_seconds": (
        "0.005 0.025 0.05 0.1 0.2 0.4 0.6 0.8 1 1.25 1.5 2 3 4 5 6 8 10 15 20 30 45 60"
    ),
    "apiserver_response_sizes": "1000 10000 100000 1e+06 1e+07 1e+08 1e+09",
    "authentication_duration_seconds": AUTH_BUCKETS,
    "authorization_duration_seconds": AUTH_BUCKETS,
    "rest_client_request_duration_seconds": "0.005 0.025 0.1 0.25 0.5 1 2 4 8 15 30 60",
}


def policy(attrs: Attributes) -> Decision:
    if attrs.user.name == "jane@example.com":
        return Decision(False, "no", denied=attrs.namespace == "secret")
    return Decision(True)


async def app(scope: Scope, receive: Receive, send: Send) -> None:
    code = 404 if scope["path"].endswith("/missing") else 200
    await send({"type": "http.response.start", "status": code, "headers": []})
    await send({"type": "http.response.body", "body": b"x" * 1500, "more_body": True})
    await send({"type": "http.response.body", "body": b"y" * 10})


async def call(
    mw: AuthMiddleware, path: str, token: str = "", method: str = "GET", query: bytes = b""
) -> int:
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    headers = [(b"authorization", f"Bearer {token}".encode())] if token else []
    scope: dict[str, Any] = {
        "type": "http",
        "method": method,
        "path": path,
        "query_string": query,
        "headers": headers,
        "extensions": {},
    }
    await mw(scope, receive, send)
    return int(sent[0]["status"])


def samples(registry: CollectorRegistry) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample by (name, sorted labels). The parser names counter samples `<family>_total`
    even where the text has no suffix (Go's `authentication_attempts`)."""
    text = exposition(registry).decode()
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def labels(**kw: str) -> tuple[tuple[str, str], ...]:
    return tuple(sorted(kw.items()))


RESOURCE = {
    "component": "apiserver",
    "dry_run": "",
    "group": "metrics.k8s.io",
    "subresource": "",
    "version": "v1beta1",
}


@pytest.fixture
def recorded(pki: Pki) -> tuple[AuthMiddleware, CollectorRegistry]:
    registry = CollectorRegistry()
    tokens = FakeTokens({"admin": ADMIN, "jane": JANE}, failing=["broken"])
    mw = AuthMiddleware(
        app,
        Authenticator(FakeConfigSource(pki.auth_config()), tokens, anonymous=False),
        Authorizer(FakeAccess(policy)),
        RequestMetrics(registry),
    )
    return mw, registry


async def test_what_counts_and_under_which_labels(recorded: tuple[AuthMiddleware, CollectorRegistry]) -> None:
    mw, registry = recorded
    assert await call(mw, f"{API}/nodes", "admin") == 200
    assert await call(mw, f"{API}/namespaces/default/pods", "admin") == 200
    assert await call(mw, f"{API}/namespaces/default/pods/missing", "admin") == 404
    assert await call(mw, f"{API}/pods", "admin", query=b"watch=true") == 200
    assert await call(mw, "/readyz", "admin") == 200
    assert await call(mw, "/readyz/ping", "admin") == 200  # not a root: not counted
    assert await call(mw, "/metrics", "admin") == 200  # not counted, as in the library
    assert await call(mw, f"{API}/nodes", "admin", method="POST") == 200  # not counted
    assert await call(mw, f"{API}/nodes", "jane") == 403  # forbidden: not counted
    assert await call(mw, f"{API}/namespaces/secret/pods", "jane") == 403
    assert await call(mw, f"{API}/nodes", "nobody") == 401  # unauthenticated: not counted
    assert await call(mw, f"{API}/nodes", "broken") == 401
    assert await call(mw, f"{API}/nodes") == 401  # no credentials, anonymous off: a failure
    got = samples(registry)
    total = {k: v for k, v in got.items() if k[0] == "apiserver_request_total"}
    assert total == {
        (
            "apiserver_request_total",
            labels(code="200", resource="nodes", scope="cluster", verb="LIST", **RESOURCE),
        ): 1,
        (
            "apiserver_request_total",
            labels(code="200", resource="pods", scope="namespace", verb="LIST", **RESOURCE),
        ): 1,
        (
            "apiserver_request_total",
            labels(code="404", resource="pods", scope="resource", verb="GET", **RESOURCE),
        ): 1,
        (
            "apiserver_request_total",
            labels(code="200", resource="pods", scope="cluster", verb="WATCH", **RESOURCE),
        ): 1,
        (
            "apiserver_request_total",
            labels(
                code="200",
                component="",
                dry_run="",
                group="",
                resource="",
                scope="",
                subresource="/readyz",
                verb="GET",
                version="",
            ),
        ): 1,
    }
    nodes = labels(
        component="apiserver",
        group="metrics.k8s.io",
        resource="nodes",
        scope="cluster",
        subresource="",
        verb="LIST",
        version="v1beta1",
    )
    assert got[("apiserver_response_sizes_sum", nodes)] == 1510
    assert got[("apiserver_response_sizes_bucket", tuple(sorted((*nodes, ("le", "1000.0")))))] == 0
    assert got[("apiserver_response_sizes_bucket", tuple(sorted((*nodes, ("le", "10000.0")))))] == 1
    assert {k[1]: v for k, v in got.items() if k[0] == "authentication_attempts_total"} == {
        labels(result="success"): 10,
        labels(result="failure"): 1,
        labels(result="error"): 2,
    }
    assert {k[1]: v for k, v in got.items() if k[0] == "authenticated_user_requests_total"} == {
        labels(username="admin"): 8,
        labels(username="email_id"): 2,
    }
    assert {k[1]: v for k, v in got.items() if k[0] == "authorization_attempts_total"} == {
        labels(result="allowed"): 8,
        labels(result="no-opinion"): 1,
        labels(result="denied"): 1,
    }
    assert got[("authorization_duration_seconds_count", labels(result="allowed"))] == 8


async def test_families_are_the_references(recorded: tuple[AuthMiddleware, CollectorRegistry]) -> None:
    mw, registry = recorded
    await call(mw, f"{API}/nodes", "admin")
    await call(mw, f"{API}/nodes")
    await call(mw, f"{API}/nodes", "jane")

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(201 if request.method == "POST" else 200)

    transport = MeasuredTransport(httpx.MockTransport(handler), RestClientMetrics(registry))
    async with httpx.AsyncClient(transport=transport, base_url="https://10.0.0.1:6443") as client:
        await client.get("/api/v1/nodes")
        await client.post("/apis/authorization.k8s.io/v1/subjectaccessreviews")
    text = exposition(registry).decode()
    families = {f.name: f for f in text_string_to_metric_families(text)}
    for name, (kind, label_names) in REFERENCE_FAMILIES.items():
        assert f"# TYPE {name} {kind}\n" in text
        family = families[
            name.removesuffix("_total") if kind == "counter" and name.endswith("_total") else name
        ]
        for sample in family.samples:
            assert sorted(k for k in sample.labels if k != "le") == label_names, sample
        if kind == "histogram":
            les = [s.labels["le"] for s in family.samples if s.name.endswith("_bucket")]
            expected = [*REFERENCE_BUCKETS[name].split(), "+Inf"]
            assert [float(le) for le in les[: len(expected)]] == [float(x) for x in expected]
    assert 'rest_client_requests_total{code="201",host="10.0.0.1:6443",method="POST"} 1.0\n' in text
    assert 'authentication_attempts{result="failure"} 1.0\n' in text  # Go's name: no _total


def test_compressed_user_names() -> None:
    assert [compress_username(n) for n in ("admin", "kubelet", "a@b.c", "system:serviceaccount:x:y")] == [
        "admin",
        "kubelet",
        "email_id",
        "other",
    ]


@pytest.mark.parametrize(
    ("method", "path", "query", "expected"),
    [
        (
            "GET",
            f"{API}/nodes/n1",
            b"",
            ("apiserver", "", "metrics.k8s.io", "nodes", "resource", "", "GET", "v1beta1"),
        ),
        (
            "GET",
            f"{API}/pods",
            b"fieldSelector=metadata.name%3Dp",
            ("apiserver", "", "metrics.k8s.io", "pods", "resource", "", "LIST", "v1beta1"),
        ),
        ("GET", "/livez", b"", ("", "", "", "", "", "/livez", "GET", "")),
        ("GET", "/openapi/v2", b"", None),
        ("HEAD", f"{API}/nodes", b"", None),
    ],
)
def test_request_labels(method: str, path: str, query: bytes, expected: tuple[str, ...] | None) -> None:
    assert request_labels(resolve(method, path, query), method) == expected


async def test_no_metrics_no_recording(pki: Pki) -> None:
    mw = AuthMiddleware(
        app,
        Authenticator(FakeConfigSource(pki.auth_config()), FakeTokens({"a": ADMIN})),
        Authorizer(FakeAccess(allow_all)),
    )
    assert await call(mw, f"{API}/nodes", "a") == 200
