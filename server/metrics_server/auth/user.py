"""Who is asking, and what they ask to do: the types authentication and authorization share."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class UserInfo:
    name: str
    uid: str = ""
    groups: tuple[str, ...] = ()
    extra: Mapping[str, tuple[str, ...]] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class Attributes:
    """What a request asks to do, shaped like a SubjectAccessReview spec.

    Resource requests set `resource_request` and the resource fields; non-resource requests
    (discovery, /metrics, health sub-paths) set `path`. `verb` is the Kubernetes verb
    (get, list, watch) for resources and the lower-case HTTP method otherwise.
    """

    user: UserInfo
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
    denied: bool = False
    """An explicit deny (SubjectAccessReview `status.denied`); not allowed without it is "no opinion"."""


USER_SCOPE_KEY = "metrics_server.user"
"""ASGI scope key under which `auth.middleware.AuthMiddleware` stores the authenticated `UserInfo`."""


def user_from_scope(scope: Mapping[str, object]) -> UserInfo | None:
    """The user `AuthMiddleware` authenticated for this request (None when not behind it)."""
    user = scope.get(USER_SCOPE_KEY)
    return user if isinstance(user, UserInfo) else None
