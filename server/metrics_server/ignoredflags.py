"""The apiserver library's audit and feature flags: accepted so that manifests keep working,
reported once at start-up (each flag's `ignored=` says what it would have done). This server
writes no audit events, serves no profiling endpoints and has no API Priority and Fairness.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from metrics_server.flagset import AUDIT, BOOL, DURATION, FEATURES, FLOAT32, INT, STRING, flag


@dataclass(frozen=True, slots=True)
class AuditOptions:
    """The library's audit flags: accepted and reported; this server writes no audit events."""

    FLAG_GROUP: ClassVar[str] = AUDIT

    audit_log_batch_buffer_size: int = flag(
        "--audit-log-batch-buffer-size",
        INT,
        "10000",
        "The size of the buffer to store events before batching and writing. Only used in batch mode.",
        ignored="tune the audit backend (no audit events are written)",
        same_as_ours=("10000",),
    )
    audit_log_batch_max_size: int = flag(
        "--audit-log-batch-max-size",
        INT,
        "1",
        "The maximum size of a batch. Only used in batch mode.",
        ignored="tune the audit backend (no audit events are written)",
        same_as_ours=("1",),
    )
    audit_log_batch_max_wait: int = flag(
        "--audit-log-batch-max-wait",
        DURATION,
        "",
        (
            "The amount of time to wait before force writing the batch that hadn't reached the max size. "
            "Only used in batch mode."
        ),
        ignored="tune the audit backend (no audit events are written)",
        same_as_ours=("0s",),
    )
    audit_log_batch_throttle_burst: int = flag(
        "--audit-log-batch-throttle-burst",
        INT,
        "",
        (
            "Maximum number of requests sent at the same moment if ThrottleQPS was not utilized before. "
            "Only used in batch mode."
        ),
        ignored="tune the audit backend (no audit events are written)",
        same_as_ours=("0",),
    )
    audit_log_batch_throttle_enable: bool = flag(
        "--audit-log-batch-throttle-enable",
        BOOL,
        "",
        "Whether batching throttling is enabled. Only used in batch mode.",
        ignored="tune the audit backend (no audit events are written)",
        same_as_ours=("false",),
    )
    audit_log_batch_throttle_qps: float = flag(
        "--audit-log-batch-throttle-qps",
        FLOAT32,
        "",
        "Maximum average number of batches per second. Only used in batch mode.",
        ignored="tune the audit backend (no audit events are written)",
        same_as_ours=("",),
    )
    audit_log_compress: bool = flag(
        "--audit-log-compress",
        BOOL,
        "",
        "If set, the rotated log files will be compressed using gzip.",
        ignored="tune the audit backend (no audit events are written)",
        same_as_ours=("false",),
    )
    audit_log_format: str = flag(
        "--audit-log-format",
        STRING,
        "json",
        (
            'Format of saved audits. "legacy" indicates 1-line text format for each event. "json" '
            "indicates structured json format. Known formats are legacy,json."
        ),
        ignored="tune the audit backend (no audit events are written)",
        same_as_ours=("json",),
    )
    audit_log_maxage: int = flag(
        "--audit-log-maxage",
        INT,
        "",
        (
            "The maximum number of days to retain old audit log files based on the timestamp encoded in "
            "their filename."
        ),
        ignored="tune the audit backend (no audit events are written)",
        same_as_ours=("0",),
    )
    audit_log_maxbackup: int = flag(
        "--audit-log-maxbackup",
        INT,
        "",
        (
            "The maximum number of old audit log files to retain. Setting a value of 0 will mean there's "
            "no restriction on the number of files."
        ),
        ignored="tune the audit backend (no audit events are written)",
        same_as_ours=("0",),
    )
    audit_log_maxsize: int = flag(
        "--audit-log-maxsize",
        INT,
        "",
        "The maximum size in megabytes of the audit log file before it gets rotated.",
        ignored="tune the audit backend (no audit events are written)",
        same_as_ours=("0",),
    )
    audit_log_mode: str = flag(
        "--audit-log-mode",
        STRING,
        "blocking",
        (
            "Strategy for sending audit events. Blocking indicates sending events should block server "
            "responses. Batch causes the backend to buffer and write events asynchronously. Known modes "
            "are batch,blocking,blocking-strict."
        ),
        ignored="tune the audit backend (no audit events are written)",
        same_as_ours=("blocking",),
    )
    audit_log_path: str = flag(
        "--audit-log-path",
        STRING,
        "",
        (
            "If set, all requests coming to the apiserver will be logged to this file.  '-' means standard "
            "out."
        ),
        ignored="write an audit log to this file",
        same_as_ours=("",),
    )
    audit_log_truncate_enabled: bool = flag(
        "--audit-log-truncate-enabled",
        BOOL,
        "",
        "Whether event and batch truncating is enabled.",
        ignored="tune the audit backend (no audit events are written)",
        same_as_ours=("false",),
    )
    audit_log_truncate_max_batch_size: int = flag(
        "--audit-log-truncate-max-batch-size",
        INT,
        "10485760",
        (
            "Maximum size of the batch sent to the underlying backend. Actual serialized size can be "
            "several hundreds of bytes greater. If a batch exceeds this limit, it is split into several "
            "batches of smaller size."
        ),
        ignored="tune the audit backend (no audit events are written)",
        same_as_ours=("10485760",),
    )
    audit_log_truncate_max_event_size: int = flag(
        "--audit-log-truncate-max-event-size",
        INT,
        "102400",
        (
            "Maximum size of the audit event sent to the underlying backend. If the size of an event is "
            "greater than this number, first request and response are removed, and if this doesn't reduce "
            "the size enough, event is discarded."
        ),
        ignored="tune the audit backend (no audit events are written)",
        same_as_ours=("102400",),
    )
    audit_log_version: str = flag(
        "--audit-log-version",
        STRING,
        "audit.k8s.io/v1",
        "API group and version used for serializing audit events written to log.",
        ignored="tune the audit backend (no audit events are written)",
        same_as_ours=("audit.k8s.io/v1",),
    )
    audit_policy_file: str = flag(
        "--audit-policy-file",
        STRING,
        "",
        "Path to the file that defines the audit policy configuration.",
        ignored="read the audit policy from this file",
        same_as_ours=("",),
    )
    audit_webhook_batch_buffer_size: int = flag(
        "--audit-webhook-batch-buffer-size",
        INT,
        "10000",
        "The size of the buffer to store events before batching and writing. Only used in batch mode.",
        ignored="tune the audit backend (no audit events are written)",
        same_as_ours=("10000",),
    )
    audit_webhook_batch_max_size: int = flag(
        "--audit-webhook-batch-max-size",
        INT,
        "400",
        "The maximum size of a batch. Only used in batch mode.",
        ignored="tune the audit backend (no audit events are written)",
        same_as_ours=("400",),
    )
    audit_webhook_batch_max_wait: int = flag(
        "--audit-webhook-batch-max-wait",
        DURATION,
        "30s",
        (
            "The amount of time to wait before force writing the batch that hadn't reached the max size. "
            "Only used in batch mode."
        ),
        ignored="tune the audit backend (no audit events are written)",
        same_as_ours=("30s",),
    )
    audit_webhook_batch_throttle_burst: int = flag(
        "--audit-webhook-batch-throttle-burst",
        INT,
        "15",
        (
            "Maximum number of requests sent at the same moment if ThrottleQPS was not utilized before. "
            "Only used in batch mode."
        ),
        ignored="tune the audit backend (no audit events are written)",
        same_as_ours=("15",),
    )
    audit_webhook_batch_throttle_enable: bool = flag(
        "--audit-webhook-batch-throttle-enable",
        BOOL,
        "true",
        "Whether batching throttling is enabled. Only used in batch mode.",
        ignored="tune the audit backend (no audit events are written)",
        same_as_ours=("true",),
    )
    audit_webhook_batch_throttle_qps: float = flag(
        "--audit-webhook-batch-throttle-qps",
        FLOAT32,
        "10",
        "Maximum average number of batches per second. Only used in batch mode.",
        ignored="tune the audit backend (no audit events are written)",
        same_as_ours=("10",),
    )
    audit_webhook_config_file: str = flag(
        "--audit-webhook-config-file",
        STRING,
        "",
        "Path to a kubeconfig formatted file that defines the audit webhook configuration.",
        ignored="send audit events to this webhook",
        same_as_ours=("",),
    )
    audit_webhook_initial_backoff: int = flag(
        "--audit-webhook-initial-backoff",
        DURATION,
        "10s",
        "The amount of time to wait before retrying the first failed request.",
        ignored="tune the audit backend (no audit events are written)",
        same_as_ours=("10s",),
    )
    audit_webhook_mode: str = flag(
        "--audit-webhook-mode",
        STRING,
        "batch",
        (
            "Strategy for sending audit events. Blocking indicates sending events should block server "
            "responses. Batch causes the backend to buffer and write events asynchronously. Known modes "
            "are batch,blocking,blocking-strict."
        ),
        ignored="tune the audit backend (no audit events are written)",
        same_as_ours=("batch",),
    )
    audit_webhook_truncate_enabled: bool = flag(
        "--audit-webhook-truncate-enabled",
        BOOL,
        "",
        "Whether event and batch truncating is enabled.",
        ignored="tune the audit backend (no audit events are written)",
        same_as_ours=("false",),
    )
    audit_webhook_truncate_max_batch_size: int = flag(
        "--audit-webhook-truncate-max-batch-size",
        INT,
        "10485760",
        (
            "Maximum size of the batch sent to the underlying backend. Actual serialized size can be "
            "several hundreds of bytes greater. If a batch exceeds this limit, it is split into several "
            "batches of smaller size."
        ),
        ignored="tune the audit backend (no audit events are written)",
        same_as_ours=("10485760",),
    )
    audit_webhook_truncate_max_event_size: int = flag(
        "--audit-webhook-truncate-max-event-size",
        INT,
        "102400",
        (
            "Maximum size of the audit event sent to the underlying backend. If the size of an event is "
            "greater than this number, first request and response are removed, and if this doesn't reduce "
            "the size enough, event is discarded."
        ),
        ignored="tune the audit backend (no audit events are written)",
        same_as_ours=("102400",),
    )
    audit_webhook_version: str = flag(
        "--audit-webhook-version",
        STRING,
        "audit.k8s.io/v1",
        "API group and version used for serializing audit events written to webhook.",
        ignored="tune the audit backend (no audit events are written)",
        same_as_ours=("audit.k8s.io/v1",),
    )

    def validate(self) -> None:
        """Nothing to check beyond each value's syntax."""


