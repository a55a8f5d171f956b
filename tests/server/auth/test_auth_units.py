"""Unit tests of the pieces: request info, header parsing, the authorizer union, certificate
verification with a controlled clock, option validation."""

from __future__ import annotations

import datetime as dt

import pytest
from auth_testkit import FRONT_PROXY_CN, FakeConfigSource, FakeTokens, Pki, issue_client_cert, now
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID

from metrics_server.auth.authconfig import RequestHeaderConfig
from metrics_server.auth.authn import (
    AUTHENTICATED,
    Authenticator,
    bearer_token,
    request_header_user,
    with_authenticated_group,
)
from metrics_server.auth.authz import AlwaysAllowPaths, Authorizer, forbidden_body, forbidden_message
from metrics_server.auth.clientcert import TrustBundle, common_name, organizations
from metrics_server.auth.errors import CertificateRejected, RequestInfoError, ServingOptionsError
from metrics_server.auth.requestinfo import RequestInfo, resolve
from metrics_server.auth.serving import ServingConfig
from metrics_server.auth.user import USER_SCOPE_KEY, Attributes, Decision, UserInfo, user_from_scope

API = "/apis/metrics.k8s.io/v1beta1"
G, V = "metrics.k8s.io", "v1beta1"


def r(
    verb: str, resource: str, namespace: str = "", name: str = "", sub: str = "", path: str = ""
) -> RequestInfo:
    return RequestInfo(True, verb, path, G, V, namespace, resource, sub, name)


@pytest.mark.parametrize(
    ("method", "path", "query", "expected"),
    [
        ("GET", f"{API}/nodes", b"", r("list", "nodes", path=f"{API}/nodes")),
        ("GET", f"{API}/nodes/n1", b"", r("get", "nodes", name="n1", path=f"{API}/nodes/n1")),
        ("HEAD", f"{API}/nodes/n1", b"", r("get", "nodes", name="n1", path=f"{API}/nodes/n1")),
        ("GET", f"{API}/pods", b"watch=1", r("watch", "pods", path=f"{API}/pods")),
        ("GET", f"{API}/pods", b"watch=", r("watch", "pods", path=f"{API}/pods")),
        ("GET", f"{API}/pods", b"watch=FALSE", r("list", "pods", path=f"{API}/pods")),
        ("GET", f"{API}/pods", b"watch=0&watch=1", r("list", "pods", path=f"{API}/pods")),
        (
            "GET",
            f"{API}/namespaces/ns/pods",
            b"fieldSelector=metadata.name%3D%3Dp1",
            r("list", "pods", "ns", "p1", path=f"{API}/namespaces/ns/pods"),
        ),
        (
            "GET",
            f"{API}/namespaces/ns/pods",
            b"fieldSelector=metadata.name!%3Dp1",
            r("list", "pods", "ns", path=f"{API}/namespaces/ns/pods"),
        ),
        (
            "GET",
            f"{API}/namespaces/ns/pods",
            b"fieldSelector=metadata.name%3Dp1&labelSelector=%3D%3D%3D",
            r("list", "pods", "ns", path=f"{API}/namespaces/ns/pods"),
        ),
        (
            "GET",
            f"{API}/namespaces/ns/pods",
            b"fieldSelector=metadata.name%3Dp1&limit=ten",
            r("list", "pods", "ns", path=f"{API}/namespaces/ns/pods"),
        ),
        (
            "GET",
            f"{API}/namespaces/ns/pods",
            b"fieldSelector=metadata.name%3D..&watch=true",
            r("watch", "pods", "ns", path=f"{API}/namespaces/ns/pods"),
        ),
        (
            "GET",
            f"{API}/namespaces/ns/pods/p/log",
            b"",
            r("get", "pods", "ns", "p", "log", f"{API}/namespaces/ns/pods/p/log"),
        ),
        ("GET", f"{API}/namespaces/ns", b"", r("get", "namespaces", "ns", "ns", path=f"{API}/namespaces/ns")),
        (
            "PUT",
            f"{API}/namespaces/ns/status",
            b"",
            r("update", "namespaces", "ns", "ns", "status", f"{API}/namespaces/ns/status"),
        ),
        ("GET", f"{API}/watch/pods", b"", r("watch", "pods", path=f"{API}/watch/pods")),
        ("DELETE", f"{API}/pods", b"", r("deletecollection", "pods", path=f"{API}/pods")),
        ("POST", f"{API}/pods", b"", r("create", "pods", path=f"{API}/pods")),
        ("OPTIONS", f"{API}/pods", b"", r("", "pods", path=f"{API}/pods")),
        ("GET", API, b"", RequestInfo(False, "get", API)),
        ("GET", "/apis/metrics.k8s.io", b"", RequestInfo(False, "get", "/apis/metrics.k8s.io")),
        ("POST", "/metrics", b"", RequestInfo(False, "post", "/metrics")),
        ("GET", "/", b"", RequestInfo(False, "get", "/")),
        ("GET", "/livez/ping", b"", RequestInfo(False, "get", "/livez/ping")),
        ("GET", "/api/v1/nodes", b"", RequestInfo(True, "list", "/api/v1/nodes", "", "v1", "", "nodes")),
    ],
)
def test_request_info(method: str, path: str, query: bytes, expected: RequestInfo) -> None:
    assert resolve(method, path, query) == expected


