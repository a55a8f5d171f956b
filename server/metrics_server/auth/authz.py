"""Delegated authorization: the apiserver library's authorizer union, and its 403 text.

In order, the first Allow wins:

1. the user is in an always-allowed group (`system:masters`);
2. a non-resource request whose path is always allowed (`--authorization-always-allow-paths`,
   default `/healthz,/readyz,/livez`): entries are exact paths, a trailing `*` makes a prefix;
   leading `/` is ignored on both sides and the query is never part of the path, so `/livez` and
   `/livez?verbose` are allowed but `/livez/ping` is not;
3. SubjectAccessReview (`AccessReviewer.authorize`); without a reviewer everything else is
   forbidden. A `ReviewError` propagates: the caller answers 500 (the library's authorization
   filter answers a webhook error with an internal error, not 403).

`forbidden_body(attrs, reason)` is the library's `responsewriters.Forbidden`: the message built by
`forbidden_message`, with `&`, `<`, `>` HTML-escaped (the library's sanitizer), then
`: <reason>` when the authorizer gave one.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import ClassVar, Protocol

from k8s_metrics.gostrings import go_quote
from metrics_server.api import status
from metrics_server.auth.errors import ServingOptionsError
from metrics_server.auth.user import Attributes, Decision
from metrics_server.flagset import AUTHORIZATION, FILE, STRINGS, flag

DEFAULT_ALWAYS_ALLOW_PATHS = ("/healthz", "/readyz", "/livez")
DEFAULT_ALWAYS_ALLOW_GROUPS = ("system:masters",)
ALLOWED = Decision(allowed=True)
_SANITIZE = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;"})


class AccessReviewerLike(Protocol):
    """What `auth.reviews.AccessReviewer` offers."""

    async def authorize(self, attributes: Attributes) -> Decision: ...


class AlwaysAllowPaths:
    """The library's path authorizer (`authorizer/path`)."""

    def __init__(self, paths: Iterable[str]) -> None:
        """Raises `ServingOptionsError` for a `*` anywhere but at the end of an entry."""
        exact: set[str] = set()
        prefixes: list[str] = []
        for raw in paths:
            p = raw.removeprefix("/")
            if not p:
                exact.add(p)
                continue
            if "*" in p[:-1]:
                raise ServingOptionsError(
                    "--authorization-always-allow-paths", f'only trailing * allowed in "{p}"'
                )
            if p.endswith("*"):
                prefixes.append(p[:-1])
            else:
                exact.add(p)
        self._exact = frozenset(exact)
        self._prefixes = tuple(prefixes)

    def allows(self, attrs: Attributes) -> bool:
        if attrs.resource_request:
            return False
        path = attrs.path.removeprefix("/")
        return path in self._exact or path.startswith(self._prefixes)


@dataclass(frozen=True, slots=True)
class AuthorizationOptions:
    """The delegated-authorization flags (the SubjectAccessReview cache TTLs are in
    `auth.reviews.ReviewCacheOptions`)."""

    FLAG_GROUP: ClassVar[str] = AUTHORIZATION

    kubeconfig: str = flag(
        "--authorization-kubeconfig",
        FILE,
        "",
        (
            "kubeconfig file pointing at the 'core' kubernetes server with enough rights to create "
            "subjectaccessreviews.authorization.k8s.io."
        ),
    )
    always_allow_paths: tuple[str, ...] = flag(
        "--authorization-always-allow-paths",
        STRINGS,
        ",".join(DEFAULT_ALWAYS_ALLOW_PATHS),
        (
            "A list of HTTP paths to skip during authorization, i.e. these are authorized without "
            "contacting the 'core' kubernetes server."
        ),
    )

    def validate(self) -> None:
        """Raises `ServingOptionsError` for a `*` anywhere but at the end of a path."""
        AlwaysAllowPaths(self.always_allow_paths)


class Authorizer:
    """The authorizer union described in the module docstring."""

    def __init__(
        self,
        reviewer: AccessReviewerLike | None,
        *,
        always_allow_paths: Iterable[str] = DEFAULT_ALWAYS_ALLOW_PATHS,
        always_allow_groups: Sequence[str] = DEFAULT_ALWAYS_ALLOW_GROUPS,
    ) -> None:
        self._reviewer = reviewer
        self._paths = AlwaysAllowPaths(always_allow_paths)
        self._groups = frozenset(always_allow_groups)

    async def authorize(self, attrs: Attributes) -> Decision:
        """The decision for `attrs`. Raises `auth.reviews.ReviewError` when the review fails."""
        if not self._groups.isdisjoint(attrs.user.groups):
            return ALLOWED
        if self._paths.allows(attrs):
            return ALLOWED
        if self._reviewer is None:
            return Decision(allowed=False)
        return await self._reviewer.authorize(attrs)


def forbidden_message(attrs: Attributes) -> str:
    """The authorizer's denial text for `attrs` (`responsewriters.forbiddenMessage`), without a reason."""
    user = go_quote(attrs.user.name)
    if not attrs.resource_request:
        return f"User {user} cannot {attrs.verb} path {go_quote(attrs.path)}"
    resource = f"{attrs.resource}/{attrs.subresource}" if attrs.subresource else attrs.resource
    group = go_quote(attrs.api_group)
    head = f"User {user} cannot {attrs.verb} resource {go_quote(resource)} in API group {group}"
    if attrs.namespace:
        return f"{head} in the namespace {go_quote(attrs.namespace)}"
    return f"{head} at the cluster scope"


def forbidden_body(attrs: Attributes, reason: str = "") -> bytes:
    """The 403 `Status` body for a denied request (see the module docstring).

    Resource requests: `pods.metrics.k8s.io is forbidden: User "alice" cannot list resource "pods" in
    API group "metrics.k8s.io" in the namespace "default"`; non-resource requests: `forbidden: User
    "alice" cannot get path "/metrics"`.
    """
    message = forbidden_message(attrs).translate(_SANITIZE)
    if reason:
        message = f"{message}: {reason}"
    if not attrs.resource_request:
        return status.forbidden("", "", "", message)
    return status.forbidden(attrs.resource, attrs.api_group, attrs.name, message)
