"""The server's own flags ("Metrics server flags"), the library's generic, audit and feature flags,
and `Options`: every component's options after parsing, validated together.

Each component owns its flags (declared with `flagset.flag` on its options class, validated by
its `validate()`); this module owns the flags no component does, and the rules that span
components (`Options.validate`). `cli.py` lists the classes (`OPTION_CLASSES`) and parses.
See docs/operations.md for the table of every flag and what this server does with it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

from metrics_server.api.app import ApiOptions
from metrics_server.auth.authconfig import AuthenticationOptions
from metrics_server.auth.authz import AuthorizationOptions
from metrics_server.auth.hsts import hsts_problem
from metrics_server.auth.reviews import ReviewCacheOptions
from metrics_server.auth.servingoptions import SecureServingOptions
from metrics_server.flagset import (
    BOOL,
    DURATION,
    FEATURE_GATES,
    FILE,
    FLOAT,
    GENERIC,
    INT,
    IP,
    METRICS_SERVER,
    NS_PER_SECOND,
    STRING,
    STRINGS,
    Flag,
    FlagError,
    Parsed,
    flag,
)
from metrics_server.ignoredflags import AuditOptions, FeatureOptions
from metrics_server.kube.informer import InformerConfig
from metrics_server.logs import LoggingOptions
from metrics_server.scrape.config import KubeletClientConfig
from metrics_server.shard.config import ShardOptions

__all__ = ["NS_PER_SECOND", "Options"]


def _at_least_10s(ns: int) -> str | None:
    return None if ns >= 10 * NS_PER_SECOND else "--metric-resolution must be at least 10s"


def _not_negative(value: float) -> str | None:
    return None if value >= 0 else "can not be negative value"


def _zero_is_default(ns: int) -> int | None:
    return ns or None


def _goaway_range(chance: float) -> str | None:
    return None if 0 <= chance <= 0.02 else "--goaway-chance can not be less than 0 or greater than 0.02"


def _regexps(patterns: tuple[str, ...]) -> str | None:
    for pattern in patterns:
        try:
            re.compile(pattern)
        except re.error as exc:
            return f"--cors-allowed-origins has an invalid regular expression: {exc}"
    return None


def _hsts_directives(directives: tuple[str, ...]) -> str | None:
    return hsts_problem(directives)


@dataclass(frozen=True, slots=True)
class ServerOptions:
    """metrics-server's own flags (and ours beside them): what is scraped how often, from where."""

    FLAG_GROUP: ClassVar[str] = METRICS_SERVER

    kubeconfig: str = flag(
        "--kubeconfig",
        FILE,
        "",
        (
            "The path to the kubeconfig used to connect to the Kubernetes API server and the Kubelets "
            "(defaults to in-cluster config)"
        ),
    )
    metric_resolution_ns: int = flag(
        "--metric-resolution",
        DURATION,
        "1m0s",
        "The resolution at which metrics-server will retain metrics, must set value at least 10s.",
        check=_at_least_10s,
    )
    metric_staleness_ns: int | None = flag(
        "--metric-staleness",
        DURATION,
        "",
        (
            "How long a node's last good samples are still served after failed scrapes (default 2 x "
            "--metric-resolution)."
        ),
        to=_zero_is_default,
        check=_not_negative,
    )
    version: bool = flag(
        "--version",
        BOOL,
        "",
        "Show version",
    )

    @property
    def metric_resolution_s(self) -> float:
        return self.metric_resolution_ns / NS_PER_SECOND

    @property
    def staleness_ns(self) -> int:
        """--metric-staleness, or twice the resolution when not given."""
        return self.metric_staleness_ns or 2 * self.metric_resolution_ns

    def validate(self) -> None:
        if self.staleness_ns < self.metric_resolution_ns:
            raise FlagError("--metric-staleness", "--metric-staleness must be at least --metric-resolution")


