"""Spec-driven request parameter checks, compiled once from the OpenAPI document.

`compile_operations(spec)` walks every operation, resolves its path and query parameters
(`$ref`s included) and turns each parameter schema into a small closure. A request then costs
one dict lookup and a few string tests per parameter it carries; there is no generic OpenAPI
validator on the request path (openapi-core costs ~1.4 ms per request, python-stack.md §5).

Supported schema keywords: `type` (string, integer, boolean, number), `format` (int32/int64 ranges),
`pattern`, `minLength`, `maxLength`, `minimum`, `maximum` (with 3.0 boolean `exclusive*`).
`enum` is deliberately not enforced here: Kubernetes decodes enumerated options as free strings
and rejects bad values afterwards with 422 Invalid (e.g. `resourceVersionMatch`), which the
handlers do. Any other keyword raises `SpecError` at start-up, so a spec change cannot silently
weaken the checks.

A violation is reported as `ParamError(name, message)`, where message reads like a Kubernetes field
error: `limit: Invalid value: "abc": must be an integer`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

from k8s_metrics.gostrings import go_quote
from metrics_server.api.openapi import SpecError, resolve

Check = Callable[[str], "str | None"]
"""A compiled parameter check: None when the value is valid, else the reason."""

_IGNORED_KEYWORDS = frozenset({"description", "example", "examples", "default", "title", "enum", "nullable"})
_INT_RANGES = {"int32": (-(2**31), 2**31 - 1), "int64": (-(2**63), 2**63 - 1)}
_INT_RE = re.compile(r"[+-]?[0-9]+")
_NUMBER_RE = re.compile(r"[+-]?([0-9]+(\.[0-9]*)?|\.[0-9]+)([eE][+-]?[0-9]+)?")
_BOOLEANS = frozenset({"1", "t", "T", "TRUE", "true", "True", "0", "f", "F", "FALSE", "false", "False"})
"""Go's strconv.ParseBool spellings, which Kubernetes clients use (`watch=1`, `watch=true`)."""


class ParamError(ValueError):
    def __init__(self, name: str, message: str) -> None:
        super().__init__(message)
        self.name = name
        self.message = message


class OperationChecks(NamedTuple):
    operation_id: str
    path: tuple[tuple[str, Check], ...]
    query: Mapping[str, Check]
    required_query: tuple[str, ...]

    def check(self, path_params: Mapping[str, str], query: Mapping[str, list[str]]) -> None:
        """Raise `ParamError` for the first invalid parameter. Unknown query parameters are ignored,
        as Kubernetes ignores them."""
        for name, check in self.path:
            value = path_params.get(name)
            if value is not None:
                _apply(name, check, value)
        for name in self.required_query:
            if name not in query:
                raise ParamError(name, f"{name}: Required value")
        for name, values in query.items():
            query_check = self.query.get(name)
            if query_check is not None:
                for value in values:
                    _apply(name, query_check, value)


def _apply(name: str, check: Check, value: str) -> None:
    reason = check(value)
    if reason is not None:
        raise ParamError(name, f"{name}: Invalid value: {go_quote(value)}: {reason}")


def compile_schema(schema: Mapping[str, Any]) -> Check:
    """One parameter schema (already `$ref`-resolved) to a check. Raises `SpecError` on unknown keywords."""
    unknown = (
        set(schema)
        - _IGNORED_KEYWORDS
        - {
            "type",
            "format",
            "pattern",
            "minLength",
            "maxLength",
            "minimum",
            "maximum",
            "exclusiveMinimum",
            "exclusiveMaximum",
        }
    )
    if unknown:
        raise SpecError(f"parameter schema keywords not supported by the checker: {sorted(unknown)}")
    checks: list[Check] = []
    kind = schema.get("type", "string")
    if kind == "integer":
        low, high = _INT_RANGES.get(schema.get("format", "int64"), _INT_RANGES["int64"])

        def is_integer(v: str) -> str | None:
            if not _INT_RE.fullmatch(v):
                return "must be an integer"
            return None if low <= int(v) <= high else f"must be an integer between {low} and {high}"

        checks.append(is_integer)
    elif kind == "number":
        checks.append(lambda v: None if _NUMBER_RE.fullmatch(v) else "must be a number")
    elif kind == "boolean":
        checks.append(lambda v: None if v in _BOOLEANS else "must be a boolean (true or false)")
    elif kind != "string":
        raise SpecError(f"parameter type {kind!r} not supported by the checker")
    if kind in ("integer", "number"):
        checks.extend(_bounds(schema))
    if "minLength" in schema:
        min_len = int(schema["minLength"])
        checks.append(lambda v: None if len(v) >= min_len else f"must be at least {min_len} characters")
    if "maxLength" in schema:
        max_len = int(schema["maxLength"])
        checks.append(lambda v: None if len(v) <= max_len else f"must be no more than {max_len} characters")
    if "pattern" in schema:
        pattern = str(schema["pattern"])
        regex = re.compile(pattern)
        checks.append(lambda v: None if regex.search(v) else f"must match the regular expression '{pattern}'")
    if len(checks) == 1:
        return checks[0]

    def all_checks(value: str) -> str | None:
        for check in checks:
            reason = check(value)
            if reason is not None:
                return reason
        return None

    return all_checks


def _bounds(schema: Mapping[str, Any]) -> list[Check]:
    checks: list[Check] = []
    if "minimum" in schema:
        minimum = float(schema["minimum"])
        if schema.get("exclusiveMinimum") is True:
            checks.append(
                lambda v: None if float(v) > minimum else f"must be greater than {schema['minimum']}"
            )
        else:
            checks.append(
                lambda v: (
                    None if float(v) >= minimum else f"must be greater than or equal to {schema['minimum']}"
                )
            )
    if "maximum" in schema:
        maximum = float(schema["maximum"])
        if schema.get("exclusiveMaximum") is True:
            checks.append(lambda v: None if float(v) < maximum else f"must be less than {schema['maximum']}")
        else:
            checks.append(
                lambda v: (
                    None if float(v) <= maximum else f"must be less than or equal to {schema['maximum']}"
                )
            )
    return checks


def compile_operations(spec: Mapping[str, Any]) -> dict[str, OperationChecks]:
    """Checks for every operation of `spec`, by operationId. Raises `SpecError` on shapes it cannot check."""
    compiled: dict[str, OperationChecks] = {}
    for path, item in spec["paths"].items():
        for method, op in item.items():
            if method not in ("get", "put", "post", "delete", "patch", "head", "options"):
                continue
            op_id = op.get("operationId")
            if not op_id:
                raise SpecError(f"{method.upper()} {path} has no operationId")
            path_checks: list[tuple[str, Check]] = []
            query_checks: dict[str, Check] = {}
            required: list[str] = []
            for raw in [*item.get("parameters", []), *op.get("parameters", [])]:
                param = resolve(spec, raw)
                name, where = str(param.get("name", "")), param.get("in")
                schema = resolve(spec, param.get("schema", {}))
                check = compile_schema(schema)
                if where == "path":
                    path_checks.append((name, check))
                elif where == "query":
                    query_checks[name] = check
                    if param.get("required"):
                        required.append(name)
                elif where not in ("header", "cookie"):
                    raise SpecError(f"{op_id}: parameter {name!r} in {where!r} not supported")
            compiled[op_id] = OperationChecks(op_id, tuple(path_checks), query_checks, tuple(required))
    return compiled
