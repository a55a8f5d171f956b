"""`Accept` header negotiation, following the apiserver's `negotiation` package and goautoneg.

The server speaks the library's three encodings, `application/json`, `application/yaml` and
`application/vnd.kubernetes.protobuf` (client-go clients such as kubectl and the HPA controller
ask for protobuf first), plus two JSON conversions:

* `as=Table;g=meta.k8s.io;v=v1|v1beta1` on the metrics resources (`kubectl get`), sent with
  `Content-Type: application/json` as metrics-server does (JSON only: a protobuf Table is refused);
* `as=APIGroupDiscoveryList;g=apidiscovery.k8s.io;v=v2` on `/apis` (aggregated discovery). Like
  metrics-server v0.8.0 (Kubernetes 1.33 libraries), v2beta1 is not served: a client asking for
  it first gets the next clause it accepts (kubectl 1.27-1.29: the legacy `APIGroupList`).

Clauses are tried in preference order (q, then specificity); the first one the endpoint can satisfy
wins; `*/*` and `application/*` mean JSON. Parameters other than `as`/`g`/`v` (`pretty`, `charset`,
`stream` ...) are ignored, as the library does for a request that is not a watch. When nothing is
acceptable, `negotiate` returns None and `rejection` gives the 406 body the library sends.
"""

from __future__ import annotations

from typing import NamedTuple

from metrics_server.api import status


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
YAML = "yaml"
PROTOBUF = "protobuf"
TABLE_V1 = "table-v1"
TABLE_V1BETA1 = "table-v1beta1"
DISCOVERY_V2 = "discovery-v2"

_MEDIA = {
    ("application", "json"): JSON,
    ("application", "yaml"): YAML,
    ("application", "vnd.kubernetes.protobuf"): PROTOBUF,
    ("application", "*"): JSON,
    ("*", "*"): JSON,
}
_CONVERSIONS = {
    ("Table", "meta.k8s.io", "v1"): TABLE_V1,
    ("Table", "meta.k8s.io", "v1beta1"): TABLE_V1BETA1,
    ("APIGroupDiscoveryList", "apidiscovery.k8s.io", "v2"): DISCOVERY_V2,
}

CONTENT_TYPES = {
    JSON: "application/json",
    YAML: "application/yaml",
    PROTOBUF: "application/vnd.kubernetes.protobuf",
    TABLE_V1: "application/json",
    TABLE_V1BETA1: "application/json",
    DISCOVERY_V2: "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList",
}
"""Response Content-Type per negotiated representation (the library's spellings)."""

ENCODINGS = frozenset({JSON, YAML, PROTOBUF})
"""What every endpoint serves; resources add the Tables, `/apis` aggregated discovery."""
MEDIA_TYPES = ("application/json", "application/yaml", "application/vnd.kubernetes.protobuf")
STREAM_TYPES = ("application/json;stream=watch", "application/vnd.kubernetes.protobuf;stream=watch")


def negotiate(header: str | None, allowed: frozenset[str]) -> str | None:
    """The representation to send (one of `allowed`, which always includes JSON), or None for 406.

    A clause must name one of the three encodings (or a wildcard); with `as`/`g`/`v` it asks for a
    conversion, honoured only for JSON and only if in `allowed`.
    """
    if not header or not header.strip():
        return JSON
    for clause in parse_accept(header):
        media = _MEDIA.get((clause.type, clause.subtype))
        if media is None or media not in allowed:
            continue
        as_kind = clause.params.get("as")
        if as_kind is None:
            if "g" in clause.params or "v" in clause.params:
                continue  # group/version without a conversion is not a representation we know
            return media
        if media != JSON:
            continue
        conversion = _CONVERSIONS.get((as_kind, clause.params.get("g", ""), clause.params.get("v", "")))
        if conversion is not None and conversion in allowed:
            return conversion
    return None


def rejection(header: str | None, *, streams: bool = False) -> bytes:
    """The 406 `Status` for a header `negotiate` refused, worded as the library words it.

    When some clause names an encoding the server has (with a conversion it does not serve), the
    message lists the accepted media types; when none does, it is `406: Not Acceptable` with the
    available representations (a list endpoint also names its watch streams, `streams`).
    """
    named = any((c.type, c.subtype) in _MEDIA for c in parse_accept(header or ""))
    if named:
        return status.not_acceptable(MEDIA_TYPES)
    return status.not_acceptable_media([*MEDIA_TYPES, *(STREAM_TYPES if streams else ())])
