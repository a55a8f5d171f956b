"""What a resource request asks for beyond its path: query parameters, list options, pretty printing.

Read from quart's request context. `param_error` applies the spec-driven checks (`api.params`),
`list_option_errors` the apiserver's `ValidateListOptions`, `pretty` its `isPrettyPrint`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import orjson
from quart import Response, request

from k8s_metrics.gostrings import go_quote
from metrics_server.api import negotiate as neg
from metrics_server.api import status
from metrics_server.api.params import OperationChecks, ParamError
from metrics_server.api.responses import status_response

TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})


def query_args() -> dict[str, list[str]]:
    if not request.query_string:  # most gets: skip building the dict
        return {}
    return request.args.to_dict(flat=False)


def param_error(op: OperationChecks, path_params: Mapping[str, str], rep: str = neg.JSON) -> Response | None:
    try:
        op.check(path_params, query_args())
    except ParamError as exc:
        return status_response(status.bad_request(exc.message), 400, rep)
    return None


def pretty() -> bool:
    """The apiserver's `isPrettyPrint`: `?pretty=<true>` or a curl/Wget/browser User-Agent."""
    value = request.args.get("pretty") if request.query_string else None
    if value:
        return value in TRUE
    agent = request.headers.get("User-Agent", "")
    return agent.startswith(("curl", "Wget", "Mozilla/5.0"))


def indent(body: bytes) -> bytes:
    return orjson.dumps(orjson.loads(body), option=orjson.OPT_INDENT_2) + b"\n"


def bad_include(value: str) -> bytes:
    """The library's 400 for an unknown `includeObject` (indented, as it writes this one)."""
    message = (
        f"Unable to convert to Table as requested: includeObject: Invalid value: {go_quote(value)}: "
        "must be 'Metadata', 'Object', 'None', or empty"
    )
    return status.indented(status.bad_request(message))


def is_watch(query: Mapping[str, list[str]]) -> bool:
    values = query.get("watch")
    return values is not None and len(values) > 0 and values[0].lower() not in ("0", "false")


def list_option_errors(query: Mapping[str, list[str]], watch: bool) -> list[status.FieldError]:
    """`ValidateListOptions` (WatchList enabled) over the options this API accepts."""

    def first(name: str) -> str | None:
        values = query.get(name)
        return values[0] if values else None  # Go's Query().Get: the first value

    rv, match, cont = (
        first("resourceVersion") or "",
        first("resourceVersionMatch") or "",
        first("continue") or "",
    )
    send_initial = first("sendInitialEvents")
    errors: list[status.FieldError] = []

    def forbidden(path: str, detail: str) -> None:
        errors.append(status.FieldError("FieldValueForbidden", path, f"Forbidden: {detail}"))

    def not_supported(path: str, value: str, supported: Iterable[str]) -> None:
        quoted = ", ".join(go_quote(s) for s in supported)
        body = f"Unsupported value: {go_quote(value)}: supported values: {quoted}"
        errors.append(status.FieldError("FieldValueNotSupported", path, body))

    if watch:
        if send_initial is not None and match != "NotOlderThan":
            forbidden(
                "resourceVersionMatch",
                "sendInitialEvents requires setting resourceVersionMatch to NotOlderThan",
            )
        if match:
            if send_initial is None:
                forbidden(
                    "resourceVersionMatch",
                    "resourceVersionMatch is forbidden for watch unless sendInitialEvents is provided",
                )
            if match != "NotOlderThan":
                not_supported("resourceVersionMatch", match, ["NotOlderThan"])
            if cont:
                forbidden(
                    "resourceVersionMatch", "resourceVersionMatch is forbidden when continue is provided"
                )
        return errors
    if match:
        if not rv:
            forbidden(
                "resourceVersionMatch", "resourceVersionMatch is forbidden unless resourceVersion is provided"
            )
        if cont:
            forbidden("resourceVersionMatch", "resourceVersionMatch is forbidden when continue is provided")
        if match not in ("Exact", "NotOlderThan"):
            not_supported("resourceVersionMatch", match, ["Exact", "NotOlderThan", ""])
        if match == "Exact" and rv == "0":
            forbidden(
                "resourceVersionMatch", 'resourceVersionMatch "exact" is forbidden for resourceVersion "0"'
            )
    if send_initial is not None:
        forbidden("sendInitialEvents", "sendInitialEvents is forbidden for list")
    return errors
