"""Kubernetes response shapes shared by the apiserver and the aggregator."""

from __future__ import annotations

from typing import Any

import orjson

from .httpserver import Response

JSON = [("Content-Type", "application/json")]
NO_METHOD = "the server does not allow this method on the requested resource"
"""The message of a 405 MethodNotAllowed Status."""
TRUE_VALUES = ("true", "1")
"""Boolean query parameters (`?watch=`, `?allowWatchBookmarks=`, ...) that count as true."""
_REASONS = {
    400: "BadRequest",
    401: "Unauthorized",
    403: "Forbidden",
    404: "NotFound",
    405: "MethodNotAllowed",
    406: "NotAcceptable",
    409: "AlreadyExists",
    410: "Expired",
    422: "Invalid",
    500: "InternalError",
    503: "ServiceUnavailable",
}


def status_doc(
    code: int, message: str, reason: str | None = None, details: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A metav1.Status in the Go encoder's field order; `details` is left out when None."""
    doc: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason or _REASONS.get(code, ""),
    }
    if details is not None:
        doc["details"] = details
    doc["code"] = code
    return doc


def status(
    code: int, message: str, reason: str | None = None, details: dict[str, Any] | None = None
) -> Response:
    return Response(code, list(JSON), orjson.dumps(status_doc(code, message, reason, details)))


def json_response(doc: Any, code: int = 200) -> Response:
    return Response(code, list(JSON), orjson.dumps(doc))


def raw_json(body: bytes, code: int = 200) -> Response:
    return Response(code, list(JSON), body)


UNAUTHORIZED = status_doc(401, "Unauthorized")

SERVICE_UNAVAILABLE = Response(
    503,
    [("Content-Type", "text/plain; charset=utf-8"), ("X-Content-Type-Options", "nosniff")],
    b"service unavailable\n",
)
"""kube-aggregator's reply for an unavailable APIService: plain text from Go's http.Error."""


def service_unavailable() -> Response:
    return Response(SERVICE_UNAVAILABLE.status, list(SERVICE_UNAVAILABLE.headers), SERVICE_UNAVAILABLE.body)
