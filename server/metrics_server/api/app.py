"""The quart-trio application serving `metrics.k8s.io/v1beta1` with metrics-server's semantics.

`create_app(...)` wires read-only inputs into routes; the app knows nothing about kubelets,
TLS or authentication (the serving layer wraps it in an ASGI middleware for those).

Routes:

* resources: `/apis/metrics.k8s.io/v1beta1/{nodes[/{name}], pods, namespaces/{ns}/pods[/{name}]}`;
* discovery: `/apis`, `/apis/metrics.k8s.io`, `/apis/metrics.k8s.io/v1beta1` (+ aggregated v2/v2beta1);
* `/version`, `/openapi/v2`, `/openapi/v3`, `/openapi/v3/apis/metrics.k8s.io/v1beta1`;
* `/healthz`, `/livez`, `/readyz` and `/<root>/<check>`; `/metrics`.

Every error is a Kubernetes `Status` (`api.status`); which path and method reach a route, and the
404/405 answers otherwise, follow the library's routing (`api.routing`).

The resource routes are `api.resources`; their request pipeline is described there.
"""

from __future__ import annotations

import platform
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import prometheus_client
from quart import Response, request
from quart_trio import QuartTrio
from werkzeug.exceptions import HTTPException

from k8s_metrics.selectors import SelectorError, parse_label_selector
from metrics_server.api import negotiate as neg
from metrics_server.api import routing, status
from metrics_server.api.discovery import Document, build, group_list, if_none_match
from metrics_server.api.health import ROOTS, HealthChecks, HealthResponse
from metrics_server.api.openapi import V3_PREFIX, OpenAPIDocs, SpecError, load_spec
from metrics_server.api.params import OperationChecks, compile_operations
from metrics_server.api.query import param_error
from metrics_server.api.resources import ResourceApi
from metrics_server.api.responses import encoded, index, status_response, without_content_type
from metrics_server.api.steps import STREAM_MESSAGE_BYTES, pieces_response
from metrics_server.flagset import BOOL, METRICS_SERVER, flag
from metrics_server.kube.objects import NodeLister, PodLister
from metrics_server.promtext import Stamps
from metrics_server.selfmetrics import exposition_pieces
from metrics_server.storage.snapshot import Snapshot

_API = "/apis/metrics.k8s.io/v1beta1"
_JSON_ONLY = frozenset({neg.JSON})
_DISCOVERY_ROOT = neg.ENCODINGS | {neg.DISCOVERY_V2}
_OPERATIONS = (
    "get_api_groups",
    "get_metrics_api_group",
    "get_metrics_api_resources",
    "list_node_metrics",
    "read_node_metrics",
    "list_pod_metrics_for_all_namespaces",
    "list_namespaced_pod_metrics",
    "read_namespaced_pod_metrics",
)


def default_version_info() -> dict[str, str]:
    """`/version` in `version.Info`'s shape, describing this server."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        pkg = version("k8s-metrics-server")
    except PackageNotFoundError:
        pkg = "0.0.0"
    major, minor = [*pkg.split("."), "0"][:2]
    machine = {"x86_64": "amd64", "aarch64": "arm64"}.get(platform.machine(), platform.machine())
    return {
        "major": major,
        "minor": minor,
        "gitVersion": f"v{pkg}",
        "gitCommit": "",
        "gitTreeState": "",
        "buildDate": "",
        "goVersion": f"python{platform.python_version()}",
        "compiler": platform.python_implementation().lower(),
        "platform": f"{sys.platform}/{machine}",
    }


@dataclass(frozen=True, slots=True)
class ApiOptions:
    """What the API layer needs from the command line.

    * `serve_swap`: add `swap` to usage maps when storage has it (off: metrics-server never does).
    * `node_selector`: metrics-server's `--node-selector`, ANDed into node lists (not gets); a
      selector that does not parse makes `create_app` raise `ValueError` naming the flag.
    * `version`: the `/version` document.
    * `spec_text`: an OpenAPI document to use instead of the packaged one (tests).
    """

    serve_swap: bool = flag(
        "--serve-swap",
        BOOL,
        "",
        (
            "Add swap usage to node and container metrics when kubelets report it (metrics-server never "
            "serves swap)."
        ),
        group=METRICS_SERVER,
    )
    node_selector: str = ""
    version: Mapping[str, str] = field(default_factory=default_version_info)
    spec_text: str | None = None

    def validate(self) -> None:
        """Nothing beyond the flag's syntax (`create_app` checks `node_selector`)."""


