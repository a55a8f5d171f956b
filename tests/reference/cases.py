"""The requests the differential suite sends to both servers (imported as `cases`).

Every case is one request; `http_cases` builds them from the comparison workload's names. Groups:
discovery, resources (every endpoint, with and without label and field selectors, valid and
invalid, list options, watch), content types (JSON, Table, YAML, protobuf, unacceptable), errors
(NotFound, Forbidden, methods, unknown paths, trailing slashes), health, OpenAPI, version.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import quote

from refharness import ADMIN, JANE

from kubesim.deterministic import DIFF_NAMESPACES, Workload

API = "/apis/metrics.k8s.io/v1beta1"
TABLE_V1 = "application/json;as=Table;v=v1;g=meta.k8s.io"
TABLE_V1BETA1 = "application/json;as=Table;v=v1beta1;g=meta.k8s.io"
KUBECTL_GET = f"{TABLE_V1},{TABLE_V1BETA1},application/json"
KUBECTL_TOP = "application/vnd.kubernetes.protobuf, */*"
PROTOBUF = "application/vnd.kubernetes.protobuf"
YAML = "application/yaml"
V2 = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"
V2BETA1 = "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList"
KUBECTL_127_DISCOVERY = f"{V2BETA1},application/json"
KUBECTL_133_DISCOVERY = f"{V2},{V2BETA1},application/json"
AGGREGATOR_DISCOVERY = f"{V2},{V2BETA1}"


@dataclass(frozen=True, slots=True)
class Case:
    group: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    method: str = "GET"
    who: tuple[str, tuple[str, ...]] = ADMIN

    @property
    def id(self) -> str:
        accept = self.headers.get("Accept")
        extra = "".join(f" [{k}: {v}]" for k, v in self.headers.items() if k != "Accept")
        return (
            f"{self.method} {self.path}"
            + (f" [Accept: {accept}]" if accept else "")
            + extra
            + (f" as {self.who[0]}" if self.who != ADMIN else "")
        )


def q(path: str, **params: str) -> str:
    return path + "?" + "&".join(f"{k}={quote(v, safe='')}" for k, v in params.items())


LABEL_SELECTORS = (
    "app=web",
    "app==web",
    "app!=web",
    "app in (web,multi)",
    "app notin (web)",
    "tier",
    "!tier",
    "env=prod,tier=frontend",
    "index>0",
    "index<2",
    "app=nothing-has-this",
)
BAD_LABEL_SELECTORS = ("app=(", "app in (web", "a b", "=x", "app==", "x>y", "-bad=1")
POD_FIELD_SELECTORS = (
    "metadata.name=web-1",
    "metadata.name!=web-1",
    "metadata.namespace=diff-b",
    "metadata.name=web-1,metadata.namespace=diff-b",
    "metadata.name==web-0",
)
BAD_FIELD_SELECTORS = ("status.phase=Running", "bad", "metadata.name", "spec.nodeName=x")


def resource_cases(w: Workload, nodes: list[str]) -> list[Case]:
    a, b = DIFF_NAMESPACES
    n0 = nodes[0]
    out = [
        Case("resources", f"{API}/nodes"),
        Case("resources", f"{API}/pods"),
        *(Case("resources", f"{API}/nodes/{n}") for n in nodes),
        Case("resources", f"{API}/nodes/no-such-node"),
        *(Case("resources", f"{API}/namespaces/{ns}/pods") for ns in (*DIFF_NAMESPACES, "kube-system")),
        Case("resources", f"{API}/namespaces/no-such-namespace/pods"),
        Case("resources", f"{API}/namespaces/{a}/pods/multi"),
        Case("resources", f"{API}/namespaces/{a}/pods/init"),
        Case("resources", f"{API}/namespaces/{a}/pods/solo"),
        Case("resources", f"{API}/namespaces/{a}/pods/pending"),
        Case("resources", f"{API}/namespaces/{b}/pods/on-failing-node"),
        Case("resources", f"{API}/namespaces/{b}/pods/no-such-pod"),
    ]
    for selector in LABEL_SELECTORS:
        out.append(Case("label selectors", q(f"{API}/namespaces/{b}/pods", labelSelector=selector)))
        out.append(Case("label selectors", q(f"{API}/pods", labelSelector=selector)))
    for selector in ("topology.kubernetes.io/zone=sim-zone-a", f"kubernetes.io/hostname={n0}", "!nope"):
        out.append(Case("label selectors", q(f"{API}/nodes", labelSelector=selector)))
    for selector in BAD_LABEL_SELECTORS:
        out.append(Case("label selectors", q(f"{API}/namespaces/{b}/pods", labelSelector=selector)))
        out.append(Case("label selectors", q(f"{API}/nodes", labelSelector=selector)))
    for selector in POD_FIELD_SELECTORS:
        out.append(Case("field selectors", q(f"{API}/namespaces/{b}/pods", fieldSelector=selector)))
        out.append(Case("field selectors", q(f"{API}/pods", fieldSelector=selector)))
    for selector in BAD_FIELD_SELECTORS:
        out.append(Case("field selectors", q(f"{API}/pods", fieldSelector=selector)))
        out.append(Case("field selectors", q(f"{API}/nodes", fieldSelector=selector)))
    out.append(Case("field selectors", q(f"{API}/nodes", fieldSelector=f"metadata.name={n0}")))
    out.append(Case("field selectors", q(f"{API}/pods", fieldSelector=f"spec.nodeName={n0}")))
    for params in (
        {"limit": "1"},
        {"limit": "500"},
        {"limit": "-1"},
        {"continue": "abc"},
        {"resourceVersion": "0"},
        {"resourceVersion": "123"},
        {"resourceVersion": "0", "resourceVersionMatch": "NotOlderThan"},
        {"resourceVersionMatch": "Exact"},
        {"resourceVersion": "0", "resourceVersionMatch": "Exact"},
        {"resourceVersion": "1", "resourceVersionMatch": "Bogus"},
        {"sendInitialEvents": "true"},
        {"timeoutSeconds": "5"},
        {"timeout": "32s"},
        {"watch": "false"},
        {"watch": "0"},
        {"pretty": "true"},
        {"pretty": "false"},
    ):
        out.append(Case("list options", q(f"{API}/namespaces/{a}/pods", **params)))
    for params in ({"watch": "true"}, {"watch": "1"}, {"watch": "true", "resourceVersion": "0"}):
        out.append(Case("watch", q(f"{API}/pods", **params)))
        out.append(Case("watch", q(f"{API}/nodes", **params)))
    out.append(Case("watch", f"{API}/watch/pods"))
    out.append(Case("resources", q(f"{API}/nodes/{n0}", pretty="true")))
    return out


def content_cases(nodes: list[str]) -> list[Case]:
    a, b = DIFF_NAMESPACES
    paths = (
        f"{API}/nodes",
        f"{API}/nodes/{nodes[0]}",
        f"{API}/namespaces/{a}/pods",
        f"{API}/namespaces/{a}/pods/multi",
        f"{API}/pods",
    )
    out: list[Case] = []
    for path in paths:
        for accept in (
            KUBECTL_GET,
            TABLE_V1,
            TABLE_V1BETA1,
            KUBECTL_TOP,
            PROTOBUF,
            YAML,
            "application/json",
            "*/*",
            "application/json, */*",
        ):
            out.append(Case("content types", path, {"Accept": accept}))
    for params in ({"includeObject": "None"}, {"includeObject": "Object"}, {"includeObject": "Bogus"}):
        out.append(Case("content types", q(f"{API}/namespaces/{b}/pods", **params), {"Accept": TABLE_V1}))
    for accept in (
        "text/html",
        "application/xml",
        "application/json;as=Foo;v=v1;g=meta.k8s.io",
        f"{PROTOBUF};as=Table;v=v1;g=meta.k8s.io",
        "application/json;stream=watch",
    ):
        out.append(Case("content types", f"{API}/nodes", {"Accept": accept}))
        out.append(Case("content types", f"{API}/namespaces/{a}/pods/no-such-pod", {"Accept": accept}))
    for accept in (PROTOBUF, YAML):
        out.append(Case("content types", f"{API}/nodes/no-such-node", {"Accept": accept}))
        out.append(Case("content types", q(f"{API}/pods", labelSelector="a b"), {"Accept": accept}))
        out.append(Case("content types", q(f"{API}/pods", watch="true"), {"Accept": accept}))
    return out


def discovery_cases() -> list[Case]:
    out: list[Case] = []
    for path in ("/apis", "/apis/metrics.k8s.io", API, "/api", "/apis/metrics.k8s.io/v1"):
        for accept in (
            None,
            "application/json",
            KUBECTL_127_DISCOVERY,
            KUBECTL_133_DISCOVERY,
            PROTOBUF,
            YAML,
        ):
            headers = {"Accept": accept} if accept else {}
            out.append(Case("discovery", path, headers))
    for accept in (V2, V2BETA1, AGGREGATOR_DISCOVERY, "text/html"):
        out.append(Case("discovery", "/apis", {"Accept": accept}))
    for path in ("/apis", API):
        out.append(Case("discovery", path, {"If-None-Match": "*"}))
        out.append(Case("discovery", path, {"If-None-Match": '"nope"'}))
    out.append(Case("discovery", "/apis", {"Accept": V2, "If-None-Match": "*"}))
    out.append(Case("discovery", q("/apis", timeout="32s")))
    out.append(Case("discovery", q(API, timeout="32s")))
    return out


def error_cases() -> list[Case]:
    a = DIFF_NAMESPACES[0]
    out = [
        Case("forbidden", f"{API}/namespaces/default/pods", who=JANE),
        Case("forbidden", f"{API}/namespaces/default/pods/x", who=JANE),
        Case("forbidden", f"{API}/pods", who=JANE),
        Case("forbidden", f"{API}/nodes", who=JANE),
        Case("forbidden", f"{API}/nodes/x", who=JANE),
        Case("forbidden", q(f"{API}/namespaces/default/pods", fieldSelector="metadata.name=x"), who=JANE),
        Case("forbidden", f"{API}/namespaces/team-a/pods", who=JANE),
        Case("forbidden", "/metrics", who=JANE),
        Case("forbidden", "/livez/ping", who=JANE),
        Case("forbidden", "/readyz", who=JANE),
        Case("forbidden", f"{API}", who=JANE),
    ]
    for path in (
        f"{API}/foo",
        f"{API}/namespaces/{a}/foo",
        "/apis/metrics.k8s.io/v2",
        "/foo",
        "/",
        "/apis/other",
    ):
        out.append(Case("not found", path))
    for method in ("POST", "PUT", "PATCH", "DELETE"):
        out.append(Case("methods", f"{API}/nodes", method=method))
        out.append(Case("methods", f"{API}/namespaces/{a}/pods/multi", method=method))
    # Owned by the connection/edge change (pending): HEAD, OPTIONS, trailing slashes, `//`.
    for method in ("HEAD", "OPTIONS"):
        out.append(Case("edges", f"{API}/nodes", method=method))
    for path in (f"{API}/nodes/", f"{API}/namespaces/{a}/pods/", f"{API}/", "/apis/", "/healthz/", "//apis"):
        out.append(Case("edges", path))
    return out


_BUILT_INS = (
    "ping",
    "log",
    "poststarthook/max-in-flight-filter",
    "poststarthook/storage-object-count-tracker-hook",
)
HEALTH_CHECKS = {
    "healthz": (*_BUILT_INS, "metadata-informer-sync"),
    "livez": (*_BUILT_INS, "metric-collection-timely", "metadata-informer-sync"),
    "readyz": (
        *_BUILT_INS,
        "metric-storage-ready",
        "metric-informer-sync",
        "metadata-informer-sync",
        "shutdown",
    ),
}
"""metrics-server v0.8.0's checks (its e2e test asserts these verbose bodies)."""


