"""The simulated kube-apiserver: discovery, nodes/pods/namespaces/configmaps, auth reviews, aggregator.

Request flow as in kube-apiserver: authenticate (bearer token, else client certificate from
the cluster CA, else anonymous; a bad token is 401), build the request attributes
(RequestInfoFactory rules), authorize against the `Policy` (403 with the upstream Forbidden
text), then serve. `/apis/metrics.k8s.io/v1beta1/**` goes to the `Aggregator` after
authorization; `/apis` and `/apis/metrics.k8s.io` are answered here. Every reply is JSON except
the aggregator's plain-text 503 and the health endpoints.

Get, list and watch of the core resources are `listwatch`'s (selectors, pages, watch streams with
a BOOKMARK every `bookmark_interval_s` when asked for).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from typing import Any

import orjson

from k8s_metrics.fieldselectors import parse_field_selector
from k8s_metrics.selectors import SelectorError

from . import discovery, listwatch, reviews
from .aggregator import DISCOVERY_PATH, GROUP, VERSION, Aggregator
from .clock import SimClock
from .httpserver import Request, Response
from .model import ClusterModel
from .policy import ANONYMOUS_USER, METHOD_VERBS, Attributes, Policy, User, forbidden_message
from .responses import JSON, NO_METHOD, TRUE_VALUES, UNAUTHORIZED, json_response, status
from .store import Store
from .workloads import APPS_RESOURCES, Workloads

K8S_VERSION = {
    "major": "1",
    "minor": "31",
    "gitVersion": "v1.31.4-kubesim",
    "gitCommit": "a78aa47129b8539636eb86a9d00e31b2720fe06b",
    "gitTreeState": "clean",
    "buildDate": "2024-12-10T11:36:01Z",
    "goVersion": "go1.22.9",
    "compiler": "gc",
    "platform": "linux/amd64",
}

_READ_VERBS = ["get", "list", "watch"]
CORE_RESOURCES = [
    {
        "name": "configmaps",
        "singularName": "configmap",
        "namespaced": True,
        "kind": "ConfigMap",
        "verbs": _READ_VERBS,
        "shortNames": ["cm"],
    },
    {
        "name": "namespaces",
        "singularName": "namespace",
        "namespaced": False,
        "kind": "Namespace",
        "verbs": _READ_VERBS,
        "shortNames": ["ns"],
    },
    {
        "name": "nodes",
        "singularName": "node",
        "namespaced": False,
        "kind": "Node",
        "verbs": _READ_VERBS,
        "shortNames": ["no"],
    },
    {
        "name": "pods",
        "singularName": "pod",
        "namespaced": True,
        "kind": "Pod",
        "verbs": _READ_VERBS,
        "shortNames": ["po"],
        "categories": ["all"],
    },
]
GROUP_RESOURCES: dict[str, list[dict[str, Any]]] = {
    "apps/v1": APPS_RESOURCES,
    "apiregistration.k8s.io/v1": [
        {
            "name": "apiservices",
            "singularName": "apiservice",
            "namespaced": False,
            "kind": "APIService",
            "verbs": ["get", "list"],
            "categories": ["api-extensions"],
        },
    ],
    "authentication.k8s.io/v1": [
        {
            "name": "tokenreviews",
            "singularName": "tokenreview",
            "namespaced": False,
            "kind": "TokenReview",
            "verbs": ["create"],
        },
    ],
    "authorization.k8s.io/v1": [
        {
            "name": "selfsubjectaccessreviews",
            "singularName": "selfsubjectaccessreview",
            "namespaced": False,
            "kind": "SelfSubjectAccessReview",
            "verbs": ["create"],
        },
        {
            "name": "subjectaccessreviews",
            "singularName": "subjectaccessreview",
            "namespaced": False,
            "kind": "SubjectAccessReview",
            "verbs": ["create"],
        },
    ],
}


def _group_doc(group_version: str) -> dict[str, Any]:
    group, version = group_version.split("/")
    gv = {"groupVersion": group_version, "version": version}
    return {"name": group, "versions": [gv], "preferredVersion": gv}


def request_attributes(request: Request, user: User) -> Attributes:
    """kube-apiserver's RequestInfoFactory: which resource and verb a request addresses."""
    path = request.path
    parts = [p for p in path.strip("/").split("/") if p]
    method_verb = METHOD_VERBS.get(request.method, request.method.lower())
    if len(parts) >= 2 and parts[0] == "api":
        group, version, rest = "", parts[1], parts[2:]
    elif len(parts) >= 3 and parts[0] == "apis":
        group, version, rest = parts[1], parts[2], parts[3:]
    else:
        return Attributes(user, request.method.lower(), False, path=path)
    if not rest:
        return Attributes(user, request.method.lower(), False, path=path)
    verb = method_verb
    if rest[0] == "watch":
        verb, rest = "watch", rest[1:]
    namespace = ""
    if rest and rest[0] == "namespaces" and len(rest) > 2:
        namespace, rest = rest[1], rest[2:]
    if not rest:
        return Attributes(user, request.method.lower(), False, path=path)
    resource = rest[0]
    name = rest[1] if len(rest) > 1 else ""
    subresource = rest[2] if len(rest) > 2 else ""
    if verb == "get" and not name:
        verb = "watch" if request.param("watch").lower() in TRUE_VALUES else "list"
    if verb in ("list", "watch") and not name:
        with contextlib.suppress(SelectorError):  # validity is checked when serving
            name = parse_field_selector(request.param("fieldSelector")).exact("metadata.name") or ""
    if method_verb == "delete" and not name:
        verb = "deletecollection"
    return Attributes(user, verb, True, namespace, group, version, resource, subresource, name, path)


