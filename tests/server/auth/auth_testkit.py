"""Shared pieces of the auth tests: certificates, fakes, an echo app and a server starter.

Certificates come from trustme CAs; client certificates are issued here with cryptography (from
the trustme CA's key) so tests control CN, several O values, validity and ExtKeyUsage.
"""

from __future__ import annotations

import datetime as dt
import ssl
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson
import trio
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from metrics_server.asgi import ASGIApp, Receive, Scope, Send
from metrics_server.auth.authconfig import AuthenticationConfig, RequestHeaderConfig
from metrics_server.auth.authn import Authenticator
from metrics_server.auth.authz import Authorizer
from metrics_server.auth.middleware import AuthMiddleware
from metrics_server.auth.reviews import ReviewError
from metrics_server.auth.serving import ServingConfig, serve_https
from metrics_server.auth.user import Attributes, Decision, UserInfo, user_from_scope

HOST = "127.0.0.61"
FRONT_PROXY_CN = "front-proxy-client"


def now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class ClientCert:
    cert_pem: bytes
    key_pem: bytes


def issue_client_cert(
    ca: trustme.CA,
    common_name: str,
    organizations: Sequence[str] = (),
    *,
    not_before: dt.datetime | None = None,
    not_after: dt.datetime | None = None,
    usages: Sequence[x509.ObjectIdentifier] | None = (ExtendedKeyUsageOID.CLIENT_AUTH,),
) -> ClientCert:
    """A client certificate signed by `ca` (usages None: no ExtKeyUsage extension)."""
    ca_key = serialization.load_pem_private_key(ca.private_key_pem.bytes(), password=None)
    ca_cert = x509.load_pem_x509_certificate(ca.cert_pem.bytes())
    key = ec.generate_private_key(ec.SECP256R1())
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, o) for o in organizations]
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, common_name))
    start = not_before or now() - dt.timedelta(hours=1)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name(attrs))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(not_after or start + dt.timedelta(days=1))
    )
    if usages is not None:
        builder = builder.add_extension(x509.ExtendedKeyUsage(list(usages)), critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())  # type: ignore[arg-type]
    return ClientCert(
        cert.public_bytes(serialization.Encoding.PEM),
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ),
    )


@dataclass
class Pki:
    """The CAs and certificates of a test cluster."""

    directory: Path
    server_ca: trustme.CA = field(default_factory=trustme.CA)
    front_proxy_ca: trustme.CA = field(default_factory=trustme.CA)
    client_ca: trustme.CA = field(default_factory=trustme.CA)
    rogue_ca: trustme.CA = field(default_factory=trustme.CA)

    def __post_init__(self) -> None:
        self.proxy = issue_client_cert(self.front_proxy_ca, FRONT_PROXY_CN)
        self.proxy_other_cn = issue_client_cert(self.front_proxy_ca, "someone-else")
        self.alice = issue_client_cert(self.client_ca, "alice", ["dev", "ops"])
        self.rogue = issue_client_cert(self.rogue_ca, FRONT_PROXY_CN)
        self.expired_proxy = issue_client_cert(
            self.front_proxy_ca,
            FRONT_PROXY_CN,
            not_before=now() - dt.timedelta(days=3),
            not_after=now() - dt.timedelta(days=1),
        )
        self._count = 0

    def serving_files(self, ca: trustme.CA | None = None, *identities: str) -> tuple[Path, Path]:
        leaf = (ca or self.server_ca).issue_cert(*(identities or (HOST,)))
        return self.write(leaf.cert_chain_pems[0].bytes(), leaf.private_key_pem.bytes())

    def write(self, cert_pem: bytes, key_pem: bytes) -> tuple[Path, Path]:
        self._count += 1
        cert, key = self.directory / f"c{self._count}.crt", self.directory / f"c{self._count}.key"
        cert.write_bytes(cert_pem)
        key.write_bytes(key_pem)
        return cert, key

    def auth_config(
        self,
        *,
        allowed_names: tuple[str, ...] = (FRONT_PROXY_CN,),
        front_proxy_ca: trustme.CA | None = None,
        client_ca: trustme.CA | None = None,
        uid_headers: tuple[str, ...] = ("X-Remote-Uid",),
    ) -> AuthenticationConfig:
        return AuthenticationConfig(
            client_ca_pem=(client_ca or self.client_ca).cert_pem.bytes(),
            request_header=RequestHeaderConfig(
                ca_pem=(front_proxy_ca or self.front_proxy_ca).cert_pem.bytes(),
                allowed_names=allowed_names,
                username_headers=("X-Remote-User",),
                group_headers=("X-Remote-Group",),
                extra_header_prefixes=("X-Remote-Extra-",),
                uid_headers=uid_headers,
            ),
        )

    def client_context(
        self,
        cert: ClientCert | None = None,
        *,
        ca: trustme.CA | None = None,
        minimum: ssl.TLSVersion | None = None,
        maximum: ssl.TLSVersion | None = None,
    ) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cadata=(ca or self.server_ca).cert_pem.bytes().decode())
        if minimum is not None or maximum is not None:
            ctx.set_ciphers("DEFAULT:@SECLEVEL=0")  # let the client offer old versions
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # TLS 1.1 is deprecated: that's the point
            if minimum is not None:
                ctx.minimum_version = minimum
            if maximum is not None:
                ctx.maximum_version = maximum
        if cert is not None:
            cert_file, key_file = self.write(cert.cert_pem, cert.key_pem)
            ctx.load_cert_chain(cert_file, key_file)
        return ctx


