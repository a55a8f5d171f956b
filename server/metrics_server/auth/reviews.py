"""Delegated authentication (TokenReview) and authorization (SubjectAccessReview) clients.

Both cache answers for a TTL (allowed and denied separately for SAR), collapse concurrent
identical lookups into one upstream call, refresh an answer still in use in the background once
half its TTL has passed (so a steady client never waits for a review), never cache errors, bound
the cache (LRU), time out each call and retry transient failures with the library's backoff
(0.5 s x 1.5, jitter 0.2, 5 steps).
A failure after the retries raises `ReviewError`; the caller decides what that means (the
library answers 401 for a token it cannot check and 403 for a request it cannot authorize).
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import random
import secrets
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import httpx
import orjson
import trio

from metrics_server import flagset
from metrics_server.auth.user import Attributes, Decision, UserInfo
from metrics_server.kube.errors import ApiError, KubeError, KubeTransportError, OptionsError
from metrics_server.kube.rest import request_json

logger = logging.getLogger(__name__)

TOKEN_REVIEW_PATH = "/apis/authentication.k8s.io/v1/tokenreviews"
ACCESS_REVIEW_PATH = "/apis/authorization.k8s.io/v1/subjectaccessreviews"
MAX_CACHEABLE_SPEC = 10_000
"""Like the library, do not cache a review whose requester-controlled input exceeds this size."""


class ReviewError(KubeError):
    """The review could not be obtained from the kube-apiserver (after retries)."""


@dataclass(frozen=True, slots=True)
class ReviewCacheOptions:
    token_cache_ttl: float = flagset.flag(
        "--authentication-token-webhook-cache-ttl",
        flagset.DURATION,
        "10s",
        "The duration to cache responses from the webhook token authenticator.",
        to=flagset.seconds,
        group=flagset.AUTHENTICATION,
    )
    """Successes and failures alike; 0 disables."""
    authorized_ttl: float = flagset.flag(
        "--authorization-webhook-cache-authorized-ttl",
        flagset.DURATION,
        "10s",
        "The duration to cache 'authorized' responses from the webhook authorizer.",
        to=flagset.seconds,
        group=flagset.AUTHORIZATION,
    )
    """0 disables."""
    unauthorized_ttl: float = flagset.flag(
        "--authorization-webhook-cache-unauthorized-ttl",
        flagset.DURATION,
        "10s",
        "The duration to cache 'unauthorized' responses from the webhook authorizer.",
        to=flagset.seconds,
        group=flagset.AUTHORIZATION,
    )
    """0 disables."""
    max_entries: int = 8192
    request_timeout: float = 10.0
    retry_steps: int = 5
    """Attempts per review (the first one included)."""
    retry_initial: float = 0.5
    retry_factor: float = 1.5
    retry_jitter: float = 0.2

    def validate(self) -> None:
        for flag, value in (
            ("--authentication-token-webhook-cache-ttl", self.token_cache_ttl),
            ("--authorization-webhook-cache-authorized-ttl", self.authorized_ttl),
            ("--authorization-webhook-cache-unauthorized-ttl", self.unauthorized_ttl),
        ):
            if value < 0:
                raise OptionsError(flag, "must not be negative")
        if self.max_entries < 1:
            raise OptionsError("max_entries", "must be positive")
        if self.request_timeout <= 0:
            raise OptionsError("request_timeout", "must be positive")
        if self.retry_steps < 1:
            raise OptionsError("retry_steps", "number of webhook retry attempts must be at least 1")


K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class _Flight(Generic[V]):
    __slots__ = ("crash", "done", "error", "event", "value")

    def __init__(self) -> None:
        self.event = trio.Event()
        self.done = False
        self.value: V | None = None
        self.error: ReviewError | None = None
        self.crash: Exception | None = None


REFRESH_AFTER = 0.5
"""Fraction of an entry's TTL after which a hit also starts refreshing it in the background."""