def health_cases() -> list[Case]:
    out: list[Case] = []
    for root, checks in HEALTH_CHECKS.items():
        out += [
            Case("health", f"/{root}"),
            Case("health", f"/{root}?verbose"),
            Case("health", f"/{root}?verbose=true"),
            Case("health", f"/{root}?exclude=ping&verbose"),
            Case("health", f"/{root}?exclude=nope&verbose"),
            Case("health", f"/{root}?exclude=ping"),
            Case("health", f"/{root}/no-such-check"),
        ]
        out += [Case("health", f"/{root}/{check}") for check in checks]
    return out


def openapi_cases() -> list[Case]:
    return [
        Case("openapi", "/openapi/v2"),
        Case("openapi", "/openapi/v3"),
        Case("openapi", "/openapi/v3/apis/metrics.k8s.io/v1beta1"),
        Case("openapi", "/openapi/v3/apis"),
        Case("openapi", "/openapi/v3/apis/metrics.k8s.io"),
        Case("openapi", "/openapi/v3/version"),
        Case("openapi", "/openapi/v3/apis/metrics.k8s.io/v1beta1?hash=stale"),
        Case("openapi", "/openapi/v3/no-such-group"),
        Case("openapi", "/openapi/v2", {"Accept": "text/html"}),
        Case("version", "/version"),
    ]


def http_cases(w: Workload, nodes: list[str]) -> list[Case]:
    return [
        *discovery_cases(),
        *resource_cases(w, nodes),
        *content_cases(nodes),
        *error_cases(),
        *health_cases(),
        *openapi_cases(),
    ]
