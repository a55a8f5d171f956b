"""The OpenAPI spec: valid, copied to the server package, with the operations and parameter schemas the
client and the server rely on."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import jsonschema_rs
import pytest
import yaml
from openapi_schema_validator import OAS30Validator
from openapi_spec_validator import validate
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT4

ROOT = Path(__file__).resolve().parents[2]
SPEC_PATH = ROOT / "openapi" / "metrics.k8s.io-v1beta1.yaml"
SERVER_COPY = ROOT / "server" / "metrics_server" / "openapi" / "metrics.k8s.io-v1beta1.yaml"
SPEC: dict[str, Any] = yaml.safe_load(SPEC_PATH.read_text(encoding="utf-8"))

V1BETA1 = "/apis/metrics.k8s.io/v1beta1"
OPERATION_IDS = {
    "/apis": "get_api_groups",
    "/apis/metrics.k8s.io": "get_metrics_api_group",
    V1BETA1: "get_metrics_api_resources",
    f"{V1BETA1}/nodes": "list_node_metrics",
    f"{V1BETA1}/nodes/{{name}}": "read_node_metrics",
    f"{V1BETA1}/pods": "list_pod_metrics_for_all_namespaces",
    f"{V1BETA1}/namespaces/{{namespace}}/pods": "list_namespaced_pod_metrics",
    f"{V1BETA1}/namespaces/{{namespace}}/pods/{{name}}": "read_namespaced_pod_metrics",
}
LIST_QUERY = {
    "allowWatchBookmarks": {"type": "boolean"},
    "continue": {"type": "string"},
    "fieldSelector": {"type": "string"},
    "labelSelector": {"type": "string"},
    "limit": {"type": "integer", "format": "int64"},
    "pretty": {"type": "string"},
    "resourceVersion": {"type": "string"},
    "resourceVersionMatch": {"$ref": "#/components/schemas/ResourceVersionMatch"},
    "sendInitialEvents": {"type": "boolean"},
    "timeout": {"$ref": "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.Duration"},
    "timeoutSeconds": {"type": "integer", "format": "int64"},
    "watch": {"type": "boolean"},
}
READ_QUERY = {name: LIST_QUERY[name] for name in ("pretty", "resourceVersion", "timeout")}
DISCOVERY_QUERY = {"timeout": LIST_QUERY["timeout"]}
DNS1123_LABEL = {
    "type": "string",
    "minLength": 1,
    "maxLength": 63,
    "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
}
DNS1123_SUBDOMAIN = {
    "type": "string",
    "minLength": 1,
    "maxLength": 253,
    "pattern": r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$",
}
RESULT_SCHEMAS = {
    "get_api_groups": "io.k8s.apimachinery.pkg.apis.meta.v1.APIGroupList",
    "get_metrics_api_group": "io.k8s.apimachinery.pkg.apis.meta.v1.APIGroup",
    "get_metrics_api_resources": "io.k8s.apimachinery.pkg.apis.meta.v1.APIResourceList",
    "list_node_metrics": "io.k8s.metrics.pkg.apis.metrics.v1beta1.NodeMetricsList",
    "read_node_metrics": "io.k8s.metrics.pkg.apis.metrics.v1beta1.NodeMetrics",
    "list_pod_metrics_for_all_namespaces": "io.k8s.metrics.pkg.apis.metrics.v1beta1.PodMetricsList",
    "list_namespaced_pod_metrics": "io.k8s.metrics.pkg.apis.metrics.v1beta1.PodMetricsList",
    "read_namespaced_pod_metrics": "io.k8s.metrics.pkg.apis.metrics.v1beta1.PodMetrics",
}
DISCOVERY_ERRORS = {"400", "401", "403", "404", "406", "429", "500", "503"}
READ_ERRORS = DISCOVERY_ERRORS | {"405", "504"}
LIST_ERRORS = READ_ERRORS | {"422"}
ERROR_RESPONSES = {
    "400": "BadRequest",
    "401": "Unauthorized",
    "403": "Forbidden",
    "404": "NotFound",
    "405": "MethodNotAllowed",
    "406": "NotAcceptable",
    "422": "Invalid",
    "429": "TooManyRequests",
    "500": "InternalError",
    "503": "ServiceUnavailable",
    "504": "Timeout",
}


def resolve(node: dict[str, Any]) -> dict[str, Any]:
    """Follow local ``$ref``s (``#/a/b``) until a non-reference node."""
    while "$ref" in node:
        target: Any = SPEC
        for part in node["$ref"].removeprefix("#/").split("/"):
            target = target[part]
        node = target
    return node


def operation(path: str) -> dict[str, Any]:
    return SPEC["paths"][path]["get"]


def parameters(path: str) -> dict[tuple[str, str], dict[str, Any]]:
    found = [resolve(p) for p in operation(path).get("parameters", [])]
    return {(p["in"], p["name"]): p for p in found}


def oas_validator(schema: dict[str, Any]) -> OAS30Validator:
    registry: Registry[Any] = Registry().with_resource(
        "urn:metrics-spec", Resource.from_contents(SPEC, default_specification=DRAFT4)
    )
    if "$ref" in schema:
        schema = {"$ref": "urn:metrics-spec" + schema["$ref"]}
    return OAS30Validator(schema, registry=registry, format_checker=OAS30Validator.FORMAT_CHECKER)


def test_spec_is_valid_openapi_3_0() -> None:
    assert SPEC["openapi"] == "3.0.3"
    validate(SPEC)


def test_server_copy_is_byte_identical() -> None:
    assert SERVER_COPY.read_bytes() == SPEC_PATH.read_bytes()


def test_exactly_the_served_paths_with_get_only() -> None:
    assert {path: set(item) for path, item in SPEC["paths"].items()} == {
        path: {"get"} for path in [*OPERATION_IDS, "/version"]
    }
    assert SPEC["paths"]["/version"]["get"]["operationId"] == "get_code_version"


@pytest.mark.parametrize(("path", "operation_id"), OPERATION_IDS.items())
def test_operation_id_and_result_schema(path: str, operation_id: str) -> None:
    op = operation(path)
    assert op["operationId"] == operation_id
    assert op["tags"] == (["discovery"] if operation_id.startswith("get_") else ["metrics"])
    content = op["responses"]["200"]["content"]
    assert list(content) == ["application/json"]
    assert content["application/json"]["schema"] == {
        "$ref": f"#/components/schemas/{RESULT_SCHEMAS[operation_id]}"
    }


@pytest.mark.parametrize("path", OPERATION_IDS)
def test_every_error_response_is_a_status(path: str) -> None:
    operation_id = OPERATION_IDS[path]
    expected = (
        LIST_ERRORS
        if operation_id.startswith("list_")
        else READ_ERRORS
        if operation_id.startswith("read_")
        else DISCOVERY_ERRORS
    )
    responses = operation(path)["responses"]
    assert set(responses) == expected | {"200"}
    for code in expected:
        assert responses[code] == {"$ref": f"#/components/responses/{ERROR_RESPONSES[code]}"}
        content = resolve(responses[code])["content"]
        assert list(content) == ["application/json"]
        assert content["application/json"]["schema"] == {
            "$ref": "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.Status"
        }


@pytest.mark.parametrize(
    ("path", "expected"),
    [
        ("/apis", {}),
        ("/apis/metrics.k8s.io", {}),
        (V1BETA1, {}),
        (f"{V1BETA1}/nodes", {}),
        (f"{V1BETA1}/pods", {}),
        (f"{V1BETA1}/nodes/{{name}}", {("path", "name"): DNS1123_SUBDOMAIN}),
        (f"{V1BETA1}/namespaces/{{namespace}}/pods", {("path", "namespace"): DNS1123_LABEL}),
        (
            f"{V1BETA1}/namespaces/{{namespace}}/pods/{{name}}",
            {("path", "namespace"): DNS1123_LABEL, ("path", "name"): DNS1123_SUBDOMAIN},
        ),
    ],
)
def test_parameter_schemas(path: str, expected: dict[tuple[str, str], dict[str, Any]]) -> None:
    operation_id = OPERATION_IDS[path]
    query = (
        LIST_QUERY
        if operation_id.startswith("list_")
        else READ_QUERY
        if operation_id.startswith("read_")
        else DISCOVERY_QUERY
    )
    expected = {**expected, **{("query", name): schema for name, schema in query.items()}}
    found = parameters(path)
    assert {key: p["schema"] for key, p in found.items()} == expected
    for (location, _), p in found.items():
        assert p.get("required", False) is (location == "path")
        assert p["description"]


VALUES: dict[str, tuple[list[object], list[object]]] = {
    # schema: (accepted, rejected)
    "#/components/parameters/namespace": (
        ["default", "kube-system", "a", "0", "a" * 63],
        ["", "Default", "-a", "a-", "a.b", "a_b", "a" * 64],
    ),
    "#/components/parameters/nodeName": (
        ["node-a", "ip-10-0-0-1.ec2.internal", "a", "a" * 253],
        ["", "Node-A", "node_a", ".a", "a.", "a..b", "a b", "a" * 254],
    ),
    "#/components/parameters/podName": (
        ["coredns-558bd4d5db-4dpjz", "web-0", "x.y"],
        ["", "Web-0", "web/0", "a" * 254],
    ),
    "#/components/schemas/io.k8s.apimachinery.pkg.api.resource.Quantity": (
        [
            "168064370n",
            "5u",
            "12m",
            "2",
            "0",
            "1948212Ki",
            "5Mi",
            "1Gi",
            "1000000",
            "1e3",
            "1E-3",
            "1.5",
            ".5",
            "-1",
            "+1",
            "100k",
            "2Ei",
        ],
        ["", "1.5 Gi", "Ki", "1KiB", "1K", "k", "1k1", "abc", "1µ", "1,5", 250],
    ),
    "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.Duration": (
        [
            "15.012s",
            "1m0.729s",
            "30s",
            "500ms",
            "1µs",
            "1μs",
            "1us",
            "100ns",
            "0",
            "0s",
            "1h2m3s",
            "1.5h",
            "-1s",
            ".5s",
            "1.s",
        ],
        ["", "15", "15 s", "1d", "s", "1m 0s", "1.5", ".s", "1S"],
    ),
    "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.Time": (
        ["2026-04-25T17:20:42Z", "2021-10-03T09:36:52Z"],
        ["2026-04-25T17:20:42+00:00", "2026-04-25T17:20:42.5Z", "2026-04-25 17:20:42Z", "2026-04-25"],
    ),
    "#/components/schemas/ResourceVersionMatch": (["", "Exact", "NotOlderThan"], ["exact", "Any"]),
}


@pytest.mark.parametrize("ref", VALUES)
def test_value_patterns(ref: str) -> None:
    node = resolve({"$ref": ref})
    schema = resolve(node["schema"]) if "schema" in node else node
    accepted, rejected = VALUES[ref]
    oas = oas_validator(schema)
    # jsonschema-rs is what fast server-side checks are likely to use; its regex engine must agree.
    fast = jsonschema_rs.Draft4Validator(
        {k: v for k, v in schema.items() if k not in ("example", "description")}
    )
    assert [v for v in accepted if not oas.is_valid(v)] == []
    assert [v for v in accepted if not fast.is_valid(v)] == []
    assert [v for v in rejected if oas.is_valid(v)] == []
    assert [v for v in rejected if fast.is_valid(v)] == []


def test_referenced_value_schemas() -> None:
    schemas = SPEC["components"]["schemas"]
    assert {k: v for k, v in schemas["ResourceVersionMatch"].items() if k != "description"} == {
        "type": "string",
        "enum": ["", "Exact", "NotOlderThan"],
    }
    assert schemas["ResourceList"]["additionalProperties"] == {
        "$ref": "#/components/schemas/io.k8s.apimachinery.pkg.api.resource.Quantity"
    }
    assert schemas["io.k8s.apimachinery.pkg.apis.meta.v1.Time"]["format"] == "date-time"


def test_every_pattern_compiles_in_python() -> None:
    def patterns(node: Any) -> list[str]:
        if isinstance(node, dict):
            own = [node["pattern"]] if isinstance(node.get("pattern"), str) else []
            return own + [p for value in node.values() for p in patterns(value)]
        if isinstance(node, list):
            return [p for value in node for p in patterns(value)]
        return []

    found = patterns(SPEC)
    assert len(found) == 10
    for pattern in found:
        re.compile(pattern)


def test_every_example_matches_its_schema() -> None:
    checked = 0
    for name, schema in SPEC["components"]["schemas"].items():
        if "example" in schema:
            assert (
                list(oas_validator({"$ref": f"#/components/schemas/{name}"}).iter_errors(schema["example"]))
                == []
            )
            checked += 1
    for name, response in SPEC["components"]["responses"].items():
        content = response["content"]["application/json"]
        examples = (
            content.get("examples", {}).values() if "examples" in content else [{"value": content["example"]}]
        )
        for example in examples:
            assert list(oas_validator(content["schema"]).iter_errors(example["value"])) == [], name
            assert example["value"]["code"] == int(next(c for c, r in ERROR_RESPONSES.items() if r == name))
            checked += 1
    assert checked == 34


def test_status_schema_rejects_what_the_server_must_not_send() -> None:
    status = oas_validator({"$ref": "#/components/schemas/io.k8s.apimachinery.pkg.apis.meta.v1.Status"})
    good = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": "m",
        "reason": "NotFound",
        "details": {"name": "n", "group": "metrics.k8s.io", "kind": "podmetrics"},
        "code": 404,
    }
    assert status.is_valid(good)
    assert not status.is_valid({**good, "code": "404"})
    assert not status.is_valid({**good, "kind": "status"})
    assert not status.is_valid({**good, "details": {"name": "n", "resource": "pods"}})
    assert not status.is_valid({k: v for k, v in good.items() if k != "metadata"})


