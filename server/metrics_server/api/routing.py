"""Which handler a request path and method reach, as the apiserver library decides it.

The library routes in two layers, and metrics-server v0.8.0 answers accordingly (observed against
the real binary, `docs/edge-answers.md`):

* **go-restful web services**, chosen by a path prefix at a segment boundary: `/apis/metrics.k8s.io`
  and `/apis/metrics.k8s.io/v1beta1` (`/apis/metrics.k8s.io/...`), `/version` (`/version/...`) and
  `/apis` (exactly `/apis` or `/apis/`): `restful(path)`. go-restful trims every leading and
  trailing `/` and splits the rest on `/`, so a trailing slash (or several) serves the same as
  none (`/nodes/` = `/nodes`), while an empty inner segment is a segment of its own:
  `/v1beta1//nodes` matches no route (404 `Status`), `/namespaces//pods` is the list in
  namespace "" (= all namespaces) and `/namespaces//pods/<name>` finds nothing (404
  `pods "<name>" not found`). A matched route answers GET only: any other method, `HEAD` and
  `OPTIONS` included, is 405 `MethodNotAllowed` (for `HEAD` without the body); an unmatched path
  is 404 `NotFound`, whatever the method.
* **the path mux** (everything else): exact paths, whose handlers ignore the method (`POST
  /healthz` is `ok`; served here as GET, `HEAD` without the body). Except `CONNECT`, which gets
  405 here where Go answers `200 ok`: a 2xx answer to CONNECT establishes a tunnel (RFC 9110
  §9.3.6), so HTTP/1.1 (h11) sends no body after it. `/` and `/index.html` list the registered
  paths; any other path, including `//apis/...`, `/healthz/` and `/metrics/`, gets the list with
  404 (the app's 404 handler, with `restful`, tells the two layers' 404s apart).

No path is ever answered with a redirect (werkzeug would redirect `//` to a URL built from the
`Host` header; `route` sends the handlers only canonical paths, and `create_app` turns werkzeug's
slash merging off as well).

`route(asgi_app)` wraps the Quart app's `asgi_app`: it answers the 405s and the namespace-""
lookup itself and passes everything else on, with `scope["path"]` canonical for a matched API
route (and the method GET for the mux); paths no route may match go on as a path that matches
nothing in their layer, for Quart's 404 (werkzeug alone would match `//healthz` as `/healthz`). Runs
after authentication and authorization, which see the request as sent, as in the library.

The `Host` header plays no part in routing here (nor anywhere in the API). werkzeug, binding its
URL map, IDNA-encodes it and raises outside any handler when it cannot (a label over 63 bytes):
the request would fail with 500 where Go serves it. Such a `Host` is left out of what Quart sees.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any, NamedTuple

from metrics_server.api import status

GROUP = "/apis/metrics.k8s.io"
GROUP_VERSION = f"{GROUP}/v1beta1"
_GV = ("apis", "metrics.k8s.io", "v1beta1")
_ANY = None
"""A path parameter in a route template: any one segment, empty included."""
_TEMPLATES: tuple[tuple[str | None, ...], ...] = (
    ("apis",),
    ("apis", "metrics.k8s.io"),
    _GV,
    (*_GV, "nodes"),
    (*_GV, "nodes", _ANY),
    (*_GV, "pods"),
    (*_GV, "namespaces", _ANY, "pods"),
    (*_GV, "namespaces", _ANY, "pods", _ANY),
    ("version",),
)
_RESTFUL_ROOTS = (GROUP, "/version")
_NO_API_ROUTE = f"{GROUP}/\0"
_NO_MUX_ROUTE = "/\0"
"""Paths no route matches (NUL is in no route), by layer: where the answer must be a 404 but
werkzeug, left the original path, would match leniently (it ignores a leading `//`)."""
_INDEX = "/index.html"
_JSON = [(b"content-type", status.CONTENT_TYPE.encode())]

Scope = Any
Receive = Any
Send = Any


class Answer(NamedTuple):
    """What `resolve` decided: a response to send (`status` != 0) or the path to hand on."""

    status: int = 0
    body: bytes = b""
    path: str = ""
    as_get: bool = False
    """Serve with method GET (the mux ignores the method)."""


def restful(path: str) -> bool:
    """Whether `path` belongs to a go-restful web service (else to the path mux)."""
    if path in ("/apis", "/apis/"):
        return True
    return any(path == root or path.startswith(root + "/") for root in _RESTFUL_ROOTS)


def _match(tokens: list[str]) -> tuple[str | None, ...] | None:
    for template in _TEMPLATES:
        if len(template) == len(tokens) and all(
            t is None or t == s for t, s in zip(template, tokens, strict=True)
        ):
            return template
    return None


def resolve(method: str, path: str) -> Answer:
    """The routing decision for `method` `path` (see the module docstring)."""
    if restful(path):
        tokens = path.strip("/").split("/")
        template = _match(tokens)
        if template is None:
            return Answer(path=_NO_API_ROUTE, as_get=method != "HEAD")  # Quart's 404, as a Status
        if method != "GET":
            return Answer(405, status.method_not_allowed())
        if template[-2:] == ("pods", _ANY) and template[-4] == "namespaces" and tokens[-3] == "":
            return Answer(404, status.not_found("pods", tokens[-1]))
        if template[-1] == "pods" and len(template) == 6 and tokens[-2] == "":
            return Answer(path=f"{GROUP_VERSION}/pods")  # namespace "": every namespace
        return Answer(path="/" + "/".join(tokens))
    if method == "CONNECT":
        return Answer(405, status.method_not_allowed())
    if "//" in path:  # the mux matches exactly: an empty segment is no registered path
        return Answer(path=_NO_MUX_ROUTE, as_get=method != "HEAD")  # Quart's 404: the path list
    return Answer(path="/" if path == _INDEX else path, as_get=method != "HEAD")


def _idna_ok(headers: Iterable[tuple[bytes, bytes]]) -> bool:
    """Whether werkzeug can bind to the request's `Host` (`Map.bind`: the part before any `:`
    must IDNA-encode)."""
    for name, value in headers:
        if name == b"host":
            try:
                value.decode("latin-1").partition(":")[0].encode("idna")
            except UnicodeError:
                return False
    return True


def route(asgi_app: Any) -> Any:
    """Wrap a Quart `asgi_app` with `resolve`."""

    async def routed(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await asgi_app(scope, receive, send)
            return
        method = scope["method"]
        answer = resolve(method, scope["path"])
        if answer.status:
            body = answer.body
            headers = [*_JSON, (b"content-length", str(len(body)).encode())]
            await send({"type": "http.response.start", "status": answer.status, "headers": headers})
            await send({"type": "http.response.body", "body": b"" if method == "HEAD" else body})
            return
        bad_host = not _idna_ok(scope["headers"])
        if answer.path != scope["path"] or answer.as_get or bad_host:
            scope = dict(scope)
            scope["path"] = answer.path
            scope.pop("raw_path", None)  # Quart routes on `path`; the original bytes no longer match it
            if answer.as_get:
                scope["method"] = "GET"
            if bad_host:
                scope["headers"] = [(k, v) for k, v in scope["headers"] if k != b"host"]
        await asgi_app(scope, receive, send)

    return routed
