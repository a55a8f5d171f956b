"""Discovery documents of `metrics.k8s.io/v1beta1`, rendered once as bytes with their ETags.

Legacy documents are byte-for-byte metrics-server's (`APIGroupList`, `APIGroup`,
`APIResourceList` with empty `singularName`); the aggregated forms (`apidiscovery.k8s.io` v2 and
v2beta1 `APIGroupDiscoveryList`) are the library's, served on `/apis` when the `Accept` header
asks for them. ETags are the library's: a quoted upper-case hex SHA-512 of the body.
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
            ("nodes", "NodeMetrics", "Cluster", "node"),
            ("pods", "PodMetrics", "Namespaced", "pod"),
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


class Discovery(NamedTuple):
    """All discovery documents (immutable; build once with `build()`)."""

    group_list: Document
    group: Document
    resource_list: Document
    aggregated_v2: Document
    aggregated_v2beta1: Document


def build() -> Discovery:
    return Discovery(
        group_list=document({"kind": "APIGroupList", "apiVersion": "v1", "groups": [_group()]}),
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
        aggregated_v2=document(_aggregated("apidiscovery.k8s.io/v2")),
        aggregated_v2beta1=document(_aggregated("apidiscovery.k8s.io/v2beta1")),
    )


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