def test_metrics_objects_reject_drift() -> None:
    node = oas_validator({"$ref": "#/components/schemas/io.k8s.metrics.pkg.apis.metrics.v1beta1.NodeMetrics"})
    good = SPEC["components"]["schemas"]["io.k8s.metrics.pkg.apis.metrics.v1beta1.NodeMetrics"]["example"]
    assert node.is_valid(good)
    assert not node.is_valid({**good, "usage": {"cpu": 0.25}})
    assert not node.is_valid({**good, "window": "15.012"})
    assert not node.is_valid({**good, "timestamp": "2026-04-25T17:20:42.123456Z"})
    assert not node.is_valid({**good, "metadata": {**good["metadata"], "uid": "x"}})
    assert not node.is_valid({k: v for k, v in good.items() if k != "usage"})
    pod_list = oas_validator(
        {"$ref": "#/components/schemas/io.k8s.metrics.pkg.apis.metrics.v1beta1.PodMetricsList"}
    )
    example = SPEC["components"]["schemas"]["io.k8s.metrics.pkg.apis.metrics.v1beta1.PodMetricsList"][
        "example"
    ]
    assert pod_list.is_valid(example)
    assert pod_list.is_valid({**example, "items": []})
    assert not pod_list.is_valid({**example, "items": None})
    assert not pod_list.is_valid({k: v for k, v in example.items() if k != "metadata"})