@dataclass(frozen=True, slots=True)
class GenericOptions:
    """The apiserver library's generic server flags. Implemented: `--shutdown-delay-duration`
    (readyz fails at once, serving goes on for the delay) and `--strict-transport-security-directives`
    (the HSTS header on every response); the others are accepted and reported (`ignored=`)."""

    FLAG_GROUP: ClassVar[str] = GENERIC

    advertise_address: str = flag(
        "--advertise-address",
        IP,
        "",
        (
            "The IP address on which to advertise the apiserver to members of the cluster. This address "
            "must be reachable by the rest of the cluster. If blank, the --bind-address will be used. If "
            "--bind-address is unspecified, the host's default interface will be used."
        ),
        ignored="advertise this address to the cluster (no effect in metrics-server either)",
        same_as_ours=("",),
    )
    cors_allowed_origins: tuple[str, ...] = flag(
        "--cors-allowed-origins",
        STRINGS,
        "",
        (
            "List of allowed origins for CORS, comma separated. An allowed origin can be a regular "
            "expression to support subdomain matching. If this list is empty CORS will not be enabled. "
            "Please ensure each expression matches the entire hostname by anchoring to the start with '^' "
            "or including the '//' prefix, and by anchoring to the end with '$' or including the ':' port "
            "separator suffix. Examples of valid expressions are '//example\\.com(:|$)' and "
            "'^https://example\\.com(:|$)'"
        ),
        ignored="send CORS headers to browsers from these origins",
        same_as_ours=("",),
        check=_regexps,
    )
    emulated_version: tuple[str, ...] = flag(
        "--emulated-version",
        STRINGS,
        "",
        (
            "The versions different components emulate their capabilities (APIs, features, ...) of.\nIf "
            "set, the component will emulate the behavior of this version instead of the underlying binary "
            "version.\nVersion format could only be major.minor, for example: "
            "'--emulated-version=wardle=1.2,kube=1.31'.\nOptions are:\nIf the component is not specified, "
            'defaults to "kube"'
        ),
        ignored="emulate the APIs of another version (metrics-server refuses every value)",
        same_as_ours=("",),
    )
    emulation_forward_compatible: bool = flag(
        "--emulation-forward-compatible",
        BOOL,
        "",
        (
            "If true, for any beta+ APIs enabled by default or by --runtime-config at the emulation "
            "version, their future versions with higher priority/stability will be auto enabled even if "
            "they introduced after the emulation version. Can only be set to true if the emulation version "
            "is lower than the binary version."
        ),
        ignored="enable newer API versions while emulating",
        same_as_ours=("false",),
    )
    external_hostname: str = flag(
        "--external-hostname",
        STRING,
        "",
        (
            "The hostname to use when generating externalized URLs for this master (e.g. Swagger API Docs "
            "or OpenID Discovery)."
        ),
        ignored="use this host name in generated URLs (none are generated)",
        same_as_ours=("",),
    )
    feature_gates: tuple[str, ...] = flag(
        "--feature-gates",
        FEATURE_GATES,
        "",
        (
            "Comma-separated list of component:key=value pairs that describe feature gates for "
            "alpha/experimental features of different components.\nIf the component is not specified, "
            'defaults to "kube". This flag can be repeatedly invoked. For example: --feature-gates '
            "'wardle:featureA=true,wardle:featureB=false' --feature-gates 'kube:featureC=true'Options are:"
        ),
        ignored="switch feature gates (metrics-server refuses every gate)",
        same_as_ours=("",),
    )
    goaway_chance: float = flag(
        "--goaway-chance",
        FLOAT,
        "",
        (
            "To prevent HTTP/2 clients from getting stuck on a single apiserver, randomly close a "
            "connection (GOAWAY). The client's other in-flight requests won't be affected, and the client "
            "will reconnect, likely landing on a different apiserver after going through the load balancer "
            "again. This argument sets the fraction of requests that will be sent a GOAWAY. Clusters with "
            "single apiservers, or which don't use a load balancer, should NOT enable this. Min is 0 "
            "(off), Max is .02 (1/50 requests); .001 (1/1000) is a recommended starting point."
        ),
        ignored="close this fraction of HTTP/2 connections with GOAWAY",
        same_as_ours=("0",),
        check=_goaway_range,
    )
    livez_grace_period: int = flag(
        "--livez-grace-period",
        DURATION,
        "",
        (
            "This option represents the maximum amount of time it should take for apiserver to complete "
            "its startup sequence and become live. From apiserver's start time to when this amount of time "
            "has elapsed, /livez will assume that unfinished post-start hooks will complete successfully "
            "and therefore return true."
        ),
        ignored="pass /livez during start-up hooks (this server has none)",
        same_as_ours=("0s", "0"),
        check=_not_negative,
    )
    max_mutating_requests_inflight: int = flag(
        "--max-mutating-requests-inflight",
        INT,
        "200",
        (
            "This and --max-requests-inflight are summed to determine the server's total concurrency limit "
            "(which must be positive) if --enable-priority-and-fairness is true. Otherwise, this flag "
            "limits the maximum number of mutating requests in flight, or a zero value disables the limit "
            "completely."
        ),
        ignored="limit mutating requests in flight (none are served)",
        check=_not_negative,
    )
    max_requests_inflight: int = flag(
        "--max-requests-inflight",
        INT,
        "400",
        (
            "This and --max-mutating-requests-inflight are summed to determine the server's total "
            "concurrency limit (which must be positive) if --enable-priority-and-fairness is true. "
            "Otherwise, this flag limits the maximum number of non-mutating requests in flight, or a zero "
            "value disables the limit completely."
        ),
        ignored="limit requests in flight, answering 429 above the limit",
        same_as_ours=("0",),
        check=_not_negative,
    )
    min_request_timeout: int = flag(
        "--min-request-timeout",
        INT,
        "1800",
        (
            "An optional field indicating the minimum number of seconds a handler must keep a request open "
            "before timing it out. Currently only honored by the watch request handler, which picks a "
            "randomized value above this number as the connection timeout, to spread out load."
        ),
        ignored="time watch requests out (watch is not served)",
        check=_not_negative,
    )
    request_timeout: int = flag(
        "--request-timeout",
        DURATION,
        "1m0s",
        (
            "An optional field indicating the duration a handler must keep a request open before timing it "
            "out. This is the default request timeout for requests but may be overridden by flags such as "
            "--min-request-timeout for specific types of requests."
        ),
        ignored="answer requests still running after this duration with 504",
    )
    runtime_config_emulation_forward_compatible: bool = flag(
        "--runtime-config-emulation-forward-compatible",
        BOOL,
        "",
        (
            "If true, APIs identified by group/version that are enabled in the --runtime-config flag will "
            "be installed even if it is introduced after the emulation version. If false, server would "
            "fail to start if any APIs identified by group/version that are enabled in the "
            "--runtime-config flag are introduced after the emulation version. Can only be set to true if "
            "the emulation version is lower than the binary version."
        ),
        ignored="install newer APIs while emulating",
        same_as_ours=("false",),
    )
    shutdown_delay_ns: int = flag(
        "--shutdown-delay-duration",
        DURATION,
        "",
        (
            "Time to delay the termination. During that time the server keeps serving requests normally. "
            "The endpoints /healthz and /livez will return success, but /readyz immediately returns "
            "failure. Graceful termination starts after this delay has elapsed. This can be used to allow "
            "load balancer to stop sending traffic to this server."
        ),
        check=_not_negative,
    )
    shutdown_send_retry_after: bool = flag(
        "--shutdown-send-retry-after",
        BOOL,
        "",
        (
            "If true the HTTP Server will continue listening until all non long running request(s) in "
            "flight have been drained, during this window all incoming requests will be rejected with a "
            "status code 429 and a 'Retry-After' response header, in addition 'Connection: close' response "
            "header is set in order to tear down the TCP connection when idle."
        ),
        ignored="answer 429 with Retry-After while draining at shutdown",
        same_as_ours=("false",),
    )
    shutdown_watch_termination_grace_period: int = flag(
        "--shutdown-watch-termination-grace-period",
        DURATION,
        "",
        (
            "This option, if set, represents the maximum amount of grace period the apiserver will wait "
            "for active watch request(s) to drain during the graceful server shutdown window."
        ),
        ignored="wait for watches to drain at shutdown (watch is not served)",
        same_as_ours=("0s", "0"),
    )
    storage_initialization_timeout: int = flag(
        "--storage-initialization-timeout",
        DURATION,
        "1m0s",
        (
            "Maximum amount of time to wait for storage initialization before declaring apiserver ready. "
            "Defaults to 1m."
        ),
        ignored="wait for storage initialization (there is no storage backend)",
    )
    strict_transport_security_directives: tuple[str, ...] = flag(
        "--strict-transport-security-directives",
        STRINGS,
        "",
        (
            "List of directives for HSTS, comma separated. If this list is empty, then HSTS directives "
            "will not be added. Example: 'max-age=31536000,includeSubDomains,preload'"
        ),
        check=_hsts_directives,
    )

    def validate(self) -> None:
        """Every rule is a per-flag `check`: nothing spans flags here."""