@dataclass(frozen=True, slots=True)
class FeatureOptions:
    """The library's feature flags: accepted and reported (no profiling endpoints, no API Priority
    and Fairness)."""

    FLAG_GROUP: ClassVar[str] = FEATURES

    contention_profiling: bool = flag(
        "--contention-profiling",
        BOOL,
        "",
        "Enable block profiling, if profiling is enabled",
        ignored="profile lock contention",
        same_as_ours=("false",),
    )
    debug_socket_path: str = flag(
        "--debug-socket-path",
        STRING,
        "",
        "Use an unprotected (no authn/authz) unix-domain socket for profiling with the given path",
        ignored="serve profiling on this unix socket",
        same_as_ours=("",),
    )
    enable_priority_and_fairness: bool = flag(
        "--enable-priority-and-fairness",
        BOOL,
        "true",
        (
            "If true, replace the max-in-flight handler with an enhanced one that queues and dispatches "
            "with priority and fairness"
        ),
        ignored="queue and dispatch requests by API Priority and Fairness",
        same_as_ours=("false",),
    )
    profiling: bool = flag(
        "--profiling",
        BOOL,
        "true",
        "Enable profiling via web interface host:port/debug/pprof/",
        ignored="serve /debug/pprof",
        same_as_ours=("false",),
    )

    def validate(self) -> None:
        """Nothing to check beyond each value's syntax."""
