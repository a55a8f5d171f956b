"""Every flag's value after parsing: what the command line hands to the wiring (`app.build`)."""

from __future__ import annotations

from dataclasses import dataclass, field

NS_PER_SECOND = 1_000_000_000


@dataclass(frozen=True)
class Options:
    """Every flag's value after parsing; durations are integer nanoseconds."""

    metric_resolution_ns: int
    kubeconfig: str
    node_selector: str
    # kubelet
    kubelet_port: int
    kubelet_use_node_status_port: bool
    kubelet_preferred_address_types: tuple[str, ...]
    kubelet_insecure_tls: bool
    kubelet_certificate_authority: str
    kubelet_client_certificate: str
    kubelet_client_key: str
    kubelet_request_timeout_ns: int
    kubelet_metrics_source: str
    kubelet_max_response_bytes: int
    kubelet_max_concurrency: int
    deprecated_kubelet_completely_insecure: bool
    # storage and API
    metric_staleness_ns: int
    serve_swap: bool
    # serving
    secure_port: int
    bind_address: str
    cert_dir: str
    tls_cert_file: str
    tls_private_key_file: str
    tls_min_version: str
    disable_http2_serving: bool
    # authentication
    authentication_kubeconfig: str
    authentication_skip_lookup: bool
    authentication_tolerate_lookup_failure: bool
    authentication_token_webhook_cache_ttl_ns: int
    client_ca_file: str
    requestheader_client_ca_file: str
    requestheader_allowed_names: tuple[str, ...]
    requestheader_username_headers: tuple[str, ...]
    requestheader_group_headers: tuple[str, ...]
    requestheader_extra_headers_prefix: tuple[str, ...]
    requestheader_uid_headers: tuple[str, ...]
    # authorization
    authorization_kubeconfig: str
    authorization_always_allow_paths: tuple[str, ...]
    authorization_webhook_cache_authorized_ttl_ns: int
    authorization_webhook_cache_unauthorized_ttl_ns: int
    # logging
    logging_format: str
    verbosity: int
    ignored_flags: tuple[str, ...] = field(default=())
    # scrape shards (`shard`): worker processes; AUTO_WORKERS decides from nodes and CPUs
    scrape_workers: int = -1