def create_app(
    *,
    nodes: NodeLister,
    pods: PodLister,
    snapshot: Callable[[], Snapshot],
    health: HealthChecks,
    registry: prometheus_client.CollectorRegistry,
    options: ApiOptions,
    clock: Callable[[], float] = time.time,
    observe_freshness: Callable[[float, Stamps], None] | None = None,
) -> QuartTrio:
    """Build the application.

    `snapshot()` is called once per request for a consistent view; listers are read as they are.
    `clock()` gives Unix seconds (creationTimestamp, freshness). `observe_freshness(now, stamps)`
    is called per response with the served objects' timestamps, for one observation of `now -
    timestamp` per object (metrics-server's `metrics_server_api_metric_freshness_seconds`).
    `/metrics` renders `registry` as is (with `selfmetrics.exposition_pieces`: `generate_latest`'s
    bytes in pieces, with checkpoints): whoever builds it registers the self-metrics and, for
    metrics-server's process_* series, a `prometheus_client.ProcessCollector(registry=registry)`.

    Raises `SpecError` if the OpenAPI document is missing or cannot be compiled, `ValueError` for a
    bad `options.node_selector`.
    """
    spec = load_spec(options.spec_text)
    checks = compile_operations(spec)
    missing = [op for op in _OPERATIONS if op not in checks]
    if missing:
        raise SpecError(f"OpenAPI document lacks operations {missing}")
    try:
        node_selector = parse_label_selector(options.node_selector)
    except SelectorError as exc:
        raise ValueError(f"--node-selector: {exc}") from None
    api = ResourceApi(nodes, pods, snapshot, options.serve_swap, node_selector, clock, observe_freshness)
    discovery = build()
    docs = OpenAPIDocs.build(spec)
    version_body = status.indented(status.go_json(dict(options.version)))
    paths = ["/apis", "/apis/metrics.k8s.io", _API, "/metrics", "/openapi/v2", "/openapi/v3", "/openapi/v3/"]
    paths.append("/version")
    for root in ROOTS:
        paths += [f"/{root}", *(f"/{root}/{name}" for name in health.names(root))]
    group_lists: dict[int, bytes] = {}

    app = QuartTrio(__name__)
    app.config["MAX_CONTENT_LENGTH"] = 1 << 20
    app.url_map.merge_slashes = False  # never a redirect built from the Host header (api.routing)
    app.asgi_app = routing.route(app.asgi_app)  # type: ignore[method-assign]

    @app.errorhandler(HTTPException)
    async def http_error(exc: HTTPException) -> Response:
        if exc.code == 405:  # the library sends no Allow header
            return status_response(status.method_not_allowed(), 405)
        if exc.code == 404:
            if not routing.restful(request.path):
                return index(paths, 404)  # outside the API routes: the library's path listing
            rep = neg.negotiate(request.headers.get("Accept"), neg.ENCODINGS) or neg.JSON
            return status_response(status.path_not_found(), 404, rep)
        code = exc.code or 500
        return status_response(
            status.status_json(code, exc.name.replace(" ", ""), exc.description or exc.name), code
        )

    # --- resources ------------------------------------------------------------------------

    @app.route(f"{_API}/nodes", methods=["GET"])
    async def list_nodes() -> Response:
        return await api.list_resource(checks["list_node_metrics"], "nodes", None, {})

    @app.route(f"{_API}/nodes/<name>", methods=["GET"])
    async def get_node(name: str) -> Response:
        return await api.get_resource(checks["read_node_metrics"], "nodes", None, name, {"name": name})

    @app.route(f"{_API}/pods", methods=["GET"])
    async def list_all_pods() -> Response:
        return await api.list_resource(checks["list_pod_metrics_for_all_namespaces"], "pods", None, {})

    @app.route(f"{_API}/namespaces/<namespace>/pods", methods=["GET"])
    async def list_pods(namespace: str) -> Response:
        op = checks["list_namespaced_pod_metrics"]
        return await api.list_resource(op, "pods", namespace, {"namespace": namespace})

    @app.route(f"{_API}/namespaces/<namespace>/pods/<name>", methods=["GET"])
    async def get_pod(namespace: str, name: str) -> Response:
        op = checks["read_namespaced_pod_metrics"]
        return await api.get_resource(op, "pods", namespace, name, {"namespace": namespace, "name": name})

    # --- discovery, version, openapi -----------------------------------------------------

    @app.route("/", methods=["GET"])
    async def path_index() -> Response:
        return index(paths, 200)

    @app.route("/apis", methods=["GET"])
    async def apis() -> Response:
        header = request.headers.get("Accept")
        rep = neg.negotiate(header, _DISCOVERY_ROOT)
        if rep is None:
            return status_response(neg.rejection(header), 406)
        bad = param_error(checks["get_api_groups"], {}, rep)
        if bad is not None:
            return bad
        if rep == neg.DISCOVERY_V2:
            return _cached(discovery.aggregated_v2, neg.CONTENT_TYPES[rep])
        server = request.scope.get("server") or ("", 0)
        port = int(server[1] or 0)
        body = group_lists.get(port)
        if body is None:
            body = group_lists[port] = group_list(port)
        data, content_type = encoded(body, rep)
        return Response(data, status=200, content_type=content_type)

    @app.route("/apis/metrics.k8s.io", methods=["GET"])
    async def api_group() -> Response:
        return _discovery(checks["get_metrics_api_group"], discovery.group)

    @app.route(_API, methods=["GET"])
    async def api_resources() -> Response:
        return _discovery(checks["get_metrics_api_resources"], discovery.resource_list)

    @app.route("/version", methods=["GET"])  # indented, as the library writes it
    async def version() -> Response:
        return Response(version_body, status=200, content_type="application/json")

    @app.route("/openapi/v2", methods=["GET"])
    async def openapi_v2() -> Response:
        return _openapi(docs.v2_body, docs.v2_hash, immutable=False)

    @app.route("/openapi/v3", methods=["GET"])
    async def openapi_v3() -> Response:
        return _openapi(docs.v3_index, docs.v3_index_hash, immutable=False)

    @app.route(f"{V3_PREFIX}<path:gv>", methods=["GET"])
    async def openapi_v3_gv(gv: str) -> Response:
        doc = docs.v3.get(gv)
        if doc is None:  # kube-openapi's handler3 answers an unknown group-version with an empty 200
            return without_content_type(Response(b"", status=200))
        body, digest = doc
        wanted = request.args.get("hash")
        if wanted and wanted != digest:
            location = f"{V3_PREFIX}{gv}?hash={digest}"
            headers = {"Location": location, "ETag": f'"{digest}"', "Vary": "Accept"}
            return Response(b"", status=301, headers=headers, content_type="application/json")
        return _openapi(body, digest, immutable=bool(wanted))

    # --- health, metrics ------------------------------------------------------------------

    for root in ROOTS:
        app.add_url_rule(f"/{root}", f"health_{root}", _health_root(health, root), methods=["GET"])
        app.add_url_rule(
            f"/{root}/<path:check>",
            f"health_{root}_check",
            _health_check(health, root, paths),
            methods=["GET"],
        )

    @app.route("/metrics", methods=["GET"])
    async def metrics() -> Response:
        pieces = await exposition_pieces(registry)
        content_type = prometheus_client.exposition.CONTENT_TYPE_PLAIN_0_0_4
        if sum(map(len, pieces)) <= STREAM_MESSAGE_BYTES:
            return Response(b"".join(pieces), status=200, content_type=content_type)
        # 5-7 MB at 5000 nodes (a piece per node and family): sent a message of about
        # `STREAM_MESSAGE_BYTES` per event-loop step, as the large lists are, rather than joined,
        # copied and framed whole in one step.
        return pieces_response(pieces, content_type)

    return app


