"""The metrics resources over Quart's test client: exact bodies, errors, selectors, Table, options."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
import yaml
from conftest import NOW, NOW_TEXT, TS, TS_TEXT, World, default_world, make_app, pod

from metrics_server.api.app import ApiOptions
from metrics_server.storage.snapshot import ContainerUsage, PodUsage

API = "/apis/metrics.k8s.io/v1beta1"
TABLE = (
    "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,"
    "application/json"
)

NODE_A = (
    (
        '{"metadata":{"name":"node-a","creationTimestamp":"@NOW@","labels":{"kubernetes.io/hostname":"node-a",'
        '"kubernetes.io/os":"linux","tier":"1"}},"timestamp":"@TS@","window":"15.012s",'
        '"usage":{"cpu":"168064370n","memory":"1948212Ki"}}'
    )
    .replace("@NOW@", NOW_TEXT)
    .replace("@TS@", TS_TEXT)
)
NODE_B = (
    (
        '{"metadata":{"name":"node-b","creationTimestamp":"@NOW@","labels":{"kubernetes.io/hostname":"node-b",'
        '"tier":"2"}},"timestamp":"@TS@","window":"1m0.729s","usage":{"cpu":"2","memory":"5Mi"}}'
    )
    .replace("@NOW@", NOW_TEXT)
    .replace("@TS@", TS_TEXT)
)
COREDNS = (
    (
        '{"metadata":{"name":"coredns-1","namespace":"kube-system","creationTimestamp":"@NOW@","labels":{"k8s-app":'
        '"kube-dns","pod-template-hash":"558bd4d5db"}},"timestamp":"@TS@","window":"14.997s","containers":'
        '[{"name":"coredns","usage":{"cpu":"2460574n","memory":"12240Ki"}}]}'
    )
    .replace("@NOW@", NOW_TEXT)
    .replace("@TS@", TS_TEXT)
)
DB0 = (
    (
        '{"metadata":{"name":"db-0","namespace":"default","creationTimestamp":"@NOW@"},"timestamp":"@TS@",'
        '"window":"30s","containers":[]}'
    )
    .replace("@NOW@", NOW_TEXT)
    .replace("@TS@", TS_TEXT)
)
WEB1 = (
    (
        '{"metadata":{"name":"web-1","namespace":"default","creationTimestamp":"@NOW@","labels":{"app":"web"}},'
        '"timestamp":"@TS@","window":"15s","containers":[{"name":"app","usage":{"cpu":"5u","memory":"1000000"}},'
        '{"name":"sidecar","usage":{"cpu":"12m","memory":"1Ki"}}]}'
    )
    .replace("@NOW@", NOW_TEXT)
    .replace("@TS@", TS_TEXT)
)
WEB2 = (
    (
        '{"metadata":{"name":"web-2","namespace":"default","creationTimestamp":"@NOW@","labels":{"app":"web"}},'
        '"timestamp":"@TS@","window":"1µs","containers":[{"name":"app","usage":{"cpu":"0","memory":"1k"}}]}'
    )
    .replace("@NOW@", NOW_TEXT)
    .replace("@TS@", TS_TEXT)
)


def node_list(*items: str) -> bytes:
    head = '{"kind":"NodeMetricsList","apiVersion":"metrics.k8s.io/v1beta1","metadata":{},"items":['
    return (head + ",".join(items) + "]}\n").encode()


def pod_list(*items: str) -> bytes:
    head = '{"kind":"PodMetricsList","apiVersion":"metrics.k8s.io/v1beta1","metadata":{},"items":['
    return (head + ",".join(items) + "]}\n").encode()


def single(kind: str, item: str) -> bytes:
    return ('{"kind":"' + kind + '","apiVersion":"metrics.k8s.io/v1beta1",' + item[1:] + "\n").encode()


async def get(client: Any, path: str, **headers: str) -> tuple[int, str, bytes]:
    response = await client.get(path, headers=headers)
    return response.status_code, response.headers.get("Content-Type", ""), await response.get_data()


def status_body(code: int, reason: str, message: str, details: str | None = None) -> bytes:
    quoted = orjson.dumps(message).decode()
    middle = f',"details":{details}' if details is not None else ""
    return (
        f'{{"kind":"Status","apiVersion":"v1","metadata":{{}},"status":"Failure","message":{quoted},'
        f'"reason":"{reason}"{middle},"code":{code}}}\n'
    ).encode()


async def test_node_list_sorted_with_labels_and_without_nodes_lacking_metrics(
    client: Any, world: World
) -> None:
    assert await get(client, f"{API}/nodes") == (200, "application/json", node_list(NODE_A, NODE_B))
    assert world.freshness == [NOW - TS / 1e9] * 2


async def test_node_get(client: Any) -> None:
    assert await get(client, f"{API}/nodes/node-b") == (
        200,
        "application/json",
        single("NodeMetrics", NODE_B),
    )


async def test_node_get_not_found_messages(client: Any) -> None:
    assert await get(client, f"{API}/nodes/node-x") == (
        404,
        "application/json",
        status_body(404, "NotFound", 'node "node-x" not found', '{"name":"node-x","kind":"node"}'),
    )
    assert await get(client, f"{API}/nodes/node-nometrics") == (
        404,
        "application/json",
        status_body(
            404,
            "NotFound",
            'nodemetrics.metrics.k8s.io "node-nometrics" not found',
            '{"name":"node-nometrics","group":"metrics.k8s.io","kind":"nodemetrics"}',
        ),
    )


async def test_pod_lists_only_running_pods_sorted(client: Any) -> None:
    assert await get(client, f"{API}/pods") == (200, "application/json", pod_list(DB0, WEB1, WEB2, COREDNS))
    assert await get(client, f"{API}/namespaces/default/pods") == (
        200,
        "application/json",
        pod_list(DB0, WEB1, WEB2),
    )
    assert await get(client, f"{API}/namespaces/empty/pods") == (200, "application/json", pod_list())


async def test_pod_get_and_not_found_messages(client: Any) -> None:
    assert await get(client, f"{API}/namespaces/kube-system/pods/coredns-1") == (
        200,
        "application/json",
        single("PodMetrics", COREDNS),
    )
    assert await get(client, f"{API}/namespaces/default/pods/ghost") == (
        404,
        "application/json",
        status_body(404, "NotFound", 'pods "ghost" not found', '{"name":"ghost","kind":"pods"}'),
    )
    assert await get(client, f"{API}/namespaces/default/pods/pending-metrics") == (
        404,
        "application/json",
        status_body(
            404,
            "NotFound",
            'podmetrics.metrics.k8s.io "default/pending-metrics" not found',
            '{"name":"default/pending-metrics","group":"metrics.k8s.io","kind":"podmetrics"}',
        ),
    )


@pytest.mark.parametrize(
    ("query", "items"),
    [
        ("labelSelector=app%3Dweb", (WEB1, WEB2)),
        ("labelSelector=app+in+%28web%2Cx%29", (WEB1, WEB2)),
        ("labelSelector=%21app", (DB0, COREDNS)),
        ("labelSelector=k8s-app", (COREDNS,)),
        ("labelSelector=app%21%3Dweb", (DB0, COREDNS)),
        ("fieldSelector=metadata.name%3Dweb-1", (WEB1,)),
        ("fieldSelector=metadata.name%21%3Dweb-1,metadata.namespace%3D%3Ddefault", (DB0, WEB2)),
        ("fieldSelector=metadata.namespace%3Dkube-system", (COREDNS,)),
        ("fieldSelector=spec.nodeName%3Dnode-a", (WEB1, COREDNS)),
        ("fieldSelector=spec.nodeName%3Dnode-b&labelSelector=app", (WEB2,)),
        (
            "limit=1&continue=abc&resourceVersion=5&timeoutSeconds=3&allowWatchBookmarks=true",
            (DB0, WEB1, WEB2, COREDNS),
        ),
        ("watch=false", (DB0, WEB1, WEB2, COREDNS)),
        ("watch=0", (DB0, WEB1, WEB2, COREDNS)),
    ],
)
async def test_pod_list_selectors(client: Any, query: str, items: tuple[str, ...]) -> None:
    assert await get(client, f"{API}/pods?{query}") == (200, "application/json", pod_list(*items))


async def test_namespaced_exact_name_field_selector(client: Any) -> None:
    assert await get(client, f"{API}/namespaces/default/pods?fieldSelector=metadata.name%3Dweb-2") == (
        200,
        "application/json",
        pod_list(WEB2),
    )
    assert await get(client, f"{API}/namespaces/default/pods?fieldSelector=metadata.name%3Dghost") == (
        200,
        "application/json",
        pod_list(),
    )


@pytest.mark.parametrize(
    ("query", "items"),
    [
        ("labelSelector=tier%3E1", (NODE_B,)),
        ("labelSelector=tier+in+%281%2C3%29", (NODE_A,)),
        ("fieldSelector=metadata.name%3Dnode-b", (NODE_B,)),
        ("fieldSelector=metadata.namespace%3D", (NODE_A, NODE_B)),
        ("fieldSelector=metadata.namespace%3Dx", ()),
    ],
)
async def test_node_list_selectors(client: Any, query: str, items: tuple[str, ...]) -> None:
    assert await get(client, f"{API}/nodes?{query}") == (200, "application/json", node_list(*items))


@pytest.mark.parametrize(
    ("path", "message"),
    [
        (
            f"{API}/pods?labelSelector=app+in+%28x",
            "unable to parse requirement: found '', expected: ',' or ')'",
        ),
        (f"{API}/nodes?fieldSelector=bad", "invalid selector: 'bad'; can't understand 'bad'"),
        (
            f"{API}/pods?fieldSelector=status.phase%3DRunning",
            '"status.phase" is not a known field selector: only "metadata.name", "metadata.namespace", '
            '"spec.nodeName"',
        ),
        (
            f"{API}/nodes?fieldSelector=spec.nodeName%3Dx",
            '"spec.nodeName" is not a known field selector: only "metadata.name", "metadata.namespace"',
        ),
        (f"{API}/nodes?limit=abc", 'limit: Invalid value: "abc": must be an integer'),
        (
            f"{API}/nodes?limit=99999999999999999999",
            'limit: Invalid value: "99999999999999999999": must be an integer between '
            "-9223372036854775808 and 9223372036854775807",
        ),
        (f"{API}/pods?watch=yes", 'watch: Invalid value: "yes": must be a boolean (true or false)'),
        (f"{API}/pods?timeoutSeconds=1.5", 'timeoutSeconds: Invalid value: "1.5": must be an integer'),
        (
            f"{API}/namespaces/Bad_NS/pods",
            'namespace: Invalid value: "Bad_NS": must match the regular expression '
            "'^[a-z0-9]([-a-z0-9]*[a-z0-9])?$'",
        ),
        (
            f"{API}/namespaces/{'a' * 64}/pods",
            f'namespace: Invalid value: "{"a" * 64}": must be no more than 63 characters',
        ),
        (
            f"{API}/nodes/Node_A",
            'name: Invalid value: "Node_A": must match the regular expression '
            "'^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$'",
        ),
        (
            "/apis?timeout=forever",
            'timeout: Invalid value: "forever": must match the regular expression '
            "'^[-+]?(0|(([0-9]+(\\.[0-9]*)?|\\.[0-9]+)(ns|us|µs|μs|ms|s|m|h))+)$'",
        ),
    ],
)
async def test_bad_requests(client: Any, path: str, message: str) -> None:
    assert await get(client, path) == (400, "application/json", status_body(400, "BadRequest", message))


@pytest.mark.parametrize("value", ["true", "1", "True", "t"])
async def test_watch_is_405(client: Any, value: str) -> None:
    assert await get(client, f"{API}/pods?watch={value}") == (
        405,
        "application/json",
        status_body(
            405,
            "MethodNotAllowed",
            'watch is not supported on resources of kind "pods.metrics.k8s.io"',
            '{"group":"metrics.k8s.io","kind":"pods"}',
        ),
    )
    code, _, _ = await get(client, f"{API}/namespaces/default/pods?watch={value}&resourceVersion=12")
    assert code == 405


async def test_list_options_validation_is_422(client: Any) -> None:
    assert await get(client, f"{API}/nodes?resourceVersionMatch=Exact") == (
        422,
        "application/json",
        (
            b'{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",'
            b'"message":"ListOptions.meta.k8s.io \\"\\" is invalid: resourceVersionMatch: Forbidden: '
            b'resourceVersionMatch is forbidden unless resourceVersion is provided","reason":"Invalid",'
            b'"details":{"group":"meta.k8s.io","kind":"ListOptions","causes":[{"reason":"FieldValueForbidden",'
            b'"message":"Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided",'
            b'"field":"resourceVersionMatch"}]},"code":422}\n'
        ),
    )
    code, _, body = await get(
        client, f"{API}/pods?resourceVersion=1&resourceVersionMatch=Newest&sendInitialEvents=true"
    )
    assert code == 422
    assert orjson.loads(body)["message"] == (
        'ListOptions.meta.k8s.io "" is invalid: [resourceVersionMatch: Unsupported value: "Newest": '
        "supported "
        'values: "Exact", "NotOlderThan", "", sendInitialEvents: Forbidden: sendInitialEvents is '
        "forbidden for list]"
    )
    assert await get(client, f"{API}/pods?resourceVersion=1&resourceVersionMatch=NotOlderThan") == (
        200,
        "application/json",
        pod_list(DB0, WEB1, WEB2, COREDNS),
    )


@pytest.mark.parametrize(
    "accept",
    [
        "application/json, */*",
        "*/*",
        "application/*",
        "application/json;as=PartialObjectMetadataList;v=v1;g=meta.k8s.io,application/json",
        "application/json;q=0.9, application/yaml;q=0.5",
        "application/json;stream=watch",
    ],
)
async def test_json_for_clients_that_accept_it(client: Any, accept: str) -> None:
    assert await get(client, f"{API}/nodes", Accept=accept) == (
        200,
        "application/json",
        node_list(NODE_A, NODE_B),
    )


@pytest.mark.parametrize(
    ("accept", "content_type"),
    [
        ("application/vnd.kubernetes.protobuf, */*", "application/vnd.kubernetes.protobuf"),
        ("application/vnd.kubernetes.protobuf,application/json", "application/vnd.kubernetes.protobuf"),
        ("application/yaml;q=0.9, application/json;q=0.5", "application/yaml"),
    ],
)
async def test_protobuf_and_yaml_for_clients_that_ask_first(
    client: Any, accept: str, content_type: str
) -> None:
    code, got_type, body = await get(client, f"{API}/nodes", Accept=accept)
    assert (code, got_type) == (200, content_type)
    if content_type == "application/yaml":
        assert yaml.safe_load(body) == orjson.loads(node_list(NODE_A, NODE_B))
    else:
        # runtime.Unknown: magic, typeMeta {apiVersion, kind}, raw, then two empty strings.
        assert body.startswith(b"k8s\x00\n)\n\x16metrics.k8s.io/v1beta1\x12\x0fNodeMetricsList\x12")
        assert body.endswith(b'\x1a\x00"\x00') and b"node-a" in body and b"node-b" in body


_ACCEPTED = "application/json, application/yaml, application/vnd.kubernetes.protobuf"


@pytest.mark.parametrize(
    ("accept", "message", "details"),
    [
        ("text/plain", f"406: Not Acceptable\\n\\nAvailable representations: {_ACCEPTED}", True),
        ("application/xml", f"406: Not Acceptable\\n\\nAvailable representations: {_ACCEPTED}", True),
        (
            "application/json;as=Table;v=v9;g=meta.k8s.io",
            f"only the following media types are accepted: {_ACCEPTED}",
            False,
        ),
        (
            "application/vnd.kubernetes.protobuf;as=Table;v=v1;g=meta.k8s.io",
            f"only the following media types are accepted: {_ACCEPTED}",
            False,
        ),
    ],
)
async def test_406_when_nothing_acceptable(client: Any, accept: str, message: str, details: bool) -> None:
    code, content_type, body = await get(client, f"{API}/nodes/node-a", Accept=accept)
    assert (code, content_type) == (406, "application/json")
    doc = orjson.loads(body)
    assert (doc["reason"], doc["message"].replace("\n", "\\n"), "details" in doc) == (
        "NotAcceptable",
        message,
        details,
    )
    assert body.startswith(b'{\n  "kind": "Status"')  # indented, as the library writes it
    code, _, body = await get(client, f"{API}/pods", Accept=accept)
    streams = ", application/json;stream=watch, application/vnd.kubernetes.protobuf;stream=watch"
    assert code == 406 and (not details or orjson.loads(body)["message"].endswith(streams))


COLUMNS = (
    '[{"name":"Name","type":"string","format":"name","description":"Name of the resource","priority":0},'
    '{"name":"cpu","type":"string","format":"quantity","description":"","priority":0},'
    '{"name":"memory","type":"string","format":"quantity","description":"","priority":0},'
    '{"name":"Window","type":"string","format":"duration","description":"","priority":0}]'
)


def table(version: str, rows: list[str]) -> bytes:
    head = '{"kind":"Table","apiVersion":"meta.k8s.io/' + version + '","metadata":{},"columnDefinitions":'
    return (head + COLUMNS + ',"rows":[' + ",".join(rows) + "]}\n").encode()


def partial(version: str, name: str, namespace: str, labels: str) -> str:
    ns = f',"namespace":"{namespace}"' if namespace else ""
    lab = f',"labels":{labels}' if labels else ""
    return (
        f'{{"kind":"PartialObjectMetadata","apiVersion":"meta.k8s.io/{version}","metadata":{{"name":"{name}"{ns},'
        f'"creationTimestamp":"{NOW_TEXT}"{lab}}}}}'
    )


async def test_pod_table(client: Any) -> None:
    code, ctype, body = await get(client, f"{API}/namespaces/default/pods?limit=500", Accept=TABLE)
    assert (code, ctype) == (200, "application/json")  # metrics-server labels Tables plain JSON
    # db-0 has no containers: Go takes the columns from the next pod and leaves db-0's row short.
    rows = [
        '{"cells":["db-0","30s"],"object":' + partial("v1", "db-0", "default", "") + "}",
        '{"cells":["web-1","12005u","1001024","15s"],"object":'
        + partial("v1", "web-1", "default", '{"app":"web"}')
        + "}",
        '{"cells":["web-2","0","1k","1µs"],"object":'
        + partial("v1", "web-2", "default", '{"app":"web"}')
        + "}",
    ]
    assert body == table("v1", rows)


async def test_node_table_v1beta1_and_include_object(client: Any) -> None:
    accept = "application/json;as=Table;v=v1beta1;g=meta.k8s.io"
    code, ctype, body = await get(client, f"{API}/nodes?includeObject=None", Accept=accept)
    assert (code, ctype) == (200, "application/json")
    assert body == table(
        "v1beta1",
        [
            '{"cells":["node-a","168064370n","1948212Ki","15.012s"],"object":null}',
            '{"cells":["node-b","2","5Mi","1m0.729s"],"object":null}',
        ],
    )
    code, _, body = await get(client, f"{API}/nodes/node-a?includeObject=Object", Accept=accept)
    assert code == 200
    node_a = single("NodeMetrics", NODE_A).decode().rstrip("\n")
    assert body == table(
        "v1beta1", ['{"cells":["node-a","168064370n","1948212Ki","15.012s"],"object":' + node_a + "}"]
    )
    code, _, body = await get(client, f"{API}/nodes/node-b", Accept=TABLE)
    assert orjson.loads(body)["rows"] == [
        {
            "cells": ["node-b", "2", "5Mi", "1m0.729s"],
            "object": orjson.loads(
                partial("v1", "node-b", "", '{"kubernetes.io/hostname":"node-b","tier":"2"}')
            ),
        }
    ]


async def test_empty_table_and_bad_include_object(client: Any) -> None:
    assert await get(client, f"{API}/namespaces/none/pods", Accept=TABLE) == (
        200,
        "application/json",
        b'{"kind":"Table","apiVersion":"meta.k8s.io/v1","metadata":{},"columnDefinitions":null,"rows":null}\n',
    )
    assert await get(client, f"{API}/pods?includeObject=All", Accept=TABLE) == (
        400,
        "application/json",
        orjson.dumps(
            orjson.loads(
                status_body(
                    400,
                    "BadRequest",
                    'Unable to convert to Table as requested: includeObject: Invalid value: "All": '
                    "must be 'Metadata', 'Object', 'None', or empty",
                )
            ),
            option=orjson.OPT_INDENT_2,
        ),
    )
    # includeObject only matters for Tables
    code, _, _ = await get(client, f"{API}/pods?includeObject=All")
    assert code == 200


async def test_kube_system_table_matches_metrics_server_example(client: Any) -> None:
    code, _, body = await get(client, f"{API}/namespaces/kube-system/pods", Accept=TABLE)
    assert code == 200
    table = orjson.loads(body)
    assert table["columnDefinitions"] == orjson.loads(COLUMNS)
    assert table["rows"][0]["cells"] == ["coredns-1", "2460574n", "12240Ki", "14.997s"]


async def test_pretty(client: Any) -> None:
    code, _, body = await get(client, f"{API}/nodes/node-b?pretty=true")
    assert code == 200
    assert (
        body == orjson.dumps(orjson.loads(single("NodeMetrics", NODE_B)), option=orjson.OPT_INDENT_2) + b"\n"
    )
    assert body.startswith(
        b'{\n  "kind": "NodeMetrics",\n  "apiVersion": "metrics.k8s.io/v1beta1",\n  "metadata": {\n'
    )
    code, _, body = await get(client, f"{API}/pods", **{"User-Agent": "curl/8.5.0"})
    assert (
        body
        == orjson.dumps(orjson.loads(pod_list(DB0, WEB1, WEB2, COREDNS)), option=orjson.OPT_INDENT_2) + b"\n"
    )
    code, _, body = await get(client, f"{API}/pods?pretty=false", **{"User-Agent": "curl/8.5.0"})
    assert body == pod_list(DB0, WEB1, WEB2, COREDNS)


async def test_swap_served_only_when_enabled(world: World) -> None:
    app = make_app(world, ApiOptions(serve_swap=True, version={}))
    async with app.test_app() as test_app:
        client = test_app.test_client()
        _, _, body = await get(client, f"{API}/nodes/node-b")
        assert orjson.loads(body)["usage"] == {"cpu": "2", "memory": "5Mi", "swap": "1Ki"}
        _, _, body = await get(client, f"{API}/namespaces/default/pods/web-1")
        assert [c["usage"] for c in orjson.loads(body)["containers"]] == [
            {"cpu": "5u", "memory": "1000000", "swap": "2Ki"},
            {"cpu": "12m", "memory": "1Ki"},
        ]
        _, _, body = await get(client, f"{API}/namespaces/default/pods?labelSelector=app", Accept=TABLE)
        table = orjson.loads(body)
        assert [c["name"] for c in table["columnDefinitions"]] == ["Name", "cpu", "memory", "swap", "Window"]
        assert [r["cells"] for r in table["rows"]] == [
            ["web-1", "12005u", "1001024", "2Ki", "15s"],
            ["web-2", "0", "1k", "0", "1µs"],
        ]


async def test_node_selector_option_filters_lists_not_gets(world: World) -> None:
    app = make_app(world, ApiOptions(node_selector="tier!=1", version={}))
    async with app.test_app() as test_app:
        client = test_app.test_client()
        assert await get(client, f"{API}/nodes") == (200, "application/json", node_list(NODE_B))
        assert await get(client, f"{API}/nodes/node-a") == (
            200,
            "application/json",
            single("NodeMetrics", NODE_A),
        )


def test_bad_node_selector_option_is_refused(world: World) -> None:
    with pytest.raises(
        ValueError, match=r"^--node-selector: unable to parse requirement: found '', expected: identifier$"
    ):
        make_app(world, ApiOptions(node_selector="a!=b,!", version={}))


async def test_lister_failure_is_internal_error(world: World) -> None:
    class Broken:
        def get(self, namespace: str, name: str) -> None:
            raise RuntimeError("the pod cache is not synced")

        def list(self, namespace: str | None = None) -> list[Any]:
            raise RuntimeError("the pod cache is not synced")

    world.pods = Broken()  # type: ignore[assignment]
    app = make_app(world)
    async with app.test_app() as test_app:
        client = test_app.test_client()
        assert await get(client, f"{API}/pods") == (
            500,
            "application/json",
            status_body(
                500,
                "InternalError",
                "Internal error occurred: failed listing pods: the pod cache is not synced",
                '{"causes":[{"message":"failed listing pods: the pod cache is not synced"}]}',
            ),
        )


async def test_unknown_paths_and_methods(client: Any) -> None:
    not_found = status_body(404, "NotFound", "the server could not find the requested resource", "{}")
    for path in (f"{API}/deployments", "/apis/metrics.k8s.io/v1", f"{API}/nodes/a/b"):
        assert await get(client, path) == (404, "application/json", not_found)
    # Outside the API group, the library's path index (404), and on `/` (200).
    for path, code in (("/api", 404), ("/foo", 404), ("/", 200)):
        got, content_type, body = await get(client, path)
        assert (got, content_type) == (code, "application/json")
        paths = orjson.loads(body)["paths"]
        assert paths == sorted(paths) and {
            "/apis",
            "/metrics",
            "/livez/ping",
            "/openapi/v3/",
            "/version",
        } <= set(paths)
    response = await client.post(f"{API}/nodes")
    assert response.status_code == 405
    assert response.headers["Content-Type"] == "application/json"
    assert await response.get_data() == status_body(
        405, "MethodNotAllowed", "the server does not allow this method on the requested resource", "{}"
    )
    response = await client.delete(f"{API}/namespaces/default/pods/web-1")
    assert response.status_code == 405


async def test_cache_follows_label_and_snapshot_changes(client: Any, world: World) -> None:
    assert await get(client, f"{API}/namespaces/default/pods/web-2") == (
        200,
        "application/json",
        single("PodMetrics", WEB2),
    )
    world.pods.items[("default", "web-2")] = pod("default", "web-2", {"app": "api"}, "node-b")
    _, _, body = await get(client, f"{API}/namespaces/default/pods/web-2")
    assert orjson.loads(body)["metadata"]["labels"] == {"app": "api"}
    # a new snapshot object with new usage for the same pod
    new = type(world.snapshot)(dict(world.snapshot.nodes), dict(world.snapshot.pods))
    new.pods[("default", "web-2")] = PodUsage(
        TS + 15_000_000_000, 15_000_000_000, (ContainerUsage("app", 1, 2048),)
    )
    world.snapshot = new
    _, _, body = await get(client, f"{API}/namespaces/default/pods?labelSelector=app%3Dapi")
    assert orjson.loads(body)["items"][0]["containers"] == [
        {"name": "app", "usage": {"cpu": "1n", "memory": "2Ki"}}
    ]
    assert orjson.loads(body)["items"][0]["timestamp"] == "2025-04-25T17:20:57Z"


async def test_large_list_is_streamed_in_chunks_and_complete() -> None:
    world = default_world()
    for i in range(5000):
        name = f"p-{i:05d}"
        world.pods.items[("bulk", name)] = pod("bulk", name, {"i": str(i % 7)})
        world.snapshot.pods[("bulk", name)] = PodUsage(
            TS, 15_000_000_000, (ContainerUsage("c", i, 4096 * i + 4096),)
        )
    app = make_app(world)
    async with app.test_app() as test_app:
        client = test_app.test_client()
        for _ in range(2):  # cold, then warm (cached fragments)
            code, _, body = await get(client, f"{API}/namespaces/bulk/pods")
            assert code == 200
            items = orjson.loads(body)["items"]
            assert [i["metadata"]["name"] for i in items] == [f"p-{i:05d}" for i in range(5000)]
            assert items[4999]["containers"] == [
                {"name": "c", "usage": {"cpu": "4999n", "memory": "20000Ki"}}
            ]
        code, _, body = await get(client, f"{API}/namespaces/bulk/pods?labelSelector=i%3D3", Accept=TABLE)
        rows = orjson.loads(body)["rows"]
        assert len(rows) == len([i for i in range(5000) if i % 7 == 3])
        assert rows[0]["cells"] == ["p-00003", "3n", "16Ki", "15s"]
