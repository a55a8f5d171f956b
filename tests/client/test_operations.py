"""Every generated operation against a real HTTPS server serving metrics-server's exact JSON, through
the ``metrics_client`` factory and a kubeconfig file: sync (from a worker thread), async under trio,
and async under asyncio (``asyncio.run`` in a worker thread)."""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import json
import shutil
import ssl
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import TYPE_CHECKING, Any

import httpx
import pytest
import sniffio
import trio

from k8s_metrics._generated.types import Response
from k8s_metrics.api.discovery import (
    get_api_groups,
    get_metrics_api_group,
    get_metrics_api_resources,
)
from k8s_metrics.api.metrics import (
    list_namespaced_pod_metrics,
    list_node_metrics,
    list_pod_metrics_for_all_namespaces,
    read_namespaced_pod_metrics,
    read_node_metrics,
)
from k8s_metrics.client import DEFAULT_TIMEOUT, MetricsClient, metrics_client
from k8s_metrics.errors import (
    ApiError,
    BadRequest,
    Forbidden,
    NotFound,
    ServiceUnavailable,
    TransportError,
    Unauthorized,
)
from k8s_metrics.kubeconfig import ConfigError, load_kubeconfig
from k8s_metrics.models import (
    UNSET,
    APIGroup,
    APIGroupList,
    APIResourceList,
    NodeMetrics,
    NodeMetricsList,
    PodMetrics,
    PodMetricsList,
    Status,
    StatusCause,
    StatusDetails,
)

if TYPE_CHECKING:
    from conftest import FakeApiServer

V1BETA1 = "/apis/metrics.k8s.io/v1beta1"
CLIENT_SOURCE = Path(__file__).resolve().parents[2] / "client"
UTC = datetime.UTC
WriteKubeconfig = Callable[..., Path]


def status_document(
    code: int, reason: str, message: str, details: dict[str, Any] | None = None
) -> dict[str, Any]:
    """A metav1.Status error document in the apiserver's field order."""
    document: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
    }
    if details is not None:
        document["details"] = details
    document["code"] = code
    return document


# -- canned metrics-server responses (exact wire JSON)

