"""`AuthMiddleware` called directly (no server): lifespan, websocket and unexpected failures."""

from __future__ import annotations

from typing import Any

from auth_testkit import FakeAccess, FakeConfigSource, FakeTokens, Pki, allow_all, deny_all

from metrics_server.asgi import Message, Receive, Scope, Send
from metrics_server.auth.authn import Authenticator
from metrics_server.auth.authz import Authorizer
from metrics_server.auth.middleware import AuthMiddleware
from metrics_server.auth.user import Attributes, Decision


class Recorder:
    def __init__(self, incoming: list[Message]) -> None:
        self.incoming = incoming
        self.sent: list[Message] = []
        self.app_scopes: list[Scope] = []

    async def receive(self) -> Message:
        return self.incoming.pop(0)

    async def send(self, message: Message) -> None:
        self.sent.append(message)

    async def app(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.app_scopes.append(scope)


def middleware(pki: Pki, rec: Recorder, policy: Any = allow_all) -> AuthMiddleware:
    return AuthMiddleware(
        rec.app,
        Authenticator(FakeConfigSource(pki.auth_config()), FakeTokens()),
        Authorizer(FakeAccess(policy)),
    )


async def test_lifespan_passes_through_untouched(pki: Pki) -> None:
    rec = Recorder([])
    scope: Scope = {"type": "lifespan", "asgi": {"version": "3.0"}}
    await middleware(pki, rec, deny_all)(scope, rec.receive, rec.send)
    assert rec.app_scopes == [{"type": "lifespan", "asgi": {"version": "3.0"}}]


async def test_denied_websocket_is_closed_with_policy_violation(pki: Pki) -> None:
    rec = Recorder([{"type": "websocket.connect"}])
    scope: Scope = {"type": "websocket", "path": "/metrics", "query_string": b"", "headers": []}
    await middleware(pki, rec, deny_all)(scope, rec.receive, rec.send)
    assert (rec.app_scopes, rec.sent) == ([], [{"type": "websocket.close", "code": 1008}])


async def test_unexpected_authorizer_failure_is_500(pki: Pki) -> None:
    def broken(_: Attributes) -> Decision:
        raise KeyError("oops")

    rec = Recorder([])
    scope: Scope = {"type": "http", "method": "GET", "path": "/metrics", "query_string": b"", "headers": []}
    await middleware(pki, rec, broken)(scope, rec.receive, rec.send)
    start, body = rec.sent
    assert start["status"] == 500
    assert dict(start["headers"])[b"content-type"] == b"application/json"
    assert body["body"] == (
        b'{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Internal error '
        b'occurred: KeyError: \'oops\'","reason":"InternalError","details":{"causes":[{"message":'
        b'"KeyError: \'oops\'"}]},"code":500}\n'
    )
    assert rec.app_scopes == []
