"""How to reach kubelets: the `--kubelet-*` flags as one frozen value, its validation, and TLS.

Each field that is a flag declares it (`flagset.flag`: name, Go type, default, help); the command
line builds a `KubeletClientConfig` from them, calls `validate()` and refuses to start on
`ConfigError`, whose `flag` names the offending flag. `build_ssl_context()` turns the config
into the one `SSLContext` every kubelet connection shares; unreadable files are also reported as
`ConfigError`.

Credential defaults follow metrics-server, which copies the apiserver rest config: the caller
passes the apiserver connection's `auth` and CA (`cluster_ca_data`) here, and the kubelet flags
override them.
"""

from __future__ import annotations

import math
import ssl
from dataclasses import dataclass
from typing import ClassVar, Literal, Protocol

import httpx

from metrics_server import __version__
from metrics_server.flagset import (
    BOOL,
    DURATION,
    FILE,
    INT,
    KUBELET_CLIENT,
    NS_PER_SECOND,
    STRING,
    STRINGS,
    flag,
    none_if_empty,
    seconds,
)

MetricsSource = Literal["resource", "summary", "auto"]

DEFAULT_ADDRESS_TYPES = ("Hostname", "InternalDNS", "InternalIP", "ExternalDNS", "ExternalIP")
"""metrics-server's binary default for `--kubelet-preferred-address-types`; also every address
type Kubernetes defines."""

MANIFEST_ADDRESS_TYPES: tuple[str, ...] = ("InternalIP", "ExternalIP", "Hostname")
"""What metrics-server's manifests and Helm chart pass (avoids unresolvable node hostnames)."""

DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024 * 1024
"""64 MiB. A `/metrics/resource` body is about 0.5 KB per container (35 KB for the 70-pod
sample), so 64 MiB is over 100x the largest node Kubernetes supports (110 pods), yet it stops a
broken or hostile endpoint from exhausting memory (metrics-server has no limit)."""

DEFAULT_MAX_CONCURRENCY = 256
"""Kubelet requests in flight at once (metrics-server: unbounded, one goroutine per node)."""


class ConfigError(ValueError):
    """A flag value or flag combination that cannot work. `flag` is the flag to fix."""

    def __init__(self, flag: str, message: str) -> None:
        super().__init__(message)
        self.flag = flag