class ApiServer:
    """Handles every request of the simulated kube-apiserver (see module docstring)."""

    def __init__(
        self,
        model: ClusterModel,
        store: Store,
        policy: Policy,
        aggregator: Aggregator,
        clock: SimClock,
        *,
        bookmark_interval_s: float = 60.0,
        control: Callable[[Request], Response] | None = None,
        workloads: Workloads | None = None,
    ) -> None:
        self.model = model
        self.store = store
        self.policy = policy
        self.aggregator = aggregator
        self.clock = clock
        self.bookmark_interval_s = bookmark_interval_s
        self.address = ""
        self._control = control
        self.workloads = workloads
        self.requests = 0

    # --- authentication ----------------------------------------------------------------

    def authenticate(self, request: Request) -> User | None:
        """The caller, or None for a credential that fails (401; no fallback to anonymous)."""
        auth = request.header("authorization")
        if auth is not None:
            scheme, _, token = auth.partition(" ")
            if scheme.lower() == "bearer" and token.strip():
                return self.policy.authenticate_token(token.strip())
            return None
        if request.peer.cert_common_name is not None:
            return Policy.user_from_certificate(
                request.peer.cert_common_name, request.peer.cert_organizations
            )
        return ANONYMOUS_USER

    # --- entry point -------------------------------------------------------------------

    async def handle(self, request: Request) -> Response:
        self.requests += 1
        user = self.authenticate(request)
        if user is None:
            return Response(401, list(JSON), orjson.dumps(UNAUTHORIZED))
        attrs = request_attributes(request, user)
        decision = self.policy.authorize(attrs)
        if not decision.allowed:
            details: dict[str, Any] = {}
            if attrs.resource_request:
                if attrs.name:
                    details["name"] = attrs.name
                if attrs.api_group:
                    details["group"] = attrs.api_group
                details["kind"] = attrs.resource
            return status(403, forbidden_message(attrs, decision.reason), details=details)
        if attrs.resource_request and attrs.api_group == GROUP and attrs.api_version == VERSION:
            return await self.aggregator.proxy(request, user)
        if not attrs.resource_request:
            return await self._non_resource(request, user)
        return await self._resource(request, attrs)

    # --- non-resource paths ------------------------------------------------------------

    async def _non_resource(self, request: Request, user: User) -> Response:
        path = request.path.rstrip("/") or "/"
        if path.startswith("/sim/") and self._control is not None:
            return self._control(request)
        if request.method not in ("GET", "HEAD"):
            return status(405, NO_METHOD, details={})
        aggregated = None
        if path in ("/api", "/apis"):
            aggregated = discovery.requested_version(request.header("accept"))
        if path == "/api" and aggregated is not None:
            body = discovery.list_document(aggregated, [discovery.core_item(CORE_RESOURCES)])
            return discovery.respond(request, aggregated, body)
        if path == "/apis" and aggregated is not None:
            items = [
                discovery.group_item(
                    gv.split("/")[0],
                    [
                        {
                            "version": gv.split("/")[1],
                            "resources": [discovery.resource_entry(r, gv) for r in resources],
                            "freshness": "Current",
                        }
                    ],
                )
                for gv, resources in sorted(GROUP_RESOURCES.items())
            ]
            items.append(discovery.group_item(GROUP, [self.aggregator.discovery_entry()]))
            return discovery.respond(request, aggregated, discovery.list_document(aggregated, items))
        if path == "/api":
            return json_response(
                {
                    "kind": "APIVersions",
                    "versions": ["v1"],
                    "serverAddressByClientCIDRs": [
                        {"clientCIDR": "0.0.0.0/0", "serverAddress": self.address}
                    ],
                }
            )
        if path == "/apis":
            groups = [*sorted(GROUP_RESOURCES), f"{GROUP}/{VERSION}"]
            return json_response(
                {"kind": "APIGroupList", "apiVersion": "v1", "groups": [_group_doc(g) for g in groups]}
            )
        if path == "/api/v1":
            return json_response(
                {"kind": "APIResourceList", "groupVersion": "v1", "resources": CORE_RESOURCES}
            )
        if path == f"/apis/{GROUP}":
            return json_response({"kind": "APIGroup", "apiVersion": "v1", **_group_doc(f"{GROUP}/{VERSION}")})
        if path == DISCOVERY_PATH:
            return await self.aggregator.proxy(request, user)
        for gv, resources in GROUP_RESOURCES.items():
            if path == f"/apis/{gv}":
                return json_response(
                    {
                        "kind": "APIResourceList",
                        "apiVersion": "v1",
                        "groupVersion": gv,
                        "resources": resources,
                    }
                )
            if path == f"/apis/{gv.split('/')[0]}":
                return json_response({"kind": "APIGroup", "apiVersion": "v1", **_group_doc(gv)})
        if path == "/version":
            return json_response(K8S_VERSION)
        if path in ("/healthz", "/livez", "/readyz"):
            return Response(
                200,
                [("Content-Type", "text/plain; charset=utf-8"), ("X-Content-Type-Options", "nosniff")],
                b"ok",
            )
        return status(404, "the server could not find the requested resource", details={})

    # --- resources ---------------------------------------------------------------------

    async def _resource(self, request: Request, a: Attributes) -> Response:
        gv = f"{a.api_group}/{a.api_version}" if a.api_group else a.api_version
        if gv == "v1" and a.resource in self.store.resources and not a.subresource:
            rs = self.store.resources[a.resource]
            if rs.namespaced is False and a.namespace:
                return status(404, "the server could not find the requested resource", details={})
            if a.verb == "get":
                return listwatch.get(rs, a.resource, a.namespace, a.name)
            if a.verb == "list":
                return listwatch.list_objects(request, rs, a.namespace, self.clock.now_ns())
            if a.verb == "watch":
                w = listwatch.watch_request(request, rs, a.namespace)
                if isinstance(w, Response):
                    return w
                return listwatch.watch(rs, w, self.bookmark_interval_s)
            return status(405, NO_METHOD, details={})
        if gv == "apps/v1" and self.workloads is not None:
            return self.workloads.handle(request, a)
        if gv == "authentication.k8s.io/v1" and a.resource == "tokenreviews" and not a.name:
            return (
                reviews.token_review(self.policy, request)
                if a.verb == "create"
                else status(405, NO_METHOD, details={})
            )
        if (
            gv == "authorization.k8s.io/v1"
            and a.resource in ("subjectaccessreviews", "selfsubjectaccessreviews")
            and not a.name
        ):
            if a.verb != "create":
                return status(405, NO_METHOD, details={})
            return reviews.access_review(
                self.policy, request, a.user if a.resource.startswith("self") else None
            )
        if gv == "apiregistration.k8s.io/v1" and a.resource == "apiservices" and not a.subresource:
            return self._apiservices(a)
        return status(404, "the server could not find the requested resource", details={})

    def _apiservices(self, a: Attributes) -> Response:
        svc = self.aggregator.apiservice()
        if a.verb == "get":
            if a.name != svc["metadata"]["name"]:
                return status(
                    404,
                    f'apiservices.apiregistration.k8s.io "{a.name}" not found',
                    details={"name": a.name, "group": "apiregistration.k8s.io", "kind": "apiservices"},
                )
            return json_response(svc)
        if a.verb == "list":
            item = {k: v for k, v in svc.items() if k not in ("kind", "apiVersion")}
            return json_response(
                {
                    "kind": "APIServiceList",
                    "apiVersion": "apiregistration.k8s.io/v1",
                    "metadata": {"resourceVersion": str(self.store.rv)},
                    "items": [item],
                }
            )
        return status(405, NO_METHOD, details={})
