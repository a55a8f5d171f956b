"""Which handler a request path and method reach, as the apiserver library decides it.

The library routes in two layers, and metrics-server v0.8.0 answers accordingly (observed against
the real binary, `docs/edge-answers.md`):

* **go-restful web services**, chosen by a path prefix at a segment boundary: `/apis/metrics.k8s.io`
  and `/apis/metrics.k8s.io/v1beta1` (`/apis/metrics.k8s.io/...`), `/version` (`/version/...`) and
  `/apis` (exactly `/apis` or `/apis/`). go-restful trims every leading and trailing `/` and
  splits the rest on `/`, so a trailing slash (or several) serves the same as none
  (`/nodes/` = `/nodes`), while an empty inner segment is a segment of its own: `/v1beta1//nodes`
  matches no route (404 `Status`), `/namespaces//pods` is the list in namespace "" (= all
  namespaces) and `/namespaces//pods/<name>` finds nothing (404 `pods "<name>" not found`). A
  matched route answers GET only: any other method, `HEAD` and `OPTIONS` included, is 405
  `MethodNotAllowed` (for `HEAD` without the body); an unmatched path is 404 `NotFound`, whatever
  the method.
* **the path mux** (everything else), exact paths only: `/healthz`, `/livez`, `/readyz` and
  `/<root>/<check>`, `/metrics`, `/openapi/v2`, `/openapi/v3` and anything under `/openapi/v3/`.
  These handlers ignore the method (`POST /healthz` is `ok`; served here as GET, `HEAD` without
  the body). Except `CONNECT`, which gets 405 here where Go answers `200 ok`: a 2xx answer to
  CONNECT establishes a tunnel (RFC 9110 §9.3.6), so HTTP/1.1 (h11) sends no body after it.
  `/` and `/index.html` list the registered paths (200); any other path, including `//apis/...`,
  `/healthz/`, `/metrics/` and unknown checks, gets the same list with 404.

No path is ever answered with a redirect (werkzeug would redirect `//` to a URL built from the
`Host` header; `route` sends the handlers only canonical paths, and `create_app` turns werkzeug's
slash merging off as well).

`route(app, paths)` wraps the Quart app's `asgi_app`: it answers 404/405/the path list itself and
passes the rest on with `scope["path"]` canonical (and the method GET for the mux). Runs after
authentication and authorization, which see the request as sent, as in the library.

The `Host` header plays no part in routing here (nor anywhere in the API). werkzeug, binding its
URL map, IDNA-encodes it and raises outside any handler when it cannot (a label over 63 bytes):
the request would fail with 500 where Go serves it. Such a `Host` is left out of what Quart sees.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any, NamedTuple

import orjson

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
_INDEX = frozenset(("/", "/index.html"))
_OPENAPI_V3_PREFIX = "/openapi/v3/"
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


def registered_paths(health_checks: Iterable[tuple[str, Sequence[str]]]) -> list[str]:
    """The sorted paths the library lists for `/` and on a mux 404 (`{"paths": [...]}`)."""
    paths = {
        "/apis",
        GROUP,
        GROUP_VERSION,
        "/metrics",
        "/openapi/v2",
        "/openapi/v3",
        "/openapi/v3/",
        "/version",
    }
    for root, names in health_checks:
        paths.add(f"/{root}")
        paths.update(f"/{root}/{name}" for name in names)
    return sorted(paths)


def _restful(path: str) -> bool:
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


def resolve(method: str, path: str, mux: frozenset[str], listing: bytes) -> Answer:
    """The routing decision for `method` `path` (see the module docstring); `mux` holds the exact
    mux paths, `listing` the path list body."""
    if _restful(path):
        tokens = path.strip("/").split("/")
        template = _match(tokens)
        if template is None:
            return Answer(404, status.path_not_found())
        if method != "GET":
            return Answer(405, status.method_not_allowed())
        if template[-2:] == ("pods", _ANY) and template[-4] == "namespaces" and tokens[-3] == "":
            return Answer(404, status.not_found("pods", tokens[-1]))
        if template[-1] == "pods" and len(template) == 6 and tokens[-2] == "":
            return Answer(path=f"{GROUP_VERSION}/pods")  # namespace "": every namespace
        return Answer(path="/" + "/".join(tokens))
    if path in mux or path.startswith(_OPENAPI_V3_PREFIX):
        if method == "CONNECT":
            return Answer(405, status.method_not_allowed())
        return Answer(path=path, as_get=method != "HEAD")
    return Answer(200 if path in _INDEX else 404, listing)


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


def route(asgi_app: Any, paths: Sequence[str]) -> Any:
    """Wrap a Quart `asgi_app` with `resolve` (`paths`: `registered_paths(...)`)."""
    mux = frozenset(p for p in paths if not _restful(p))
    listing = orjson.dumps({"paths": list(paths)}, option=orjson.OPT_INDENT_2)

    async def routed(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await asgi_app(scope, receive, send)
            return
        method = scope["method"]
        answer = resolve(method, scope["path"], mux, listing)
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
