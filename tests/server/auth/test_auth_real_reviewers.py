"""The middleware with the real `TokenReviewer`, `AccessReviewer` and `AuthenticationConfigSource`.

The kube-apiserver is a small ASGI fake answering TokenReview and SubjectAccessReview, itself
served over TLS (127.0.0.62) by `serve_https`; the metrics server under test runs on 127.0.0.61.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import trio
from auth_testkit import FRONT_PROXY_CN, HOST, Pki, echo_app

from metrics_server.asgi import Receive, Scope, Send
from metrics_server.auth.authconfig import AuthenticationConfigSource, AuthenticationOptions
from metrics_server.auth.authn import Authenticator
from metrics_server.auth.authz import Authorizer
from metrics_server.auth.middleware import AuthMiddleware
from metrics_server.auth.reviews import AccessReviewer, ReviewCacheOptions, TokenReviewer
from metrics_server.auth.serving import ServingConfig, serve_https

APISERVER_HOST = "127.0.0.62"
Obj = dict[str, Any]


@dataclass
class FakeApiServer:
    token_review: Callable[[Obj], tuple[int, Obj]]
    access_review: Callable[[Obj], tuple[int, Obj]]
    bodies: list[tuple[str, Obj]] = field(default_factory=list)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await echo_app(scope, receive, send)
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        obj = orjson.loads(body)
        self.bodies.append((scope["path"], obj))
        handler = self.token_review if scope["path"].endswith("/tokenreviews") else self.access_review
        code, answer = handler(obj)
        await send(
            {
                "type": "http.response.start",
                "status": code,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": orjson.dumps(answer)})


def review(obj: Obj, status: Obj) -> tuple[int, Obj]:
    return 200, {**obj, "status": status}


def token_handler(obj: Obj) -> tuple[int, Obj]:
    if obj["spec"]["token"] == "good":
        return review(
            obj,
            {
                "authenticated": True,
                "user": {"username": "prom", "uid": "u1", "groups": ["system:serviceaccounts"]},
            },
        )
    return review(obj, {"authenticated": False, "error": "token not found"})


def sar_handler(obj: Obj) -> tuple[int, Obj]:
    spec = obj["spec"]
    if spec.get("user") == "broken":
        return 500, {
            "kind": "Status",
            "apiVersion": "v1",
            "status": "Failure",
            "message": "etcd down",
            "code": 500,
        }
    return review(obj, {"allowed": spec.get("user") in ("bob", "prom"), "reason": "checked"})


@dataclass
class Setup:
    url: str
    apiserver: FakeApiServer


@pytest.fixture
async def setup(nursery: trio.Nursery, pki: Pki, tmp_path: Path) -> AsyncIterator[Setup]:
    apiserver = FakeApiServer(token_handler, sar_handler)
    cert, key = pki.serving_files(None, APISERVER_HOST)
    api_serving = ServingConfig(
        bind_address=APISERVER_HOST, secure_port=0, tls_cert_file=str(cert), tls_private_key_file=str(key)
    )
    api_urls = await nursery.start(
        lambda task_status: serve_https(apiserver, api_serving, task_status=task_status)
    )

    client_ca, proxy_ca = tmp_path / "client-ca.crt", tmp_path / "proxy-ca.crt"
    client_ca.write_bytes(pki.client_ca.cert_pem.bytes())
    proxy_ca.write_bytes(pki.front_proxy_ca.cert_pem.bytes())
    source = AuthenticationConfigSource(
        AuthenticationOptions(
            client_ca_file=str(client_ca),
            requestheader_client_ca_file=str(proxy_ca),
            requestheader_allowed_names=(FRONT_PROXY_CN,),
        ),
        None,
    )
    options = ReviewCacheOptions(retry_steps=1)
    async with httpx.AsyncClient(
        base_url=api_urls[0], verify=pki.client_context(), trust_env=False
    ) as client:
        app = AuthMiddleware(
            echo_app,
            Authenticator(source, TokenReviewer(client, options)),
            Authorizer(AccessReviewer(client, options)),
        )
        cert, key = pki.serving_files()
        serving = ServingConfig(
            bind_address=HOST, secure_port=0, tls_cert_file=str(cert), tls_private_key_file=str(key)
        )
        urls = await nursery.start(
            lambda task_status: serve_https(app, serving, client_cas=source, task_status=task_status)
        )
        yield Setup(urls[0], apiserver)


async def call(setup: Setup, pki: Pki, path: str, *, cert: Any = None, headers: Any = ()) -> httpx.Response:
    async with httpx.AsyncClient(verify=pki.client_context(cert), trust_env=False) as client:
        return await client.get(setup.url + path, headers=list(headers))


async def test_front_proxy_request_is_authorized_by_a_real_sar(setup: Setup, pki: Pki) -> None:
    response = await call(
        setup,
        pki,
        "/apis/metrics.k8s.io/v1beta1/namespaces/x/pods?fieldSelector=metadata.name%3Dp1",
        cert=pki.proxy,
        headers=[("X-Remote-User", "bob"), ("X-Remote-Group", "dev"), ("X-Remote-Extra-Scopes", "read")],
    )
    assert response.status_code == 200
    assert setup.apiserver.bodies == [
        (
            "/apis/authorization.k8s.io/v1/subjectaccessreviews",
            {
                "kind": "SubjectAccessReview",
                "apiVersion": "authorization.k8s.io/v1",
                "metadata": {"creationTimestamp": None},
                "spec": {
                    "resourceAttributes": {
                        "namespace": "x",
                        "verb": "list",
                        "group": "metrics.k8s.io",
                        "version": "v1beta1",
                        "resource": "pods",
                        "name": "p1",
                    },
                    "user": "bob",
                    "groups": ["dev", "system:authenticated"],
                    "extra": {"scopes": ["read"]},
                },
                "status": {"allowed": False},
            },
        )
    ]


async def test_token_is_reviewed_then_authorized(setup: Setup, pki: Pki) -> None:
    response = await call(setup, pki, "/metrics", headers=[("Authorization", "Bearer good")])
    assert response.status_code == 200
    assert response.json()["user"] == {
        "name": "prom",
        "uid": "u1",
        "groups": ["system:serviceaccounts", "system:authenticated"],
        "extra": {},
    }
    assert [(path.rsplit("/", 1)[1], body["spec"]) for path, body in setup.apiserver.bodies] == [
        ("tokenreviews", {"token": "good"}),
        (
            "subjectaccessreviews",
            {
                "nonResourceAttributes": {"path": "/metrics", "verb": "get"},
                "user": "prom",
                "groups": ["system:serviceaccounts", "system:authenticated"],
                "uid": "u1",
            },
        ),
    ]


async def test_rejected_token_is_401(setup: Setup, pki: Pki) -> None:
    response = await call(setup, pki, "/metrics", headers=[("Authorization", "Bearer bad")])
    assert (response.status_code, response.json()["message"]) == (401, "Unauthorized")


async def test_denied_sar_reason_is_in_the_403(setup: Setup, pki: Pki) -> None:
    response = await call(setup, pki, "/metrics", cert=pki.alice)
    assert response.status_code == 403
    assert response.json()["message"] == 'forbidden: User "alice" cannot get path "/metrics": checked'


async def test_sar_upstream_failure_is_500(setup: Setup, pki: Pki) -> None:
    response = await call(setup, pki, "/metrics", cert=pki.proxy, headers=[("X-Remote-User", "broken")])
    assert response.status_code == 500
    assert response.json()["reason"] == "InternalError"
    assert response.json()["message"].startswith(
        "Internal error occurred: subjectaccessreviews.authorization.k8s.io failed after 1 attempts: 500"
    )
