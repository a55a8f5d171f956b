"""Discovery documents, /version, /openapi/v2|v3, /metrics: exact bodies, content types, ETag/304."""

from __future__ import annotations

import hashlib
from typing import Any

import orjson
from conftest import spec
from openapi_spec_validator import validate

GROUP_LIST = (
    b'{"kind":"APIGroupList","apiVersion":"v1","groups":[{"name":"metrics.k8s.io","versions":[{"groupVersion":'
    b'"metrics.k8s.io/v1beta1","version":"v1beta1"}],"preferredVersion":{"groupVersion":"metrics.k8s.io/v1beta1",'
    b'"version":"v1beta1"}}]}\n'
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
        '"singularResource":"node","verbs":["get","list"]},{"resource":"pods","responseKind":{"group":"",'
        '"version":"","kind":"PodMetrics"},"scope":"Namespaced","singularResource":"pod","verbs":["get","list"]}],'
        '"freshness":"Current"}]}]}\n'
    ).encode()


def etag(body: bytes) -> str:
    return '"' + hashlib.sha512(body).hexdigest().upper() + '"'


V2 = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
V2BETA1 = "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"


async def test_legacy_discovery_documents(client: Any) -> None:
    for path, body in (
        ("/apis", GROUP_LIST),
        ("/apis/metrics.k8s.io", GROUP),
        ("/apis/metrics.k8s.io/v1beta1", RESOURCES),
    ):
        response = await client.get(path, headers={"Accept": "application/json, */*"})
        assert response.status_code == 200
        assert response.headers["Content-Type"] == "application/json"
        assert response.headers["ETag"] == etag(body)
        assert await response.get_data() == body
        again = await client.get(path + "?timeout=32s", headers={"If-None-Match": etag(body)})
        assert again.status_code == 304
        assert await again.get_data() == b""
        assert again.headers["ETag"] == etag(body)


async def test_aggregated_discovery_by_accept(client: Any) -> None:
    cases = [
        (f"{V2},{V2BETA1},application/json", V2, aggregated("v2")),  # kubectl 1.30+
        (f"{V2BETA1},application/json", V2BETA1, aggregated("v2beta1")),  # kubectl 1.27-1.29
        (f"{V2},{V2BETA1}", V2, aggregated("v2")),  # kube-aggregator
        (
            "application/json;g=apidiscovery.k8s.io;v=v3;as=APIGroupDiscoveryList,application/json",
            "application/json",
            GROUP_LIST,
        ),
    ]
    for accept, ctype, body in cases:
        response = await client.get("/apis", headers={"Accept": accept})
        assert (response.status_code, response.headers["Content-Type"]) == (200, ctype)
        assert response.headers["Vary"] == "Accept"
        assert await response.get_data() == body
    response = await client.get(
        "/apis", headers={"Accept": V2, "If-None-Match": f"W/{etag(aggregated('v2'))}"}
    )
    assert response.status_code == 304
    response = await client.get("/apis", headers={"Accept": V2, "If-None-Match": etag(GROUP_LIST)})
    assert response.status_code == 200
    # aggregated discovery exists only on /apis
    response = await client.get("/apis/metrics.k8s.io/v1beta1", headers={"Accept": V2})
    assert response.status_code == 406
    response = await client.get("/apis", headers={"Accept": "application/vnd.kubernetes.protobuf"})
    assert response.status_code == 406


async def test_version(client: Any) -> None:
    response = await client.get("/version")
    assert response.status_code == 200
    assert await response.get_data() == b'{"major":"0","minor":"1","gitVersion":"v0.1.0"}\n'


async def test_openapi_v3_index_and_group_version(client: Any) -> None:
    v3_body = orjson.dumps(spec())
    digest = hashlib.sha512(v3_body).hexdigest().upper()
    response = await client.get("/openapi/v3")
    index = (
        '{"paths":{"apis/metrics.k8s.io/v1beta1":{"serverRelativeURL":'
        f'"/openapi/v3/apis/metrics.k8s.io/v1beta1?hash={digest}"}}}}}}'
    ).encode()
    assert (response.status_code, response.headers["Content-Type"]) == (200, "application/json")
    assert await response.get_data() == index
    assert response.headers["ETag"] == etag(index)

    response = await client.get(f"/openapi/v3/apis/metrics.k8s.io/v1beta1?hash={digest}")
    assert response.status_code == 200
    assert await response.get_data() == v3_body
    assert orjson.loads(v3_body) == spec()
    assert response.headers["ETag"] == f'"{digest}"'
    assert response.headers["Cache-Control"] == "public, immutable"
    assert response.headers["Expires"].endswith(" GMT")

    response = await client.get("/openapi/v3/apis/metrics.k8s.io/v1beta1")
    assert response.status_code == 200
    assert "Cache-Control" not in response.headers
    response = await client.get(
        "/openapi/v3/apis/metrics.k8s.io/v1beta1", headers={"If-None-Match": f'"{digest}"'}
    )
    assert response.status_code == 304

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
    assert op["responses"]["200"]["schema"] == {"$ref": "#/definitions/NodeMetricsList"}
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