def test_request_info_special_verb_without_resource() -> None:
    with pytest.raises(RequestInfoError, match="unable to determine kind and namespace from url"):
        resolve("GET", f"{API}/watch")


def test_attributes_of_a_non_resource_request_carry_only_path_and_verb() -> None:
    user = UserInfo("u")
    assert resolve("GET", "/metrics").attributes(user) == Attributes(user, "get", False, path="/metrics")


RH = RequestHeaderConfig(
    ca_pem=b"",
    allowed_names=(),
    username_headers=("X-Remote-User", "X-Other-User"),
    group_headers=("X-Remote-Group",),
    extra_header_prefixes=("X-Remote-Extra-", "X-Extra-"),
    uid_headers=("X-Remote-Uid",),
)


def test_request_header_user_rules() -> None:
    headers = [
        (b"x-remote-user", b""),
        (b"x-remote-user", b"ignored-second-value"),
        (b"x-other-user", b"erin"),
        (b"x-remote-group", b"a"),
        (b"x-remote-group", b""),
        (b"x-remote-group", b"b, c"),
        (b"x-remote-extra-scopes", b"r"),
        (b"x-extra-scopes", b"w"),
        (b"x-remote-extra-a%2fb", b""),
        (b"x-remote-uid", b"42"),
    ]
    assert request_header_user(headers, RH) == UserInfo(
        "erin", uid="42", groups=("a", "b, c"), extra={"scopes": ("r", "w"), "a/b": ("",)}
    )
    assert request_header_user([(b"x-remote-group", b"a")], RH) is None


@pytest.mark.parametrize(
    ("value", "token"),
    [
        (b"Bearer abc", "abc"),
        (b"  bearer abc  ", "abc"),
        (b"BEARER abc def", "abc"),
        (b"Bearer  abc", ""),
        (b"Bearer", ""),
        (b"Basic abc", ""),
    ],
)
def test_bearer_token(value: bytes, token: str) -> None:
    assert bearer_token([(b"authorization", value), (b"authorization", b"Bearer second")]) == token


def test_authenticated_group_adder() -> None:
    assert with_authenticated_group(UserInfo("a", groups=("x",))).groups == ("x", AUTHENTICATED)
    assert with_authenticated_group(UserInfo("system:anonymous")).groups == ()
    assert with_authenticated_group(UserInfo("a", groups=("system:unauthenticated",))).groups == (
        "system:unauthenticated",
    )


async def test_anonymous_disabled_means_401_without_credentials(pki: Pki) -> None:
    authn = Authenticator(FakeConfigSource(pki.auth_config()), FakeTokens(), anonymous=False)
    result = await authn.authenticate([(b"authorization", b"Basic x")], None)
    assert (result.user, result.errors) == (None, ())
    assert result.headers == [(b"authorization", b"Basic x")]  # kept: nobody authenticated


