"""Delegated authentication, in the apiserver library's order and with its union semantics.

Authenticators, tried in order until one authenticates (`DelegatingAuthenticatorConfig.New`):

1. front proxy (request headers): only when the connection's client certificate verifies against
   the request-header CA and, if the allowed-names list is non-empty, its CN is listed (else an
   error). Then: username = first non-empty value among the username headers (none: "not mine",
   next authenticator); uid likewise; groups = every non-empty value of every group header;
   extra = for each header starting with an extra prefix (case-insensitive), the rest of the
   name lower-cased then percent-decoded (kept raw when that fails) -> all its values;
2. x509: a client certificate verifying against the client CA -> user CN (Go's last CN), groups O,
   extra `authentication.kubernetes.io/credential-id: X509SHA256=<hex>`; no CN: "not mine";
3. bearer token (`Authorization: Bearer <t>`, first header, scheme case-insensitive; an empty
   token is ignored) via TokenReview; "not authenticated" becomes the error `invalid bearer token`,
   a `ReviewError` is an error too.

An authenticator that is not configured (no CA, no token reviewer) is skipped. If one succeeds the
user gets `system:authenticated` (unless it is `system:anonymous` or already has that group or
`system:unauthenticated`). If none succeeded and any reported an error, the request is
unauthenticated: 401 (anonymous has FailOnError semantics). Otherwise, with anonymous enabled,
the user is `system:anonymous` in `system:unauthenticated`.

After success the `Authorization` header is dropped (the library does it). The configured
request-header headers are always dropped whenever a front proxy is configured, also when they
were not trusted (the library leaves untrusted ones in place; nothing downstream should ever see
identity headers that were not authenticated).
"""

from __future__ import annotations

import datetime as dt
import re
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import NamedTuple, Protocol
from urllib.parse import unquote_to_bytes

from metrics_server.asgi import Headers
from metrics_server.auth.authconfig import AuthenticationConfig, RequestHeaderConfig
from metrics_server.auth.clientcert import ClientLeaf, TrustBundle, certificate_identifier
from metrics_server.auth.errors import CertificateRejected
from metrics_server.auth.reviews import ReviewError
from metrics_server.auth.tls import AuthenticationConfigProvider
from metrics_server.auth.user import UserInfo

ANONYMOUS = "system:anonymous"
UNAUTHENTICATED = "system:unauthenticated"
AUTHENTICATED = "system:authenticated"
CREDENTIAL_ID_KEY = "authentication.kubernetes.io/credential-id"
INVALID_TOKEN = "invalid bearer token"
_PERCENT_ESCAPE = re.compile(r"%(?![0-9A-Fa-f]{2})")
_PARSED_CERTS = 256
_AUTHORIZATION = frozenset((b"authorization",))


class TokenReviewerLike(Protocol):
    """What `auth.reviews.TokenReviewer` offers."""

    async def review(self, token: str) -> UserInfo | None: ...


class AuthnResult(NamedTuple):
    user: UserInfo | None
    """None: unauthenticated (401)."""
    headers: Headers
    """The request headers the app should see (identity and Authorization headers removed)."""
    errors: tuple[str, ...]
    """What the authenticators reported (for the log)."""


class _HeaderKeys(NamedTuple):
    """A `RequestHeaderConfig`'s header names as ASGI gives them (lower-case bytes), computed once."""

    username: tuple[bytes, ...]
    uid: tuple[bytes, ...]
    group: tuple[bytes, ...]
    extra_prefixes: tuple[bytes, ...]

    @classmethod
    def of(cls, config: RequestHeaderConfig) -> _HeaderKeys:
        def keys(names: Sequence[str]) -> tuple[bytes, ...]:
            return tuple(n.lower().encode("latin-1") for n in names)

        return cls(
            keys(config.username_headers),
            keys(config.uid_headers),
            keys(config.group_headers),
            keys(config.extra_header_prefixes),
        )


