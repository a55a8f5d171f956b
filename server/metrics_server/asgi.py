"""ASGI type aliases and a complete-response helper, for every layer that wraps or serves ASGI apps.

A leaf module: it imports nothing of the server.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, MutableMapping
from typing import Any

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]
Headers = list[tuple[bytes, bytes]]

STREAMED_BODY = "metrics_server.streamed_body"
"""Scope key, True when the server writes each response body message as it is sent (hypercorn
does, with back-pressure), so a large body may be handed over in many messages. Without it (Quart's
test client holds up to 10 messages and reads none before the app returns) an app must send few."""


def streamed(app: ASGIApp) -> ASGIApp:
    """`app` with `STREAMED_BODY` set in every scope: for the serving stack, around everything."""

    async def with_streamed_body(scope: Scope, receive: Receive, send: Send) -> None:
        scope[STREAMED_BODY] = True
        await app(scope, receive, send)

    return with_streamed_body


async def send_response(
    send: Send, status: int, body: bytes, content_type: bytes, extra: Iterable[tuple[bytes, bytes]] = ()
) -> None:
    """Send a complete response with `Content-Type`, `X-Content-Type-Options: nosniff` and length."""
    headers = [
        (b"content-type", content_type),
        (b"x-content-type-options", b"nosniff"),
        (b"content-length", str(len(body)).encode()),
        *extra,
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body, "more_body": False})
