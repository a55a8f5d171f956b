"""Aggregated discovery (`apidiscovery.k8s.io` v2, v2beta1) of `/api` and `/apis`, as kube-apiserver 1.27+.

A client that asks for `application/json;g=apidiscovery.k8s.io;v=v2[beta1];as=APIGroupDiscoveryList`
(kubectl 1.27-1.33 do, before plain JSON) gets one `APIGroupDiscoveryList` per request instead of
the legacy documents, with `ETag`, `Vary: Accept` and 304 on a matching `If-None-Match` (no body,
no Content-Type). The first clause of the Accept header that the server can serve wins, so a
client that puts plain JSON first gets the legacy document.

The `metrics.k8s.io` entry is what kube-aggregator makes of the backend (`BackendDiscovery`,
refreshed by the `Aggregator`): the backend's own `metrics.k8s.io/v1beta1` version entry, passed
through as is when the backend serves aggregated discovery on `/apis`; else its legacy
`APIResourceList` converted; `freshness: Stale` with no resources when neither answers (kubectl
then drops the group: `error: Metrics API not available`).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any

import orjson

from .httpserver import Request, Response

V2 = "v2"
V2BETA1 = "v2beta1"
_KIND = "APIGroupDiscoveryList"
_GROUP = "apidiscovery.k8s.io"


def content_type(version: str) -> str:
    return f"application/json;g={_GROUP};v={version};as={_KIND}"


ACCEPT_FROM_AGGREGATOR = f"{content_type(V2)},{content_type(V2BETA1)}"
"""What kube-aggregator (1.30+) sends to a backend's `/apis`: no plain-JSON fallback."""


def requested_version(accept: str | None) -> str | None:
    """The aggregated-discovery version the Accept header asks for first, or None for legacy JSON.

    Clauses are taken in order (kubectl sends them in preference order, all with q=1); the first
    one that names JSON decides: aggregated v2/v2beta1, or plain `application/json` / `*/*`."""
    for clause in (accept or "").split(","):
        fields = [f.strip() for f in clause.split(";")]
        media = fields[0].lower()
        if media not in ("application/json", "application/*", "*/*"):
            continue
        params = dict(f.partition("=")[::2] for f in fields[1:] if "=" in f)
        if params.get("as") == _KIND and params.get("g") == _GROUP and params.get("v") in (V2, V2BETA1):
            return params["v"]
        if "as" not in params and "g" not in params and "v" not in params:
            return None
    return None


def parse_content_type(value: str | None) -> str | None:
    """The aggregated-discovery version a response's Content-Type announces, else None."""
    if not value:
        return None
    fields = [f.strip() for f in value.split(";")]
    params = dict(f.partition("=")[::2] for f in fields[1:] if "=" in f)
    if fields[0].lower() == "application/json" and params.get("as") == _KIND and params.get("g") == _GROUP:
        version = params.get("v")
        return version if version in (V2, V2BETA1) else None
    return None


def resource_entry(legacy: dict[str, Any], group_version: str = "v1") -> dict[str, Any]:
    """An `APIResource` of a legacy `APIResourceList` in the aggregated shape (Go field order)."""
    group, _, version = group_version.rpartition("/")
    entry: dict[str, Any] = {
        "resource": legacy["name"],
        "responseKind": {"group": group, "version": version, "kind": legacy["kind"]},
        "scope": "Namespaced" if legacy["namespaced"] else "Cluster",
        "singularResource": legacy.get("singularName", ""),
        "verbs": legacy["verbs"],
    }
    if legacy.get("shortNames"):
        entry["shortNames"] = legacy["shortNames"]
    if legacy.get("categories"):
        entry["categories"] = legacy["categories"]
    return entry


def converted_backend_entry(resource_list: dict[str, Any], version: str) -> dict[str, Any]:
    """kube-aggregator's conversion of a backend's legacy `APIResourceList` into a version entry.

    The aggregator keeps the backend's empty `group`/`version` in `responseKind` (metrics-server
    registers its kinds without them)."""
    resources = [
        {
            "resource": r["name"],
            "responseKind": {"group": r.get("group", ""), "version": r.get("version", ""), "kind": r["kind"]},
            "scope": "Namespaced" if r["namespaced"] else "Cluster",
            "singularResource": r.get("singularName", ""),
            "verbs": r["verbs"],
        }
        for r in resource_list.get("resources", [])
        if "/" not in r["name"]
    ]
    return {"version": version, "resources": resources, "freshness": "Current"}


@dataclass(slots=True)
class BackendDiscovery:
    """The aggregated server's version entry as kube-aggregator last fetched it."""

    entry: dict[str, Any] | None = None
    """The `APIVersionDiscovery` of the APIService's version; None: not fetched or failed (Stale)."""
    source: str = ""
    """How it was obtained: `aggregated`, `legacy` or the error (for tests and the log)."""


def stale_entry(version: str) -> dict[str, Any]:
    return {"version": version, "freshness": "Stale"}


def list_document(version: str, items: list[dict[str, Any]]) -> bytes:
    return orjson.dumps({"kind": _KIND, "apiVersion": f"{_GROUP}/{version}", "metadata": {}, "items": items})


def core_item(resources: list[dict[str, Any]]) -> dict[str, Any]:
    """The single item of `/api`: no group name."""
    return {
        "metadata": {"creationTimestamp": None},
        "versions": [
            {"version": "v1", "resources": [resource_entry(r) for r in resources], "freshness": "Current"}
        ],
    }


def group_item(group: str, versions: list[dict[str, Any]]) -> dict[str, Any]:
    return {"metadata": {"name": group, "creationTimestamp": None}, "versions": versions}


def respond(request: Request, version: str, body: bytes) -> Response:
    """The document with the library's caching headers; 304 (no body, no Content-Type) on a match."""
    etag = '"' + hashlib.sha512(body).hexdigest().upper() + '"'
    headers = [("Cache-Control", "public"), ("Etag", etag), ("Vary", "Accept")]
    match = request.header("if-none-match")
    if match is not None and etag in [m.strip().removeprefix("W/") for m in match.split(",")]:
        return Response(304, headers, b"")
    return Response(200, [("Content-Type", content_type(version)), *headers], body)
