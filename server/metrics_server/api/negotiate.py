"""`Accept` header negotiation, following the apiserver's `negotiation` package and goautoneg.

The server produces JSON only, plus two JSON conversions:

* `as=Table;g=meta.k8s.io;v=v1|v1beta1` on the metrics resources (`kubectl get`);
* `as=APIGroupDiscoveryList;g=apidiscovery.k8s.io;v=v2|v2beta1` on `/apis` (aggregated discovery).

Clauses are tried in preference order (q, then specificity); the first one the endpoint can satisfy
wins. Protobuf, YAML and unknown conversions are skipped, so the protobuf-first headers that
kubectl and client-go send (`application/vnd.kubernetes.protobuf, */*`) get JSON. Only when no
clause is satisfiable does `negotiate` return None (the caller answers 406).
"""

from __future__ import annotations

from typing import NamedTuple


class MediaClause(NamedTuple):
    type: str
    subtype: str
    q: float
    params: dict[str, str]


def parse_accept(header: str) -> list[MediaClause]:
    """goautoneg.ParseAccept: clauses sorted by q (descending), then by specificity, stably."""
    clauses: list[MediaClause] = []
    for part in header.split(","):
        fields = [f.strip() for f in part.split(";")]
        media = fields[0]
        if not media:
            continue
        if "/" in media:
            mtype, _, subtype = media.partition("/")
        elif media == "*":
            mtype, subtype = "*", "*"
        else:
            continue  # goautoneg drops a bare token that is not "*"
        q = 1.0
        params: dict[str, str] = {}
        for field in fields[1:]:
            key, sep, value = field.partition("=")
            if not sep:
                continue
            key = key.strip()
            value = value.strip()
            if key == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
            else:
                params[key] = value
        clauses.append(MediaClause(mtype.strip().lower(), subtype.strip().lower(), q, params))
    clauses.sort(key=lambda c: (-c.q, c.type == "*", c.subtype == "*"))
    return clauses


JSON = "json"
TABLE_V1 = "table-v1"
TABLE_V1BETA1 = "table-v1beta1"
DISCOVERY_V2 = "discovery-v2"
DISCOVERY_V2BETA1 = "discovery-v2beta1"

_CONVERSIONS = {
    ("Table", "meta.k8s.io", "v1"): TABLE_V1,
    ("Table", "meta.k8s.io", "v1beta1"): TABLE_V1BETA1,
    ("APIGroupDiscoveryList", "apidiscovery.k8s.io", "v2"): DISCOVERY_V2,
    ("APIGroupDiscoveryList", "apidiscovery.k8s.io", "v2beta1"): DISCOVERY_V2BETA1,
}

CONTENT_TYPES = {
    JSON: "application/json",
    TABLE_V1: "application/json;as=Table;v=v1;g=meta.k8s.io",
    TABLE_V1BETA1: "application/json;as=Table;v=v1beta1;g=meta.k8s.io",
    DISCOVERY_V2: "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList",
    DISCOVERY_V2BETA1: "application/json;g=apidiscovery.k8s.io;v=v2beta1;as=APIGroupDiscoveryList",
}
"""Response Content-Type per negotiated representation (the library's spellings)."""


def negotiate(header: str | None, allowed: frozenset[str]) -> str | None:
    """The representation to send (one of `allowed`, which always includes JSON), or None for 406.

    A clause must name JSON (`application/json`, `application/*`, `*/*`); with `as`/`g`/`v` it asks
    for a conversion, honoured only if in `allowed`. Other parameters (`pretty`, `charset`, `stream`
    ...) are ignored, except that `stream` asks for a watch stream, which is never served.
    """
    if not header or not header.strip():
        return JSON
    for clause in parse_accept(header):
        if clause.type not in ("application", "*") or clause.subtype not in ("json", "*"):
            continue
        if "stream" in clause.params:
            continue
        as_kind = clause.params.get("as")
        if as_kind is None:
            if "g" in clause.params or "v" in clause.params:
                continue  # group/version without a conversion is not a representation we know
            return JSON
        conversion = _CONVERSIONS.get((as_kind, clause.params.get("g", ""), clause.params.get("v", "")))
        if conversion is not None and conversion in allowed:
            return conversion
    return None