async def test_unparseable_client_certificate_is_an_error(pki: Pki) -> None:
    authn = Authenticator(FakeConfigSource(pki.auth_config()), None)
    result = await authn.authenticate([], "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n")
    assert result.user is None
    assert result.errors == (
        "x509: malformed certificate",
        "verifying certificate (unparseable) failed: x509: malformed certificate",
    )


async def test_no_certificate_authentication_without_a_config(pki: Pki) -> None:
    authn = Authenticator(None, None)
    result = await authn.authenticate([(b"x-remote-user", b"bob")], pki.alice.cert_pem.decode())
    assert result.user == UserInfo("system:anonymous", groups=("system:unauthenticated",))
    assert result.headers == [(b"x-remote-user", b"bob")]  # no front proxy configured: not ours to strip


def test_always_allow_paths() -> None:
    paths = AlwaysAllowPaths(["healthz", "/", "/api/*"])
    user = UserInfo("u")

    def allowed(path: str, resource: bool = False) -> bool:
        return paths.allows(Attributes(user, "get", resource, path=path))

    assert [allowed(p) for p in ("/healthz", "/", "", "/api/x", "/api/", "/api", "/healthz/x")] == [
        True,
        True,
        True,
        True,
        True,
        False,
        False,
    ]
    assert not allowed("/healthz", resource=True)
    with pytest.raises(ServingOptionsError) as info:
        AlwaysAllowPaths(["/a*b"])
    assert str(info.value) == '--authorization-always-allow-paths: only trailing * allowed in "a*b"'


async def test_authorizer_without_reviewer_forbids() -> None:
    authz = Authorizer(None)
    user = UserInfo("u")
    assert await authz.authorize(Attributes(user, "get", False, path="/metrics")) == Decision(False)
    assert await authz.authorize(Attributes(user, "get", False, path="/readyz")) == Decision(True)
    masters = UserInfo("m", groups=("system:masters",))
    assert await authz.authorize(Attributes(masters, "list", True, resource="pods")) == Decision(True)


def test_forbidden_messages() -> None:
    alice = UserInfo("alice", groups=("dev",))
    pods = Attributes(alice, "list", True, namespace="default", api_group="metrics.k8s.io", resource="pods")
    assert forbidden_body(pods) == (
        b'{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",'
        b'"message":"pods.metrics.k8s.io is forbidden: User \\"alice\\" cannot list resource \\"pods\\" '
        b"in API group "
        b'\\"metrics.k8s.io\\" in the namespace \\"default\\"","reason":"Forbidden",'
        b'"details":{"group":"metrics.k8s.io","kind":"pods"},"code":403}\n'
    )
    node = Attributes(alice, "get", True, api_group="metrics.k8s.io", resource="nodes", name="n1")
    assert forbidden_message(node) == (
        'User "alice" cannot get resource "nodes" in API group "metrics.k8s.io" at the cluster scope'
    )
    assert b'"message":"nodes.metrics.k8s.io \\"n1\\" is forbidden: User' in forbidden_body(node, "no RBAC")
    assert forbidden_body(node, "no RBAC").count(b"at the cluster scope: no RBAC") == 1
    path = Attributes(alice, "get", False, path="/metrics")
    assert forbidden_body(path) == (
        b'{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure",'
        b'"message":"forbidden: User \\"alice\\" cannot get path \\"/metrics\\"","reason":"Forbidden",'
        b'"details":{},"code":403}\n'
    )


def test_forbidden_body_sanitizes_the_message_but_not_the_reason_or_details() -> None:
    attrs = Attributes(
        UserInfo("<b>"),
        "get",
        True,
        namespace="a&b",
        api_group=G,
        api_version=V,
        resource="pods",
        subresource="x",
        name="p<1>",
    )
    assert forbidden_body(attrs, "because <reasons>") == (
        b'{"kind":"Status","apiVersion":"v1","metadata":{},"status":"Failure","message":"pods.metrics.k8s.io '
        b'\\"p\\u003c1\\u003e\\" is forbidden: User \\"\\u0026lt;b\\u0026gt;\\" cannot get resource '
        b'\\"pods/x\\" in API group \\"metrics.k8s.io\\" in the namespace \\"a\\u0026amp;b\\": because '
        b'\\u003creasons\\u003e","reason":"Forbidden","details":{"name":"p\\u003c1\\u003e","group":'
        b'"metrics.k8s.io","kind":"pods"},"code":403}\n'
    )


