"""The secure-serving flags: `SecureServingOptions` declares them, checks them and builds the
`ServingConfig` the HTTPS server runs with (the library's `SecureServingOptions` and
`SecureServingInfo`).

`--http2-max-streams-per-connection` 0 or below means the library's 250; `--tls-min-version`
empty means `VersionTLS12`, Go's server default; `--permit-address-sharing` is what the server
always does (hypercorn sets `SO_REUSEADDR`, as Go does on Linux); `--permit-port-sharing` and
`--tls-sni-cert-key` are accepted and reported.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from metrics_server.auth.serving import ServingConfig
from metrics_server.flagset import (
    BOOL,
    FILE,
    INT,
    IP,
    NAMED_CERT_KEY,
    SECURE_SERVING,
    STRING,
    STRINGS,
    flag,
)

HTTP2_DEFAULT_MAX_STREAMS = 250
"""The library's `MaxConcurrentStreams` when the flag is 0 (golang's own default is 100)."""


def _port_or_zero(port: int) -> str | None:
    return None if 0 <= port <= 65535 else f"{port} must be between 1 and 65535"


def _tls12_if_empty(version: str) -> str:
    return version or "VersionTLS12"


def _go_http2_streams(streams: int) -> int:
    return streams if streams > 0 else HTTP2_DEFAULT_MAX_STREAMS


@dataclass(frozen=True, slots=True)
class SecureServingOptions:
    """The flags; `config()` is the `ServingConfig` they make (limits not set by flags keep the
    `ServingConfig` defaults)."""

    FLAG_GROUP: ClassVar[str] = SECURE_SERVING

    bind_address: str = flag(
        "--bind-address",
        IP,
        "0.0.0.0",
        (
            "The IP address on which to listen for the --secure-port port. The associated interface(s) "
            "must be reachable by the rest of the cluster, and by CLI/web clients. If blank or an "
            "unspecified address (0.0.0.0 or ::), all interfaces and IP address families will be used."
        ),
    )
    secure_port: int = flag(
        "--secure-port",
        INT,
        "443",
        (
            "The port on which to serve HTTPS with authentication and authorization. If 0, don't serve "
            "HTTPS at all."
        ),
        check=_port_or_zero,
    )
    cert_dir: str = flag(
        "--cert-dir",
        STRING,
        "apiserver.local.config/certificates",
        (
            "The directory where the TLS certs are located. If --tls-cert-file and --tls-private-key-file "
            "are provided, this flag will be ignored."
        ),
    )
    tls_cert_file: str = flag(
        "--tls-cert-file",
        FILE,
        "",
        (
            "File containing the default x509 Certificate for HTTPS. (CA cert, if any, concatenated after "
            "server cert). If HTTPS serving is enabled, and --tls-cert-file and --tls-private-key-file are "
            "not provided, a self-signed certificate and key are generated for the public address and "
            "saved to the directory specified by --cert-dir."
        ),
    )
    tls_private_key_file: str = flag(
        "--tls-private-key-file",
        FILE,
        "",
        "File containing the default x509 private key matching --tls-cert-file.",
    )
    tls_min_version: str = flag(
        "--tls-min-version",
        STRING,
        "",
        (
            "Minimum TLS version supported. Possible values: VersionTLS10, VersionTLS11, VersionTLS12, "
            "VersionTLS13"
        ),
        to=_tls12_if_empty,
    )
    tls_cipher_suites: tuple[str, ...] = flag(
        "--tls-cipher-suites",
        STRINGS,
        "",
        (
            "Comma-separated list of cipher suites for the server. If omitted, the default Go cipher "
            "suites will be used. \nPreferred values: TLS_AES_128_GCM_SHA256, TLS_AES_256_GCM_SHA384, "
            "TLS_CHACHA20_POLY1305_SHA256, TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, "
            "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA, "
            "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384, TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305, "
            "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256, TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA, "
            "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256, TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA, "
            "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384, TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305, "
            "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256.\nInsecure values: "
            "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256, TLS_ECDHE_ECDSA_WITH_RC4_128_SHA, "
            "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA, TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256, "
            "TLS_ECDHE_RSA_WITH_RC4_128_SHA, TLS_RSA_WITH_3DES_EDE_CBC_SHA, TLS_RSA_WITH_AES_128_CBC_SHA, "
            "TLS_RSA_WITH_AES_128_CBC_SHA256, TLS_RSA_WITH_AES_128_GCM_SHA256, "
            "TLS_RSA_WITH_AES_256_CBC_SHA, TLS_RSA_WITH_AES_256_GCM_SHA384, TLS_RSA_WITH_RC4_128_SHA."
        ),
    )
    disable_http2_serving: bool = flag(
        "--disable-http2-serving",
        BOOL,
        "",
        "If true, HTTP2 serving will be disabled [default=false]",
    )
    permit_address_sharing: bool = flag(
        "--permit-address-sharing",
        BOOL,
        "",
        (
            "If true, SO_REUSEADDR will be used when binding the port. This allows binding to wildcard IPs "
            "like 0.0.0.0 and specific IPs in parallel, and it avoids waiting for the kernel to release "
            "sockets in TIME_WAIT state. [default=false]"
        ),
    )
    permit_port_sharing: bool = flag(
        "--permit-port-sharing",
        BOOL,
        "",
        (
            "If true, SO_REUSEPORT will be used when binding the port, which allows more than one instance "
            "to bind on the same address and port. [default=false]"
        ),
        ignored="set SO_REUSEPORT, so that several servers can bind the same address and port",
        same_as_ours=("false",),
    )
    tls_sni_cert_key: tuple[str, ...] = flag(
        "--tls-sni-cert-key",
        NAMED_CERT_KEY,
        "",
        (
            "A pair of x509 certificate and private key file paths, optionally suffixed with a list of "
            "domain patterns which are fully qualified domain names, possibly with prefixed wildcard "
            "segments. The domain patterns also allow IP addresses, but IPs should only be used if the "
            "apiserver has visibility to the IP address requested by a client. If no domain patterns are "
            "provided, the names of the certificate are extracted. Non-wildcard matches trump over "
            "wildcard matches, explicit domain patterns trump over extracted names. For multiple "
            "key/certificate pairs, use the --tls-sni-cert-key multiple times. Examples: "
            '"example.crt,example.key" or "foo.crt,foo.key:*.foo.com,foo.com".'
        ),
        ignored="serve these certificates to clients that ask for matching names (SNI)",
    )
    h2_max_concurrent_streams: int = flag(
        "--http2-max-streams-per-connection",
        INT,
        "",
        (
            "The limit that the server gives to clients for the maximum number of streams in an HTTP/2 "
            "connection. Zero means to use golang's default."
        ),
        to=_go_http2_streams,
    )

    def config(self) -> ServingConfig:
        return ServingConfig(
            bind_address=self.bind_address,
            secure_port=self.secure_port,
            cert_dir=self.cert_dir,
            tls_cert_file=self.tls_cert_file,
            tls_private_key_file=self.tls_private_key_file,
            tls_min_version=self.tls_min_version,
            tls_cipher_suites=self.tls_cipher_suites,
            disable_http2_serving=self.disable_http2_serving,
            h2_max_concurrent_streams=self.h2_max_concurrent_streams,
        )

    def validate(self) -> None:
        """`ServingConfig.validate()` of `config()`: raises `ServingOptionsError` naming the flag."""
        self.config().validate()
