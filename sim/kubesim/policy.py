"""Identities and authorization of the simulated cluster (a small RBAC).

`Policy.load(path)` reads the YAML format documented in the packaged `policy.yaml`. The
apiserver, the kubelets and the TokenReview/SubjectAccessReview endpoints all ask the same
`Policy` object, so a test changes one thing and every component agrees.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

import yaml

from .errors import ConfigError

AUTHENTICATED = "system:authenticated"
UNAUTHENTICATED = "system:unauthenticated"
ANONYMOUS = "system:anonymous"
SA_PREFIX = "system:serviceaccount:"
METHOD_VERBS = {
    "GET": "get",
    "HEAD": "get",
    "POST": "create",
    "PUT": "update",
    "PATCH": "patch",
    "DELETE": "delete",
}
"""The verb an HTTP method is authorized as (the apiserver's and the kubelets' request attributes)."""


@dataclass(frozen=True, slots=True)
class User:
    name: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"username": self.name}
        if self.uid:
            out["uid"] = self.uid
        out["groups"] = list(self.groups)
        if self.extra:
            out["extra"] = {k: list(v) for k, v in self.extra.items()}
        return out


ANONYMOUS_USER = User(ANONYMOUS, groups=(UNAUTHENTICATED,))


@dataclass(frozen=True, slots=True)
class Attributes:
    """A request to authorize, shaped like a SubjectAccessReview spec."""

    user: User
    verb: str
    resource_request: bool
    namespace: str = ""
    api_group: str = ""
    api_version: str = ""
    resource: str = ""
    subresource: str = ""
    name: str = ""
    path: str = ""


@dataclass(frozen=True, slots=True)
class Decision:
    allowed: bool
    reason: str = ""


@dataclass(frozen=True, slots=True)
class Rule:
    verbs: frozenset[str]
    api_groups: frozenset[str] = frozenset()
    resources: frozenset[str] = frozenset()
    resource_names: frozenset[str] = frozenset()
    non_resource_urls: tuple[str, ...] = ()

    def allows(self, a: Attributes) -> bool:
        if "*" not in self.verbs and a.verb not in self.verbs:
            return False
        if not a.resource_request:
            return any(
                url == "*" or url == a.path or (url.endswith("*") and a.path.startswith(url[:-1]))
                for url in self.non_resource_urls
            )
        if not self.resources:
            return False
        if "*" not in self.api_groups and a.api_group not in self.api_groups:
            return False
        combined = f"{a.resource}/{a.subresource}" if a.subresource else a.resource
        if "*" not in self.resources and combined not in self.resources:
            return False
        return not self.resource_names or a.name in self.resource_names


@dataclass(frozen=True, slots=True)
class Subject:
    kind: str
    name: str
    namespace: str = ""

    def matches(self, user: User) -> bool:
        if self.kind == "User":
            return user.name == self.name
        if self.kind == "Group":
            return self.name in user.groups
        return user.name == f"{SA_PREFIX}{self.namespace}:{self.name}"

    def describe(self) -> str:
        if self.kind == "ServiceAccount":
            return f'ServiceAccount "{self.namespace}/{self.name}"'
        return f'{self.kind} "{self.name}"'


@dataclass(frozen=True, slots=True)
class Binding:
    name: str
    role: str
    subjects: tuple[Subject, ...]
    namespace: str = ""

    def describe(self, subject: Subject) -> str:
        role = f'ClusterRole "{self.role}" to {subject.describe()}'
        if self.namespace:
            return f'RoleBinding "{self.name}/{self.namespace}" of {role}'
        return f'ClusterRoleBinding "{self.name}" of {role}'


def _strs(value: Any, where: str) -> list[str]:
    if value is None:
        return []
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ConfigError(f"policy: {where} must be a list of strings")
    return list(value)


class Policy:
    """Token identities plus RBAC rules; `authenticate_token` and `authorize` never raise."""

    def __init__(
        self,
        users: list[tuple[str, User]],
        roles: Mapping[str, tuple[Rule, ...]],
        bindings: list[Binding],
        aggregator: User,
    ) -> None:
        self._tokens = dict(users)
        self._users_by_name = {u.name: (tok, u) for tok, u in users}
        self._roles = dict(roles)
        self._bindings = list(bindings)
        self.aggregator = aggregator
        for b in bindings:
            if b.role not in self._roles:
                raise ConfigError(f"policy: binding {b.name!r} refers to unknown role {b.role!r}")

    @classmethod
    def default_path(cls) -> Path:
        return Path(str(resources.files("kubesim").joinpath("policy.yaml")))

    @classmethod
    def load(cls, path: Path | None = None) -> Policy:
        """Read a policy file (default: the packaged one); ConfigError names what is wrong."""
        path = path or cls.default_path()
        try:
            doc = yaml.safe_load(path.read_text())
        except (OSError, yaml.YAMLError) as exc:
            raise ConfigError(f"policy: cannot read {path}: {exc}") from exc
        if not isinstance(doc, dict):
            raise ConfigError(f"policy: {path} must hold a mapping")
        return cls.from_document(doc)

    @classmethod
    def from_document(cls, doc: Mapping[str, Any]) -> Policy:
        users: list[tuple[str, User]] = []
        for i, entry in enumerate(doc.get("users") or []):
            if not isinstance(entry, dict) or not isinstance(entry.get("name"), str):
                raise ConfigError(f"policy: users[{i}] needs a name")
            name = entry["name"]
            groups = _strs(entry.get("groups"), f"users[{i}].groups")
            if name.startswith(SA_PREFIX):
                ns = name[len(SA_PREFIX) :].split(":", 1)[0]
                groups += ["system:serviceaccounts", f"system:serviceaccounts:{ns}"]
            extra = {k: tuple(_strs(v, f"users[{i}].extra")) for k, v in (entry.get("extra") or {}).items()}
            token = entry.get("token")
            if not isinstance(token, str) or not token:
                raise ConfigError(f"policy: users[{i}] ({name}) needs a token")
            users.append((token, User(name, str(entry.get("uid", "")), tuple(groups), extra)))
        roles: dict[str, tuple[Rule, ...]] = {}
        for role_name, rules in (doc.get("roles") or {}).items():
            parsed = []
            for j, r in enumerate(rules or []):
                where = f"roles.{role_name}[{j}]"
                verbs = _strs(r.get("verbs"), f"{where}.verbs")
                if not verbs:
                    raise ConfigError(f"policy: {where} needs verbs")
                parsed.append(
                    Rule(
                        frozenset(verbs),
                        frozenset(_strs(r.get("apiGroups"), f"{where}.apiGroups")),
                        frozenset(_strs(r.get("resources"), f"{where}.resources")),
                        frozenset(_strs(r.get("resourceNames"), f"{where}.resourceNames")),
                        tuple(_strs(r.get("nonResourceURLs"), f"{where}.nonResourceURLs")),
                    )
                )
            roles[str(role_name)] = tuple(parsed)
        bindings = []
        for i, b in enumerate(doc.get("bindings") or []):
            subjects = []
            for s in b.get("subjects") or []:
                kind = s.get("kind")
                if kind not in ("User", "Group", "ServiceAccount"):
                    raise ConfigError(
                        f"policy: bindings[{i}] subject kind must be User, Group or ServiceAccount"
                    )
                subjects.append(Subject(kind, str(s.get("name", "")), str(s.get("namespace", ""))))
            bindings.append(
                Binding(
                    str(b.get("name", f"binding-{i}")),
                    str(b.get("role")),
                    tuple(subjects),
                    str(b.get("namespace", "")),
                )
            )
        agg = doc.get("aggregator") or {}
        aggregator = User(
            str(agg.get("username", "system:kube-aggregator")),
            groups=tuple(_strs(agg.get("groups", ["system:masters"]), "aggregator.groups")),
        )
        return cls(users, roles, bindings, aggregator)

    def token_for(self, user_name: str) -> str:
        """The bearer token of a configured user (for writing kubeconfigs)."""
        try:
            return self._users_by_name[user_name][0]
        except KeyError:
            raise ConfigError(f"policy: no user named {user_name!r}") from None

    def authenticate_token(self, token: str) -> User | None:
        """The user a bearer token belongs to (with system:authenticated), or None."""
        user = self._tokens.get(token)
        if user is None:
            return None
        return User(user.name, user.uid, (*user.groups, AUTHENTICATED), user.extra)

    @staticmethod
    def user_from_certificate(common_name: str, organizations: tuple[str, ...]) -> User:
        return User(common_name, groups=(*organizations, AUTHENTICATED))

    def authorize(self, a: Attributes) -> Decision:
        """RBAC: allowed if any binding that applies grants a matching rule; deny has no reason."""
        for b in self._bindings:
            if b.namespace and (not a.resource_request or a.namespace != b.namespace):
                continue
            subject = next((s for s in b.subjects if s.matches(a.user)), None)
            if subject is None:
                continue
            if any(rule.allows(a) for rule in self._roles[b.role]):
                return Decision(True, f"RBAC: allowed by {b.describe(subject)}")
        return Decision(False, "")


def forbidden_message(a: Attributes, reason: str = "") -> str:
    """The kube-apiserver Forbidden text (responsewriters.forbiddenMessage + NewForbidden)."""
    if not a.resource_request:
        msg = f'forbidden: User "{a.user.name}" cannot {a.verb} path "{a.path}"'
    else:
        resource = f"{a.resource}/{a.subresource}" if a.subresource else a.resource
        scope = f'in the namespace "{a.namespace}"' if a.namespace else "at the cluster scope"
        detail = (
            f'User "{a.user.name}" cannot {a.verb} resource "{resource}" in API group "{a.api_group}" {scope}'
        )
        qualified = f"{a.resource}.{a.api_group}" if a.api_group else a.resource
        msg = (
            f'{qualified} "{a.name}" is forbidden: {detail}'
            if a.name
            else f"{qualified} is forbidden: {detail}"
        )
    return f"{msg}: {reason}" if reason else msg
