"""The exceptions of the whole client, each carrying what the server said, and the one place where an
error answer becomes one.

Hierarchy::

    MetricsError                     anything a request through this client raises
    ├── ApiError                     the server answered with an error; .status is the Kubernetes Status
    │   ├── BadRequest               400 (a malformed selector, an unsupported field selector)
    │   ├── Unauthorized             401 (no or rejected credentials)
    │   ├── Forbidden                403 (RBAC denies the verb on the resource)
    │   ├── NotFound                 404 (no such object, or no metrics for it yet)
    │   ├── Conflict                 409 (an update based on a stale resourceVersion)
    │   ├── Invalid                  422 (an update the server rejects, e.g. negative replicas)
    │   └── ServiceUnavailable       503 (the aggregated API is down; includes kube-aggregator's
    │                                     plain-text reply, turned into a Status here)
    ├── ResponseError                a 2xx body that is not the document the API promises
    └── TransportError               no answer at all (connection refused, TLS failure, timeout);
                                     the httpx exception is the ``__cause__``

Every request of :class:`~k8s_metrics.client.MetricsClient` goes through :func:`error_from_response`:
the typed layer, the scale API and the generated operations all raise this hierarchy, never return a
``Status``. Configuration problems (no kubeconfig, unknown context) are
:class:`k8s_metrics.kubeconfig.ConfigError`, raised before any request is sent; they are not
``MetricsError``.

An error body that is not a ``Status`` (kube-aggregator's plain-text 503, a proxy's HTML page) becomes
one the way client-go's ``NewGenericServerResponse`` does it: a reason and message chosen by the HTTP
code, the original text in ``details.causes[0].message`` (reason ``UnexpectedServerResponse``), and the
message ending in ``(<verb> <resource> [<name>])`` as kubectl prints it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Final

import httpx

from ._generated.models.status import Status

__all__ = [
    "ApiError",
    "BadRequest",
    "Conflict",
    "Forbidden",
    "Invalid",
    "MetricsError",
    "NotFound",
    "ResponseError",
    "ServiceUnavailable",
    "TransportError",
    "Unauthorized",
    "error_from_response",
    "error_from_status",
    "generic_reason_message",
    "request_target",
    "status_from_body",
]


class MetricsError(Exception):
    """Base class of every error the client raises for a request."""


class ResponseError(MetricsError):
    """A successful response whose body is not the promised document (not JSON, missing fields)."""


class TransportError(MetricsError):
    """The request got no HTTP answer: connection, TLS or timeout failure (see ``__cause__``)."""


class ApiError(MetricsError):
    """The server answered with an error ``Status``.

    Attributes:
        status: the ``Status`` as served, or as built by the client from a non-``Status`` error body.
        code: the HTTP status code.
        reason: the machine-readable ``StatusReason`` (``"NotFound"``, ``"Forbidden"`` ...), ``""`` if none.
        message: the human-readable message, as kubectl prints it after ``Error from server (<reason>):``.
            For a body that was not a ``Status`` (kube-aggregator's plain-text 503, a proxy's page), the
            message ends like client-go's: ``... (get nodes.metrics.k8s.io)``.
    """

    status: Status
    code: int
    reason: str
    message: str

    def __init__(self, status: Status, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.code = status.code
        self.reason = status.reason if isinstance(status.reason, str) else ""
        self.message = message

    def __str__(self) -> str:
        return f"{self.reason or 'Error'} ({self.code}): {self.message}"


class BadRequest(ApiError):
    """400: the request was malformed, typically a label or field selector."""


class Unauthorized(ApiError):
    """401: the credentials were missing, expired or rejected."""


class Forbidden(ApiError):
    """403: the user may not do this (e.g. no ``get``/``list`` on ``metrics.k8s.io`` ``pods``)."""


class NotFound(ApiError):
    """404: the object does not exist, or has no metrics (yet)."""


class Conflict(ApiError):
    """409: the update was based on a ``resourceVersion`` that is no longer current."""


class Invalid(ApiError):
    """422: the server refused the new object (for a scale: a negative replica count)."""


class ServiceUnavailable(ApiError):
    """503: the Metrics API is not available (metrics-server down, APIService not Available)."""


_BY_CODE: Final[dict[int, type[ApiError]]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    409: Conflict,
    422: Invalid,
    503: ServiceUnavailable,
}

# client-go's NewGenericServerResponse: reason and message for an error body that is not a Status.
# None as the message means "use the body text".
_GENERIC_ERRORS: Final[dict[int, tuple[str, str | None]]] = {
    400: ("BadRequest", "the server rejected our request for an unknown reason"),
    401: ("Unauthorized", "the server has asked for the client to provide credentials"),
    403: ("Forbidden", None),  # the body says who may not do what
    404: ("NotFound", "the server could not find the requested resource"),
    405: ("MethodNotAllowed", "the server does not allow this method on the requested resource"),
    406: ("NotAcceptable", "the server was unable to respond with a content type that the client supports"),
    409: ("Conflict", "the server reported a conflict"),
    410: ("Gone", "the server no longer has the requested resource"),
    422: ("Invalid", "the server rejected our request due to an error in our request"),
    429: ("TooManyRequests", "the server has received too many requests and has asked us to try again later"),
    503: ("ServiceUnavailable", "the server is currently unable to handle the request"),
    504: (
        "Timeout",
        "the server was unable to return a response in the time allotted, "
        "but may still be processing the request",
    ),
}
_MAX_CAUSE_CHARS: Final = 2048  # keep a proxy's error page from bloating the Status


def generic_reason_message(code: int, text: str) -> tuple[str, str]:
    """client-go's reason and message for an error answer of HTTP ``code`` whose body (``text``) is not
    a ``Status``: ``(503, "down")`` is ``("ServiceUnavailable", "the server is currently unable to handle
    the request")``; a 403 keeps the body text; other 5xx quote it like Go's ``%q``."""
    if code in _GENERIC_ERRORS:
        reason, generic = _GENERIC_ERRORS[code]
        return reason, generic or text or "the server does not allow access to the requested resource"
    if code >= 500:
        quoted = json.dumps(text, ensure_ascii=False)
        return "InternalError", f"an error on the server ({quoted}) has prevented the request from succeeding"
    return "Unknown", f"the server responded with the status code {code} but did not return more information"


def _generic_status(code: int, body: bytes, retry_after: str = "") -> Status:
    text = body.decode("utf-8", errors="replace").strip()[:_MAX_CAUSE_CHARS]
    reason, message = generic_reason_message(code, text)
    details: dict[str, object] = {"causes": [{"reason": "UnexpectedServerResponse", "message": text}]}
    if retry_after.isdigit():
        details["retryAfterSeconds"] = int(retry_after)
    return Status.from_dict(
        {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": message,
            "reason": reason,
            "details": details,
            "code": code,
        }
    )


def status_from_body(code: int, body: bytes, headers: Mapping[str, str] | None = None) -> tuple[Status, bool]:
    """The ``Status`` of an error answer, and whether the client built it (the body was not a Status).

    ``headers`` gives the ``Content-Type`` (a Status must be JSON) and ``Retry-After`` (kept in
    ``details.retryAfterSeconds`` of a built Status). Never raises.
    """
    content_type = (headers or {}).get("content-type", "application/json")
    if "json" in content_type:
        try:
            document = json.loads(body)
            if isinstance(document, dict) and document.get("kind") == "Status":
                # Fields the model requires, which some servers leave out of an error Status.
                for key, default in (
                    ("apiVersion", "v1"),
                    ("metadata", {}),
                    ("status", "Failure"),
                    ("code", code),
                ):
                    document.setdefault(key, default)
                return Status.from_dict(document), False
        except (ValueError, KeyError, TypeError, AttributeError):
            pass
    return _generic_status(code, body, (headers or {}).get("retry-after", "")), True


def error_from_status(
    status: Status, *, verb: str = "get", resource: str = "", name: str = "", synthesised: bool = False
) -> ApiError:
    """The exception for ``status``: the class chosen by its HTTP code (``ApiError`` for other codes).

    ``resource`` is the qualified resource asked for (``"nodes.metrics.k8s.io"``) and ``name`` the
    object's name, if any. Like client-go, they are appended to the message of a ``synthesised`` Status
    only (one the client built from a body that was not a Status).
    """
    message = status.message if isinstance(status.message, str) else ""
    if synthesised and resource:
        message = f"{message} ({verb} {resource} {name})" if name else f"{message} ({verb} {resource})"
    return _BY_CODE.get(status.code, ApiError)(status, message)


def request_target(path: str) -> tuple[str, str]:
    """client-go's qualified resource and object name of a core or group API path, for messages:
    ``/api/v1/nodes`` is ``("nodes", "")``, ``/apis/apps/v1/namespaces/x/deployments/y/scale`` is
    ``("deployments.apps", "y")``; a path outside the API is ``("", "")``."""
    parts = [p for p in path.split("/") if p]
    if parts[:1] == ["api"] and len(parts) >= 2:
        group, rest = "", parts[2:]
    elif parts[:1] == ["apis"] and len(parts) >= 3:
        group, rest = parts[1], parts[3:]
    else:
        return "", ""
    if rest[:1] == ["namespaces"] and len(rest) >= 3:
        rest = rest[2:]
    if not rest:
        return "", ""
    return (f"{rest[0]}.{group}" if group else rest[0]), (rest[1] if len(rest) > 1 else "")


def error_from_response(response: httpx.Response, base_path: str = "") -> ApiError:
    """The exception for an error answer whose body has been read; ``base_path`` is the server URL's
    path prefix (a cluster behind a path such as ``/k8s/clusters/c-1``), not part of the API path."""
    status, synthesised = status_from_body(response.status_code, response.content, response.headers)
    path = response.request.url.path
    if base_path and path.startswith(base_path):
        path = path[len(base_path) :]
    resource, name = request_target(path)
    verb = response.request.method.lower()
    return error_from_status(status, verb=verb, resource=resource, name=name, synthesised=synthesised)