class _Settings(NamedTuple):
    """An `AuthenticationConfig` with its CA bundles parsed and header names encoded (rebuilt when
    the config changes)."""

    source: AuthenticationConfig | None
    client_ca: TrustBundle | None
    request_header: RequestHeaderConfig | None
    request_header_ca: TrustBundle | None
    request_header_keys: _HeaderKeys | None
    strip: frozenset[bytes]
    """Headers dropped from every request (the front proxy's identity headers)."""
    strip_authenticated: frozenset[bytes]
    """Headers dropped from an authenticated request (`strip` and `authorization`)."""
    strip_prefixes: tuple[bytes, ...]


def _bundle(pem: bytes | None) -> TrustBundle | None:
    if not pem:
        return None
    try:
        return TrustBundle(pem)
    except ValueError:
        return None  # AuthenticationConfigSource only publishes parseable bundles


def _settings(config: AuthenticationConfig | None) -> _Settings:
    if config is None:
        return _Settings(None, None, None, None, None, frozenset(), _AUTHORIZATION, ())
    rh = config.request_header
    keys = _HeaderKeys.of(rh) if rh is not None else None
    strip: frozenset[bytes] = frozenset()
    prefixes: tuple[bytes, ...] = ()
    if keys is not None:
        strip = frozenset((*keys.username, *keys.group, *keys.uid))
        prefixes = keys.extra_prefixes
    return _Settings(
        config,
        _bundle(config.client_ca_pem),
        rh,
        _bundle(rh.ca_pem) if rh is not None else None,
        keys,
        strip,
        strip | _AUTHORIZATION,
        prefixes,
    )


def _text(value: bytes) -> str:
    return value.decode("utf-8", "replace")


def _first(headers: Headers, keys: tuple[bytes, ...]) -> str:
    """Go's `headerValue`: the first non-empty `Header.Get(name)` over `keys` (lower-case)."""
    for key in keys:
        for k, v in headers:
            if k == key:
                if v:
                    return _text(v)
                break  # Header.Get looks at the first value only
    return ""


def _unescape_extra_key(encoded: str) -> str:
    """Go's `url.PathUnescape`, keeping the input when it is malformed."""
    if _PERCENT_ESCAPE.search(encoded):
        return encoded
    try:
        return unquote_to_bytes(encoded).decode("utf-8")
    except UnicodeDecodeError:
        return encoded


def request_header_user(headers: Headers, config: RequestHeaderConfig) -> UserInfo | None:
    """The identity the front proxy asserted in `headers`; None without a username."""
    return _request_header_user(headers, _HeaderKeys.of(config))


def _request_header_user(headers: Headers, keys: _HeaderKeys) -> UserInfo | None:
    name = _first(headers, keys.username)
    if not name:
        return None
    groups: list[str] = []
    for wanted in keys.group:
        groups.extend(_text(v) for k, v in headers if k == wanted and v)
    extra: dict[str, list[str]] = {}
    for p in keys.extra_prefixes:
        for k, v in headers:
            if k.lower().startswith(p):
                key = _unescape_extra_key(_text(k[len(p) :]).lower())
                extra.setdefault(key, []).append(_text(v))
    return UserInfo(
        name=name,
        uid=_first(headers, keys.uid),
        groups=tuple(groups),
        extra={k: tuple(v) for k, v in extra.items()},
    )


def bearer_token(headers: Headers) -> str:
    """The token of the first `Authorization: Bearer <token>` header, "" when there is none."""
    for k, v in headers:
        if k == b"authorization":
            parts = _text(v).strip().split(" ", 2)
            if len(parts) >= 2 and parts[0].lower() == "bearer":
                return parts[1]
            return ""
    return ""


def with_authenticated_group(user: UserInfo) -> UserInfo:
    """The library's `AuthenticatedGroupAdder`."""
    if user.name == ANONYMOUS or AUTHENTICATED in user.groups or UNAUTHENTICATED in user.groups:
        return user
    return UserInfo(name=user.name, uid=user.uid, groups=(*user.groups, AUTHENTICATED), extra=user.extra)


def _utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


