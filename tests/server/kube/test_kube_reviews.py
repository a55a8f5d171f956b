"""TokenReview and SubjectAccessReview clients (`auth.reviews`): wire bodies, caching, collapsing, errors.

They live beside the fake kube-apiserver of this directory, which they talk to.
"""

from __future__ import annotations

import random
from typing import Any

import httpx
import pytest
import trio
import trio.testing
from kubefake import FakeApiServer

from kubesim.responses import status_doc
from metrics_server.auth.reviews import (
    AccessReviewer,
    CollapsingTTLCache,
    ReviewCacheOptions,
    ReviewError,
    TokenReviewer,
)
from metrics_server.auth.user import Attributes, Decision, UserInfo
from metrics_server.kube.errors import OptionsError

ALICE = UserInfo(name="alice", uid="u-1", groups=("dev", "system:authenticated"), extra={"scopes": ("read",)})


def authenticated(body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    if body["spec"]["token"] != "good-token":
        return 201, {**body, "status": {"authenticated": False, "error": "invalid token"}}
    user = {
        "username": "system:serviceaccount:monitoring:prometheus",
        "uid": "0f6a",
        "groups": ["system:serviceaccounts", "system:authenticated"],
        "extra": {"authentication.kubernetes.io/pod-name": ["prometheus-0"]},
    }
    return 201, {**body, "status": {"authenticated": True, "user": user, "audiences": ["https://kubernetes"]}}


PROMETHEUS = UserInfo(
    name="system:serviceaccount:monitoring:prometheus",
    uid="0f6a",
    groups=("system:serviceaccounts", "system:authenticated"),
    extra={"authentication.kubernetes.io/pod-name": ("prometheus-0",)},
)


async def test_token_review_body_and_result(fake: FakeApiServer, client: httpx.AsyncClient) -> None:
    fake.token_reviews.handler = authenticated
    reviewer = TokenReviewer(client)
    assert await reviewer.review("good-token") == PROMETHEUS
    assert await reviewer.review("bad-token") is None
    assert fake.token_reviews.raw_bodies[0] == (
        b'{"kind":"TokenReview","apiVersion":"authentication.k8s.io/v1","metadata":{"creationTimestamp":null},'
        b'"spec":{"token":"good-token"},"status":{"user":{}}}'
    )
    assert fake.requests[0].headers["content-type"] == "application/json"


async def test_concurrent_identical_token_lookups_make_one_call(
    fake: FakeApiServer, client: httpx.AsyncClient
) -> None:
    fake.token_reviews.handler = authenticated
    fake.token_reviews.gate = trio.Event()
    reviewer = TokenReviewer(client)
    results: list[UserInfo | None] = []

    async def lookup() -> None:
        results.append(await reviewer.review("good-token"))

    async with trio.open_nursery() as nursery:
        for _ in range(20):
            nursery.start_soon(lookup)
        await fake.token_reviews.arrived.wait()
        await trio.testing.wait_all_tasks_blocked()
        fake.token_reviews.gate.set()

    assert results == [PROMETHEUS] * 20
    assert len(fake.token_reviews.calls) == 1


async def test_token_cache_expires_after_ttl(
    fake: FakeApiServer, client: httpx.AsyncClient, autojump_clock: trio.testing.MockClock
) -> None:
    fake.token_reviews.handler = authenticated
    reviewer = TokenReviewer(client, ReviewCacheOptions(token_cache_ttl=10.0))
    await reviewer.review("good-token")
    await reviewer.review("bad-token")
    await trio.sleep(4.5)
    assert await reviewer.review("good-token") == PROMETHEUS
    assert await reviewer.review("bad-token") is None
    assert len(fake.token_reviews.calls) == 2  # both answers (success and failure) were cached
    await trio.sleep(6.0)  # expired (neither was used after half the TTL, so none was refreshed)
    await reviewer.review("good-token")
    await reviewer.review("bad-token")
    assert len(fake.token_reviews.calls) == 4


async def test_token_errors_are_retried_and_never_cached(
    fake: FakeApiServer, client: httpx.AsyncClient, autojump_clock: trio.testing.MockClock
) -> None:
    fake.token_reviews.handler = lambda body: (500, status_doc(500, "etcd is down"))
    reviewer = TokenReviewer(client, rng=random.Random(3))
    start = trio.current_time()
    with pytest.raises(ReviewError) as info:
        await reviewer.review("good-token")
    assert str(info.value) == (
        "tokenreviews.authentication.k8s.io failed after 5 attempts: 500 InternalError: etcd is down"
    )
    assert len(fake.token_reviews.calls) == 5
    # The library's backoff: 0.5 s x 1.5 per step, stretched by up to 20 %.
    rng = random.Random(3)
    assert trio.current_time() - start == pytest.approx(
        sum(0.5 * 1.5**i * (1 + 0.2 * rng.random()) for i in range(4)), abs=1e-6
    )

    fake.token_reviews.handler = authenticated
    assert await reviewer.review("good-token") == PROMETHEUS
    assert len(fake.token_reviews.calls) == 6


async def test_forbidden_token_review_names_the_permission(
    fake: FakeApiServer, client: httpx.AsyncClient
) -> None:
    message = (
        'tokenreviews.authentication.k8s.io is forbidden: User "system:serviceaccount:kube-system:'
        'metrics-server" cannot create resource "tokenreviews" in API group "authentication.k8s.io" '
        "at the cluster scope"
    )
    fake.token_reviews.handler = lambda body: (403, status_doc(403, message))
    with pytest.raises(ReviewError) as info:
        await TokenReviewer(client).review("good-token")
    assert str(info.value) == (
        f"cannot create tokenreviews.authentication.k8s.io: forbidden: {message}; "
        'the server\'s service account needs "create" on "tokenreviews" in API group '
        '"authentication.k8s.io" (ClusterRole system:auth-delegator)'
    )
    assert len(fake.token_reviews.calls) == 1


async def test_token_review_timeout(
    fake: FakeApiServer, client: httpx.AsyncClient, autojump_clock: trio.testing.MockClock
) -> None:
    fake.token_reviews.handler = authenticated
    fake.token_reviews.gate = trio.Event()  # never set: the apiserver hangs
    reviewer = TokenReviewer(client, ReviewCacheOptions(request_timeout=2.0, retry_steps=2))
    with pytest.raises(ReviewError, match=r"failed after 2 attempts: timed out after 2s$"):
        await reviewer.review("good-token")
    assert len(fake.token_reviews.calls) == 2


def sar_allow_alice(body: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    spec = body["spec"]
    allowed = spec.get("user") == "alice" and spec.get("resourceAttributes", {}).get("verb") != "watch"
    reason = "RBAC: allowed by ClusterRoleBinding" if allowed else ""
    return 201, {**body, "status": {"allowed": allowed, "reason": reason}}


async def test_sar_bodies_are_exact(fake: FakeApiServer, client: httpx.AsyncClient) -> None:
    fake.access_reviews.handler = sar_allow_alice
    reviewer = AccessReviewer(client)
    resource = Attributes(
        user=ALICE,
        verb="list",
        resource_request=True,
        namespace="x",
        api_group="metrics.k8s.io",
        api_version="v1beta1",
        resource="pods",
    )
    cluster_get = Attributes(
        user=UserInfo(name="bob"),
        verb="get",
        resource_request=True,
        api_group="metrics.k8s.io",
        api_version="v1beta1",
        resource="nodes",
        name="n1",
    )
    non_resource = Attributes(
        user=UserInfo(name="system:kube-aggregator", groups=("system:authenticated",)),
        verb="get",
        resource_request=False,
        path="/apis/metrics.k8s.io/v1beta1",
    )
    assert await reviewer.authorize(resource) == Decision(True, "RBAC: allowed by ClusterRoleBinding")
    assert await reviewer.authorize(cluster_get) == Decision(False, "")
    assert await reviewer.authorize(non_resource) == Decision(False, "")
    head = (
        b'{"kind":"SubjectAccessReview","apiVersion":"authorization.k8s.io/v1",'
        b'"metadata":{"creationTimestamp":null},'
    )
    tail = b',"status":{"allowed":false}}'
    assert fake.access_reviews.raw_bodies == [
        head + b'"spec":{"resourceAttributes":{"namespace":"x","verb":"list","group":"metrics.k8s.io",'
        b'"version":"v1beta1","resource":"pods"},"user":"alice","groups":["dev","system:authenticated"],'
        b'"extra":{"scopes":["read"]},"uid":"u-1"}' + tail,
        head + b'"spec":{"resourceAttributes":{"verb":"get","group":"metrics.k8s.io","version":"v1beta1",'
        b'"resource":"nodes","name":"n1"},"user":"bob"}' + tail,
        head + b'"spec":{"nonResourceAttributes":{"path":"/apis/metrics.k8s.io/v1beta1","verb":"get"},'
        b'"user":"system:kube-aggregator","groups":["system:authenticated"]}' + tail,
    ]


async def test_sar_caching_ttls_and_keys(
    fake: FakeApiServer, client: httpx.AsyncClient, autojump_clock: trio.testing.MockClock
) -> None:
    fake.access_reviews.handler = sar_allow_alice
    reviewer = AccessReviewer(client, ReviewCacheOptions(authorized_ttl=10.0, unauthorized_ttl=3.0))
    allowed = Attributes(user=ALICE, verb="get", resource_request=True, resource="pods", namespace="x")
    denied = Attributes(user=ALICE, verb="watch", resource_request=True, resource="pods", namespace="x")
    other_extra = Attributes(
        user=UserInfo(name="alice", uid="u-1", groups=ALICE.groups, extra={"scopes": ("write",)}),
        verb="get",
        resource_request=True,
        resource="pods",
        namespace="x",
    )
    assert (await reviewer.authorize(allowed)).allowed
    assert not (await reviewer.authorize(denied)).allowed
    assert (await reviewer.authorize(other_extra)).allowed  # differs only in extra: its own entry
    assert len(fake.access_reviews.calls) == 3

    await trio.sleep(2.5)
    await reviewer.authorize(allowed)
    await reviewer.authorize(denied)
    assert len(fake.access_reviews.calls) == 3
    await trio.sleep(1.0)  # 3.5 s: the denial expired, the allowance did not
    await reviewer.authorize(allowed)
    await reviewer.authorize(denied)
    assert len(fake.access_reviews.calls) == 4
    await trio.sleep(7.0)  # 10.5 s
    await reviewer.authorize(allowed)
    assert len(fake.access_reviews.calls) == 5


async def test_concurrent_identical_sar_lookups_make_one_call(
    fake: FakeApiServer, client: httpx.AsyncClient
) -> None:
    fake.access_reviews.handler = sar_allow_alice
    fake.access_reviews.gate = trio.Event()
    reviewer = AccessReviewer(client)
    attrs = Attributes(user=ALICE, verb="list", resource_request=True, resource="nodes")
    results: list[Decision] = []

    async def ask() -> None:
        results.append(await reviewer.authorize(attrs))

    async with trio.open_nursery() as nursery:
        for _ in range(10):
            nursery.start_soon(ask)
        await fake.access_reviews.arrived.wait()
        await trio.testing.wait_all_tasks_blocked()
        fake.access_reviews.gate.set()
    assert results == [Decision(True, "RBAC: allowed by ClusterRoleBinding")] * 10
    assert len(fake.access_reviews.calls) == 1


async def test_sar_both_allowed_and_denied_is_a_denial(
    fake: FakeApiServer, client: httpx.AsyncClient
) -> None:
    fake.access_reviews.handler = lambda body: (
        201,
        {"status": {"allowed": True, "denied": True, "reason": "x"}},
    )
    attrs = Attributes(user=ALICE, verb="get", resource_request=False, path="/metrics")
    assert await AccessReviewer(client).authorize(attrs) == Decision(False, "x", denied=True)


async def test_cache_is_bounded_lru(autojump_clock: trio.testing.MockClock) -> None:
    cache: CollapsingTTLCache[str, int] = CollapsingTTLCache(2, trio.current_time)
    calls: list[str] = []

    def fetcher(key: str) -> Any:
        async def fetch() -> tuple[int, float]:
            calls.append(key)
            return len(calls), 60.0

        return fetch

    assert await cache.get("a", fetcher("a")) == 1
    assert await cache.get("b", fetcher("b")) == 2
    assert await cache.get("a", fetcher("a")) == 1  # hit; "a" becomes most recent
    assert await cache.get("c", fetcher("c")) == 3  # evicts "b"
    assert len(cache) == 2
    assert await cache.get("a", fetcher("a")) == 1
    assert await cache.get("b", fetcher("b")) == 4
    assert calls == ["a", "b", "c", "b"]


async def test_a_requester_that_leaves_does_not_cancel_the_review() -> None:
    """The first requester is cancelled (its client went away) while its review runs: the review
    goes on, the second requester gets its answer, and the answer is cached."""
    cache: CollapsingTTLCache[str, str] = CollapsingTTLCache(10, trio.current_time)
    release = trio.Event()
    calls = 0
    finished: list[str] = []

    async def fetch() -> tuple[str, float]:
        nonlocal calls
        calls += 1
        await release.wait()
        finished.append("fetch")
        return "value", 10.0

    results: list[str] = []
    first_scope = trio.CancelScope()

    async def first() -> None:
        with first_scope:
            await cache.get("k", fetch)

    async def second() -> None:
        results.append(await cache.get("k", fetch))

    async with trio.open_nursery() as nursery:
        nursery.start_soon(first)
        await trio.testing.wait_all_tasks_blocked()  # the review is running
        nursery.start_soon(second)
        await trio.testing.wait_all_tasks_blocked()  # the second requester joined it
        first_scope.cancel()
        await trio.testing.wait_all_tasks_blocked()
        assert (calls, finished) == (1, [])  # not cancelled, not restarted
        release.set()
    assert results == ["value"] and finished == ["fetch"]
    assert await cache.get("k", fetch) == "value" and calls == 1  # cached


async def test_an_unexpected_fetch_error_reaches_the_requester() -> None:
    cache: CollapsingTTLCache[str, str] = CollapsingTTLCache(10, trio.current_time)

    async def fetch() -> tuple[str, float]:
        raise KeyError("a bug")

    with pytest.raises(KeyError, match="a bug"):
        await cache.get("k", fetch)
    assert len(cache) == 0


def test_options_validation_names_the_flag() -> None:
    with pytest.raises(
        OptionsError, match=r"^--authorization-webhook-cache-unauthorized-ttl: must not be negative$"
    ):
        ReviewCacheOptions(unauthorized_ttl=-1).validate()
    with pytest.raises(OptionsError, match=r"^--authentication-token-webhook-cache-ttl: "):
        ReviewCacheOptions(token_cache_ttl=-0.5).validate()


async def test_an_entry_in_use_is_refreshed_in_the_background_after_half_its_ttl() -> None:
    """A hit after `REFRESH_AFTER` of the TTL answers from the cache at once and refreshes the entry
    in the background (one fetch however many hits); the refreshed answer then counts from when
    it arrived."""
    now = [0.0]
    cache: CollapsingTTLCache[str, str] = CollapsingTTLCache(10, lambda: now[0])
    release = trio.Event()
    calls: list[float] = []

    async def fetch() -> tuple[str, float]:
        calls.append(now[0])
        if len(calls) > 1:
            await release.wait()
        return f"v{len(calls)}", 10.0

    assert await cache.get("k", fetch) == "v1"
    now[0] = 4.9
    assert await cache.get("k", fetch) == "v1"
    await trio.testing.wait_all_tasks_blocked()
    assert calls == [0.0]
    now[0] = 5.0
    assert await cache.get("k", fetch) == "v1"  # at once, while the refresh runs
    await trio.testing.wait_all_tasks_blocked()
    now[0] = 6.0
    assert await cache.get("k", fetch) == "v1"
    await trio.testing.wait_all_tasks_blocked()
    assert calls == [0.0, 5.0]
    release.set()
    await trio.testing.wait_all_tasks_blocked()
    now[0] = 10.9  # stored at 6.0: fresh until 16.0, refreshed from 11.0
    assert await cache.get("k", fetch) == "v2"
    await trio.testing.wait_all_tasks_blocked()
    assert calls == [0.0, 5.0]


async def test_a_failed_refresh_keeps_the_answer_until_it_expires() -> None:
    now = [0.0]
    cache: CollapsingTTLCache[str, str] = CollapsingTTLCache(10, lambda: now[0])
    calls: list[float] = []

    async def fetch() -> tuple[str, float]:
        calls.append(now[0])
        await trio.lowlevel.checkpoint()
        if len(calls) > 1:
            raise ReviewError("the apiserver is down")
        return "v1", 10.0

    assert await cache.get("k", fetch) == "v1"
    for t in (5.0, 9.9):
        now[0] = t
        assert await cache.get("k", fetch) == "v1"
        await trio.testing.wait_all_tasks_blocked()
    assert calls == [0.0, 5.0, 9.9]  # each failed refresh was not cached
    now[0] = 10.0  # expired: the request waits for the review, and gets its error
    with pytest.raises(ReviewError, match=r"^the apiserver is down$"):
        await cache.get("k", fetch)
