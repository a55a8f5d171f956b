"""The library's routing of odd paths and methods (`api.routing`), as metrics-server v0.8.0 answers
them: each row below was observed on the real binary against kubesim (docs/edge-answers.md)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest

from metrics_server.api import routing

API = "/apis/metrics.k8s.io/v1beta1"
_FAILURE = b'{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",'
NOT_FOUND = (
    _FAILURE + b'"message":"the server could not find the requested resource",'
    b'"reason":"NotFound","details":{},"code":404}\n'
)
NOT_ALLOWED = (
    _FAILURE + b'"message":"the server does not allow this method on the requested resource",'
    b'"reason":"MethodNotAllowed","details":{},"code":405}\n'
)


def is_listing(body: bytes) -> bool:
    """The library's path index: `{"paths": [...]}` indented, sorted, with the server's paths."""
    paths = orjson.loads(body)["paths"]
    return (
        body.startswith(b'{\n  "paths": [\n    "/apis",\n')
        and paths == sorted(paths)
        and {"/apis", "/healthz/ping", "/metrics", "/openapi/v3/", "/version"} <= set(paths)
    )


async def call(client: Any, method: str, path: str) -> tuple[int, bytes]:
    response = await client.open(path, method=method)
    return response.status_code, await response.get_data()


async def same_as(client: Any, path: str) -> tuple[int, bytes]:
    return await call(client, "GET", path)


# Paths that serve what their canonical form serves (go-restful trims every outer "/").
SERVED_AS = [
    (f"{API}/nodes/", f"{API}/nodes"),
    (f"{API}/nodes//", f"{API}/nodes"),
    (f"{API}/nodes/node-a/", f"{API}/nodes/node-a"),
    (f"{API}/nodes/node-a//", f"{API}/nodes/node-a"),
    (f"{API}/pods/", f"{API}/pods"),
    (f"{API}/namespaces/default/pods/", f"{API}/namespaces/default/pods"),
    (f"{API}/namespaces/default/pods/web-1/", f"{API}/namespaces/default/pods/web-1"),
    (f"{API}/namespaces//pods", f"{API}/pods"),  # namespace "": every namespace
    (f"{API}/namespaces//pods//", f"{API}/pods"),
    (f"{API}/", API),
    ("/apis/metrics.k8s.io/", "/apis/metrics.k8s.io"),
    ("/apis/metrics.k8s.io//", "/apis/metrics.k8s.io"),
    ("/apis/", "/apis"),
    ("/version/", "/version"),
    ("/version//", "/version"),
]


@pytest.mark.parametrize(("path", "canonical"), SERVED_AS)
async def test_trailing_slashes_serve_the_canonical_path(client: Any, path: str, canonical: str) -> None:
    expected = await same_as(client, canonical)
    assert expected[0] == 200
    assert await call(client, "GET", path) == expected


STATUS_404 = [
    f"{API}//nodes",
    "/apis/metrics.k8s.io//v1beta1/nodes",
    f"{API}/namespaces/default//pods",
    f"{API}/./nodes",
    f"{API}/x/../nodes",
    f"{API}/foo",
    f"{API}/nodes/x/y",
    "/apis/metrics.k8s.io/v2",
    "/version/x",
]


@pytest.mark.parametrize("path", STATUS_404)
@pytest.mark.parametrize("method", ["GET", "POST", "OPTIONS", "DELETE"])
async def test_unmatched_api_paths_are_status_404_whatever_the_method(
    client: Any, method: str, path: str
) -> None:
    assert await call(client, method, path) == (404, NOT_FOUND)


async def test_a_pod_in_namespace_empty_is_not_found(client: Any) -> None:
    status, body = await call(client, "GET", f"{API}/namespaces//pods/web-1")
    assert status == 404
    assert orjson.loads(body)["message"] == 'pods "web-1" not found'


LISTED_404 = [
    "/foo",
    "/foo/",
    "/api",
    "/apis/foo",
    "/apis//",
    "//",
    "//healthz",
    "//version",
    "//apis/metrics.k8s.io/v1beta1/nodes",
    "/apis//metrics.k8s.io/v1beta1",
    "/healthz/",
    "/livez/",
    "/readyz/",
    "/readyz/ping/",
    "/healthz/nope",
    "/metrics/",
    "/metrics//",
    "/openapi/v2/",
    "/index.html/",
]


@pytest.mark.parametrize("path", LISTED_404)
@pytest.mark.parametrize("method", ["GET", "POST", "OPTIONS", "DELETE"])
async def test_other_unknown_paths_get_the_path_list_with_404(client: Any, method: str, path: str) -> None:
    code, body = await call(client, method, path)
    assert code == 404 and is_listing(body)


@pytest.mark.parametrize("path", ["/", "/index.html"])
@pytest.mark.parametrize("method", ["GET", "POST", "DELETE"])
async def test_the_index_lists_the_paths(client: Any, method: str, path: str) -> None:
    code, body = await call(client, method, path)
    assert code == 200 and is_listing(body)


RESTFUL = [
    f"{API}/nodes",
    f"{API}/nodes/node-a",
    f"{API}/pods",
    f"{API}/namespaces/default/pods",
    f"{API}/namespaces/default/pods/web-1",
    API,
    "/apis/metrics.k8s.io",
    "/apis",
    "/version",
]


@pytest.mark.parametrize("path", RESTFUL)
@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
async def test_api_routes_allow_get_only(client: Any, method: str, path: str) -> None:
    response = await client.open(path, method=method)
    assert response.status_code == 405
    assert "Allow" not in response.headers
    assert await response.get_data() == NOT_ALLOWED


@pytest.mark.parametrize("path", RESTFUL)
async def test_head_on_api_routes_is_405_without_body(client: Any, path: str) -> None:
    response = await client.open(path, method="HEAD")
    assert response.status_code == 405
    assert await response.get_data() == b""


MUX = ["/healthz", "/livez", "/readyz/ping", "/healthz/log", "/metrics", "/openapi/v2", "/openapi/v3"]


@pytest.mark.parametrize("path", MUX)
@pytest.mark.parametrize("method", ["POST", "OPTIONS", "DELETE", "PUT"])
async def test_mux_handlers_ignore_the_method(client: Any, method: str, path: str) -> None:
    expected = await same_as(client, path)
    assert expected[0] == 200
    assert await call(client, method, path) == expected


@pytest.mark.parametrize("path", MUX)
async def test_connect_on_mux_handlers_is_405(client: Any, path: str) -> None:
    """Go answers `200 ok`; a 2xx to CONNECT opens a tunnel in HTTP/1.1 (api.routing)."""
    assert await call(client, "CONNECT", path) == (405, NOT_ALLOWED)


@pytest.mark.parametrize("path", MUX)
async def test_head_on_mux_handlers_is_their_get(client: Any, path: str) -> None:
    """(The server leaves out the body of a HEAD answer; Quart's test client does not.)"""
    get = await client.open(path, method="GET")
    head = await client.open(path, method="HEAD")
    assert (head.status_code, head.headers["Content-Type"]) == (200, get.headers["Content-Type"])


def test_the_two_layers() -> None:
    restful = ["/apis", "/apis/", "/apis/metrics.k8s.io", f"{API}//nodes", "/version", "/version/x"]
    mux = ["/apis//", "//apis", "/apis/foo", "/versionx", "/", "/healthz", "/metrics/"]
    assert [routing.restful(p) for p in restful + mux] == [True] * len(restful) + [False] * len(mux)


@pytest.mark.parametrize("host", ["x" * 64, "a..b", "\u00e9" * 70, "metrics-server:443"])
async def test_any_host_header_is_served(client: Any, host: str) -> None:
    """Go serves any Host; werkzeug cannot bind to one whose labels do not IDNA-encode."""
    response = await client.get("/healthz", headers={"Host": host})
    assert (response.status_code, await response.get_data()) == (200, b"ok")
