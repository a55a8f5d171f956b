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

Request pipeline of the resource routes, in the apiserver's order: content negotiation (406) ->
spec-driven parameter checks (400) -> selector parsing (400) -> list-option validation (422) ->
field-label check (400) -> `watch` (405) -> data. A JSON list without selectors (all pods, one
namespace's pods, all nodes) is served from `api.listcache` while the snapshot and the lister's
objects are unchanged (warm all-pods list at 150,000 pods: ~0.1 s of CPU, was ~0.6 s). A
namespaced list whose label selector names values (`app=x`) reads only the candidate pods from a
per-namespace label index (`api.podindex`). Lists are selected, sorted, encoded and assembled in
short steps with trio checkpoints between them (~2 ms of encoding, `render.CHUNK` objects
otherwise), and a large body is handed to the server in up to `BODY_MESSAGES` parts, so one huge
list does not hold the event loop: at 150,000 pods most steps stay under ~10 ms of CPU (numbers in
`api.render`, measured with `tests/server/api/bench_encode.py`). Single gets: `tests/server/api/bench_get.py`.
"""

from __future__ import annotations

import heapq
import platform
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import islice
from operator import attrgetter
from typing import Any, cast

import orjson
import prometheus_client
import trio
from quart import Response, request
from quart.wrappers.response import ResponseBody
from quart_trio import QuartTrio
from werkzeug.exceptions import HTTPException

from k8s_metrics.fieldselectors import META_FIELDS, FieldSelector, check_fields, parse_field_selector
from k8s_metrics.gostrings import go_quote
from k8s_metrics.selectors import LabelSelector, SelectorError, parse_label_selector
from metrics_server.api import listcache, protobuf, render, routing, status, yamlenc
from metrics_server.api import negotiate as neg
from metrics_server.api.discovery import GROUP, Document, build, group_list, if_none_match
from metrics_server.api.health import ROOTS, HealthChecks, HealthResponse
from metrics_server.api.openapi import V3_PREFIX, OpenAPIDocs, SpecError, load_spec
from metrics_server.api.params import OperationChecks, ParamError, compile_operations
from metrics_server.api.podindex import PodIndexes, indexable
from metrics_server.api.responses import encoded, index, status_response, without_content_type
from metrics_server.flagset import BOOL, METRICS_SERVER, flag
from metrics_server.kube.objects import NodeInfo, NodeLister, PodInfo, PodLister
from metrics_server.selfmetrics import exposition_async
from metrics_server.storage.snapshot import NodeUsage, PodUsageTuple, Snapshot

POD_FIELDS = (*META_FIELDS, "spec.nodeName")
"""Field selectors on pods: metrics-server's two plus `spec.nodeName` (kubernetes/kubernetes#131896)."""
NODE_FIELDS = META_FIELDS

_API = "/apis/metrics.k8s.io/v1beta1"
_TABLES = neg.ENCODINGS | {neg.TABLE_V1, neg.TABLE_V1BETA1}
_JSON_ONLY = frozenset({neg.JSON})
_DISCOVERY_ROOT = neg.ENCODINGS | {neg.DISCOVERY_V2}
_TRUE = frozenset({"1", "t", "T", "TRUE", "true", "True"})
_ACCEPT_MEMO = 256
"""Distinct Accept headers remembered (the memo is cleared when full: arbitrary headers cannot grow it)."""
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
    observe_freshness: Callable[[float], None] | None = None,
) -> QuartTrio:
    """Build the application.

    `snapshot()` is called once per request for a consistent view; listers are read as they are.
    `clock()` gives Unix seconds (creationTimestamp, freshness). `observe_freshness(seconds)` is
    called for every served object with `now - timestamp` (metrics-server's
    `metrics_server_api_metric_freshness_seconds`). `/metrics` renders `registry` as is (with
    `selfmetrics.exposition_async`: `generate_latest`'s bytes, with checkpoints): whoever builds
    it registers the self-metrics and, for metrics-server's process_* series, a
    `prometheus_client.ProcessCollector(registry=registry)`.

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
    api = _Api(nodes, pods, snapshot, options.serve_swap, node_selector, clock, observe_freshness)
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
            return _status(status.method_not_allowed(), 405)
        if exc.code == 404:
            if not routing.restful(request.path):
                return index(paths, 404)  # outside the API routes: the library's path listing
            rep = neg.negotiate(request.headers.get("Accept"), neg.ENCODINGS) or neg.JSON
            return _status(status.path_not_found(), 404, rep)
        code = exc.code or 500
        return _status(status.status_json(code, exc.name.replace(" ", ""), exc.description or exc.name), code)

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
            return _status(neg.rejection(header), 406)
        bad = _param_error(checks["get_api_groups"], {}, rep)
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
        body = await exposition_async(registry)
        return Response(body, status=200, content_type=prometheus_client.exposition.CONTENT_TYPE_PLAIN_0_0_4)

    return app


# --- helpers ----------------------------------------------------------------------------------


def _status(body: bytes, code: int, rep: str = neg.JSON) -> Response:
    return status_response(body, code, rep)


def _query() -> dict[str, list[str]]:
    if not request.query_string:  # most gets: skip building the dict
        return {}
    return request.args.to_dict(flat=False)


def _param_error(op: OperationChecks, path_params: Mapping[str, str], rep: str = neg.JSON) -> Response | None:
    try:
        op.check(path_params, _query())
    except ParamError as exc:
        return _status(status.bad_request(exc.message), 400, rep)
    return None


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
        return _status(neg.rejection(header), 406)
    bad = _param_error(op, {}, rep)
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


def _pretty() -> bool:
    """The apiserver's `isPrettyPrint`: `?pretty=<true>` or a curl/Wget/browser User-Agent."""
    value = request.args.get("pretty") if request.query_string else None
    if value:
        return value in _TRUE
    agent = request.headers.get("User-Agent", "")
    return agent.startswith(("curl", "Wget", "Mozilla/5.0"))