class CollapsingTTLCache(Generic[K, V]):
    """An LRU cache with per-entry expiry, plus single-flight fetching and refresh-ahead.

    `get(key, fetch)` returns a fresh cached value, or joins the fetch already running for `key`,
    or starts `fetch()`. A hit on an entry older than `REFRESH_AFTER` of its TTL also starts
    `fetch()` in the background (unless one is running) and returns the cached value at once: the
    refreshed answer replaces it, a failed refresh leaves it until it expires. No answer is ever
    used past its TTL, as before; what changes is that a key in steady use never makes a request
    wait for its review. Measured at 5000 x 30 with the bench's bearer token: reviews from the
    simulated kube-apiserver under load took up to 2 s, and every request arriving meanwhile
    waited (3 % of requests, up to 2 s: docs/performance.md, round 5). `fetch` returns (value,
    ttl); ttl <= 0 means "do not cache". A
    `ReviewError` from the fetch reaches every waiter (as a `ReviewError` of the same text) and
    is not cached; any other exception reaches every waiter as it is.

    The fetch runs in a trio system task, not in the task that started it: a request whose client
    goes away (the serving layer then cancels it) does not cancel a review other requests may be
    waiting for, nor interrupt it halfway (httpx/httpcore leave the socket of a connection
    cancelled in its TLS handshake unclosed). The library does the same: its token cache calls
    the webhook with a context that the request's cancellation does not reach. Each fetch is
    bounded by its own timeouts and retries; system tasks end with the trio run. A fetch
    cancelled all the same (the run ending) leaves its waiters to start another.
    `cacheable=False` bypasses the cache but still collapses.
    """

    def __init__(self, max_entries: int, clock: Callable[[], float]) -> None:
        self._max = max_entries
        self._clock = clock
        self._entries: OrderedDict[K, tuple[float, float, V]] = OrderedDict()
        """key -> (expires, refresh from, value)."""
        self._flights: dict[K, _Flight[V]] = {}

    def __len__(self) -> int:
        return len(self._entries)

    def _lookup(self, key: K) -> tuple[bool, bool, V | None]:
        """(hit, due for a refresh, value)."""
        entry = self._entries.get(key)
        if entry is None:
            return False, False, None
        expires, refresh_from, value = entry
        now = self._clock()
        if now >= expires:
            del self._entries[key]
            return False, False, None
        self._entries.move_to_end(key)
        return True, now >= refresh_from, value

    def _store(self, key: K, value: V, ttl: float) -> None:
        now = self._clock()
        self._entries[key] = (now + ttl, now + ttl * REFRESH_AFTER, value)
        self._entries.move_to_end(key)
        while len(self._entries) > self._max:
            self._entries.popitem(last=False)

    async def get(
        self, key: K, fetch: Callable[[], Awaitable[tuple[V, float]]], *, cacheable: bool = True
    ) -> V:
        if cacheable:
            hit, due, cached = self._lookup(key)
            if hit:
                if due and key not in self._flights:
                    self._start(key, fetch, cacheable)
                return cached  # type: ignore[return-value]
        while True:
            flight = self._flights.get(key) or self._start(key, fetch, cacheable)
            await flight.event.wait()
            if flight.done:
                return flight.value  # type: ignore[return-value]
            if flight.error is not None:
                raise ReviewError(str(flight.error)) from flight.error
            if flight.crash is not None:
                raise flight.crash
            # the fetch was cancelled: try again

    def _start(self, key: K, fetch: Callable[[], Awaitable[tuple[V, float]]], cacheable: bool) -> _Flight[V]:
        flight = self._flights[key] = _Flight()
        trio.lowlevel.spawn_system_task(self._fly, key, flight, fetch, cacheable, name="review")
        return flight

    async def _fly(
        self, key: K, flight: _Flight[V], fetch: Callable[[], Awaitable[tuple[V, float]]], cacheable: bool
    ) -> None:
        """The system task of one fetch: it records the outcome and never raises (but Cancelled)."""
        try:
            value, ttl = await fetch()
            flight.value, flight.done = value, True
            if cacheable and ttl > 0:
                self._store(key, value, ttl)
        except ReviewError as exc:
            flight.error = exc
        except Exception as exc:  # a bug: every waiter gets it; a system task must not raise it
            flight.crash = exc
        finally:
            del self._flights[key]
            flight.event.set()