GROUP_VERSION = {"groupVersion": "metrics.k8s.io/v1beta1", "version": "v1beta1"}
API_GROUP_LIST = {
    "kind": "APIGroupList",
    "apiVersion": "v1",
    "groups": [{"name": "metrics.k8s.io", "versions": [GROUP_VERSION], "preferredVersion": GROUP_VERSION}],
}
API_GROUP = {
    "kind": "APIGroup",
    "apiVersion": "v1",
    "name": "metrics.k8s.io",
    "versions": [GROUP_VERSION],
    "preferredVersion": GROUP_VERSION,
}
API_RESOURCE_LIST = {
    "kind": "APIResourceList",
    "apiVersion": "v1",
    "groupVersion": "metrics.k8s.io/v1beta1",
    "resources": [
        {
            "name": "nodes",
            "singularName": "",
            "namespaced": False,
            "kind": "NodeMetrics",
            "verbs": ["get", "list"],
        },
        {
            "name": "pods",
            "singularName": "",
            "namespaced": True,
            "kind": "PodMetrics",
            "verbs": ["get", "list"],
        },
    ],
}
NODE_A_ITEM = {
    "metadata": {
        "name": "node-a",
        "creationTimestamp": "2026-04-25T17:20:57Z",
        "labels": {"kubernetes.io/hostname": "node-a", "kubernetes.io/os": "linux"},
    },
    "timestamp": "2026-04-25T17:20:42Z",
    "window": "15.012s",
    "usage": {"cpu": "168064370n", "memory": "1948212Ki"},
}
NODE_B_ITEM = {
    "metadata": {"name": "node-b", "creationTimestamp": "2026-04-25T17:20:57Z"},
    "timestamp": "2026-04-25T17:20:44Z",
    "window": "1m0.729s",
    "usage": {"cpu": "5u", "memory": "1Gi"},
}
NODE_A = {"kind": "NodeMetrics", "apiVersion": "metrics.k8s.io/v1beta1", **NODE_A_ITEM}
NODE_LIST = {
    "kind": "NodeMetricsList",
    "apiVersion": "metrics.k8s.io/v1beta1",
    "metadata": {},
    "items": [NODE_A_ITEM, NODE_B_ITEM],
}
COREDNS_ITEM = {
    "metadata": {
        "name": "coredns-558bd4d5db-4dpjz",
        "namespace": "kube-system",
        "creationTimestamp": "2021-10-03T09:37:01Z",
        "labels": {"k8s-app": "kube-dns", "pod-template-hash": "558bd4d5db"},
    },
    "timestamp": "2021-10-03T09:36:52Z",
    "window": "14.997s",
    "containers": [{"name": "coredns", "usage": {"cpu": "2460574n", "memory": "12240Ki"}}],
}
WEB_ITEM = {
    "metadata": {"name": "web-0", "namespace": "default", "creationTimestamp": "2021-10-03T09:37:01Z"},
    "timestamp": "2021-10-03T09:36:50Z",
    "window": "15s",
    "containers": [
        {"name": "nginx", "usage": {"cpu": "12m", "memory": "5Mi"}},
        {"name": "log-shipper", "usage": {"cpu": "0", "memory": "1000000"}},
    ],
}
EMPTY_ITEM = {  # every container skipped after a CPU counter reset
    "metadata": {"name": "batch-7", "namespace": "jobs", "creationTimestamp": "2021-10-03T09:37:01Z"},
    "timestamp": "2021-10-03T09:36:51Z",
    "window": "14.5s",
    "containers": [],
}
COREDNS = {"kind": "PodMetrics", "apiVersion": "metrics.k8s.io/v1beta1", **COREDNS_ITEM}
ALL_PODS = {
    "kind": "PodMetricsList",
    "apiVersion": "metrics.k8s.io/v1beta1",
    "metadata": {},
    "items": [WEB_ITEM, EMPTY_ITEM, COREDNS_ITEM],
}
KUBE_SYSTEM_PODS = {**ALL_PODS, "items": [COREDNS_ITEM]}


@dataclass(frozen=True)
class Operation:
    module: ModuleType
    args: tuple[str, ...]
    path: str
    document: dict[str, Any]
    model: type


OPERATIONS = {
    "get_api_groups": Operation(get_api_groups, (), "/apis", API_GROUP_LIST, APIGroupList),
    "get_metrics_api_group": Operation(
        get_metrics_api_group, (), "/apis/metrics.k8s.io", API_GROUP, APIGroup
    ),
    "get_metrics_api_resources": Operation(
        get_metrics_api_resources, (), V1BETA1, API_RESOURCE_LIST, APIResourceList
    ),
    "list_node_metrics": Operation(list_node_metrics, (), f"{V1BETA1}/nodes", NODE_LIST, NodeMetricsList),
    "read_node_metrics": Operation(
        read_node_metrics, ("node-a",), f"{V1BETA1}/nodes/node-a", NODE_A, NodeMetrics
    ),
    "list_pod_metrics_for_all_namespaces": Operation(
        list_pod_metrics_for_all_namespaces, (), f"{V1BETA1}/pods", ALL_PODS, PodMetricsList
    ),
    "list_namespaced_pod_metrics": Operation(
        list_namespaced_pod_metrics,
        ("kube-system",),
        f"{V1BETA1}/namespaces/kube-system/pods",
        KUBE_SYSTEM_PODS,
        PodMetricsList,
    ),
    "read_namespaced_pod_metrics": Operation(
        read_namespaced_pod_metrics,
        ("kube-system", "coredns-558bd4d5db-4dpjz"),
        f"{V1BETA1}/namespaces/kube-system/pods/coredns-558bd4d5db-4dpjz",
        COREDNS,
        PodMetrics,
    ),
}