# --- client certificate verification with a controlled clock -----------------------------------------


def test_trust_bundle_verification(pki: Pki) -> None:
    bundle = TrustBundle(pki.front_proxy_ca.cert_pem.bytes())
    start = now()
    leaf = x509.load_pem_x509_certificate(
        issue_client_cert(
            pki.front_proxy_ca, FRONT_PROXY_CN, not_before=start, not_after=start + dt.timedelta(hours=1)
        ).cert_pem
    )
    bundle.verify(leaf, start + dt.timedelta(minutes=1))
    bundle.verify(leaf, start + dt.timedelta(minutes=2))  # memoised issuer, same answer
    fmt = "%Y-%m-%dT%H:%M:%SZ"
    later = start + dt.timedelta(hours=2)
    with pytest.raises(CertificateRejected) as info:
        bundle.verify(leaf, later)
    assert str(info.value) == (
        "x509: certificate has expired or is not yet valid: current time "
        f"{later.strftime(fmt)} is after {(start + dt.timedelta(hours=1)).strftime(fmt)}"
    )
    with pytest.raises(CertificateRejected, match="is before"):
        bundle.verify(leaf, start - dt.timedelta(seconds=5))
    alien = x509.load_pem_x509_certificate(pki.alice.cert_pem)
    with pytest.raises(CertificateRejected, match=r"^x509: certificate signed by unknown authority$"):
        bundle.verify(alien, start + dt.timedelta(minutes=1))


@pytest.mark.parametrize(
    ("usages", "ok"),
    [
        (None, True),
        ((ExtendedKeyUsageOID.CLIENT_AUTH,), True),
        ((ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE,), True),
        ((ExtendedKeyUsageOID.SERVER_AUTH,), False),
    ],
)
def test_trust_bundle_key_usage(pki: Pki, usages: tuple[x509.ObjectIdentifier, ...] | None, ok: bool) -> None:
    bundle = TrustBundle(pki.client_ca.cert_pem.bytes())
    leaf = x509.load_pem_x509_certificate(issue_client_cert(pki.client_ca, "u", usages=usages).cert_pem)
    if ok:
        bundle.verify(leaf, now())
    else:
        with pytest.raises(
            CertificateRejected, match=r"^x509: certificate specifies an incompatible key usage$"
        ):
            bundle.verify(leaf, now())


def test_subject_fields(pki: Pki) -> None:
    leaf = x509.load_pem_x509_certificate(pki.alice.cert_pem)
    assert (common_name(leaf), organizations(leaf)) == ("alice", ("dev", "ops"))


# --- options --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "flag"),
    [
        (ServingConfig(bind_address="localhost"), "--bind-address"),
        (ServingConfig(secure_port=70000), "--secure-port"),
        (ServingConfig(tls_min_version="VersionTLS11"), "--tls-min-version"),
        (ServingConfig(tls_cert_file="a"), "--tls-private-key-file"),
        (ServingConfig(tls_private_key_file="a"), "--tls-cert-file"),
        (ServingConfig(cert_poll_interval=0), "cert_poll_interval"),
    ],
)
def test_serving_config_validation(config: ServingConfig, flag: str) -> None:
    with pytest.raises(ServingOptionsError) as info:
        config.validate()
    assert info.value.flag == flag
    assert str(info.value).startswith(f"{flag}: ")


def test_bind_strings() -> None:
    assert ServingConfig(bind_address="::", secure_port=443).bind == "[::]:443"
    assert ServingConfig(bind_address="fd00::1", secure_port=4443).bind == "[fd00::1]:4443"
    assert ServingConfig(bind_address="127.0.0.61", secure_port=0).bind == "127.0.0.61:0"
    ServingConfig(bind_address="::1").validate()


def test_user_from_scope() -> None:
    user = UserInfo("u")
    assert user_from_scope({USER_SCOPE_KEY: user}) is user
    assert user_from_scope({}) is None
    assert user_from_scope({USER_SCOPE_KEY: "u"}) is None
