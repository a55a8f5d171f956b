"""The packaged OpenAPI document: loading, the `/openapi/v3` and `/openapi/v2` bodies, their hashes.

The spec (`metrics_server/openapi/metrics.k8s.io-v1beta1.yaml`, copied there from the repository's
`openapi/` by codegen.sh) is the single source of truth. At start-up `load_spec()` parses it once;
`OpenAPIDocs.build(spec)` renders:

* the v3 documents, one per group-version as the library splits them (`apis`, `apis/metrics.k8s.io`,
  `apis/metrics.k8s.io/v1beta1`, `version`: each the spec's paths under it, with the components
  they reference), their hashes (upper-case hex SHA-512, as kube-openapi's handler3 computes
  them, used for `?hash=` and `ETag`) and the `/openapi/v3` index of the four;
* a Swagger 2.0 rendering of the same API (`swagger_v2`), for `/openapi/v2` and the aggregator.

Failure modes: a missing or unparsable spec raises `SpecError` at start-up, never per request.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from importlib import resources
from typing import Any, NamedTuple

import orjson
import yaml

from metrics_server.api.discovery import GROUP_VERSION

SPEC_RESOURCE = "metrics.k8s.io-v1beta1.yaml"


class SpecError(RuntimeError):
    """The OpenAPI document is missing or does not have the shape the server relies on."""


def load_spec(text: str | None = None) -> dict[str, Any]:
    """Parse the packaged spec (or `text`). Raises `SpecError` when absent or not a mapping."""
    if text is None:
        try:
            text = resources.files("metrics_server").joinpath("openapi", SPEC_RESOURCE).read_text("utf-8")
        except OSError as exc:
            raise SpecError(f"packaged OpenAPI document {SPEC_RESOURCE} not found: {exc}") from exc
    try:
        # libyaml's loader when built in: ~25x faster than the pure-Python one on this document.
        spec = yaml.load(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError as exc:
        raise SpecError(f"OpenAPI document does not parse: {exc}") from exc
    if not isinstance(spec, dict) or not isinstance(spec.get("paths"), dict):
        raise SpecError("OpenAPI document has no paths")
    return spec


def sha512_hex(body: bytes) -> str:
    return hashlib.sha512(body).hexdigest().upper()


class OpenAPIDocs(NamedTuple):
    v3: dict[str, tuple[bytes, str]]
    """Group-version (`apis/metrics.k8s.io/v1beta1`, ...) -> (document, hash)."""
    v3_index: bytes
    v3_index_hash: str
    v2_body: bytes
    v2_hash: str

    @classmethod
    def build(cls, spec: Mapping[str, Any]) -> OpenAPIDocs:
        v3: dict[str, tuple[bytes, str]] = {}
        for gv in V3_GROUP_VERSIONS:
            body = orjson.dumps(split(spec, gv))
            v3[gv] = (body, sha512_hex(body))
        index = orjson.dumps(
            {"paths": {gv: {"serverRelativeURL": f"{V3_PREFIX}{gv}?hash={h}"} for gv, (_, h) in v3.items()}}
        )
        v2_body = orjson.dumps(swagger_v2(spec))
        return cls(v3, index, sha512_hex(index), v2_body, sha512_hex(v2_body))


V3_PREFIX = "/openapi/v3/"
V3_GROUP_VERSIONS = ("apis", "apis/metrics.k8s.io", f"apis/{GROUP_VERSION}", "version")


def _group_version_of(path: str) -> str:
    """The document of `V3_GROUP_VERSIONS` a spec path belongs to (its longest prefix)."""
    trimmed = path.strip("/")
    for gv in sorted(V3_GROUP_VERSIONS, key=len, reverse=True):
        if trimmed == gv or (gv.count("/") == 2 and trimmed.startswith(gv + "/")):
            return gv
    raise SpecError(f"path {path!r} belongs to no group-version document")


def _refs(node: Any, out: set[str]) -> None:
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                out.add(value)
            else:
                _refs(value, out)
    elif isinstance(node, list):
        for value in node:
            _refs(value, out)


def split(spec: Mapping[str, Any], gv: str) -> dict[str, Any]:
    """The document of one group-version: its paths and the components they reach."""
    paths = {p: item for p, item in spec["paths"].items() if _group_version_of(p) == gv}
    wanted: set[str] = set()
    _refs(paths, wanted)
    components: dict[str, dict[str, Any]] = {}
    seen: set[str] = set()
    while wanted - seen:
        ref = sorted(wanted - seen)[0]
        seen.add(ref)
        _, _, section, name = ref.split("/", 3)
        target = spec["components"][section][name]
        components.setdefault(section, {})[name] = target
        _refs(target, wanted)
    if "securitySchemes" in spec.get("components", {}):
        components["securitySchemes"] = spec["components"]["securitySchemes"]
    doc = {k: v for k, v in spec.items() if k not in ("paths", "components")}
    doc["paths"] = paths
    doc["components"] = {k: dict(sorted(v.items())) for k, v in sorted(components.items())}
    return doc


# --- OpenAPI 3.0 -> Swagger 2.0 ---------------------------------------------------------------

_REF_MAP = (
    ("#/components/schemas/", "#/definitions/"),
    ("#/components/parameters/", "#/parameters/"),
    ("#/components/responses/", "#/responses/"),
)
_V2_PARAM_KEYS = (
    "type",
    "format",
    "items",
    "default",
    "maximum",
    "exclusiveMaximum",
    "minimum",
    "exclusiveMinimum",
    "maxLength",
    "minLength",
    "pattern",
    "maxItems",
    "minItems",
    "uniqueItems",
    "enum",
    "multipleOf",
)


def _rewrite_refs(node: Any) -> Any:
    """Copy `node`, moving `$ref`s to Swagger 2.0 locations and `nullable` to `x-nullable`."""
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str):
                for old, new in _REF_MAP:
                    if value.startswith(old):
                        value = new + value[len(old) :]
                out[key] = value
            elif key == "nullable":
                out["x-nullable"] = value
            else:
                out[key] = _rewrite_refs(value)
        return out
    if isinstance(node, list):
        return [_rewrite_refs(v) for v in node]
    return node


def resolve(spec: Mapping[str, Any], node: Mapping[str, Any]) -> Mapping[str, Any]:
    """Follow local `$ref`s until a non-reference object."""
    seen = 0
    while "$ref" in node:
        ref = node["$ref"]
        if not isinstance(ref, str) or not ref.startswith("#/"):
            raise SpecError(f"unsupported $ref {ref!r}")
        target: Any = spec
        for part in ref[2:].split("/"):
            target = target[part]
        node = target
        seen += 1
        if seen > 32:
            raise SpecError(f"$ref cycle at {ref!r}")
    return node


def _parameter_v2(spec: Mapping[str, Any], param: Mapping[str, Any]) -> dict[str, Any]:
    param = resolve(spec, param)
    out: dict[str, Any] = {k: param[k] for k in ("name", "in", "description", "required") if k in param}
    schema = resolve(spec, param.get("schema", {}))
    for key in _V2_PARAM_KEYS:
        if key in schema:
            out[key] = schema[key]
    if "type" not in out:
        out["type"] = "string"
    if "example" in param:
        out["x-example"] = param["example"]
    return out


def _response_v2(spec: Mapping[str, Any], response: Mapping[str, Any]) -> dict[str, Any]:
    if "$ref" in response:
        return _rewrite_refs(dict(response))  # type: ignore[no-any-return]
    out: dict[str, Any] = {"description": response.get("description", "")}
    media = response.get("content", {}).get("application/json")
    if media is not None:
        if "schema" in media:
            out["schema"] = _rewrite_refs(media["schema"])
        if "example" in media:
            out["examples"] = {"application/json": media["example"]}
        elif media.get("examples"):
            first = next(iter(media["examples"].values()))
            out["examples"] = {"application/json": resolve(spec, first).get("value")}
    return out


def swagger_v2(spec: Mapping[str, Any]) -> dict[str, Any]:
    """A Swagger 2.0 document equivalent to the OpenAPI 3.0 `spec` (JSON-only, GET-only API).

    Parameters are inlined (Swagger 2.0 non-body parameters carry their schema keywords directly),
    schemas move to `definitions`, the bearer scheme becomes the `apiKey` form Kubernetes uses.
    """
    components = spec.get("components", {})
    paths: dict[str, Any] = {}
    for path, item in spec["paths"].items():
        out_item: dict[str, Any] = {}
        for method, op in item.items():
            if method not in ("get", "put", "post", "delete", "patch", "head", "options"):
                continue
            out_op: dict[str, Any] = {
                k: op[k] for k in ("tags", "summary", "description", "operationId") if k in op
            }
            out_op["produces"] = ["application/json"]
            out_op["schemes"] = ["https"]
            params = [*item.get("parameters", []), *op.get("parameters", [])]
            if params:
                out_op["parameters"] = [_parameter_v2(spec, p) for p in params]
            out_op["responses"] = {
                str(code): _response_v2(spec, resp) for code, resp in op.get("responses", {}).items()
            }
            out_item[method] = out_op
        paths[path] = out_item
    doc: dict[str, Any] = {"swagger": "2.0", "info": spec.get("info", {}), "paths": paths}
    if "tags" in spec:
        doc["tags"] = spec["tags"]
    doc["definitions"] = _rewrite_refs(components.get("schemas", {}))
    doc["parameters"] = {name: _parameter_v2(spec, p) for name, p in components.get("parameters", {}).items()}
    doc["responses"] = {name: _response_v2(spec, r) for name, r in components.get("responses", {}).items()}
    schemes = components.get("securitySchemes", {})
    if schemes:
        doc["securityDefinitions"] = {
            name: {
                "type": "apiKey",
                "name": "authorization",
                "in": "header",
                **({"description": s["description"]} if "description" in s else {}),
            }
            for name, s in schemes.items()
        }
    if "security" in spec:
        doc["security"] = spec["security"]
    return doc