class _Upstream:
    """POSTs one review object, with per-attempt timeout and retries of transient failures."""

    def __init__(self, client: httpx.AsyncClient, options: ReviewCacheOptions, rng: random.Random) -> None:
        self._client = client
        self._options = options
        self._rng = rng

    async def post(self, path: str, body: dict[str, Any], what: str, permission: str) -> dict[str, Any]:
        o = self._options
        delay = o.retry_initial
        last: KubeError | None = None
        for attempt in range(o.retry_steps):
            if attempt:
                await trio.sleep(delay * (1.0 + o.retry_jitter * self._rng.random()))
                delay *= o.retry_factor
            try:
                with trio.fail_after(o.request_timeout):
                    return await request_json(
                        self._client, "POST", path, body=body, request_timeout=o.request_timeout
                    )
            except trio.TooSlowError:
                last = KubeTransportError(f"timed out after {o.request_timeout:g}s")
            except KubeTransportError as exc:
                last = exc
            except ApiError as exc:
                if exc.code == 403:
                    raise ReviewError(
                        f"cannot create {what}: forbidden: {exc.message}; the server's service account needs "
                        f"{permission} (ClusterRole system:auth-delegator)"
                    ) from exc
                if exc.code != 429 and exc.code < 500:
                    raise ReviewError(f"{what} failed: {exc}") from exc
                last = exc
        raise ReviewError(f"{what} failed after {o.retry_steps} attempts: {last}") from last


def _user_from_status(status: dict[str, Any]) -> UserInfo:
    user = status.get("user") or {}
    extra = user.get("extra") or {}
    return UserInfo(
        name=str(user.get("username") or ""),
        uid=str(user.get("uid") or ""),
        groups=tuple(str(g) for g in user.get("groups") or ()),
        extra={str(k): tuple(str(x) for x in v or ()) for k, v in extra.items()},
    )


class TokenReviewer:
    """Authenticates bearer tokens with `authentication.k8s.io/v1` TokenReview.

    Cache keys are an HMAC-SHA256 of the token (with a per-process random key) and the audiences,
    so tokens are not kept in memory in the clear.
    """

    def __init__(
        self,
        client: httpx.AsyncClient,
        options: ReviewCacheOptions | None = None,
        *,
        audiences: tuple[str, ...] = (),
        clock: Callable[[], float] = trio.current_time,
        rng: random.Random | None = None,
    ) -> None:
        self._options = options or ReviewCacheOptions()
        self._options.validate()
        self._audiences = audiences
        self._upstream = _Upstream(client, self._options, rng or random.Random())
        self._cache: CollapsingTTLCache[bytes, UserInfo | None] = CollapsingTTLCache(
            self._options.max_entries, clock
        )
        self._hmac_key = secrets.token_bytes(32)

    async def review(self, token: str) -> UserInfo | None:
        """The user the token belongs to; None when the apiserver says it is not authenticated.

        Raises `ReviewError` when the apiserver cannot be asked (not cached)."""
        mac = hmac.new(self._hmac_key, token.encode(), hashlib.sha256)
        for audience in self._audiences:
            mac.update(b"\x00" + audience.encode())
        return await self._cache.get(mac.digest(), lambda: self._fetch(token))

    async def _fetch(self, token: str) -> tuple[UserInfo | None, float]:
        spec: dict[str, Any] = {"token": token}
        if self._audiences:
            spec["audiences"] = list(self._audiences)
        body = {
            "kind": "TokenReview",
            "apiVersion": "authentication.k8s.io/v1",
            "metadata": {"creationTimestamp": None},
            "spec": spec,
            "status": {"user": {}},
        }
        answer = await self._upstream.post(
            TOKEN_REVIEW_PATH,
            body,
            "tokenreviews.authentication.k8s.io",
            '"create" on "tokenreviews" in API group "authentication.k8s.io"',
        )
        status = answer.get("status") or {}
        ttl = self._options.token_cache_ttl
        if status.get("authenticated") is True:
            return _user_from_status(status), ttl
        if status.get("error"):
            logger.debug("token review: not authenticated: %s", status.get("error"))
        return None, ttl