class Authenticator:
    """The authenticator chain. `config` gives the current CAs and front-proxy settings (None: no
    certificate authentication); `tokens` reviews bearer tokens (None: tokens are ignored)."""

    def __init__(
        self,
        config: AuthenticationConfigProvider | None,
        tokens: TokenReviewerLike | None,
        *,
        anonymous: bool = True,
        clock: Callable[[], dt.datetime] = _utcnow,
    ) -> None:
        self._config = config
        self._tokens = tokens
        self._anonymous = anonymous
        self._clock = clock
        self._settings = _settings(config.current() if config is not None else None)
        self._parsed: OrderedDict[str, ClientLeaf | None] = OrderedDict()

    def _current(self) -> _Settings:
        if self._config is not None:
            config = self._config.current()
            if config is not self._settings.source:
                self._settings = _settings(config)
        return self._settings

    def _certificate(self, pem: str) -> ClientLeaf | None:
        if pem in self._parsed:
            self._parsed.move_to_end(pem)
            return self._parsed[pem]
        try:
            cert: ClientLeaf | None = ClientLeaf.from_pem(pem)
        except ValueError:
            cert = None
        self._parsed[pem] = cert
        if len(self._parsed) > _PARSED_CERTS:
            self._parsed.popitem(last=False)
        return cert

    async def authenticate(self, headers: Headers, client_cert_pem: str | None) -> AuthnResult:
        """Authenticate one request from its headers and the connection's client certificate.

        Never raises for a bad credential: failures (including `ReviewError`) are errors, 401."""
        s = self._current()
        errors: list[str] = []
        user = await self._chain(s, headers, client_cert_pem, errors)
        if user is not None:
            user = with_authenticated_group(user)
        elif not errors and self._anonymous:
            user = UserInfo(name=ANONYMOUS, groups=(UNAUTHENTICATED,))
        drop = s.strip_authenticated if user is not None else s.strip
        if drop or s.strip_prefixes:
            headers = [(k, v) for k, v in headers if k not in drop and not k.startswith(s.strip_prefixes)]
        return AuthnResult(user, headers, tuple(errors))

    async def _chain(
        self, s: _Settings, headers: Headers, client_cert_pem: str | None, errors: list[str]
    ) -> UserInfo | None:
        """The union of the configured authenticators: the first user, appending errors."""
        leaf = self._certificate(client_cert_pem) if client_cert_pem else None
        now = self._clock() if client_cert_pem else None
        if s.request_header is not None and s.request_header_ca is not None and client_cert_pem:
            try:
                if leaf is None:
                    raise CertificateRejected("x509: malformed certificate")
                assert now is not None
                s.request_header_ca.verify(leaf.cert, now, leaf.digest)
                allowed = s.request_header.allowed_names
                if allowed and leaf.common_name not in allowed:
                    raise CertificateRejected(
                        f"x509: subject with cn={leaf.common_name} is not in the allowed list"
                    )
            except CertificateRejected as exc:
                errors.append(str(exc))
            else:
                assert s.request_header_keys is not None
                user = _request_header_user(headers, s.request_header_keys)
                if user is not None:
                    return user
        if s.client_ca is not None and client_cert_pem:
            try:
                if leaf is None:
                    raise CertificateRejected("x509: malformed certificate")
                assert now is not None
                s.client_ca.verify(leaf.cert, now, leaf.digest)
            except CertificateRejected as exc:
                where = certificate_identifier(leaf.cert) if leaf is not None else "(unparseable)"
                errors.append(f"verifying certificate {where} failed: {exc}")
            else:
                if leaf.common_name:
                    return UserInfo(
                        name=leaf.common_name,
                        groups=leaf.organizations,
                        extra={CREDENTIAL_ID_KEY: (leaf.credential_id,)},
                    )
        if self._tokens is not None:
            token = bearer_token(headers)
            if token:
                try:
                    user = await self._tokens.review(token)
                except ReviewError as exc:
                    errors.append(str(exc))
                else:
                    if user is not None:
                        return user
                    errors.append(INVALID_TOKEN)
        return None