def _indent(body: bytes) -> bytes:
    return orjson.dumps(orjson.loads(body), option=orjson.OPT_INDENT_2) + b"\n"


def _bad_include(value: str) -> bytes:
    """The library's 400 for an unknown `includeObject` (indented, as it writes this one)."""
    message = (
        f"Unable to convert to Table as requested: includeObject: Invalid value: {go_quote(value)}: "
        "must be 'Metadata', 'Object', 'None', or empty"
    )
    return status.indented(status.bad_request(message))


def _is_watch(query: Mapping[str, list[str]]) -> bool:
    values = query.get("watch")
    return values is not None and len(values) > 0 and values[0].lower() not in ("0", "false")


def _list_option_errors(query: Mapping[str, list[str]], watch: bool) -> list[status.FieldError]:
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


class _Api:
    """The resource handlers. Holds read-only inputs and two caches: encoded fragments per snapshot
    and label indexes per namespace (`api.podindex`)."""

    def __init__(
        self,
        nodes: NodeLister,
        pods: PodLister,
        snapshot: Callable[[], Snapshot],
        serve_swap: bool,
        node_selector: LabelSelector,
        clock: Callable[[], float],
        observe_freshness: Callable[[float], None] | None,
    ) -> None:
        self.nodes = nodes
        self.pods = pods
        self.snapshot = snapshot
        self.serve_swap = serve_swap
        self.node_selector = node_selector
        self.clock = clock
        self.observe_freshness = observe_freshness
        self.cache = render.FragmentCache()
        self.indexes = PodIndexes()
        self.lists: dict[tuple[str, str | None], listcache.CachedList] = {}
        self.now = render.Clock()
        self._accept: dict[str | None, str | None] = {}
        self._pb_timestamps: list[int] = []

    def negotiate(self) -> str | None:
        """`negotiate(Accept, _TABLES)`, memoised by header value (clients repeat theirs)."""
        header = request.headers.get("Accept")
        try:
            return self._accept[header]
        except KeyError:
            pass
        rep = neg.negotiate(header, _TABLES)
        if len(self._accept) >= _ACCEPT_MEMO:
            self._accept.clear()
        self._accept[header] = rep
        return rep

    async def list_resource(
        self, op: OperationChecks, resource: str, namespace: str | None, path_params: Mapping[str, str]
    ) -> Response:
        rep = self.negotiate()
        if rep is None:
            return _status(neg.rejection(request.headers.get("Accept"), streams=True), 406)
        err = rep if rep in neg.ENCODINGS else neg.JSON  # errors: a Table client gets JSON
        bad = _param_error(op, path_params, err)
        if bad is not None:
            return bad
        query = _query()
        try:
            label = parse_label_selector(query.get("labelSelector", [""])[0])
            fields = parse_field_selector(query.get("fieldSelector", [""])[0])
        except SelectorError as exc:
            return _status(status.bad_request(str(exc)), 400, err)
        watch = _is_watch(query)
        errors = _list_option_errors(query, watch)
        if errors:
            return _status(status.invalid("ListOptions", "meta.k8s.io", "", errors), 422, err)
        try:
            check_fields(fields, POD_FIELDS if resource == "pods" else NODE_FIELDS)
        except SelectorError as exc:
            return _status(status.bad_request(str(exc)), 400, err)
        if watch:
            return _status(status.method_not_supported(resource, GROUP, "watch"), 405, err)
        include = render.INCLUDE_METADATA
        if rep not in neg.ENCODINGS:
            include = query.get("includeObject", [render.INCLUDE_METADATA])[0] or render.INCLUDE_METADATA
            if include not in (render.INCLUDE_NONE, render.INCLUDE_METADATA, render.INCLUDE_OBJECT):
                return _status(_bad_include(include), 400)

        while not self.cache.sweep(SWEEP_STEP):
            await trio.lowlevel.checkpoint()
        snap = self.snapshot()
        now_s = self.clock()
        kind = "NodeMetrics" if resource == "nodes" else "PodMetrics"
        if rep == neg.JSON and label.empty and fields.empty:
            try:
                cached = await self._cached_list(snap, resource, namespace, f"{kind}List")
            except Exception as exc:
                return _status(status.internal_error(f"failed listing {resource}: {exc}"), 500, err)
            count = len(cached.ages)
            if self.observe_freshness is not None:
                for start in range(0, count, OBSERVE_STEP):
                    cached.observe(now_s, self.observe_freshness, start, start + OBSERVE_STEP)
                    await trio.lowlevel.checkpoint()
            return await self._respond(
                cached.pieces(self.now.now_bytes(now_s)), neg.CONTENT_TYPES[rep], count
            )
        pb = rep == neg.PROTOBUF
        try:
            if resource == "nodes":
                fragments = await self._node_fragments(snap, label, fields, pb)
            else:
                fragments = await self._pod_fragments(snap, namespace, label, fields, pb)
        except Exception as exc:
            return _status(status.internal_error(f"failed listing {resource}: {exc}"), 500, err)
        if pb:
            self._observe_pb(now_s, fragments)
            pieces = protobuf.list_pieces(f"{kind}List", fragments, protobuf.now_varint(now_s), render.CHUNK)
            return await self._respond(pieces, protobuf.CONTENT_TYPE, len(fragments))
        for start in range(0, len(fragments), render.CHUNK):
            self._observe(now_s, fragments[start : start + render.CHUNK])
            await trio.lowlevel.checkpoint()
        now = self.now.now_bytes(now_s)
        if rep == neg.YAML:
            body = yamlenc.from_json(b"".join(render.list_pieces(f"{kind}List", fragments, now)))
            return Response(body, status=200, content_type=yamlenc.CONTENT_TYPE)
        if rep == neg.JSON:
            pieces = render.list_pieces(f"{kind}List", fragments, now)
        else:
            version = "v1" if rep == neg.TABLE_V1 else "v1beta1"
            pieces = render.table_pieces(version, kind, fragments, now, include)
        return await self._respond(pieces, neg.CONTENT_TYPES[rep], len(fragments))

    async def get_resource(
        self,
        op: OperationChecks,
        resource: str,
        namespace: str | None,
        name: str,
        path_params: Mapping[str, str],
    ) -> Response:
        rep = self.negotiate()
        if rep is None:
            return _status(neg.rejection(request.headers.get("Accept")), 406)
        err = rep if rep in neg.ENCODINGS else neg.JSON
        bad = _param_error(op, path_params, err)
        if bad is not None:
            return bad
        include = render.INCLUDE_METADATA
        if rep not in neg.ENCODINGS:
            include = request.args.get("includeObject") or render.INCLUDE_METADATA
            if include not in (render.INCLUDE_NONE, render.INCLUDE_METADATA, render.INCLUDE_OBJECT):
                return _status(_bad_include(include), 400)
        self.cache.sweep(SWEEP_STEP)
        snap = self.snapshot()
        now_s = self.clock()
        fragment: render.Fragment
        pb: protobuf.Fragment = (b"", b"", b"")
        try:
            if resource == "nodes":
                node = self.nodes.get(name)
                if node is None:
                    return _status(status.not_found("node", name), 404, err)
                node_usage = snap.node(name)
                if node_usage is None:
                    return _status(status.not_found("nodemetrics", name, group=GROUP), 404, err)
                gen = self.cache.generation(snap)
                fragment = render.cached_node_fragment(gen, node, node_usage, self.serve_swap)
                if rep == neg.PROTOBUF:
                    pb = protobuf.cached_node_fragment(gen, node, node_usage, self.serve_swap)
                kind = "NodeMetrics"
            else:
                assert namespace is not None
                pod = self.pods.get(namespace, name)
                if pod is None:
                    return _status(status.not_found("pods", name), 404, err)
                pod_usage = snap.pod(namespace, name)
                if pod_usage is None:
                    return _status(
                        status.not_found("podmetrics", f"{namespace}/{name}", group=GROUP), 404, err
                    )
                gen = self.cache.generation(snap)
                fragment = render.cached_pod_fragment(gen, pod, pod_usage, self.serve_swap)
                if rep == neg.PROTOBUF:
                    pb = protobuf.cached_pod_fragment(gen, pod, pod_usage, self.serve_swap)
                kind = "PodMetrics"
        except Exception as exc:
            return _status(status.internal_error(f"failed getting {resource} {name}: {exc}"), 500, err)
        if self.observe_freshness is not None:
            self.observe_freshness(now_s - fragment[render.TIMESTAMP] / 1e9)
        now = self.now.now_bytes(now_s)
        if rep == neg.PROTOBUF:
            body = protobuf.object_body(kind, pb, protobuf.now_varint(now_s))
            return Response(body, status=200, content_type=protobuf.CONTENT_TYPE)
        if rep in (neg.JSON, neg.YAML):
            body = render.object_body(kind, fragment, now)
            if rep == neg.YAML:
                return Response(yamlenc.from_json(body), status=200, content_type=yamlenc.CONTENT_TYPE)
        else:
            version = "v1" if rep == neg.TABLE_V1 else "v1beta1"
            body = b"".join(render.table_pieces(version, kind, [fragment], now, include))
        if _pretty():
            body = _indent(body)
        return Response(body, status=200, content_type=neg.CONTENT_TYPES[rep])

    def _observe(self, now_s: float, fragments: Iterable[render.Fragment]) -> None:
        observe = self.observe_freshness
        if observe is not None:
            for f in fragments:
                observe(now_s - f[render.TIMESTAMP] / 1e9)

    async def _cached_list(
        self, snap: Snapshot, resource: str, namespace: str | None, list_kind: str
    ) -> listcache.CachedList:
        """The JSON list without selectors of `resource` (in `namespace`), from `self.lists` when it
        is of this snapshot and lister state, else built (see `api.listcache`)."""
        key = (resource, namespace)
        state: Sequence[NodeInfo] | Sequence[PodInfo]
        state = _as_sequence(self.nodes.list() if resource == "nodes" else self.pods.list(namespace))
        entry = self.lists.pop(key, None)
        same_state = entry is not None and (entry.state is state or entry.state == state)
        if entry is not None and same_state and entry.snapshot is snap:
            self.lists[key] = entry  # most recently used last
            await trio.lowlevel.checkpoint()  # listing and comparing 150,000 pods is ~10 ms
            return entry
        if entry is not None:
            # 150,000 segments freed at once held the loop for ~10-30 ms: dropped in steps instead
            self.cache.discard(entry.chunks, render.CHUNK)
            self.cache.discard((entry.snapshot, entry.state), 1)  # maybe their last references
        order: Sequence[Any]
        if entry is not None and same_state:
            order = entry.order  # same objects, so the same selection and order: only usage is new
        elif resource == "nodes":
            nodes = [n for n in state if self.node_selector.empty or self.node_selector.matches(n.labels)]
            nodes.sort(key=_NAME)
            order = nodes
        else:
            order = await self._sorted_pods(cast(Sequence[PodInfo], state))
        gen = self.cache.generation(snap)
        serve_swap = self.serve_swap
        fragment_of: Callable[[Any], render.Fragment | None]
        if resource == "nodes":
            node_usage = snap.node

            def fragment_of(info: NodeInfo) -> render.Fragment | None:
                usage = node_usage(info.name)
                return None if usage is None else render.cached_node_fragment(gen, info, usage, serve_swap)

        else:
            pod_usage = snap.pod

            def fragment_of(info: PodInfo) -> render.Fragment | None:
                usage = pod_usage(info.namespace, info.name)
                return None if usage is None else render.cached_pod_fragment(gen, info, usage, serve_swap)

        chunk = render.CHUNK
        chunks: list[list[bytes]] = []
        ages = listcache.new_ages()
        pending: list[render.Fragment] = []
        clock = time.perf_counter
        until = clock() + STEP_S
        for i, info in enumerate(order, 1):
            fragment = fragment_of(info)
            if fragment is not None:
                pending.append(fragment)
                if len(pending) == chunk:
                    chunks.append(listcache.chunk_segments(pending, not chunks))
                    ages += listcache.chunk_ages(pending)
                    pending = []
            if i % _CLOCK_EVERY == 0 and clock() >= until:
                await trio.lowlevel.checkpoint()
                until = clock() + STEP_S
        if pending:
            chunks.append(listcache.chunk_segments(pending, not chunks))
            ages += listcache.chunk_ages(pending)
        await trio.lowlevel.checkpoint()
        entry = listcache.CachedList(snap, state, order, render.list_head(list_kind), chunks, ages)
        self.lists[key] = entry
        while len(self.lists) > MAX_CACHED_LISTS:
            self.cache.discard(self.lists.pop(next(iter(self.lists))).chunks, render.CHUNK)
        return entry

    async def _sorted_pods(self, pods: Sequence[PodInfo]) -> list[PodInfo]:
        """`pods` in (namespace, name) order, sorted in steps (see `_sorted_by_name`)."""
        by_namespace: dict[str, list[PodInfo]] = {}
        for start in range(0, len(pods), render.CHUNK):
            for info in pods[start : start + render.CHUNK]:
                group = by_namespace.get(info.namespace)
                if group is None:
                    group = by_namespace[info.namespace] = []
                group.append(info)
            await trio.lowlevel.checkpoint()
        out: list[PodInfo] = []
        for ns in sorted(by_namespace):
            ordered = iter(await _sorted_by_name(by_namespace[ns]))
            while True:
                before = len(out)
                out += islice(ordered, SORT_RUN)
                if len(out) - before < SORT_RUN:
                    break
                await trio.lowlevel.checkpoint()
        return out

    def _observe_pb(self, now_s: float, fragments: Sequence[Any]) -> None:
        """Freshness of protobuf fragments: their timestamps are in the selection's usages."""
        observe = self.observe_freshness
        if observe is not None:
            for usage_ts in self._pb_timestamps:
                observe(now_s - usage_ts / 1e9)
        self._pb_timestamps = []

    async def _node_fragments(
        self, snap: Snapshot, label: LabelSelector, fields: FieldSelector, pb: bool = False
    ) -> list[Any]:
        selected: list[tuple[NodeInfo, NodeUsage]] = []
        node_selector = self.node_selector
        for info in self.nodes.list():
            if not (node_selector.empty or node_selector.matches(info.labels)):
                continue
            if not (label.empty or label.matches(info.labels)):
                continue
            if not fields.empty and not fields.matches(_node_field_getter(info)):
                continue
            usage = snap.node(info.name)
            if usage is not None:
                selected.append((info, usage))
        selected.sort(key=_by_name)
        if pb:
            self._pb_timestamps = [usage[0] for _, usage in selected]
            gen = self.cache.generation(snap)
            swap = self.serve_swap
            return await _chunked(protobuf.cached_node_fragment(gen, i, u, swap) for i, u in selected)
        return await _chunked(render.node_fragments(self.cache, snap, selected, self.serve_swap))

    async def _pod_fragments(
        self,
        snap: Snapshot,
        namespace: str | None,
        label: LabelSelector,
        fields: FieldSelector,
        pb: bool = False,
    ) -> list[Any]:
        # An exact metadata.name term lets a list of one pod skip the scan (kubectl top pod --field-selector).
        exact_name = fields.exact("metadata.name") if namespace is not None else None
        candidates: Iterable[PodInfo]
        if exact_name is not None and namespace is not None:
            one = self.pods.get(namespace, exact_name)
            candidates = [one] if one is not None else []
        elif namespace is not None and indexable(label):
            # HPA-style `app=x[,...]` in one namespace: read only the pods carrying one named label.
            candidates = await self.indexes.select(namespace, self.pods.list(namespace), label)
        else:
            candidates = self.pods.list(namespace)
        matches = label.matcher()
        check_fields = not fields.empty
        # Selected pods by namespace; sorted per namespace below, which gives the order of sorting
        # by (namespace, name). Usage is looked up while rendering: pairing each pod with its usage
        # here would make 150,000 short-lived tuples whose release, in sorted order rather than
        # allocation order, alone held the event loop for ~30 ms.
        by_namespace: dict[str, list[PodInfo]] = {}
        count = 0
        for info in candidates:
            count += 1
            if count % render.CHUNK == 0:
                await trio.lowlevel.checkpoint()
            if not matches(info.labels):
                continue
            if check_fields and not fields.matches(_pod_field_getter(info)):
                continue
            group = by_namespace.get(info.namespace)
            if group is None:
                group = by_namespace[info.namespace] = []
            group.append(info)
        ordered = [await _sorted_by_name(by_namespace[ns]) for ns in sorted(by_namespace)]
        lookup = snap.pod

        def with_usage() -> Iterator[tuple[PodInfo, PodUsageTuple]]:
            for group in ordered:
                for info in group:
                    usage = lookup(info.namespace, info.name)
                    if usage is not None:
                        yield info, usage

        if pb:
            pairs = list(with_usage())
            self._pb_timestamps = [usage[0] for _, usage in pairs]
            gen = self.cache.generation(snap)
            swap = self.serve_swap
            return await _chunked(protobuf.cached_pod_fragment(gen, i, u, swap) for i, u in pairs)
        return await _chunked(render.pod_fragments(self.cache, snap, with_usage(), self.serve_swap))

    async def _respond(self, pieces: Iterable[bytes], content_type: str, count: int) -> Response:
        """Produce the body piece by piece, yielding to the event loop between pieces.

        The body is complete before the status line is sent (with its Content-Length), which keeps
        error handling simple: nothing can fail afterwards. A large body is then handed to the
        server as its pieces (`_Pieces`) rather than joined: joining 55 MB (150,000 pods) held the
        loop for ~35 ms, and the server encrypts and writes one part per step instead.
        """
        if count <= render.CHUNK:
            body = b"".join(pieces)
        else:
            parts: list[bytes] = []
            for piece in pieces:
                parts.append(piece)
                await trio.lowlevel.checkpoint()
            if not _pretty():
                response = Response(_Pieces(parts), status=200, content_type=content_type)
                response.headers["Content-Length"] = str(sum(map(len, parts)))
                return response
            body = b"".join(parts)
        if _pretty():
            body = _indent(body)
        return Response(body, status=200, content_type=content_type)