@dataclass(frozen=True, slots=True)
class KubeletClientConfig:
    """The `--kubelet-*` flags (and `--deprecated-kubelet-completely-insecure`), plus the
    credentials the wiring adds."""

    FLAG_GROUP: ClassVar[str] = KUBELET_CLIENT

    port: int = flag(
        "--kubelet-port",
        INT,
        "10250",
        "The port to use to connect to Kubelets.",
    )
    """--kubelet-port."""
    use_node_status_port: bool = flag(
        "--kubelet-use-node-status-port",
        BOOL,
        "",
        "Use the port in the node status. Takes precedence over --kubelet-port flag.",
    )
    """--kubelet-use-node-status-port: use the node's reported kubelet port when non-zero."""
    preferred_address_types: tuple[str, ...] = flag(
        "--kubelet-preferred-address-types",
        STRINGS,
        "Hostname,InternalDNS,InternalIP,ExternalDNS,ExternalIP",
        (
            "The priority of node address types to use when determining which address to use to connect to "
            "a particular node"
        ),
    )
    """--kubelet-preferred-address-types, in priority order."""
    insecure_tls: bool = flag(
        "--kubelet-insecure-tls",
        BOOL,
        "",
        "Do not verify CA of serving certificates presented by Kubelets.  For testing purposes only.",
    )
    """--kubelet-insecure-tls: do not verify kubelet serving certificates."""
    certificate_authority: str | None = flag(
        "--kubelet-certificate-authority",
        FILE,
        "",
        "Path to the CA to use to validate the Kubelet's serving certificates.",
        to=none_if_empty,
    )
    """--kubelet-certificate-authority: CA bundle file for kubelet serving certificates."""
    client_certificate: str | None = flag(
        "--kubelet-client-certificate",
        FILE,
        "",
        "Path to a client cert file for TLS.",
        to=none_if_empty,
    )
    """--kubelet-client-certificate: client certificate file (needs the key)."""
    client_key: str | None = flag(
        "--kubelet-client-key",
        FILE,
        "",
        "Path to a client key file for TLS.",
        to=none_if_empty,
    )
    """--kubelet-client-key: client key file (needs the certificate)."""
    request_timeout: float = flag(
        "--kubelet-request-timeout",
        DURATION,
        "10s",
        (
            "The length of time to wait before giving up on a single request to Kubelet. Non-zero values "
            "should contain a corresponding time unit (e.g. 1s, 2m, 3h)."
        ),
        to=seconds,
    )
    """--kubelet-request-timeout in seconds: whole request, connect to last body byte."""
    metrics_source: MetricsSource = flag(
        "--kubelet-metrics-source",
        STRING,
        "auto",
        (
            'Where kubelets are scraped: "resource" (/metrics/resource), "summary" (/stats/summary), or '
            '"auto" (/metrics/resource, falling back per node to /stats/summary when the kubelet answers '
            "404)."
        ),
    )
    """--kubelet-metrics-source: `resource` (/metrics/resource), `summary` (/stats/summary), or
    `auto` (resource, falling back per node to summary when the kubelet answers 404)."""
    max_response_bytes: int = flag(
        "--kubelet-max-response-bytes",
        INT,
        str(DEFAULT_MAX_RESPONSE_BYTES),
        "Largest kubelet response (decoded) accepted; a larger one fails that node's scrape.",
    )
    """--kubelet-max-response-bytes: larger (decoded) bodies fail the node."""
    max_concurrency: int = flag(
        "--kubelet-max-concurrency",
        INT,
        str(DEFAULT_MAX_CONCURRENCY),
        "Kubelet requests in flight at once.",
    )
    """--kubelet-max-concurrency: kubelet requests in flight at once."""
    deprecated_completely_insecure: bool = flag(
        "--deprecated-kubelet-completely-insecure",
        BOOL,
        "",
        (
            "DEPRECATED: Do not use any encryption, authorization, or authentication when communicating "
            "with the Kubelet. This is rarely the right option, since it leaves kubelet communication "
            "completely insecure.  If you encounter auth errors, make sure you've enabled token webhook "
            "auth on the Kubelet, and if you're in a test cluster with self-signed Kubelet certificates, "
            "consider using kubelet-insecure-tls instead."
        ),
    )
    """--deprecated-kubelet-completely-insecure: plain HTTP and no credentials at all."""
    auth: httpx.Auth | None = None
    """Request credentials (normally the apiserver connection's bearer token auth). Never sent
    with `deprecated_completely_insecure`."""
    cluster_ca_data: str | bytes | None = None
    """PEM text or DER bytes of the apiserver connection's CA, trusted when
    --kubelet-certificate-authority is not given. None then means the system trust store."""
    user_agent: str = f"metrics-server/{__version__} (python)"

    def validate(self, metric_resolution_ns: int | None = None) -> None:
        """Raise `ConfigError` for the first contradiction. With `metric_resolution_ns`, also check
        metrics-server's rule, in its integer arithmetic: `resolution * 9 / 10 >= timeout`."""
        if self.certificate_authority and self.insecure_tls:
            raise ConfigError(
                "--kubelet-certificate-authority",
                "cannot use both --kubelet-certificate-authority and --kubelet-insecure-tls",
            )
        if bool(self.client_certificate) != bool(self.client_key):
            missing = "--kubelet-client-key" if self.client_certificate else "--kubelet-client-certificate"
            raise ConfigError(missing, "need both --kubelet-client-key and --kubelet-client-certificate")
        if self.deprecated_completely_insecure:
            for flag, value in (
                ("--kubelet-insecure-tls", self.insecure_tls),
                ("--kubelet-certificate-authority", self.certificate_authority),
                ("--kubelet-client-certificate", self.client_certificate),
                ("--kubelet-client-key", self.client_key),
            ):
                if value:
                    raise ConfigError(
                        flag, f"cannot use both {flag} and --deprecated-kubelet-completely-insecure"
                    )
        if not math.isfinite(self.request_timeout) or self.request_timeout <= 0:
            raise ConfigError("--kubelet-request-timeout", "--kubelet-request-timeout should be positive")
        if not 1 <= self.port <= 65535:
            raise ConfigError("--kubelet-port", f"--kubelet-port must be in 1..65535, got {self.port}")
        if not self.preferred_address_types:
            raise ConfigError(
                "--kubelet-preferred-address-types", "--kubelet-preferred-address-types must not be empty"
            )
        unknown = [t for t in self.preferred_address_types if t not in DEFAULT_ADDRESS_TYPES]
        if unknown:
            raise ConfigError(
                "--kubelet-preferred-address-types",
                f"--kubelet-preferred-address-types: unknown address type(s) {', '.join(unknown)}; "
                f"known: {', '.join(DEFAULT_ADDRESS_TYPES)}",
            )
        if self.metrics_source not in ("resource", "summary", "auto"):
            raise ConfigError(
                "--kubelet-metrics-source",
                f"--kubelet-metrics-source must be resource, summary or auto, got {self.metrics_source!r}",
            )
        if self.max_response_bytes < 1:
            raise ConfigError(
                "--kubelet-max-response-bytes", "--kubelet-max-response-bytes should be positive"
            )
        if self.max_concurrency < 1:
            raise ConfigError("--kubelet-max-concurrency", "--kubelet-max-concurrency should be positive")
        if metric_resolution_ns is not None:
            timeout_ns = round(self.request_timeout * NS_PER_SECOND)
            if metric_resolution_ns * 9 // 10 < timeout_ns:
                raise ConfigError(
                    "--kubelet-request-timeout",
                    f"--kubelet-request-timeout ({self.request_timeout:g}s) must not exceed 90% of "
                    f"--metric-resolution ({metric_resolution_ns / NS_PER_SECOND:g}s)",
                )