MODES = ("sync", "trio", "asyncio")


def serve_all(server: FakeApiServer) -> None:
    for op in OPERATIONS.values():
        server.reply_json(op.path, 200, op.document)


def as_to_dict(document: Any, key: str = "") -> Any:
    """The generated models' ``to_dict()`` form of a wire document: times as ``isoformat()``."""
    if isinstance(document, dict):
        return {k: as_to_dict(v, k) for k, v in document.items()}
    if isinstance(document, list):
        return [as_to_dict(v) for v in document]
    if key in ("timestamp", "creationTimestamp"):
        return document.replace("Z", "+00:00")
    return document


async def call(
    mode: str, make_client: Callable[[], MetricsClient], op: ModuleType, *args: Any, **kwargs: Any
) -> Response[Any]:
    """Call ``op`` in ``mode`` with a fresh client; check the async library that ran it."""
    if mode == "sync":

        def run_sync() -> Response[Any]:
            with make_client() as client:
                return op.sync_detailed(*args, client=client, **kwargs)

        return await trio.to_thread.run_sync(run_sync)

    async def run_async(library: str) -> Response[Any]:
        assert sniffio.current_async_library() == library
        async with make_client() as client:
            return await op.asyncio_detailed(*args, client=client, **kwargs)

    if mode == "trio":
        return await run_async("trio")
    return await trio.to_thread.run_sync(lambda: asyncio.run(run_async("asyncio")))


@pytest.fixture
def kubeconfig(api_server: FakeApiServer, write_kubeconfig: WriteKubeconfig, tmp_path: Path) -> Path:
    return write_kubeconfig(
        tmp_path / "kubeconfig", server_url=api_server.url, ca_pem=api_server.ca_pem, token=api_server.token
    )


@pytest.fixture
def make_client(kubeconfig: Path) -> Callable[[], MetricsClient]:
    return lambda: metrics_client(kubeconfig=kubeconfig)


# -- success: every operation, every mode


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("name", OPERATIONS)
async def test_operation_parses_the_served_document(
    name: str, mode: str, api_server: FakeApiServer, make_client: Callable[[], MetricsClient]
) -> None:
    op = OPERATIONS[name]
    serve_all(api_server)
    response = await call(mode, make_client, op.module, *op.args)
    assert response.status_code == 200
    assert type(response.parsed) is op.model
    assert response.parsed.to_dict() == as_to_dict(op.document)
    assert json.loads(response.content) == op.document
    [seen] = api_server.requests
    assert (seen.method, seen.path, seen.query) == ("GET", op.path, "")
    assert seen.headers["authorization"] == f"Bearer {api_server.token}"
    assert seen.headers["accept"] == "application/json"
    assert seen.headers["user-agent"] == "k8s-metrics-client/0.3.0"


async def test_typed_values_of_a_node_list(
    api_server: FakeApiServer, make_client: Callable[[], MetricsClient]
) -> None:
    serve_all(api_server)
    parsed = (await call("trio", make_client, list_node_metrics)).parsed
    assert isinstance(parsed, NodeMetricsList)
    assert (parsed.kind, parsed.api_version, parsed.metadata.to_dict()) == (
        "NodeMetricsList",
        "metrics.k8s.io/v1beta1",
        {},
    )
    node_a, node_b = parsed.items
    assert node_a.kind is UNSET and node_a.api_version is UNSET
    assert node_a.metadata.name == "node-a"
    assert node_a.metadata.namespace is UNSET
    assert node_a.metadata.creation_timestamp == datetime.datetime(2026, 4, 25, 17, 20, 57, tzinfo=UTC)
    assert node_a.metadata.labels.additional_properties == {
        "kubernetes.io/hostname": "node-a",
        "kubernetes.io/os": "linux",
    }
    assert node_a.timestamp == datetime.datetime(2026, 4, 25, 17, 20, 42, tzinfo=UTC)
    assert node_a.window == "15.012s"
    assert (node_a.usage["cpu"], node_a.usage["memory"]) == ("168064370n", "1948212Ki")
    assert node_b.metadata.labels is UNSET
    assert node_b.usage.additional_properties == {"cpu": "5u", "memory": "1Gi"}