BODY_MESSAGES = 8
"""At most this many body messages per response. Quart's test client buffers 10 messages and reads
them only once the app returns (more would deadlock it); for 55 MB that is ~7 MB per message, one
join and one TLS write of a few ms each."""


class _Pieces(ResponseBody, AsyncIterator[bytes]):
    """A response body already in memory as pieces, sent as up to `BODY_MESSAGES` messages, one per
    event-loop step.

    An explicit iterator rather than an async generator: a body abandoned half-way (client gone)
    leaves no generator to finalise.
    """

    def __init__(self, pieces: list[bytes]) -> None:
        self.pieces = pieces
        self.step = -(-len(pieces) // BODY_MESSAGES)  # pieces per message, rounded up
        self.next = 0

    async def __aenter__(self) -> _Pieces:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    def __aiter__(self) -> _Pieces:
        return self

    async def __anext__(self) -> bytes:
        if self.next >= len(self.pieces):
            raise StopAsyncIteration
        await trio.lowlevel.checkpoint()
        start = self.next
        self.next += self.step
        return b"".join(self.pieces[start : self.next])


SORT_RUN = 8 * render.CHUNK
"""Pods sorted in one step (~2-3 ms); a larger namespace is sorted in runs and merged lazily."""


async def _sorted_by_name(pods: list[PodInfo]) -> Iterable[PodInfo]:
    """`pods` in name order, after at least one checkpoint. Up to `SORT_RUN` pods: sorted in place.
    More (one sort of 36,000 pods is ~10 ms): sorted runs with checkpoints between them, then a
    lazy merge that the caller consumes in chunks."""
    if len(pods) <= SORT_RUN:
        pods.sort(key=_NAME)
        await trio.lowlevel.checkpoint()
        return pods
    runs: list[list[PodInfo]] = []
    for start in range(0, len(pods), SORT_RUN):
        run = pods[start : start + SORT_RUN]
        run.sort(key=_NAME)
        runs.append(run)
        await trio.lowlevel.checkpoint()
    return heapq.merge(*runs, key=_NAME)


_NAME = attrgetter("name")


def _as_sequence(items: Iterable[Any]) -> Sequence[Any]:
    return items if isinstance(items, (tuple, list)) else tuple(items)


SWEEP_STEP = 1000
"""Items of dropped caches freed per step (`FragmentCache.sweep`; ~0.5-1 ms)."""
MAX_CACHED_LISTS = 16
"""Lists without selectors kept (`api.listcache`), least recently used dropped: all pods, all nodes
and the namespaces listed most recently."""
OBSERVE_STEP = 2 * render.CHUNK
"""Freshness observations between checkpoints (~0.5 us each with the server's histogram)."""


def _by_name(pair: tuple[NodeInfo | PodInfo, object]) -> str:
    return pair[0].name


STEP_S = 0.002
"""Longest run of fragment encoding between checkpoints. A get takes several event-loop steps and
waits behind one step of a concurrent list at each, so list steps must be short, not just bounded."""
_CLOCK_EVERY = 32


async def _chunked(fragments: Iterable[Any]) -> list[Any]:
    """Materialise fragments, yielding to the event loop after every ~`STEP_S` of work.

    By time, not count: a cached fragment costs ~0.3 us, a cold encode 10-25 us, so 1000 cold
    encodes held the loop for 10-25 ms. The clock is read every `_CLOCK_EVERY` fragments."""
    out: list[Any] = []
    clock = time.perf_counter
    until = clock() + STEP_S
    for f in fragments:
        out.append(f)
        if len(out) % _CLOCK_EVERY == 0 and clock() >= until:
            await trio.lowlevel.checkpoint()
            until = clock() + STEP_S
    await trio.lowlevel.checkpoint()
    return out


def _node_field_getter(info: NodeInfo) -> Callable[[str], str]:
    return lambda f: info.name if f == "metadata.name" else ""


def _pod_field_getter(info: PodInfo) -> Callable[[str], str]:
    def get(f: str) -> str:
        if f == "metadata.name":
            return info.name
        if f == "metadata.namespace":
            return info.namespace
        if f == "spec.nodeName":
            return info.node_name
        return ""

    return get