class _HasSSLContext(Protocol):
    @property
    def ssl_context(self) -> ssl.SSLContext: ...


def kubelet_ssl_context(config: KubeletClientConfig, apiserver: _HasSSLContext) -> ssl.SSLContext | None:
    """metrics-server reaches kubelets with the apiserver's TLS settings unless a kubelet TLS flag
    says otherwise: the same CA (in-cluster: the service account's `ca.crt`) and client
    certificate. None lets the kubelet client build its context from the flags."""
    if config.insecure_tls or config.certificate_authority or config.client_certificate:
        return None
    if config.deprecated_completely_insecure:
        return None
    return apiserver.ssl_context


def build_ssl_context(config: KubeletClientConfig) -> ssl.SSLContext:
    """The one client `SSLContext` shared by every kubelet connection.

    Verification: none with `insecure_tls`; else the `certificate_authority` file; else
    `cluster_ca_data`; else the system trust store. Hostname/IP checking stays on when verifying
    (an IP address needs an IP SAN, as in Go). Raises `ConfigError` naming the flag whose file
    cannot be loaded.
    """
    ctx = ssl.create_default_context(ssl.Purpose.SERVER_AUTH, cafile=None)
    if config.insecure_tls:
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    elif config.certificate_authority:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        try:
            ctx.load_verify_locations(cafile=config.certificate_authority)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(
                "--kubelet-certificate-authority",
                f"--kubelet-certificate-authority: cannot load {config.certificate_authority}: {exc}",
            ) from exc
    elif config.cluster_ca_data:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        try:
            ctx.load_verify_locations(cadata=config.cluster_ca_data)
        except (OSError, ssl.SSLError, ValueError) as exc:
            raise ConfigError("--kubeconfig", f"cannot load the cluster CA for kubelets: {exc}") from exc
    if config.client_certificate and config.client_key:
        try:
            ctx.load_cert_chain(config.client_certificate, config.client_key)
        except (OSError, ssl.SSLError) as exc:
            raise ConfigError(
                "--kubelet-client-certificate",
                f"--kubelet-client-certificate/--kubelet-client-key: cannot load "
                f"{config.client_certificate} / {config.client_key}: {exc}",
            ) from exc
    return ctx
