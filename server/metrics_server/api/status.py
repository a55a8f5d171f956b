"""Kubernetes `Status` error bodies, byte-compatible with the apiserver library.

Every API error this server sends is a `meta/v1 Status` object encoded the way the library's JSON
serializer does it (Go `encoding/json` via `json.Encoder.Encode`):

* field order `kind, apiVersion, metadata, status, message, reason, details, code`;
* `details` omitted when the error kind has none, `{}` when present but empty, and inside it the
  order `name, group, kind, causes`, empty fields omitted;
* `<`, `>`, `&`, U+2028 and U+2029 escaped as `\\u003c` ... (Go's HTML-safe escaping);
* a trailing newline.

Messages are the library's (`k8s.io/apimachinery/pkg/api/errors`, `endpoints/handlers/negotiation`,
`endpoints/handlers/responsewriters`) and metrics-server's, so clients that print
`Error from server (<Reason>): <message>` show the same text as against metrics-server.

Pure functions, no state: callers (the API routes, the auth middleware) build a body and send it
with `CONTENT_TYPE` and the status code they passed in.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import NamedTuple

import orjson

from k8s_metrics.gostrings import go_quote

CONTENT_TYPE = "application/json"
"""The Content-Type of a JSON Status body (`api.protobuf` and `api.yamlenc` re-encode one when the
client negotiated protobuf or YAML)."""

_HTML_ESCAPES = (
    (b"<", b"\\u003c"),
    (b">", b"\\u003e"),
    (b"&", b"\\u0026"),
    ("\u2028".encode(), b"\\u2028"),
    ("\u2029".encode(), b"\\u2029"),
)


def go_json(obj: object) -> bytes:
    """Encode `obj` as Go's `json.Encoder.Encode` would: compact, HTML-safe, newline-terminated.

    Insertion order of dicts is kept (Go encodes struct fields in declaration order). Only for
    small bodies; the HTML-escape pass is a handful of `bytes.replace` calls.
    """
    out = orjson.dumps(obj)
    for raw, escaped in _HTML_ESCAPES:
        if raw in out:
            out = out.replace(raw, escaped)
    return out + b"\n"


def status_object(
    code: int, reason: str, message: str, *, details: Mapping[str, object] | None = None
) -> dict[str, object]:
    """The Status as a dict in the library's field order (for embedding or inspection)."""
    obj: dict[str, object] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
    }
    if details is not None:
        obj["details"] = {k: v for k, v in _ordered_details(details)}
    obj["code"] = code
    return obj


def status_json(
    code: int, reason: str, message: str, *, details: Mapping[str, object] | None = None
) -> bytes:
    """A complete Status body.

    `details=None` omits the field; a mapping is emitted with keys in the library's order
    (`name, group, kind, uid, causes, retryAfterSeconds`, unknown keys after) and empty values
    (`""`, `None`, empty list, `0`) dropped as Go's `omitempty` does.
    """
    return go_json(status_object(code, reason, message, details=details))


_DETAIL_ORDER = ("name", "group", "kind", "uid", "causes", "retryAfterSeconds")


def _ordered_details(details: Mapping[str, object]) -> list[tuple[str, object]]:
    keys = [k for k in _DETAIL_ORDER if k in details] + [k for k in details if k not in _DETAIL_ORDER]
    return [(k, details[k]) for k in keys if details[k] not in ("", None, 0, [], ())]


def _qualified(resource: str, group: str) -> str:
    """`schema.GroupResource.String()`: `resource.group`, or `resource` for the core group."""
    return f"{resource}.{group}" if group else resource


# --- the common errors ------------------------------------------------------------------------


def not_found(resource: str, name: str, *, group: str = "") -> bytes:
    """`errors.NewNotFound`: 404 `<resource>[.<group>] "<name>" not found`.

    Examples: `not_found("podmetrics", "ns/p", group="metrics.k8s.io")` (pod without metrics),
    `not_found("pods", "p")` (pod not in the cache), `not_found("node", "n")` (node not in the cache).
    """
    message = f"{_qualified(resource, group)} {go_quote(name)} not found"
    return status_json(404, "NotFound", message, details={"name": name, "group": group, "kind": resource})


