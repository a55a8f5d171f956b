"""Discovery documents, /version, /openapi/v2|v3, /metrics: exact bodies, content types, ETag/304."""

from __future__ import annotations

import hashlib
from typing import Any

import orjson
import trio
from conftest import spec
from openapi_spec_validator import validate


def group_list(port: int) -> bytes:
    """metrics-server's `/apis`: no apiVersion, the serving port in serverAddressByClientCIDRs."""
    return (
        b'{"kind":"APIGroupList","groups":[{"name":"metrics.k8s.io","versions":[{"groupVersion":'
        b'"metrics.k8s.io/v1beta1","version":"v1beta1"}],"preferredVersion":{"groupVersion":"metrics.k8s.io/v1beta1",'
        b'"version":"v1beta1"},"serverAddressByClientCIDRs":[{"clientCIDR":"0.0.0.0/0","serverAddress":":'
        + str(port).encode()
        + b'"}]}]}\n'
    )


GROUP = (
    b'{"kind":"APIGroup","apiVersion":"v1","name":"metrics.k8s.io","versions":[{"groupVersion":'
    b'"metrics.k8s.io/v1beta1","version":"v1beta1"}],"preferredVersion":{"groupVersion":"metrics.k8s.io/v1beta1",'
    b'"version":"v1beta1"}}\n'
)
RESOURCES = (
    b'{"kind":"APIResourceList","apiVersion":"v1","groupVersion":"metrics.k8s.io/v1beta1","resources":['
    b'{"name":"nodes","singularName":"","namespaced":false,"kind":"NodeMetrics","verbs":["get","list"]},'
    b'{"name":"pods","singularName":"","namespaced":true,"kind":"PodMetrics","verbs":["get","list"]}]}\n'
)


def aggregated(version: str) -> bytes:
    return (
        '{"kind":"APIGroupDiscoveryList","apiVersion":"apidiscovery.k8s.io/'
        + version
        + '","metadata":{},"items":[{"metadata":'
        '{"name":"metrics.k8s.io","creationTimestamp":null},"versions":[{"version":"v1beta1","resources":['
        '{"resource":"nodes","responseKind":{"group":"","version":"","kind":"NodeMetrics"},"scope":"Cluster",'
        '"singularResource":"","verbs":["get","list"]},{"resource":"pods","responseKind":{"group":"",'
        '"version":"","kind":"PodMetrics"},"scope":"Namespaced","singularResource":"","verbs":["get","list"]}],'
        '"freshness":"Current"}]}]}\n'
    ).encode()


def etag(body: bytes) -> str:
    return '"' + hashlib.sha512(body).hexdigest().upper() + '"'


V2 = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
V2BETA1 = "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"


async def test_legacy_discovery_documents(client: Any) -> None:
    """metrics-server's bytes; no ETag, so a conditional request gets the document again."""
    for path, body in (
        ("/apis", group_list(0)),  # the test client has no server port
        ("/apis/metrics.k8s.io", GROUP),
        ("/apis/metrics.k8s.io/v1beta1", RESOURCES),
    ):
        response = await client.get(path, headers={"Accept": "application/json, */*"})
        assert response.status_code == 200
        assert response.headers["Content-Type"] == "application/json"
        assert "ETag" not in response.headers
        assert await response.get_data() == body
        again = await client.get(path + "?timeout=32s", headers={"If-None-Match": etag(body)})
        assert (again.status_code, await again.get_data()) == (200, body)
        yaml_reply = await client.get(path, headers={"Accept": "application/yaml"})
        assert (yaml_reply.status_code, yaml_reply.headers["Content-Type"]) == (200, "application/yaml")
        pb = await client.get(path, headers={"Accept": "application/vnd.kubernetes.protobuf"})
        assert pb.headers["Content-Type"] == "application/vnd.kubernetes.protobuf"
        assert (await pb.get_data()).startswith(b"k8s\x00")


