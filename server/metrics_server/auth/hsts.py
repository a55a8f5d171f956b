"""`--strict-transport-security-directives`: the HSTS header on every response, as the library's
`WithHSTS` filter sets it (the directives joined with `"; "`).

`hsts_problem(directives)` is the library's validation: each directive is `includeSubDomains`,
`preload` or `max-age=<anything>` (the value is not checked, as in Go). `with_hsts(app, directives)`
wraps an ASGI app; with no directives it returns `app` itself (no per-request cost).
"""

from __future__ import annotations

from collections.abc import Sequence

from metrics_server.asgi import ASGIApp, Message, Receive, Scope, Send

HEADER = b"strict-transport-security"
_INVALID = (
    "--strict-transport-security-directives invalid, allowed values: max-age=expireTime, "
    "includeSubDomains, preload. see https://tools.ietf.org/html/rfc6797#section-6.1 for more information"
)


def hsts_problem(directives: Sequence[str]) -> str | None:
    """Why the directives are refused (the library's message), or None."""
    for directive in directives:
        if not directive.strip():
            return "empty value in strict-transport-security-directives"
        if directive not in ("includeSubDomains", "preload"):
            name, *rest = directive.split("=")
            if name != "max-age" or len(rest) != 1:
                return _INVALID
    return None


def with_hsts(app: ASGIApp, directives: Sequence[str]) -> ASGIApp:
    """`app`, adding `Strict-Transport-Security: <directives joined by "; ">` to each response."""
    if not directives:
        return app
    value = "; ".join(directives).encode("latin-1")

    async def hsts(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await app(scope, receive, send)
            return

        async def send_with_header(message: Message) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", ()), (HEADER, value)]}
            await send(message)

        await app(scope, receive, send_with_header)

    return hsts