def path_not_found() -> bytes:
    """404 for an unknown path (the library's NotFound handler)."""
    return status_json(404, "NotFound", "the server could not find the requested resource", details={})


def bad_request(message: str) -> bytes:
    """`errors.NewBadRequest`: 400 BadRequest with the given text, no details."""
    return status_json(400, "BadRequest", message)


def method_not_allowed() -> bytes:
    """405 for a method a route does not serve (go-restful's handler in the library)."""
    return status_json(
        405, "MethodNotAllowed", "the server does not allow this method on the requested resource", details={}
    )


def method_not_supported(resource: str, group: str, action: str) -> bytes:
    """`errors.NewMethodNotSupported`, e.g. 405 for `?watch=true`.

    Text: `watch is not supported on resources of kind "pods.metrics.k8s.io"`.
    """
    message = f"{action} is not supported on resources of kind {go_quote(_qualified(resource, group))}"
    return status_json(405, "MethodNotAllowed", message, details={"group": group, "kind": resource})


def indented(body: bytes) -> bytes:
    """A JSON body as Go's `json.MarshalIndent(v, "", "  ")` writes it (no trailing newline)."""
    return orjson.dumps(orjson.loads(body), option=orjson.OPT_INDENT_2)


def not_acceptable(accepted: Sequence[str]) -> bytes:
    """406 NotAcceptable for a media type the server has but not in the form asked (an unknown
    `as=` conversion), listing the accepted types; indented, as the library writes it."""
    message = "only the following media types are accepted: " + ", ".join(accepted)
    return indented(status_json(406, "NotAcceptable", message))


def not_acceptable_media(available: Sequence[str]) -> bytes:
    """406 NotAcceptable when no media type of the Accept header is served (the library's
    `NewNotAcceptableError`); indented, with empty details, as the library writes it."""
    message = "406: Not Acceptable\n\nAvailable representations: " + ", ".join(available)
    return indented(status_json(406, "NotAcceptable", message, details={}))


def unauthorized() -> bytes:
    """401 as sent by the library when authentication fails (no details)."""
    return status_json(401, "Unauthorized", "Unauthorized")


def forbidden(resource: str, group: str, name: str, message: str) -> bytes:
    """`errors.NewForbidden(GroupResource{group, resource}, name, errors.New(message))`.

    With an empty resource and group the text is `forbidden: <message>` and details are `{}`.
    """
    if not resource and not group:
        text = f"forbidden: {message}"
    elif not name:
        text = f"{_qualified(resource, group)} is forbidden: {message}"
    else:
        text = f"{_qualified(resource, group)} {go_quote(name)} is forbidden: {message}"
    return status_json(403, "Forbidden", text, details={"name": name, "group": group, "kind": resource})


def internal_error(cause: str) -> bytes:
    """`errors.NewInternalError`: 500 `Internal error occurred: <cause>`, the cause repeated in details."""
    return status_json(
        500,
        "InternalError",
        f"Internal error occurred: {cause}",
        details={"causes": [{"message": cause}]},
    )


def service_unavailable(message: str) -> bytes:
    """`errors.NewServiceUnavailable`: 503 ServiceUnavailable with the given text, no details."""
    return status_json(503, "ServiceUnavailable", message)


class FieldError(NamedTuple):
    """One `field.Error`: `type` is the cause type (`FieldValueForbidden`, `FieldValueNotSupported`)."""

    type: str
    field: str
    body: str
    """`ErrorBody()`, e.g. `Forbidden: resourceVersionMatch is forbidden unless resourceVersion is ...`."""


def invalid(kind: str, group: str, name: str, errors: Sequence[FieldError]) -> bytes:
    """`errors.NewInvalid`: 422 `<Kind>.<group> "<name>" is invalid: <field errors>` with causes."""
    messages = list(dict.fromkeys(f"{e.field}: {e.body}" for e in errors))
    aggregate = messages[0] if len(messages) == 1 else "[" + ", ".join(messages) + "]"
    qualified = f"{kind}.{group}" if group else kind
    causes = [{"reason": e.type, "message": e.body, "field": e.field} for e in errors]
    return status_json(
        422,
        "Invalid",
        f"{qualified} {go_quote(name)} is invalid: {aggregate}",
        details={"name": name, "group": group, "kind": kind, "causes": causes},
    )
