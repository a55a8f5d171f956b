"""Discovery documents of `metrics.k8s.io/v1beta1`, rendered once as bytes (JSON).

All are byte-for-byte metrics-server v0.8.0's:

* legacy `APIGroupList` (no `apiVersion`, and `serverAddressByClientCIDRs` naming the serving
  port: `group_list(port)`), `APIGroup`, `APIResourceList`, all with an empty `singularName`;
  served without ETag (the library caches only the aggregated form);
* the aggregated `apidiscovery.k8s.io/v2` `APIGroupDiscoveryList` on `/apis` when the `Accept`
  header asks for it, with `singularResource` empty too (a non-empty one makes kubectl's
  RESTMapper lose `podmetrics`/`nodemetrics`), an ETag (quoted upper-case hex SHA-512 of the
  body), `Cache-Control: public` and 304 on a matching `If-None-Match`. v2beta1 is not served.
"""

from __future__ import annotations

import hashlib
from typing import NamedTuple

from metrics_server.api.status import go_json

GROUP = "metrics.k8s.io"
VERSION = "v1beta1"
GROUP_VERSION = f"{GROUP}/{VERSION}"


class Document(NamedTuple):
    body: bytes
    etag: str
    """Quoted, ready for the `ETag` header."""


def etag_of(body: bytes) -> str:
    return '"' + hashlib.sha512(body).hexdigest().upper() + '"'


def document(obj: object) -> Document:
    body = go_json(obj)
    return Document(body, etag_of(body))


def _gv() -> dict[str, str]:
    return {"groupVersion": GROUP_VERSION, "version": VERSION}


def _group() -> dict[str, object]:
    return {"name": GROUP, "versions": [_gv()], "preferredVersion": _gv()}


def _aggregated(api_version: str) -> dict[str, object]:
    resources = [
        {
            "resource": resource,
            "responseKind": {"group": "", "version": "", "kind": kind},
            "scope": scope,
            "singularResource": singular,
            "verbs": ["get", "list"],
        }
        for resource, kind, scope, singular in (
            ("nodes", "NodeMetrics", "Cluster", ""),
            ("pods", "PodMetrics", "Namespaced", ""),
        )
    ]
    return {
        "kind": "APIGroupDiscoveryList",
        "apiVersion": api_version,
        "metadata": {},
        "items": [
            {
                "metadata": {"name": GROUP, "creationTimestamp": None},
                "versions": [{"version": VERSION, "resources": resources, "freshness": "Current"}],
            }
        ],
    }


def group_list(port: int) -> bytes:
    """The legacy `/apis` document; `serverAddressByClientCIDRs` is `:<port>` as the library writes
    it when no external address is configured."""
    cidrs = [{"clientCIDR": "0.0.0.0/0", "serverAddress": f":{port}"}]
    return go_json({"kind": "APIGroupList", "groups": [{**_group(), "serverAddressByClientCIDRs": cidrs}]})


class Discovery(NamedTuple):
    """The discovery documents that do not depend on the request (build once with `build()`)."""

    group: Document
    resource_list: Document
    aggregated_v2: Document


def build() -> Discovery:
    return Discovery(
        group=document({"kind": "APIGroup", "apiVersion": "v1", **_group()}),
        resource_list=document(
            {
                "kind": "APIResourceList",
                "apiVersion": "v1",
                "groupVersion": GROUP_VERSION,
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
        ),
        aggregated_v2=_aggregated_document(_aggregated("apidiscovery.k8s.io/v2")),
    )


def _aggregated_document(doc: dict[str, object]) -> Document:
    """The library hashes the list without its kind and apiVersion, and without a newline."""
    untyped = {k: v for k, v in doc.items() if k not in ("kind", "apiVersion")}
    return Document(go_json(doc), etag_of(go_json(untyped)[:-1]))


def if_none_match(header: str | None, etag: str) -> bool:
    """Whether an `If-None-Match` header matches `etag` (weak comparison, `*` matches anything)."""
    if not header:
        return False
    for candidate in header.split(","):
        candidate = candidate.strip()
        if candidate == "*":
            return True
        if candidate.startswith("W/"):
            candidate = candidate[2:]
        if candidate == etag:
            return True
    return False
