"""Authentication x authorization matrix, through real TLS (trustme) and real HTTP on loopback.

Each case starts `serve_https(AuthMiddleware(echo_app, ...))` with fake config source, token
reviewer and access reviewer, sends one request over a new connection and checks the status,
the exact body (401/403/500) or the user and headers the app saw (200), and exactly which
SubjectAccessReviews were asked.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
import trio
from auth_testkit import (
    ClientCert,
    FakeTokens,
    Pki,
    allow_all,
    deny_all,
    get,
    sar_error,
    start_server,
    user_json,
)
from cryptography import x509

from metrics_server.auth.authconfig import AuthenticationConfig
from metrics_server.auth.authn import CREDENTIAL_ID_KEY
from metrics_server.auth.clientcert import fingerprint
from metrics_server.auth.user import Attributes, Decision, UserInfo

API = "/apis/metrics.k8s.io/v1beta1"
GROUP = "metrics.k8s.io"
ANON = UserInfo("system:anonymous", groups=("system:unauthenticated",))
BOB = UserInfo("bob", groups=("g1", "g2", "system:authenticated"))
PROXY_BOB = (("X-Remote-User", "bob"), ("X-Remote-Group", "g1"), ("X-Remote-Group", "g2"))
UNAUTHORIZED = (
    b'{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Unauthorized",'
    b'"reason":"Unauthorized","code":401}\n'
)
TOKEN_USERS: dict[str, UserInfo | None] = {
    "good": UserInfo(
        "system:serviceaccount:monitoring:prometheus", uid="u-1", groups=("system:serviceaccounts",)
    ),
    "already": UserInfo("carol", groups=("system:authenticated", "x")),
    "nobody": None,
}


def deny_because(reason: str) -> Callable[[Attributes], Decision]:
    return lambda _: Decision(False, reason)


def forbidden(message: str, details: dict[str, str]) -> bytes:
    body: dict[str, Any] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": "Forbidden",
        "details": details,
        "code": 403,
    }
    return orjson.dumps(body).replace(b"&", b"\\u0026") + b"\n"


def res(user: UserInfo, verb: str, resource: str, *, namespace: str = "", name: str = "") -> Attributes:
    return Attributes(
        user=user,
        verb=verb,
        resource_request=True,
        namespace=namespace,
        api_group=GROUP,
        api_version="v1beta1",
        resource=resource,
        name=name,
    )


def nonres(user: UserInfo, path: str, verb: str = "get") -> Attributes:
    return Attributes(user=user, verb=verb, resource_request=False, path=path)


@dataclass
class Case:
    id: str
    path: str
    cert: str | None = None
    """Attribute name of a `Pki` client certificate."""
    headers: tuple[tuple[str, str], ...] = ()
    status: int = 200
    policy: Callable[[Attributes], Decision] = allow_all
    user: UserInfo | None = None
    """The user the app sees (200)."""
    body: bytes | None = None
    """The exact error body (non-200)."""
    sar: list[Attributes] = field(default_factory=list)
    """The SubjectAccessReviews asked, in order."""
    config: Callable[[Pki], AuthenticationConfig] | None = None
    always_allow: tuple[str, ...] = ("/healthz", "/readyz", "/livez")
    http2: bool = False


def alice(pki: Pki) -> UserInfo:
    leaf = x509.load_pem_x509_certificate(pki.alice.cert_pem)
    return UserInfo(
        "alice",
        groups=("dev", "ops", "system:authenticated"),
        extra={CREDENTIAL_ID_KEY: (fingerprint(leaf),)},
    )


ALICE = UserInfo("alice")  # placeholder: replaced by alice(pki) in the test body
NODES_FORBIDDEN_BOB = forbidden(
    'nodes.metrics.k8s.io is forbidden: User "bob" cannot list resource "nodes" in API group '
    '"metrics.k8s.io" at the cluster scope',
    {"group": GROUP, "kind": "nodes"},
)

CASES = [
    # --- front proxy -------------------------------------------------------------------------
    Case("proxy-trusted", f"{API}/nodes", "proxy", PROXY_BOB, user=BOB, sar=[res(BOB, "list", "nodes")]),
    Case(
        "proxy-trusted-h2",
        f"{API}/nodes",
        "proxy",
        PROXY_BOB,
        user=BOB,
        sar=[res(BOB, "list", "nodes")],
        http2=True,
    ),
    Case(
        "proxy-extra-and-uid",
        f"{API}/nodes",
        "proxy",
        (
            ("X-Remote-User", "dave"),
            ("X-Remote-Uid", "1f2e"),
            ("X-Remote-Extra-Scopes", "read"),
            ("X-Remote-Extra-Scopes", "write"),
            ("X-Remote-Extra-Authentication.kubernetes.io%2Fpod-name", "web-0"),
            ("X-Remote-Extra-Bad%zz", "kept-raw"),
        ),
        user=UserInfo(
            "dave",
            uid="1f2e",
            groups=("system:authenticated",),
            extra={
                "scopes": ("read", "write"),
                "authentication.kubernetes.io/pod-name": ("web-0",),
                "bad%zz": ("kept-raw",),
            },
        ),
        sar=[
            res(
                UserInfo(
                    "dave",
                    uid="1f2e",
                    groups=("system:authenticated",),
                    extra={
                        "scopes": ("read", "write"),
                        "authentication.kubernetes.io/pod-name": ("web-0",),
                        "bad%zz": ("kept-raw",),
                    },
                ),
                "list",
                "nodes",
            )
        ],
    ),
    Case(
        "proxy-empty-username-then-second-header-empty-groups-dropped",
        f"{API}/nodes",
        "proxy",
        (
            ("X-Remote-User", "bob"),
            ("X-Remote-Group", ""),
            ("X-Remote-Group", "g1"),
            ("X-Remote-Group", "g2"),
        ),
        user=BOB,
        sar=[res(BOB, "list", "nodes")],
    ),
    Case(
        "proxy-without-username-is-401",
        f"{API}/nodes",
        "proxy",
        (("X-Remote-Group", "g1"),),
        401,
        body=UNAUTHORIZED,
    ),
    Case("proxy-wrong-cn-is-401", f"{API}/nodes", "proxy_other_cn", PROXY_BOB, 401, body=UNAUTHORIZED),
    Case(
        "proxy-any-cn-when-allowed-names-empty",
        f"{API}/nodes",
        "proxy_other_cn",
        PROXY_BOB,
        user=BOB,
        sar=[res(BOB, "list", "nodes")],
        config=lambda pki: pki.auth_config(allowed_names=()),
    ),
    Case(
        "remote-user-without-certificate-is-ignored",
        f"{API}/nodes",
        None,
        PROXY_BOB,
        user=ANON,
        sar=[res(ANON, "list", "nodes")],
    ),
    Case(
        "remote-user-without-certificate-denied",
        f"{API}/nodes",
        None,
        PROXY_BOB,
        status=403,
        policy=deny_all,
        body=forbidden(
            'nodes.metrics.k8s.io is forbidden: User "system:anonymous" cannot list resource "nodes" in API '
            'group "metrics.k8s.io" at the cluster scope',
            {"group": GROUP, "kind": "nodes"},
        ),
        sar=[res(ANON, "list", "nodes")],
    ),
    Case(
        "masters-skip-sar",
        f"{API}/nodes",
        "proxy",
        (("X-Remote-User", "system:kube-aggregator"), ("X-Remote-Group", "system:masters")),
        policy=sar_error,
        user=UserInfo("system:kube-aggregator", groups=("system:masters", "system:authenticated")),
    ),
    # --- client certificates -----------------------------------------------------------------
    Case("client-cert", f"{API}/nodes", "alice", user=ALICE, sar=[res(ALICE, "list", "nodes")]),
    Case(
        "client-cert-ignores-remote-headers",
        f"{API}/nodes",
        "alice",
        (("X-Remote-User", "mallory"), ("X-Remote-Group", "system:masters")),
        user=ALICE,
        sar=[res(ALICE, "list", "nodes")],
    ),
    # --- tokens --------------------------------------------------------------------------------
    Case(
        "token-good",
        "/metrics",
        headers=(("Authorization", "Bearer good"),),
        user=UserInfo(
            "system:serviceaccount:monitoring:prometheus",
            uid="u-1",
            groups=("system:serviceaccounts", "system:authenticated"),
        ),
        sar=[
            nonres(
                UserInfo(
                    "system:serviceaccount:monitoring:prometheus",
                    uid="u-1",
                    groups=("system:serviceaccounts", "system:authenticated"),
                ),
                "/metrics",
            )
        ],
    ),
    Case(
        "token-authenticated-group-not-duplicated",
        "/metrics",
        headers=(("Authorization", "bearer already"),),
        user=UserInfo("carol", groups=("system:authenticated", "x")),
        sar=[nonres(UserInfo("carol", groups=("system:authenticated", "x")), "/metrics")],
    ),
    Case(
        "token-rejected-is-401",
        "/metrics",
        headers=(("Authorization", "Bearer nobody"),),
        status=401,
        body=UNAUTHORIZED,
    ),
    Case(
        "token-review-error-is-401",
        "/metrics",
        headers=(("Authorization", "Bearer boom"),),
        status=401,
        body=UNAUTHORIZED,
    ),
    Case(
        "token-error-on-healthz-is-401",
        "/healthz",
        headers=(("Authorization", "Bearer boom"),),
        status=401,
        body=UNAUTHORIZED,
    ),
    Case(
        "basic-auth-is-ignored",
        "/metrics",
        headers=(("Authorization", "Basic Ym9iOnB3"),),
        user=ANON,
        sar=[nonres(ANON, "/metrics")],
    ),
    Case(
        "empty-bearer-is-ignored",
        "/metrics",
        headers=(("Authorization", "Bearer  good"),),
        user=ANON,
        sar=[nonres(ANON, "/metrics")],
    ),
    # --- authorization -------------------------------------------------------------------------
    Case(
        "sar-deny",
        f"{API}/nodes",
        "proxy",
        PROXY_BOB,
        403,
        policy=deny_all,
        body=NODES_FORBIDDEN_BOB,
        sar=[res(BOB, "list", "nodes")],
    ),
    Case(
        "sar-deny-with-reason",
        f"{API}/nodes/n1",
        "proxy",
        PROXY_BOB,
        403,
        policy=deny_because("no RBAC policy matched"),
        body=forbidden(
            'nodes.metrics.k8s.io "n1" is forbidden: User "bob" cannot get resource "nodes" in API group '
            '"metrics.k8s.io" at the cluster scope: no RBAC policy matched',
            {"name": "n1", "group": GROUP, "kind": "nodes"},
        ),
        sar=[res(BOB, "get", "nodes", name="n1")],
    ),
    Case(
        "sar-error-is-500",
        f"{API}/nodes",
        "proxy",
        PROXY_BOB,
        500,
        policy=sar_error,
        body=b'{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Internal error '
        b'occurred: subjectaccessreviews.authorization.k8s.io failed after 5 attempts: boom","reason":'
        b'"InternalError","details":{"causes":[{"message":"subjectaccessreviews.authorization.k8s.io failed '
        b'after 5 attempts: boom"}]},"code":500}\n',
        sar=[res(BOB, "list", "nodes")],
    ),
    Case("livez-always-allowed", "/livez", policy=deny_all, user=ANON),
    Case("readyz-verbose-always-allowed", "/readyz?verbose", policy=deny_all, user=ANON),
    Case("healthz-always-allowed", "/healthz", policy=deny_all, user=ANON),
    Case(
        "livez-subpath-needs-sar",
        "/livez/ping",
        policy=deny_all,
        status=403,
        body=forbidden('forbidden: User "system:anonymous" cannot get path "/livez/ping"', {}),
        sar=[nonres(ANON, "/livez/ping")],
    ),
    Case(
        "prefix-rule-allows-subpath",
        "/debug/pprof/heap",
        policy=deny_all,
        user=ANON,
        always_allow=("/debug/*",),
    ),
    Case(
        "prefix-rule-does-not-allow-the-bare-path",
        "/debug",
        policy=deny_all,
        status=403,
        body=forbidden('forbidden: User "system:anonymous" cannot get path "/debug"', {}),
        sar=[nonres(ANON, "/debug")],
        always_allow=("/debug/*",),
    ),
    Case(
        "prefix-rule-replaces-the-defaults",
        "/livez",
        policy=deny_all,
        status=403,
        body=forbidden('forbidden: User "system:anonymous" cannot get path "/livez"', {}),
        sar=[nonres(ANON, "/livez")],
        always_allow=("/debug/*",),
    ),
    Case(
        "watch-verb",
        f"{API}/pods?watch=true",
        "proxy",
        PROXY_BOB,
        403,
        policy=deny_all,
        body=forbidden(
            'pods.metrics.k8s.io is forbidden: User "bob" cannot watch resource "pods" in API group '
            '"metrics.k8s.io" at the cluster scope',
            {"group": GROUP, "kind": "pods"},
        ),
        sar=[res(BOB, "watch", "pods")],
    ),
    Case(
        "watch-false-is-list",
        f"{API}/pods?watch=false",
        "proxy",
        PROXY_BOB,
        user=BOB,
        sar=[res(BOB, "list", "pods")],
    ),
    Case(
        "field-selector-name",
        f"{API}/namespaces/default/pods?fieldSelector=metadata.name%3Dp1&limit=500",
        "proxy",
        PROXY_BOB,
        403,
        policy=deny_all,
        body=forbidden(
            'pods.metrics.k8s.io "p1" is forbidden: User "bob" cannot list resource "pods" in API group '
            '"metrics.k8s.io" in the namespace "default"',
            {"name": "p1", "group": GROUP, "kind": "pods"},
        ),
        sar=[res(BOB, "list", "pods", namespace="default", name="p1")],
    ),
    Case(
        "get-namespaced-pod",
        f"{API}/namespaces/kube-system/pods/coredns-0",
        "proxy",
        PROXY_BOB,
        user=BOB,
        sar=[res(BOB, "get", "pods", namespace="kube-system", name="coredns-0")],
    ),
    Case(
        "non-resource-metrics",
        "/metrics",
        "proxy",
        PROXY_BOB,
        403,
        policy=deny_all,
        body=forbidden('forbidden: User "bob" cannot get path "/metrics"', {}),
        sar=[nonres(BOB, "/metrics")],
    ),
    Case(
        "non-resource-is-html-escaped",
        "/metrics%3Cb%3E&x",
        "proxy",
        PROXY_BOB,
        403,
        policy=deny_all,
        body=forbidden('forbidden: User "bob" cannot get path "/metrics&lt;b&gt;&amp;x"', {}),
        sar=[nonres(BOB, "/metrics<b>&x")],
    ),
    Case("discovery-is-non-resource", API, "proxy", PROXY_BOB, user=BOB, sar=[nonres(BOB, API)]),
    Case(
        "unresolvable-path-is-500",
        f"{API}/watch",
        status=500,
        body=b'{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"Internal error '
        b"occurred: failed to create RequestInfo: unable to determine kind and namespace from url, "
        b'/apis/metrics.k8s.io/v1beta1/watch","reason":"InternalError","details":{"causes":[{"message":'
        b'"failed to create RequestInfo: unable to determine kind and namespace from url, '
        b'/apis/metrics.k8s.io/v1beta1/watch"}]},"code":500}\n',
    ),
]


def _with_alice(pki: Pki, value: Any) -> Any:
    """Replace the ALICE placeholder (its credential id depends on the session's certificate)."""
    if isinstance(value, UserInfo) and value is ALICE:
        return alice(pki)
    if isinstance(value, Attributes) and value.user is ALICE:
        return dataclasses.replace(value, user=alice(pki))
    return value


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
async def test_matrix(case: Case, nursery: trio.Nursery, pki: Pki) -> None:
    tokens = FakeTokens(TOKEN_USERS, failing=["boom"])
    server = await start_server(
        nursery,
        pki,
        config=case.config(pki) if case.config else None,
        tokens=tokens,
        policy=case.policy,
        always_allow_paths=case.always_allow,
    )
    cert: ClientCert | None = getattr(pki, case.cert) if case.cert else None
    response = await get(server, pki, case.path, cert=cert, headers=case.headers, http2=case.http2)

    assert response.status_code == case.status
    assert response.http_version == ("HTTP/2" if case.http2 else "HTTP/1.1")
    assert server.access.calls == [_with_alice(pki, a) for a in case.sar]
    if case.status != 200:
        assert response.content == case.body
        assert response.headers["content-type"] == "application/json"
        return
    seen = response.json()
    assert seen["user"] == user_json(_with_alice(pki, case.user))
    names = {name for name, _ in seen["headers"]}
    assert not {n for n in names if n.startswith("x-remote-")}, "identity headers must not reach the app"
    assert "authorization" not in names
