"""`AuthMiddleware`: authentication then authorization around an ASGI app, as the library's
handler chain does it (request info -> authentication -> authorization -> handler).

For each `http` (and `websocket`) scope:

1. resolve the request info (`auth.requestinfo`); a path it cannot resolve -> 500;
2. authenticate (`auth.authn`) from the headers and the client certificate of the ASGI TLS
   extension (`scope["extensions"]["tls"]["client_cert_chain"][0]`) -> 401 `Unauthorized`;
3. authorize (`auth.authz`) -> 403 `Forbidden` with the library's message, or 500 when the
   SubjectAccessReview could not be made;
4. call the app with `scope[USER_SCOPE_KEY]` = the `UserInfo` (`auth.user.user_from_scope`) and
   `scope["headers"]` without the front-proxy identity headers and `Authorization`.

Error bodies are `Status` JSON from `api.status`. Deviation: the library answers the two 500
cases with a plain-text `Internal Server Error: "<uri>": <err>`; here they are `InternalError`
`Status` objects like every other error of this server. Websocket scopes that fail are closed
(code 1008) after `websocket.connect`. Other scopes (`lifespan`) pass straight through.
An unexpected exception in authentication or authorization is logged and answered with 500.

Cost (tests/server/auth/bench_request.py --micro, with `peercert.tls_extension`): ~18 us per
request with a cached bearer token, ~21 us with front-proxy headers. Memoizing request infos
saved ~2-3 us of that (~0.00003 cores at the benchmark's 12 requests/s): not worth a cache.
"""

from __future__ import annotations

import logging
import time

from metrics_server.api import status
from metrics_server.asgi import ASGIApp, Receive, Scope, Send, send_response
from metrics_server.auth.authn import Authenticator
from metrics_server.auth.authz import Authorizer, forbidden_body
from metrics_server.auth.errors import RequestInfoError
from metrics_server.auth.requestinfo import RequestInfo, resolve
from metrics_server.auth.requestmetrics import RequestMetrics, request_labels
from metrics_server.auth.reviews import ReviewError
from metrics_server.auth.user import USER_SCOPE_KEY

logger = logging.getLogger(__name__)

_JSON = status.CONTENT_TYPE.encode()
POLICY_VIOLATION = 1008


def client_certificate(scope: Scope) -> str | None:
    """The leaf certificate (PEM) of the ASGI TLS extension, if the client sent one."""
    tls = (scope.get("extensions") or {}).get("tls")
    if not isinstance(tls, dict):
        return None
    chain = tls.get("client_cert_chain") or ()
    first = next(iter(chain), None)
    return first if isinstance(first, str) and first else None


class AuthMiddleware:
    """Wraps `app`; see the module docstring."""

    def __init__(
        self,
        app: ASGIApp,
        authenticator: Authenticator,
        authorizer: Authorizer,
        metrics: RequestMetrics | None = None,
    ) -> None:
        self.app = app
        self.authenticator = authenticator
        self.authorizer = authorizer
        self.metrics = metrics

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        code, body, info = await self._check(scope)
        if code == 0:
            metrics = self.metrics
            if metrics is None or info is None or kind != "http":
                await self.app(scope, receive, send)
                return
            labels = request_labels(info, scope.get("method", "GET"))
            if labels is None:
                await self.app(scope, receive, send)
            else:
                await metrics.serve(labels, started, self.app, scope, receive, send)
        elif kind == "http":
            await send_response(send, code, body, _JSON)
        else:
            await receive()  # websocket.connect
            await send({"type": "websocket.close", "code": POLICY_VIOLATION})

    async def _check(self, scope: Scope) -> tuple[int, bytes, RequestInfo | None]:
        """(0, b"", info) when the request may proceed (scope updated), else (status, body, info)."""
        method = scope.get("method", "GET")
        path = scope.get("path", "/")
        headers = scope.get("headers", ())
        if type(headers) is not list:
            headers = list(headers)
        metrics = self.metrics
        info = None
        try:
            info = resolve(method, path, scope.get("query_string", b""))
            t0 = time.perf_counter()
            result = await self.authenticator.authenticate(headers, client_certificate(scope))
            if metrics is not None:
                user = result.user
                metrics.authenticated(
                    user.name if user else None, bool(result.errors), time.perf_counter() - t0
                )
            if result.user is None:
                logger.warning("Unable to authenticate the request: %s", "; ".join(result.errors))
                return 401, status.unauthorized(), info
            attrs = info.attributes(result.user)
            t0 = time.perf_counter()
            try:
                decision = await self.authorizer.authorize(attrs)
            except Exception:
                if metrics is not None:
                    metrics.authorized("error", time.perf_counter() - t0)
                raise
            if metrics is not None:
                result_label = (
                    "allowed" if decision.allowed else ("denied" if decision.denied else "no-opinion")
                )
                metrics.authorized(result_label, time.perf_counter() - t0)
        except RequestInfoError as exc:
            return 500, status.internal_error(f"failed to create RequestInfo: {exc}"), info
        except ReviewError as exc:
            logger.error("authorization of %s %s failed: %s", method, path, exc)
            return 500, status.internal_error(str(exc)), info
        except Exception as exc:
            logger.exception("authentication or authorization of %s %s failed", method, path)
            return 500, status.internal_error(f"{type(exc).__name__}: {exc}"), info
        if not decision.allowed:
            logger.debug("Forbidden %s %s for %s: %s", method, path, attrs.user.name, decision.reason)
            return 403, forbidden_body(attrs, decision.reason), info
        scope["headers"] = result.headers
        scope[USER_SCOPE_KEY] = result.user
        return 0, b"", info