def access_review_spec(attributes: Attributes) -> dict[str, Any]:
    """The SubjectAccessReview `spec`, with Go's field order and omitempty rules."""
    a = attributes
    spec: dict[str, Any] = {}
    if a.resource_request:
        fields = (
            ("namespace", a.namespace),
            ("verb", a.verb),
            ("group", a.api_group),
            ("version", a.api_version),
            ("resource", a.resource),
            ("subresource", a.subresource),
            ("name", a.name),
        )
        spec["resourceAttributes"] = {k: v for k, v in fields if v}
    else:
        spec["nonResourceAttributes"] = {k: v for k, v in (("path", a.path), ("verb", a.verb)) if v}
    user = a.user
    if user.name:
        spec["user"] = user.name
    if user.groups:
        spec["groups"] = list(user.groups)
    if user.extra:
        spec["extra"] = {k: list(user.extra[k]) for k in sorted(user.extra)}
    if user.uid:
        spec["uid"] = user.uid
    return spec


class AccessReviewer:
    """Authorizes requests with `authorization.k8s.io/v1` SubjectAccessReview.

    The cache key is the JSON of the whole `spec`, so it covers every attribute sent.
    Allowed answers are cached for `authorized_ttl`, everything else for `unauthorized_ttl`.
    """

    def __init__(
        self,
        client: httpx.AsyncClient,
        options: ReviewCacheOptions | None = None,
        *,
        clock: Callable[[], float] = trio.current_time,
        rng: random.Random | None = None,
    ) -> None:
        self._options = options or ReviewCacheOptions()
        self._options.validate()
        self._upstream = _Upstream(client, self._options, rng or random.Random())
        self._cache: CollapsingTTLCache[bytes, Decision] = CollapsingTTLCache(
            self._options.max_entries, clock
        )

    async def authorize(self, attributes: Attributes) -> Decision:
        """The apiserver's decision. Raises `ReviewError` when it cannot be asked (not cached)."""
        spec = access_review_spec(attributes)
        key = orjson.dumps(spec)
        return await self._cache.get(key, lambda: self._fetch(spec), cacheable=len(key) <= MAX_CACHEABLE_SPEC)

    async def _fetch(self, spec: dict[str, Any]) -> tuple[Decision, float]:
        body = {
            "kind": "SubjectAccessReview",
            "apiVersion": "authorization.k8s.io/v1",
            "metadata": {"creationTimestamp": None},
            "spec": spec,
            "status": {"allowed": False},
        }
        answer = await self._upstream.post(
            ACCESS_REVIEW_PATH,
            body,
            "subjectaccessreviews.authorization.k8s.io",
            '"create" on "subjectaccessreviews" in API group "authorization.k8s.io"',
        )
        status = answer.get("status") or {}
        allowed = status.get("allowed") is True
        denied = status.get("denied") is True
        reason = str(status.get("reason") or "")
        if status.get("evaluationError"):
            logger.warning("subject access review evaluation error: %s", status["evaluationError"])
        if allowed and denied:
            logger.error("webhook subject access review returned both allow and deny response")
            allowed = False
        decision = Decision(allowed=allowed, reason=reason, denied=denied and not allowed)
        ttl = self._options.authorized_ttl if allowed else self._options.unauthorized_ttl
        return decision, ttl
