"""The apiserver library's request, authentication and authorization metrics, as metrics-server
v0.8.0 exposes them on `/metrics` (names, types, labels, buckets and help texts read from the
reference binary's own `/metrics`).

Recorded by `auth.middleware.AuthMiddleware` for every request it sees:

* `authentication_attempts{result}` (`success`, `failure`, `error`),
  `authentication_duration_seconds{result}`, and `authenticated_user_requests{username}` with the
  library's compressed user names (`admin`, `kubelet`, ... kept; an address with `@` is
  `email_id`; everyone else `other`);
* `authorization_attempts_total{result}` (`allowed`, `denied`, `no-opinion`, `error`) and
  `authorization_duration_seconds{result}`, for requests that were authenticated;
* for requests that pass both and are what the library instruments (GET-method requests to API
  resources, and `/healthz`, `/livez`, `/readyz` themselves): `apiserver_request_total`,
  `apiserver_request_duration_seconds` (from the request's arrival, authentication included, to
  the last body byte handed to the server) and `apiserver_response_sizes`, labelled by the
  request info as the library cleans it (verb `GET`/`LIST`/`WATCH`, scope `resource`/
  `namespace`/`cluster`, `component="apiserver"`; health paths have an empty component and the
  path as `subresource`). 401 and 403 answers are not counted there, as in the library.

Cost: a few microseconds per request (tests/server/auth/bench_request.py --micro, figures in
docs/performance.md). Values live in this object; `/metrics` renders them (no `_created` series).
Not thread-safe: the server runs on one trio thread.
"""

from __future__ import annotations

import time
from collections.abc import Iterable

from prometheus_client.core import Metric
from prometheus_client.registry import Collector, CollectorRegistry

from metrics_server.asgi import ASGIApp, Message, Receive, Scope, Send
from metrics_server.auth.requestinfo import RequestInfo
from metrics_server.promtext import CounterVec, HistogramVec, exponential_buckets

REQUEST_DURATION_BUCKETS = (
    0.005, 0.025, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 1.0, 1.25, 1.5, 2.0, 3.0, 4.0, 5.0, 6.0, 8.0, 10.0,
    15.0, 20.0, 30.0, 45.0, 60.0,
)  # fmt: skip
RESPONSE_SIZE_BUCKETS = exponential_buckets(1000, 10, 7)
AUTH_DURATION_BUCKETS = exponential_buckets(0.001, 2, 15)

HEALTH_PATHS = frozenset(("/healthz", "/livez", "/readyz"))
_KNOWN_USERS = frozenset(
    ("admin", "client", "kube_proxy", "kubelet", "system:serviceaccount:kube-system:default")
)

_REQUEST_LABELS = ("component", "dry_run", "group", "resource", "scope", "subresource", "verb", "version")
_SIZE_LABELS = ("component", "group", "resource", "scope", "subresource", "verb", "version")


def compress_username(name: str) -> str:
    """The library's `compressUsername`: a few known identities, `email_id`, else `other`."""
    if name in _KNOWN_USERS:
        return name
    return "email_id" if "@" in name else "other"


RequestLabels = tuple[str, str, str, str, str, str, str, str]
"""The values of `_REQUEST_LABELS`."""


def request_labels(info: RequestInfo, method: str) -> RequestLabels | None:
    """The labels the library records a request under, or None when it records nothing."""
    if method != "GET":
        return None
    if info.resource_request:
        if info.name:
            scope = "resource"
        elif info.namespace:
            scope = "namespace"
        else:
            scope = "cluster"
        return (
            "apiserver",
            "",
            info.api_group,
            info.resource,
            scope,
            info.subresource,
            info.verb.upper(),
            info.api_version,
        )
    if info.path in HEALTH_PATHS:
        return ("", "", "", "", "", info.path, "GET", "")
    return None