class FakeConfigSource:
    """Stands in for `AuthenticationConfigSource`: `config` can be replaced at any time."""

    def __init__(self, config: AuthenticationConfig) -> None:
        self.config = config

    def current(self) -> AuthenticationConfig:
        return self.config


class FakeTokens:
    """Token -> user; tokens in `failing` raise ReviewError. Records the tokens reviewed."""

    def __init__(self, users: dict[str, UserInfo | None] | None = None, failing: Sequence[str] = ()) -> None:
        self.users = users or {}
        self.failing = set(failing)
        self.calls: list[str] = []

    async def review(self, token: str) -> UserInfo | None:
        self.calls.append(token)
        if token in self.failing:
            raise ReviewError("tokenreviews.authentication.k8s.io failed after 5 attempts: boom")
        return self.users.get(token)


class FakeAccess:
    """Answers SubjectAccessReviews with `policy(attrs)`; records every Attributes asked about."""

    def __init__(self, policy: Callable[[Attributes], Decision]) -> None:
        self.policy = policy
        self.calls: list[Attributes] = []

    async def authorize(self, attributes: Attributes) -> Decision:
        self.calls.append(attributes)
        return self.policy(attributes)


def allow_all(_: Attributes) -> Decision:
    return Decision(True)


def deny_all(_: Attributes) -> Decision:
    return Decision(False)


def sar_error(_: Attributes) -> Decision:
    raise ReviewError("subjectaccessreviews.authorization.k8s.io failed after 5 attempts: boom")


def user_json(user: UserInfo | None) -> Any:
    if user is None:
        return None
    return {
        "name": user.name,
        "uid": user.uid,
        "groups": list(user.groups),
        "extra": {k: list(v) for k, v in user.extra.items()},
    }


async def echo_app(scope: Scope, receive: Receive, send: Send) -> None:
    """Answers every request with what it saw: user, headers, HTTP version, client certificate."""
    if scope["type"] == "lifespan":
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    tls = scope.get("extensions", {}).get("tls", {})
    body = orjson.dumps(
        {
            "user": user_json(user_from_scope(scope)),
            "headers": [[k.decode(), v.decode()] for k, v in scope["headers"]],
            "http_version": scope["http_version"],
            "client_cert_chain": list(tls.get("client_cert_chain", [])),
            "tls_version": tls.get("tls_version"),
        }
    )
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]}
    )
    await send({"type": "http.response.body", "body": body})


@dataclass
class Server:
    url: str
    source: FakeConfigSource
    tokens: FakeTokens
    access: FakeAccess

    @property
    def port(self) -> int:
        return int(self.url.rsplit(":", 1)[1])


async def start_server(
    nursery: trio.Nursery,
    pki: Pki,
    *,
    config: AuthenticationConfig | None = None,
    tokens: FakeTokens | None = None,
    policy: Callable[[Attributes], Decision] = allow_all,
    always_allow_paths: Sequence[str] = ("/healthz", "/readyz", "/livez"),
    serving: ServingConfig | None = None,
    reload_trigger: Callable[[], Any] | None = None,
    inner: ASGIApp = echo_app,
) -> Server:
    source = FakeConfigSource(config or pki.auth_config())
    token_reviewer = tokens or FakeTokens()
    access = FakeAccess(policy)
    app = AuthMiddleware(
        inner,
        Authenticator(source, token_reviewer),
        Authorizer(access, always_allow_paths=always_allow_paths),
    )
    if serving is None:
        cert, key = pki.serving_files()
        serving = ServingConfig(
            bind_address=HOST, secure_port=0, tls_cert_file=str(cert), tls_private_key_file=str(key)
        )
    urls = await nursery.start(
        lambda task_status: serve_https(
            app, serving, client_cas=source, reload_trigger=reload_trigger, task_status=task_status
        )
    )
    return Server(urls[0], source, token_reviewer, access)


async def get(
    server: Server,
    pki: Pki,
    path: str,
    *,
    cert: ClientCert | None = None,
    headers: Sequence[tuple[str, str]] = (),
    http2: bool = False,
    ca: trustme.CA | None = None,
) -> httpx.Response:
    """One GET over a new connection."""
    async with httpx.AsyncClient(
        verify=pki.client_context(cert, ca=ca), http2=http2, trust_env=False
    ) as client:
        return await client.get(server.url + path, headers=list(headers))


class Poke:
    """An injectable trigger for a `while True: await trigger(); work()` loop: `await poke()` lets
    the loop do exactly one round of work and returns when that round has finished."""

    def __init__(self) -> None:
        self._go_send, self._go_receive = trio.open_memory_channel[None](0)
        self._done_send, self._done_receive = trio.open_memory_channel[None](0)
        self._in_round = False

    async def __call__(self) -> None:  # the loop side
        if self._in_round:
            await self._done_send.send(None)
        await self._go_receive.receive()
        self._in_round = True

    async def poke(self) -> None:
        await self._go_send.send(None)
        await self._done_receive.receive()