async def test_typed_values_of_a_pod_list(
    api_server: FakeApiServer, make_client: Callable[[], MetricsClient]
) -> None:
    serve_all(api_server)
    parsed = (await call("trio", make_client, list_pod_metrics_for_all_namespaces)).parsed
    assert isinstance(parsed, PodMetricsList)
    assert [(p.metadata.namespace, p.metadata.name) for p in parsed.items] == [
        ("default", "web-0"),
        ("jobs", "batch-7"),
        ("kube-system", "coredns-558bd4d5db-4dpjz"),
    ]
    web, empty, _ = parsed.items
    assert [(c.name, c.usage["cpu"], c.usage["memory"]) for c in web.containers] == [
        ("nginx", "12m", "5Mi"),
        ("log-shipper", "0", "1000000"),
    ]
    assert (web.timestamp, web.window) == (datetime.datetime(2021, 10, 3, 9, 36, 50, tzinfo=UTC), "15s")
    assert empty.containers == []


# -- metrics-server's error answers

NOT_FOUND = {
    "node-missing": (
        read_node_metrics,
        ("node-x",),
        f"{V1BETA1}/nodes/node-x",
        status_document(404, "NotFound", 'node "node-x" not found', {"name": "node-x", "kind": "node"}),
    ),
    "node-without-metrics": (
        read_node_metrics,
        ("node-c",),
        f"{V1BETA1}/nodes/node-c",
        status_document(
            404,
            "NotFound",
            'nodemetrics.metrics.k8s.io "node-c" not found',
            {"name": "node-c", "group": "metrics.k8s.io", "kind": "nodemetrics"},
        ),
    ),
    "pod-without-metrics": (
        read_namespaced_pod_metrics,
        ("default", "nginx"),
        f"{V1BETA1}/namespaces/default/pods/nginx",
        status_document(
            404,
            "NotFound",
            'podmetrics.metrics.k8s.io "default/nginx" not found',
            {"name": "default/nginx", "group": "metrics.k8s.io", "kind": "podmetrics"},
        ),
    ),
    "pod-missing": (
        read_namespaced_pod_metrics,
        ("default", "gone"),
        f"{V1BETA1}/namespaces/default/pods/gone",
        status_document(404, "NotFound", 'pods "gone" not found', {"name": "gone", "kind": "pods"}),
    ),
}


async def raised(
    mode: str, make_client: Callable[[], MetricsClient], op: ModuleType, *args: Any, **kwargs: Any
) -> ApiError:
    """Call ``op`` in ``mode``, which must raise an ``ApiError``; return it."""
    with pytest.raises(ApiError) as caught:
        await call(mode, make_client, op, *args, **kwargs)
    return caught.value


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("case", NOT_FOUND)
async def test_not_found_raises_with_the_status(
    case: str, mode: str, api_server: FakeApiServer, make_client: Callable[[], MetricsClient]
) -> None:
    op, args, path, document = NOT_FOUND[case]
    api_server.reply_json(path, 404, document)
    error = await raised(mode, make_client, op, *args)
    assert type(error) is NotFound
    assert (error.code, error.reason, error.message) == (404, "NotFound", document["message"])
    assert error.status.to_dict() == document
    details = document["details"]
    assert error.status == Status(
        kind="Status",
        api_version="v1",
        metadata=error.status.metadata,
        status="Failure",
        message=document["message"],
        reason="NotFound",
        details=StatusDetails(name=details["name"], group=details.get("group", UNSET), kind=details["kind"]),
        code=404,
    )