async def asgi_headers(app: Any, path: str, headers: dict[str, str]) -> tuple[int, dict[bytes, bytes]]:
    """Status and headers as the app sends them (the test client adds a default Content-Type)."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "https",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()],
        "client": ("127.0.0.1", 1),
        "server": ("127.0.0.1", 443),
        "extensions": {},
    }
    sent: list[dict[str, Any]] = []
    requests = [{"type": "http.request", "body": b"", "more_body": False}]

    async def receive() -> dict[str, Any]:
        if requests:
            return requests.pop()
        await trio.sleep_forever()  # no disconnect: the app finishes and stops listening
        raise AssertionError("unreachable")

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    return start["status"], {k.lower(): v for k, v in start["headers"]}


def library_etag(body: bytes) -> str:
    """The library hashes the list without kind, apiVersion and the trailing newline."""
    doc = orjson.loads(body)
    untyped = {k: v for k, v in doc.items() if k not in ("kind", "apiVersion")}
    return etag(orjson.dumps(untyped))


async def test_aggregated_discovery_by_accept(client: Any) -> None:
    cases = [
        (f"{V2},{V2BETA1},application/json", V2, aggregated("v2")),  # kubectl 1.30+
        (f"{V2BETA1},application/json", "application/json", group_list(0)),  # 1.27-1.29: no v2beta1
        (f"{V2},{V2BETA1}", V2, aggregated("v2")),  # kube-aggregator
        (
            "application/json;g=apidiscovery.k8s.io;v=v3;as=APIGroupDiscoveryList,application/json",
            "application/json",
            group_list(0),
        ),
    ]
    for accept, ctype, body in cases:
        response = await client.get("/apis", headers={"Accept": accept})
        assert (response.status_code, response.headers["Content-Type"]) == (200, ctype)
        assert await response.get_data() == body
    response = await client.get("/apis", headers={"Accept": V2})
    assert response.headers["ETag"] == library_etag(aggregated("v2"))
    assert (response.headers["Vary"], response.headers["Cache-Control"]) == ("Accept", "public")
    response = await client.get(
        "/apis", headers={"Accept": V2, "If-None-Match": library_etag(aggregated("v2"))}
    )
    assert (response.status_code, await response.get_data()) == (304, b"")
    # No Content-Type on the 304 (kubectl's HTTP cache would copy it onto the cached 200); seen on
    # the ASGI messages, since the test client adds a default one.
    sent = await asgi_headers(
        client.app, "/apis", {"Accept": V2, "If-None-Match": library_etag(aggregated("v2"))}
    )
    assert sent[0] == 304 and b"content-type" not in sent[1]
    response = await client.get("/apis", headers={"Accept": V2, "If-None-Match": "*"})
    assert response.status_code == 200  # the library compares the header as a whole
    response = await client.get("/apis", headers={"Accept": V2BETA1})
    assert response.status_code == 406
    # aggregated discovery exists only on /apis
    response = await client.get("/apis/metrics.k8s.io/v1beta1", headers={"Accept": V2})
    assert response.status_code == 406


async def test_version(client: Any) -> None:
    response = await client.get("/version")
    assert response.status_code == 200
    body = b'{\n  "major": "0",\n  "minor": "1",\n  "gitVersion": "v0.1.0"\n}'
    assert await response.get_data() == body  # indented, as the library writes it


async def test_openapi_v3_index_and_group_version(client: Any) -> None:
    from metrics_server.api.openapi import split

    docs = {
        gv: orjson.dumps(split(spec(), gv))
        for gv in ("apis", "apis/metrics.k8s.io", "apis/metrics.k8s.io/v1beta1", "version")
    }
    digests = {gv: hashlib.sha512(body).hexdigest().upper() for gv, body in docs.items()}
    response = await client.get("/openapi/v3")
    index = orjson.dumps(
        {"paths": {gv: {"serverRelativeURL": f"/openapi/v3/{gv}?hash={d}"} for gv, d in digests.items()}}
    )
    assert (response.status_code, response.headers["Content-Type"]) == (200, "application/json")
    assert await response.get_data() == index
    assert response.headers["ETag"] == etag(index)
    assert sorted(orjson.loads(docs["apis/metrics.k8s.io/v1beta1"])["paths"]) == sorted(
        p for p in spec()["paths"] if p.startswith("/apis/metrics.k8s.io/v1beta1")
    )
    assert list(orjson.loads(docs["version"])["paths"]) == ["/version"]
    digest = digests["apis/metrics.k8s.io/v1beta1"]
    v3_body = docs["apis/metrics.k8s.io/v1beta1"]

    response = await client.get(f"/openapi/v3/apis/metrics.k8s.io/v1beta1?hash={digest}")
    assert response.status_code == 200
    assert await response.get_data() == v3_body
    assert response.headers["ETag"] == f'"{digest}"'
    assert response.headers["Cache-Control"] == "public, immutable"
    assert response.headers["Expires"].endswith(" GMT")

    response = await client.get("/openapi/v3/apis/metrics.k8s.io/v1beta1")
    assert response.status_code == 200
    assert "Cache-Control" not in response.headers
    sent = await asgi_headers(
        client.app, "/openapi/v3/apis/metrics.k8s.io/v1beta1", {"If-None-Match": f'"{digest}"'}
    )
    assert sent[0] == 304 and b"content-type" not in sent[1]

    response = await client.get("/openapi/v3/apis/metrics.k8s.io/v1beta1?hash=STALE")
    assert response.status_code == 301
    assert response.headers["Location"] == f"/openapi/v3/apis/metrics.k8s.io/v1beta1?hash={digest}"

    response = await client.get(
        "/openapi/v3/apis/metrics.k8s.io/v1beta1",
        headers={"Accept": "application/com.github.proto-openapi.spec.v3.v1.0+protobuf"},
    )
    assert (response.status_code, await response.get_data()) == (406, b"")
    response = await client.get(
        "/openapi/v3/apis/metrics.k8s.io/v1beta1",
        headers={"Accept": "application/com.github.proto-openapi.spec.v3.v1.0+protobuf, application/json"},
    )
    assert response.status_code == 200


async def test_openapi_v2_is_a_valid_swagger_rendering(client: Any) -> None:
    response = await client.get("/openapi/v2", headers={"Accept": "application/json"})
    assert (response.status_code, response.headers["Content-Type"]) == (200, "application/json")
    body = await response.get_data()
    assert response.headers["ETag"] == etag(body)
    doc = orjson.loads(body)
    validate(doc)
    assert doc["swagger"] == "2.0"
    assert doc["info"]["title"] == "Kubernetes metrics-server"
    assert set(doc["paths"]) == set(spec()["paths"])
    assert set(doc["definitions"]) == set(spec()["components"]["schemas"])
    namespace = doc["parameters"]["namespace"]
    assert namespace == {
        "name": "namespace",
        "in": "path",
        "description": "The namespace, a DNS-1123 label.",
        "required": True,
        "type": "string",
        "maxLength": 63,
        "minLength": 1,
        "pattern": "^[a-z0-9]([-a-z0-9]*[a-z0-9])?$",
        "x-example": "kube-system",
    }
    op = doc["paths"]["/apis/metrics.k8s.io/v1beta1/nodes"]["get"]
    assert op["responses"]["200"]["schema"] == {
        "$ref": "#/definitions/io.k8s.metrics.pkg.apis.metrics.v1beta1.NodeMetricsList"
    }
    assert op["responses"]["404"] == {"$ref": "#/responses/NotFound"}
    assert doc["securityDefinitions"]["BearerToken"]["type"] == "apiKey"
    response = await client.get("/openapi/v2", headers={"If-None-Match": etag(body)})
    assert response.status_code == 304
    response = await client.get(
        "/openapi/v2", headers={"Accept": "application/com.github.proto-openapi.spec.v2@v1.0+protobuf"}
    )
    assert response.status_code == 406


async def test_metrics_endpoint_exposes_the_registry(client: Any) -> None:
    response = await client.get("/metrics")
    assert response.status_code == 200
    assert response.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert (
        await response.get_data()
        == b"# HELP test_gauge A test gauge.\n# TYPE test_gauge gauge\ntest_gauge 3.0\n"
    )
