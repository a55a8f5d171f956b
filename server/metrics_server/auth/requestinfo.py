"""What a request asks to do: the apiserver's `RequestInfoFactory` (prefixes `api`, `apis`).

`resolve(method, path, query_string)` returns a `RequestInfo`; `.attributes(user)` turns it into
the `Attributes` authorization works on. Rules (`endpoints/request/requestinfo.go`):

* fewer than three path segments, a first segment other than `api`/`apis`, or `/apis/<group>`
  alone: a non-resource request, verb = lower-case HTTP method, path = the decoded path;
* `/apis/<group>/<version>/[namespaces/<ns>/]<resource>[/<name>[/<subresource>]]` (and
  `/api/<version>/...`): a resource request; `namespaces/<ns>` followed by `status` or `finalize`
  is the namespace object itself; `watch`/`proxy` right after the version are verbs;
* verbs: GET/HEAD `get`, POST `create`, PUT `update`, PATCH `patch`, DELETE `delete`; a `get`
  without a name is `watch` when the first `watch` query value is anything but `false`/`0`
  (case-insensitive), else `list`; a `delete` without a name is `deletecollection`;
* a list/watch whose `fieldSelector` pins `metadata.name=<n>` carries that name, unless the list
  options fail to parse (bad selector, non-integer `limit`/`timeoutSeconds`) or `<n>` is not a
  valid path segment (`.`, `..`, or containing `/` or `%`).

`RequestInfoError` for `/apis/<g>/<v>/watch` (or `proxy`) with nothing after it.
"""

from __future__ import annotations

import re
from typing import NamedTuple
from urllib.parse import parse_qsl

from k8s_metrics.fieldselectors import parse_field_selector
from k8s_metrics.selectors import SelectorError, parse_label_selector
from metrics_server.auth.errors import RequestInfoError
from metrics_server.auth.user import Attributes, UserInfo

_API_PREFIXES = frozenset(("api", "apis"))
_GROUPLESS_PREFIXES = frozenset(("api",))
_SPECIAL_VERBS = frozenset(("proxy", "watch"))
_NAMESPACE_SUBRESOURCES = frozenset(("status", "finalize"))
_METHOD_VERBS = {
    "POST": "create",
    "GET": "get",
    "HEAD": "get",
    "PUT": "update",
    "PATCH": "patch",
    "DELETE": "delete",
}
_INT64 = re.compile(r"[+-]?[0-9]+")


class RequestInfo(NamedTuple):
    resource_request: bool
    verb: str
    path: str
    api_group: str = ""
    api_version: str = ""
    namespace: str = ""
    resource: str = ""
    subresource: str = ""
    name: str = ""

    def attributes(self, user: UserInfo) -> Attributes:
        if not self.resource_request:
            return Attributes(user=user, verb=self.verb, resource_request=False, path=self.path)
        return Attributes(
            user=user,
            verb=self.verb,
            resource_request=True,
            namespace=self.namespace,
            api_group=self.api_group,
            api_version=self.api_version,
            resource=self.resource,
            subresource=self.subresource,
            name=self.name,
        )


def _int64_ok(value: str) -> bool:
    return bool(_INT64.fullmatch(value)) and -(2**63) <= int(value) < 2**63


def _list_verb_and_name(query_string: bytes) -> tuple[str, str]:
    """(`watch`|`list`, name from a `metadata.name` field selector or "")."""
    query: dict[str, list[str]] = {}
    for key, value in parse_qsl(query_string.decode("latin-1"), keep_blank_values=True):
        query.setdefault(key, []).append(value)
    watch_values = query.get("watch")
    verb = "watch" if watch_values and watch_values[0].lower() not in ("false", "0") else "list"
    try:
        label = query.get("labelSelector", [""])[0]
        parse_label_selector(label)
        fields = parse_field_selector(query.get("fieldSelector", [""])[0])
    except SelectorError:
        return verb, ""
    for key in ("limit", "timeoutSeconds"):
        values = query.get(key)
        if values and not _int64_ok(values[0]):
            return verb, ""
    name = fields.exact("metadata.name") or ""
    if name in (".", "..") or "/" in name or "%" in name:
        name = ""
    return verb, name


def resolve(method: str, path: str, query_string: bytes = b"") -> RequestInfo:
    """The request info of a request (see the module docstring). `path` is the decoded path."""
    non_resource = RequestInfo(resource_request=False, verb=method.lower(), path=path)
    stripped = path.strip("/")
    parts = stripped.split("/") if stripped else []
    if len(parts) < 3 or parts[0] not in _API_PREFIXES:
        return non_resource
    prefix, parts = parts[0], parts[1:]
    group = ""
    if prefix not in _GROUPLESS_PREFIXES:
        if len(parts) < 3:
            return non_resource
        group, parts = parts[0], parts[1:]
    version, parts = parts[0], parts[1:]
    verb_via_path = False
    if parts and parts[0] in _SPECIAL_VERBS:
        if len(parts) < 2:
            raise RequestInfoError(f"unable to determine kind and namespace from url, {path}")
        verb, parts = parts[0], parts[1:]
        verb_via_path = True
    else:
        verb = _METHOD_VERBS.get(method.upper(), "")
    namespace = ""
    if len(parts) > 1 and parts[0] == "namespaces":
        namespace = parts[1]
        if len(parts) > 2 and parts[2] not in _NAMESPACE_SUBRESOURCES:
            parts = parts[2:]
    resource = parts[0] if parts else ""
    name = parts[1] if len(parts) >= 2 else ""
    subresource = parts[2] if len(parts) >= 3 and not verb_via_path else ""
    if not name and verb == "get":
        verb, name = _list_verb_and_name(query_string)
    if not name and verb == "delete":
        verb = "deletecollection"
    return RequestInfo(
        resource_request=True,
        verb=verb,
        path=path,
        api_group=group,
        api_version=version,
        namespace=namespace,
        resource=resource,
        subresource=subresource,
        name=name,
    )
