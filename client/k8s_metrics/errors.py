"""The exceptions of the typed layer (:mod:`k8s_metrics.usage`), each carrying what the server said.

Hierarchy::

    MetricsError                     anything the typed layer raises about a request
    ├── ApiError                     the server answered with an error; .status is the Kubernetes Status
    │   ├── BadRequest               400 (a malformed selector, an unsupported field selector)
    │   ├── Unauthorized             401 (no or rejected credentials)
    │   ├── Forbidden                403 (RBAC denies get/list on the resource)
    │   ├── NotFound                 404 (no such node/pod, or no metrics for it yet)
    │   └── ServiceUnavailable       503 (the aggregated API is down; includes kube-aggregator's
    │                                     plain-text reply, turned into a Status by the client)
    ├── ResponseError                a 2xx body that is not the document the API promises
    └── TransportError               no answer at all (connection refused, TLS failure, timeout);
                                     the httpx exception is the ``__cause__``

Configuration problems (no kubeconfig, unknown context) are :class:`k8s_metrics.kubeconfig.ConfigError`,
raised before any request is sent; they are not ``MetricsError``.
"""

from __future__ import annotations

import json
from typing import Final

from ._generated.models.status import Status
from ._generated.types import Unset

__all__ = [
    "ApiError",
    "BadRequest",
    "Forbidden",
    "MetricsError",
    "NotFound",
    "ResponseError",
    "ServiceUnavailable",
    "TransportError",
    "Unauthorized",
    "error_from_status",
    "status_from_body",
]


class MetricsError(Exception):
    """Base class of every error the typed layer raises for a request."""


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
    """403: the user may not get/list this resource (``metrics.k8s.io`` ``nodes`` or ``pods``)."""


class NotFound(ApiError):
    """404: the node or pod does not exist, or has no metrics (yet)."""


class ServiceUnavailable(ApiError):
    """503: the Metrics API is not available (metrics-server down, APIService not Available)."""


_BY_CODE: Final[dict[int, type[ApiError]]] = {
    400: BadRequest,
    401: Unauthorized,
    403: Forbidden,
    404: NotFound,
    503: ServiceUnavailable,
}


def _synthesised(status: Status) -> bool:
    """True for a Status the client built from an error body that was not one (see client.py)."""
    details = status.details
    if isinstance(details, Unset) or isinstance(details.causes, Unset):
        return False
    return any(cause.reason == "UnexpectedServerResponse" for cause in details.causes)


def error_from_status(status: Status, *, verb: str = "get", resource: str = "", name: str = "") -> ApiError:
    """The exception for ``status``: the class chosen by its HTTP code (``ApiError`` for other codes).

    ``resource`` is the qualified resource asked for (``"nodes.metrics.k8s.io"``) and ``name`` the object's
    name, if any. Like client-go, they are appended to the message of a synthesised Status only.
    """
    message = status.message if isinstance(status.message, str) else ""
    if _synthesised(status) and resource:
        message = f"{message} ({verb} {resource} {name})" if name else f"{message} ({verb} {resource})"
    return _BY_CODE.get(status.code, ApiError)(status, message)


def status_from_body(code: int, body: bytes) -> Status:
    """Parse an error body as a ``Status``; one that does not parse becomes a minimal Status with the
    body text as message (the client normally guarantees a Status, so this is a last resort)."""
    try:
        document = json.loads(body)
        if isinstance(document, dict) and document.get("kind") == "Status":
            return Status.from_dict(document)
    except (ValueError, KeyError, TypeError):
        pass
    text = body.decode("utf-8", errors="replace").strip()[:2048]
    return Status.from_dict(
        {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": text,
            "code": code,
        }
    )