FORBIDDEN = status_document(
    403,
    "Forbidden",
    'pods.metrics.k8s.io is forbidden: User "alice" cannot list resource "pods" '
    'in API group "metrics.k8s.io" in the namespace "kube-system"',
    {"group": "metrics.k8s.io", "kind": "pods"},
)
INTERNAL = status_document(
    500,
    "InternalError",
    "Internal error occurred: failed listing pods: the pod cache is not synced",
    {"causes": [{"message": "failed listing pods: the pod cache is not synced"}]},
)
AGGREGATOR_503 = (503, b"service unavailable\n", "text/plain; charset=utf-8")
UNAVAILABLE_STATUS = status_document(
    503,
    "ServiceUnavailable",
    "the server is currently unable to handle the request",
    {"causes": [{"reason": "UnexpectedServerResponse", "message": "service unavailable"}]},
)
UNAUTHORIZED = status_document(401, "Unauthorized", "Unauthorized")

# error: ((status, body, content type) served, exception class and Status expected)
ERRORS: dict[str, tuple[tuple[int, bytes, str], type[ApiError], dict[str, Any]]] = {
    "forbidden": ((403, json.dumps(FORBIDDEN).encode(), "application/json"), Forbidden, FORBIDDEN),
    "internal": ((500, json.dumps(INTERNAL).encode(), "application/json"), ApiError, INTERNAL),
    "aggregator-plain-text-503": (AGGREGATOR_503, ServiceUnavailable, UNAVAILABLE_STATUS),
}


def generic_suffix(op: Operation) -> str:
    """client-go's end of a message built from a body that was not a Status: ``(get <resource> [name])``."""
    if op.path == V1BETA1 or not op.path.startswith(V1BETA1 + "/"):
        return ""  # discovery: not a resource
    parts = op.path.removeprefix(V1BETA1 + "/").split("/")
    parts = parts[2:] if parts[0] == "namespaces" else parts
    return f" (get {parts[0]}.metrics.k8s.io{' ' + parts[1] if len(parts) > 1 else ''})"


@pytest.mark.parametrize("error", [*ERRORS, "unauthorized"])
@pytest.mark.parametrize("name", OPERATIONS)
async def test_every_operation_raises_errors_with_the_status(
    name: str, error: str, api_server: FakeApiServer, write_kubeconfig: WriteKubeconfig, tmp_path: Path
) -> None:
    op = OPERATIONS[name]
    token = api_server.token
    if error == "unauthorized":
        token, expected_class, expected = "a-revoked-token", Unauthorized, UNAUTHORIZED
    else:
        served, expected_class, expected = ERRORS[error]
        api_server.reply(op.path, *served)
    config = write_kubeconfig(
        tmp_path / "config", server_url=api_server.url, ca_pem=api_server.ca_pem, token=token
    )
    caught = await raised("trio", lambda: metrics_client(kubeconfig=config), op.module, *op.args)
    assert type(caught) is expected_class
    assert caught.status.to_dict() == expected
    suffix = generic_suffix(op) if error == "aggregator-plain-text-503" else ""
    assert caught.message == expected["message"] + suffix


@pytest.mark.parametrize("mode", ["sync", "asyncio"])
@pytest.mark.parametrize("error", ERRORS)
async def test_errors_are_raised_in_every_mode(
    error: str, mode: str, api_server: FakeApiServer, make_client: Callable[[], MetricsClient]
) -> None:
    served, expected_class, expected = ERRORS[error]
    api_server.reply(f"{V1BETA1}/pods", *served)
    caught = await raised(mode, make_client, list_pod_metrics_for_all_namespaces)
    assert type(caught) is expected_class
    assert caught.status.to_dict() == expected