@dataclass(frozen=True)
class Options:
    """Every component's options after parsing (one field per flag-declaring class, in `--help`
    order). `ignored_flags` are the flags given that have no effect here (reported at start-up)."""

    server: ServerOptions = field(default_factory=ServerOptions)
    generic: GenericOptions = field(default_factory=GenericOptions)
    kubelet: KubeletClientConfig = field(default_factory=KubeletClientConfig)
    shard: ShardOptions = field(default_factory=ShardOptions)
    informer: InformerConfig = field(default_factory=InformerConfig)
    serving: SecureServingOptions = field(default_factory=SecureServingOptions)
    authentication: AuthenticationOptions = field(default_factory=AuthenticationOptions)
    reviews: ReviewCacheOptions = field(default_factory=ReviewCacheOptions)
    authorization: AuthorizationOptions = field(default_factory=AuthorizationOptions)
    api: ApiOptions = field(default_factory=ApiOptions)
    audit: AuditOptions = field(default_factory=AuditOptions)
    features: FeatureOptions = field(default_factory=FeatureOptions)
    logging: LoggingOptions = field(default_factory=LoggingOptions)
    ignored_flags: tuple[Flag, ...] = ()

    @classmethod
    def from_parsed(cls, parsed: Parsed) -> Options:
        """The options `FlagSet(option_classes()).parse(...)` produced (not validated yet)."""
        parts = {name: parsed.get(type(default)) for name, default in _component_defaults(cls())}
        return cls(**parts, ignored_flags=parsed.ignored)

    def components(self) -> tuple[Any, ...]:
        """The component options, in field order."""
        return tuple(component for _, component in _component_defaults(self))

    def validate(self) -> None:
        """Each component's `validate()`, then the rules that span components. Raises the owner's
        error (a `ValueError` whose `flag` names the flag)."""
        for component in self.components():
            component.validate()
        # metrics-server's rule, in its integer arithmetic: resolution * 9 / 10 >= timeout.
        self.kubelet.validate(metric_resolution_ns=self.server.metric_resolution_ns)


def _component_defaults(options: Options) -> list[tuple[str, Any]]:
    return [(f.name, getattr(options, f.name)) for f in fields(options) if f.name != "ignored_flags"]


def option_classes() -> tuple[type, ...]:
    """Every class that declares flags: the types of `Options`' component fields."""
    return tuple(type(component) for component in Options().components())