class RequestMetrics(Collector):
    """The eight families; construction registers them on `registry`."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.requests = CounterVec(
            "apiserver_request_total",
            "[STABLE] Counter of apiserver requests broken out for each verb, dry run value, group, version, "
            "resource, scope, component, and HTTP response code.",
            ("code", *_REQUEST_LABELS),
        )
        self.durations = HistogramVec(
            "apiserver_request_duration_seconds",
            "[STABLE] Response latency distribution in seconds for each verb, dry run value, group, version, "
            "resource, subresource, scope and component.",
            _REQUEST_LABELS,
            REQUEST_DURATION_BUCKETS,
        )
        self.sizes = HistogramVec(
            "apiserver_response_sizes",
            "[STABLE] Response size distribution in bytes for each group, version, verb, resource, "
            "subresource, scope and component.",
            _SIZE_LABELS,
            RESPONSE_SIZE_BUCKETS,
        )
        self.authentications = CounterVec(
            "authentication_attempts", "[ALPHA] Counter of authenticated attempts.", ("result",)
        )
        self.authentication_durations = HistogramVec(
            "authentication_duration_seconds",
            "[ALPHA] Authentication duration in seconds broken out by result.",
            ("result",),
            AUTH_DURATION_BUCKETS,
        )
        self.users = CounterVec(
            "authenticated_user_requests",
            "[ALPHA] Counter of authenticated requests broken out by username.",
            ("username",),
        )
        self.authorizations = CounterVec(
            "authorization_attempts_total",
            "[ALPHA] Counter of authorization attempts broken down by result. It can be either 'allowed', "
            "'denied', 'no-opinion' or 'error'.",
            ("result",),
        )
        self.authorization_durations = HistogramVec(
            "authorization_duration_seconds",
            "[ALPHA] Authorization duration in seconds broken out by result.",
            ("result",),
            AUTH_DURATION_BUCKETS,
        )
        registry.register(self)

    def _vectors(self) -> tuple[CounterVec | HistogramVec, ...]:
        return (
            self.requests,
            self.durations,
            self.sizes,
            self.users,
            self.authentications,
            self.authentication_durations,
            self.authorizations,
            self.authorization_durations,
        )

    def describe(self) -> Iterable[Metric]:
        return [
            Metric(v.name, v.documentation, "counter" if isinstance(v, CounterVec) else "histogram")
            for v in self._vectors()
        ]

    def collect(self) -> Iterable[Metric]:
        return [v.family() for v in self._vectors()]

    # --- recording

    def authenticated(self, user_name: str | None, errors: bool, seconds: float) -> None:
        """One authentication: a user (success), no user with errors (error), or neither (failure)."""
        if user_name is not None:
            result = "success"
            self.users.inc((compress_username(user_name),))
        else:
            result = "error" if errors else "failure"
        self.authentications.inc((result,))
        self.authentication_durations.observe((result,), seconds)

    def authorized(self, result: str, seconds: float) -> None:
        """One authorization decision: `allowed`, `denied`, `no-opinion` or `error`."""
        self.authorizations.inc((result,))
        self.authorization_durations.observe((result,), seconds)

    def observe(self, labels: RequestLabels, code: int, seconds: float, size: int) -> None:
        self.requests.inc((str(code), *labels))
        self.durations.observe(labels, seconds)
        self.sizes.observe((labels[0], *labels[2:]), size)

    async def serve(
        self, labels: RequestLabels, started: float, app: ASGIApp, scope: Scope, receive: Receive, send: Send
    ) -> None:
        """Run `app`, then record its response under `labels` (`started`: `time.perf_counter()` at
        the request's arrival). A request that ends before its response starts is not recorded."""
        status = 0
        size = 0

        async def measured(message: Message) -> None:
            nonlocal status, size
            kind = message["type"]
            if kind == "http.response.body":
                size += len(message.get("body", b""))
            elif kind == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await app(scope, receive, measured)
        finally:
            if status:
                self.observe(labels, status, time.perf_counter() - started, size)