@pytest.mark.parametrize("mode", MODES)
async def test_non_status_error_bodies_become_status_like_client_go(
    mode: str, api_server: FakeApiServer, make_client: Callable[[], MetricsClient]
) -> None:
    html = b"<html><body>Too Many Requests</body></html>"
    api_server.reply(f"{V1BETA1}/nodes", 429, html, "text/html")
    api_server.reply_json(f"{V1BETA1}/nodes/a", 500, {"error": "boom"})  # JSON, but not a Status
    api_server.reply(f"{V1BETA1}/nodes/b", 502, b"", "text/plain")  # not declared by the spec
    api_server.reply(f"{V1BETA1}/nodes/teapot", 418, b"I'm a teapot", "text/plain")
    too_many = await raised(mode, make_client, list_node_metrics)
    not_status = await raised(mode, make_client, read_node_metrics, "a")
    bad_gateway = await raised(mode, make_client, read_node_metrics, "b")
    teapot = await raised(mode, make_client, read_node_metrics, "teapot")
    assert too_many.status.to_dict() == status_document(
        429,
        "TooManyRequests",
        "the server has received too many requests and has asked us to try again later",
        {"causes": [{"reason": "UnexpectedServerResponse", "message": html.decode()}]},
    )
    assert str(too_many) == (
        "TooManyRequests (429): the server has received too many requests and has asked us to try again "
        "later (get nodes.metrics.k8s.io)"
    )
    assert not_status.status.to_dict() == status_document(
        500,
        "InternalError",
        'an error on the server ("{\\"error\\":\\"boom\\"}") has prevented the request from succeeding',
        {"causes": [{"reason": "UnexpectedServerResponse", "message": '{"error":"boom"}'}]},
    )
    assert bad_gateway.status.to_dict() == status_document(
        502,
        "InternalError",
        'an error on the server ("") has prevented the request from succeeding',
        {"causes": [{"reason": "UnexpectedServerResponse", "message": ""}]},
    )
    assert bad_gateway.message.endswith("(get nodes.metrics.k8s.io b)")
    assert teapot.status.to_dict() == status_document(
        418,
        "Unknown",
        "the server responded with the status code 418 but did not return more information",
        {"causes": [{"reason": "UnexpectedServerResponse", "message": "I'm a teapot"}]},
    )
    assert {type(e) for e in (too_many, not_status, bad_gateway, teapot)} == {ApiError}


async def test_retry_after_is_kept(
    api_server: FakeApiServer, make_client: Callable[[], MetricsClient]
) -> None:
    api_server.reply(f"{V1BETA1}/nodes", 503, b"overloaded", "text/plain", (("Retry-After", "7"),))
    caught = await raised("trio", make_client, list_node_metrics)
    details = caught.status.details
    assert isinstance(caught, ServiceUnavailable) and isinstance(details, StatusDetails)
    assert details.retry_after_seconds == 7
    assert details.causes == [StatusCause(reason="UnexpectedServerResponse", message="overloaded")]


# -- query parameters


@pytest.mark.parametrize("mode", MODES)
async def test_query_parameters_reach_the_server(
    mode: str, api_server: FakeApiServer, make_client: Callable[[], MetricsClient]
) -> None:
    serve_all(api_server)
    response = await call(
        mode,
        make_client,
        list_namespaced_pod_metrics,
        "kube-system",
        label_selector="k8s-app in (kube-dns,x),!canary",
        field_selector="metadata.name!=a",
        limit=500,
        continue_="",
        resource_version="0",
        resource_version_match="NotOlderThan",
        timeout="32s",
        pretty="true",
        allow_watch_bookmarks=False,
    )
    assert isinstance(response.parsed, PodMetricsList)
    [seen] = api_server.requests
    assert seen.query == (
        "allowWatchBookmarks=false&continue=&fieldSelector=metadata.name%21%3Da"
        "&labelSelector=k8s-app+in+%28kube-dns%2Cx%29%2C%21canary&limit=500&pretty=true"
        "&resourceVersion=0&resourceVersionMatch=NotOlderThan&timeout=32s"
    )