# --- helpers ----------------------------------------------------------------------------------


# --- helpers ----------------------------------------------------------------------------------


def _cached(doc: Document, content_type: str) -> Response:
    """The aggregated discovery document: ETag, `Cache-Control: public`, `Vary: Accept`, and 304
    (no body, no Content-Type) on a matching If-None-Match."""
    headers = {"Cache-Control": "public", "ETag": doc.etag, "Vary": "Accept"}
    if request.headers.get("If-None-Match") == doc.etag:  # the library compares the whole header
        return without_content_type(Response(b"", status=304, headers=headers))
    return Response(doc.body, status=200, headers=headers, content_type=content_type)


def _discovery(op: OperationChecks, doc: Document) -> Response:
    """A legacy discovery document in the negotiated encoding (no ETag: the library sends none)."""
    header = request.headers.get("Accept")
    rep = neg.negotiate(header, neg.ENCODINGS)
    if rep is None:
        return status_response(neg.rejection(header), 406)
    bad = param_error(op, {}, rep)
    if bad is not None:
        return bad
    data, content_type = encoded(doc.body, rep)
    return Response(data, status=200, content_type=content_type)


def _openapi(body: bytes, digest: str, *, immutable: bool) -> Response:
    """kube-openapi's handlers: JSON only (406 with an empty body otherwise), quoted-hash ETag, 304."""
    if neg.negotiate(request.headers.get("Accept"), _JSON_ONLY) is None:
        return without_content_type(Response(b"", status=406, headers={"Vary": "Accept"}))
    headers = {"ETag": f'"{digest}"', "Vary": "Accept"}
    if immutable:
        headers["Cache-Control"] = "public, immutable"
        expires = time.gmtime(time.time() + 365 * 86400)
        headers["Expires"] = time.strftime("%a, %d %b %Y %H:%M:%S GMT", expires)
    if if_none_match(request.headers.get("If-None-Match"), headers["ETag"]):
        return without_content_type(Response(b"", status=304, headers=headers))
    return Response(body, status=200, headers=headers, content_type="application/json")


def _health_response(result: HealthResponse) -> Response:
    headers = {"X-Content-Type-Options": "nosniff"} if result.nosniff else {}
    return Response(result.body, status=result.status, headers=headers, content_type=result.content_type)


def _health_root(health: HealthChecks, root: str) -> Callable[[], Any]:
    async def handler() -> Response:
        verbose = "verbose" in request.args
        return _health_response(health.root(root, verbose=verbose, exclude=request.args.getlist("exclude")))

    return handler


def _health_check(health: HealthChecks, root: str, paths: list[str]) -> Callable[..., Any]:
    async def handler(check: str) -> Response:
        result = health.single(root, check)
        if result is None:
            return index(paths, 404)
        return _health_response(result)

    return handler
