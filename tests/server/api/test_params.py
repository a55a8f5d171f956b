"""The spec-driven parameter compiler: keyword coverage, messages, and refusal of unknown shapes."""

from __future__ import annotations

import pytest
from conftest import spec

from metrics_server.api.openapi import SpecError
from metrics_server.api.params import ParamError, compile_operations, compile_schema


def test_every_operation_is_compiled_with_its_parameters() -> None:
    ops = compile_operations(spec())
    assert sorted(ops) == [
        "get_api_groups",
        "get_code_version",
        "get_metrics_api_group",
        "get_metrics_api_resources",
        "list_namespaced_pod_metrics",
        "list_node_metrics",
        "list_pod_metrics_for_all_namespaces",
        "read_namespaced_pod_metrics",
        "read_node_metrics",
    ]
    assert [name for name, _ in ops["read_namespaced_pod_metrics"].path] == ["namespace", "name"]
    assert sorted(ops["list_node_metrics"].query) == [
        "allowWatchBookmarks",
        "continue",
        "fieldSelector",
        "labelSelector",
        "limit",
        "pretty",
        "resourceVersion",
        "resourceVersionMatch",
        "sendInitialEvents",
        "timeout",
        "timeoutSeconds",
        "watch",
    ]


@pytest.mark.parametrize(
    ("schema", "value", "reason"),
    [
        ({"type": "integer"}, "12", None),
        ({"type": "integer"}, "-3", None),
        ({"type": "integer"}, "1e3", "must be an integer"),
        (
            {"type": "integer", "format": "int32"},
            "2147483648",
            "must be an integer between -2147483648 and 2147483647",
        ),
        ({"type": "integer", "minimum": 1}, "0", "must be greater than or equal to 1"),
        ({"type": "integer", "minimum": 1, "exclusiveMinimum": True}, "1", "must be greater than 1"),
        ({"type": "integer", "maximum": 10}, "11", "must be less than or equal to 10"),
        ({"type": "number"}, "1.5e3", None),
        ({"type": "number"}, "x", "must be a number"),
        ({"type": "boolean"}, "false", None),
        ({"type": "boolean"}, "1", None),
        ({"type": "boolean"}, "yes", "must be a boolean (true or false)"),
        ({"type": "string", "minLength": 2}, "a", "must be at least 2 characters"),
        ({"type": "string", "maxLength": 2}, "abc", "must be no more than 2 characters"),
        ({"type": "string", "pattern": "^a+$"}, "aab", "must match the regular expression '^a+$'"),
        ({"type": "string", "pattern": "b"}, "abc", None),
        ({"type": "string", "enum": ["x"]}, "y", None),  # enums are the handlers' (422), not 400s
    ],
)
def test_compiled_checks(schema: dict[str, object], value: str, reason: str | None) -> None:
    assert compile_schema(schema)(value) == reason


def test_unknown_keywords_and_types_are_refused_at_start_up() -> None:
    with pytest.raises(SpecError, match=r"not supported by the checker: \['multipleOf'\]"):
        compile_schema({"type": "integer", "multipleOf": 2})
    with pytest.raises(SpecError, match="parameter type 'array' not supported"):
        compile_schema({"type": "array"})
    broken = spec()
    del broken["paths"]["/apis"]["get"]["operationId"]
    with pytest.raises(SpecError, match="GET /apis has no operationId"):
        compile_operations(broken)


def test_operation_check_reports_the_parameter() -> None:
    op = compile_operations(spec())["list_namespaced_pod_metrics"]
    op.check({"namespace": "default"}, {"limit": ["500"], "unknown": ["whatever"]})
    with pytest.raises(ParamError) as err:
        op.check({"namespace": "default"}, {"limit": ["500", "x"]})
    assert (err.value.name, err.value.message) == ("limit", 'limit: Invalid value: "x": must be an integer')