async def test_watch_and_unknown_field_selector_get_the_servers_status(
    api_server: FakeApiServer, make_client: Callable[[], MetricsClient]
) -> None:
    method_not_allowed = status_document(
        405,
        "MethodNotAllowed",
        'watch is not supported on resources of kind "pods.metrics.k8s.io"',
        {"group": "metrics.k8s.io", "kind": "pods"},
    )
    bad_request = status_document(
        400,
        "BadRequest",
        '"spec.nodeName" is not a known field selector: only "metadata.name", "metadata.namespace"',
    )
    api_server.reply_json(f"{V1BETA1}/pods?watch=true", 405, method_not_allowed)
    api_server.reply_json(f"{V1BETA1}/pods?fieldSelector=spec.nodeName%3Dnode-a", 400, bad_request)
    watched = await raised("trio", make_client, list_pod_metrics_for_all_namespaces, watch=True)
    selected = await raised(
        "trio", make_client, list_pod_metrics_for_all_namespaces, field_selector="spec.nodeName=node-a"
    )
    assert type(watched) is ApiError and watched.status.to_dict() == method_not_allowed
    assert type(selected) is BadRequest and selected.status.to_dict() == bad_request


# -- the factory


async def test_default_kubeconfig_comes_from_the_environment(
    api_server: FakeApiServer, kubeconfig: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    serve_all(api_server)
    monkeypatch.setenv("KUBECONFIG", str(kubeconfig))
    response = await call("trio", metrics_client, list_node_metrics)
    assert isinstance(response.parsed, NodeMetricsList)
    with pytest.raises(ConfigError):
        metrics_client(context="no-such-context")


async def test_context_selects_the_cluster(
    api_server: FakeApiServer, write_kubeconfig: WriteKubeconfig, tmp_path: Path
) -> None:
    serve_all(api_server)
    config = write_kubeconfig(
        tmp_path / "config",
        server_url=api_server.url,
        ca_pem=api_server.ca_pem,
        token=api_server.token,
        context="first",
        extra_contexts=("second",),
    )
    response = await call(
        "trio", lambda: metrics_client(kubeconfig=config, context="second"), list_node_metrics
    )
    assert isinstance(response.parsed, NodeMetricsList)
    with pytest.raises(ConfigError):
        metrics_client(kubeconfig=config, context="third")


async def test_a_connection_excludes_kubeconfig_and_context(kubeconfig: Path) -> None:
    connection = load_kubeconfig(kubeconfig)
    with pytest.raises(ValueError, match="either a connection or kubeconfig/context"):
        metrics_client(connection, kubeconfig=kubeconfig)
    with pytest.raises(ValueError, match="either a connection or kubeconfig/context"):
        metrics_client(connection, context="test")


async def test_client_settings(kubeconfig: Path) -> None:
    client = metrics_client(kubeconfig=kubeconfig)
    assert client.raise_on_unexpected_status is True
    with client as entered:
        httpx_client = entered.get_httpx_client()
        assert httpx_client.timeout == DEFAULT_TIMEOUT
        assert httpx_client.headers["accept"] == "application/json"
    faster = metrics_client(kubeconfig=kubeconfig, timeout=2.5, raise_on_unexpected_status=False)
    assert faster.raise_on_unexpected_status is False
    assert faster.get_httpx_client().timeout == httpx.Timeout(2.5)
    faster.get_httpx_client().close()


@pytest.mark.parametrize("mode", MODES)
async def test_tls_server_name_is_checked_against_the_certificate(
    mode: str, api_server: FakeApiServer, kubeconfig: Path
) -> None:
    serve_all(api_server)
    connection = load_kubeconfig(kubeconfig)
    good = dataclasses.replace(connection, tls_server_name="localhost")  # a SAN of the server certificate
    bad = dataclasses.replace(connection, tls_server_name="metrics.example")
    response = await call(mode, lambda: metrics_client(good), read_node_metrics, "node-a")
    assert isinstance(response.parsed, NodeMetrics)
    with pytest.raises(TransportError, match=r"^ConnectError: ") as failed:
        await call(mode, lambda: metrics_client(bad), read_node_metrics, "node-a")
    assert isinstance(failed.value.__cause__, httpx.ConnectError)
    cause: BaseException | None = failed.value
    while cause is not None and not isinstance(cause, ssl.SSLCertVerificationError):
        cause = cause.__cause__ or cause.__context__
    assert isinstance(cause, ssl.SSLCertVerificationError)
    assert "metrics.example" in cause.verify_message


async def test_with_headers_keeps_the_error_policy(api_server: FakeApiServer, kubeconfig: Path) -> None:
    api_server.reply(f"{V1BETA1}/nodes", *AGGREGATOR_503)
    client = metrics_client(kubeconfig=kubeconfig).with_headers({"X-Trace": "1"})
    assert isinstance(client, MetricsClient)
    async with client:
        with pytest.raises(ServiceUnavailable) as caught:
            await list_node_metrics.asyncio_detailed(client=client)
    assert caught.value.status.to_dict() == UNAVAILABLE_STATUS
    assert api_server.requests[0].headers["x-trace"] == "1"


# -- the installed package in a fresh virtualenv

FRESH_SCRIPT = """
import json, sys
import trio
import k8s_metrics
from k8s_metrics.client import metrics_client
from k8s_metrics.api.metrics import list_namespaced_pod_metrics
from k8s_metrics.models import PodMetricsList

def summary(result):
    assert isinstance(result, PodMetricsList), result
    return [[p.metadata.namespace, p.metadata.name, p.timestamp.isoformat(), p.window,
             [[c.name, c.usage["cpu"], c.usage["memory"]] for c in p.containers]] for p in result.items]

def listed_sync():
    with metrics_client(kubeconfig=sys.argv[1]) as client:
        return summary(list_namespaced_pod_metrics.sync("kube-system", client=client))

async def listed_trio():
    async with metrics_client(kubeconfig=sys.argv[1]) as client:
        return summary(await list_namespaced_pod_metrics.asyncio("kube-system", client=client))

print(json.dumps({"package": k8s_metrics.__file__, "sync": listed_sync(), "trio": trio.run(listed_trio)}))
"""


async def test_installed_client_lists_pod_metrics_in_a_fresh_virtualenv(
    api_server: FakeApiServer, kubeconfig: Path, tmp_path: Path
) -> None:
    serve_all(api_server)
    source = tmp_path / "client-src"  # build from a copy: pip's in-tree build must not write into the repo
    shutil.copytree(
        CLIENT_SOURCE,
        source,
        ignore=shutil.ignore_patterns("*.egg-info", "build", "__pycache__"),
    )
    venv = tmp_path / "fresh-venv"
    await trio.run_process([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    python = venv / "bin" / "python"
    await trio.run_process(
        [
            sys.executable,
            "-m",
            "pip",
            "--python",
            str(python),
            "install",
            "--quiet",
            "--disable-pip-version-check",
            str(source),
            "trio",
        ],
        capture_stdout=True,
        capture_stderr=True,
    )
    script = tmp_path / "list_pods.py"
    script.write_text(FRESH_SCRIPT)
    # -I: only the fresh environment's site-packages, not the repository or PYTHONPATH.
    done = await trio.run_process(
        [str(python), "-I", str(script), str(kubeconfig)],
        capture_stdout=True,
        capture_stderr=True,
        cwd=tmp_path,
    )
    out = json.loads(done.stdout)
    assert Path(out["package"]).is_relative_to(venv / "lib")
    expected = [
        [
            "kube-system",
            "coredns-558bd4d5db-4dpjz",
            "2021-10-03T09:36:52+00:00",
            "14.997s",
            [["coredns", "2460574n", "12240Ki"]],
        ]
    ]
    assert (out["sync"], out["trio"]) == (expected, expected)
    assert [r.path for r in api_server.requests] == [f"{V1BETA1}/namespaces/kube-system/pods"] * 2
