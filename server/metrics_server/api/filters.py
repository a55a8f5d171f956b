"""`LibraryHeaders`: the headers the apiserver library's outermost filters put on every response.

* `Audit-Id` (`WithAuditInit`): the request's own `Audit-Id` header when it has one (kube-aggregator
  forwards the one kube-apiserver assigned, so a request keeps one id end to end), else a new UUID.
* `Cache-Control: no-cache, private` (`WithCacheControl`), unless the handler set its own (the
  aggregated discovery document is `public`, OpenAPI documents with a hash are immutable).

Wraps any ASGI app (outside authentication, so 401 and 403 carry them too); other scope types
pass through.
"""

from __future__ import annotations

import uuid

from metrics_server.asgi import ASGIApp, Message, Receive, Scope, Send

_AUDIT_ID = b"audit-id"
_CACHE_CONTROL = b"cache-control"
_NO_CACHE = b"no-cache, private"


class LibraryHeaders:
    """See the module docstring."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        audit_id = next((v for k, v in scope.get("headers", ()) if k == _AUDIT_ID), None)
        if not audit_id:
            audit_id = str(uuid.uuid4()).encode()

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", ()))
                names = {k.lower() for k, _ in headers}
                headers.append((_AUDIT_ID, audit_id))
                if _CACHE_CONTROL not in names:
                    headers.append((_CACHE_CONTROL, _NO_CACHE))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
