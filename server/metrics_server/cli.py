"""Command line: metrics-server's flag names and defaults, validated before anything starts.

Flags follow Go's pflag conventions so that existing manifests work unchanged: `--flag=value`
or `--flag value`, booleans as `--flag`, `--flag=true|false`, string lists comma-separated and
repeatable, durations in Go syntax (`15s`, `1m0s`, `1h30m`). Every contradiction is refused at
start-up with a message naming the flag (exit code 2). Flags of the Kubernetes apiserver library
that have no meaning here are accepted and ignored with a warning, so a metrics-server manifest
can be reused as is; see docs/operations.md for the table.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import sys
from collections.abc import Callable, Sequence
from typing import get_args

from metrics_server import __version__
from metrics_server.app import build
from metrics_server.kube.errors import KubeError
from metrics_server.logs import configure_logging
from metrics_server.options import NS_PER_SECOND, Options
from metrics_server.scrape.config import (
    DEFAULT_ADDRESS_TYPES,
    DEFAULT_MAX_CONCURRENCY,
    DEFAULT_MAX_RESPONSE_BYTES,
    MetricsSource,
)

log = logging.getLogger(__name__)


_DURATION_UNITS_NS = {
    "ns": 1,
    "us": 1_000,
    "µs": 1_000,
    "μs": 1_000,
    "ms": 1_000_000,
    "s": NS_PER_SECOND,
    "m": 60 * NS_PER_SECOND,
    "h": 3600 * NS_PER_SECOND,
}
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|s|m|h)")


class FlagError(ValueError):
    """A flag value is malformed, or contradicts another flag. The message names the flag."""


def parse_duration_ns(text: str) -> int:
    """Parse a Go duration string (`time.ParseDuration`) into integer nanoseconds.

    Raises ValueError for anything Go would reject, e.g. `15` (no unit) or `1d`.
    """
    s = text.strip()
    sign = 1
    if s and s[0] in "+-":
        sign = -1 if s[0] == "-" else 1
        s = s[1:]
    if s == "0":
        return 0
    if not s:
        raise ValueError(f"invalid duration {text!r}")
    total = 0
    pos = 0
    while pos < len(s):
        m = _DURATION_PART.match(s, pos)
        if m is None:
            raise ValueError(f"invalid duration {text!r}")
        number, unit = m.groups()
        whole, _, frac = number.partition(".")
        scale = _DURATION_UNITS_NS[unit]
        total += int(whole or "0") * scale
        if frac:
            total += int(frac) * scale // 10 ** len(frac)
        pos = m.end()
    return sign * total


def _parse_bool(text: str) -> bool:
    lowered = text.lower()
    if lowered in ("1", "t", "true"):
        return True
    if lowered in ("0", "f", "false"):
        return False
    raise argparse.ArgumentTypeError(f"invalid boolean {text!r} (want true or false)")


def _parse_workers(text: str) -> int:
    if text == "auto":
        return -1
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a count or auto, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"must not be negative, got {value}")
    return value


def _parse_duration(text: str) -> int:
    try:
        return parse_duration_ns(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


class _ExtendCommaList(argparse.Action):
    """pflag StringSlice: comma-separated, and repeating the flag appends."""

    def __call__(
        self,
        parser: argparse.ArgumentParser,
        namespace: argparse.Namespace,
        values: str | Sequence[object] | None,
        option_string: str | None = None,
    ) -> None:
        previous = getattr(namespace, self.dest)
        # The first explicit use replaces the default rather than extending it.
        current: list[str] = [] if previous is self.default else list(previous)
        text = values if isinstance(values, str) else ""
        current.extend(item.strip() for item in text.split(",") if item.strip())
        setattr(namespace, self.dest, current)


_REFUSED_TLS_VERSIONS = ("VersionTLS10", "VersionTLS11")
DEFAULT_ALWAYS_ALLOW_PATHS = ["/healthz", "/readyz", "/livez"]
METRICS_SOURCES = get_args(MetricsSource)

# apiserver-library flags that change nothing here: accepted (so manifests keep working) and
# reported once at start-up. The value after `=` (or the next argument) is consumed.
IGNORED_VALUE_FLAGS = (
    "--max-requests-inflight",
    "--max-mutating-requests-inflight",
    "--request-timeout",
    "--min-request-timeout",
    "--shutdown-delay-duration",
    "--livez-grace-period",
    "--goaway-chance",
    "--cors-allowed-origins",
    "--feature-gates",
    "--emulated-version",
    "--vmodule",
    "--log-flush-frequency",
    "--tls-cipher-suites",
    "--tls-sni-cert-key",
    "--debug-socket-path",
    "--audit-log-path",
    "--audit-policy-file",
    "--audit-webhook-config-file",
)
IGNORED_BOOL_FLAGS = (
    "--enable-priority-and-fairness",
    "--profiling",
    "--contention-profiling",
    "--permit-port-sharing",
    "--logtostderr",
    "--alsologtostderr",
)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="metrics-server",
        description="Kubernetes Metrics API server (metrics.k8s.io/v1beta1). "
        "Run `metrics-server simulate --help` for the simulated cluster.",
        allow_abbrev=False,
    )

    def flag_bool(name: str, help_text: str, *aliases: str) -> None:
        p.add_argument(name, *aliases, type=_parse_bool, nargs="?", const=True, default=False, help=help_text)

    def flag_list(name: str, default: list[str], help_text: str) -> None:
        p.add_argument(name, action=_ExtendCommaList, default=default, metavar="LIST", help=help_text)

    p.add_argument("--version", action="store_true", help="Print the version and exit.")
    p.add_argument(
        "--metric-resolution",
        type=_parse_duration,
        default=60 * NS_PER_SECOND,
        metavar="DURATION",
        help="How often metrics are scraped from kubelets (>= 10s). Default 1m0s.",
    )
    p.add_argument(
        "--kubeconfig",
        default="",
        help="Kubeconfig for the kube-apiserver and kubelets (default: in-cluster configuration).",
    )
    p.add_argument(
        "-l",
        "--node-selector",
        default="",
        help="Label selector: only matching nodes are scraped and listed.",
    )

    g = p.add_argument_group("kubelet")
    g.add_argument("--kubelet-port", type=int, default=10250)
    flag_bool("--kubelet-use-node-status-port", "Use the port in the node status (takes precedence).")
    flag_list(
        "--kubelet-preferred-address-types",
        list(DEFAULT_ADDRESS_TYPES),
        "Node address types to try, in order.",
    )
    flag_bool("--kubelet-insecure-tls", "Do not verify kubelet serving certificates (testing only).")
    g.add_argument("--kubelet-certificate-authority", default="", metavar="FILE")
    g.add_argument("--kubelet-client-certificate", default="", metavar="FILE")
    g.add_argument("--kubelet-client-key", default="", metavar="FILE")
    g.add_argument(
        "--kubelet-request-timeout", type=_parse_duration, default=10 * NS_PER_SECOND, metavar="DURATION"
    )
    g.add_argument(
        "--kubelet-metrics-source",
        choices=METRICS_SOURCES,
        default="auto",
        help="resource: /metrics/resource; summary: /stats/summary; auto: resource, falling "
        "back per node to summary when the kubelet lacks it (default).",
    )
    g.add_argument(
        "--kubelet-max-response-bytes", type=int, default=DEFAULT_MAX_RESPONSE_BYTES, metavar="BYTES"
    )
    g.add_argument(
        "--kubelet-max-concurrency",
        type=int,
        default=DEFAULT_MAX_CONCURRENCY,
        metavar="N",
        help="Kubelet requests in flight at once.",
    )
    flag_bool("--deprecated-kubelet-completely-insecure", "Plain HTTP and no credentials to kubelets.")
    g.add_argument(
        "--scrape-workers",
        type=_parse_workers,
        default=-1,
        metavar="N|auto",
        help="Scrape worker processes, each owning a share of the nodes; 0 scrapes in the serving "
        "process. auto (default): 0 below 3000 nodes, else one per 5000 nodes, at most CPUs - 1 "
        "(decided once the node list is known).",
    )

    g = p.add_argument_group("storage and API")
    g.add_argument(
        "--metric-staleness",
        type=_parse_duration,
        default=None,
        metavar="DURATION",
        help="How long a node's last good samples are still served after failed scrapes "
        "(default 2 x --metric-resolution).",
    )
    flag_bool("--serve-swap", "Add `swap` to usage when kubelets report it (off by default).")

    g = p.add_argument_group("secure serving")
    g.add_argument("--secure-port", type=int, default=443)
    g.add_argument("--bind-address", default="0.0.0.0")
    g.add_argument("--cert-dir", default="apiserver.local.config/certificates")
    g.add_argument("--tls-cert-file", default="", metavar="FILE")
    g.add_argument("--tls-private-key-file", default="", metavar="FILE")
    g.add_argument(
        "--tls-min-version", default="VersionTLS12", metavar="VERSION", help="VersionTLS12 or VersionTLS13."
    )
    flag_bool("--disable-http2-serving", "Serve HTTP/1.1 only.")

    g = p.add_argument_group("authentication")
    g.add_argument("--authentication-kubeconfig", default="", metavar="FILE")
    flag_bool("--authentication-skip-lookup", "Do not read the extension-apiserver-authentication ConfigMap.")
    flag_bool(
        "--authentication-tolerate-lookup-failure",
        "Start even if the extension-apiserver-authentication ConfigMap cannot be read.",
    )
    g.add_argument(
        "--authentication-token-webhook-cache-ttl",
        type=_parse_duration,
        default=10 * NS_PER_SECOND,
        metavar="DURATION",
    )
    g.add_argument("--client-ca-file", default="", metavar="FILE")
    g.add_argument("--requestheader-client-ca-file", default="", metavar="FILE")
    flag_list("--requestheader-allowed-names", [], "Common names allowed for the front proxy.")
    flag_list("--requestheader-username-headers", ["x-remote-user"], "")
    flag_list("--requestheader-group-headers", ["x-remote-group"], "")
    flag_list("--requestheader-extra-headers-prefix", ["x-remote-extra-"], "")
    flag_list("--requestheader-uid-headers", [], "")

    g = p.add_argument_group("authorization")
    g.add_argument("--authorization-kubeconfig", default="", metavar="FILE")
    flag_list(
        "--authorization-always-allow-paths",
        DEFAULT_ALWAYS_ALLOW_PATHS,
        "Paths served without authorization (exact; a trailing * matches a prefix).",
    )
    g.add_argument(
        "--authorization-webhook-cache-authorized-ttl",
        type=_parse_duration,
        default=10 * NS_PER_SECOND,
        metavar="DURATION",
    )
    g.add_argument(
        "--authorization-webhook-cache-unauthorized-ttl",
        type=_parse_duration,
        default=10 * NS_PER_SECOND,
        metavar="DURATION",
    )

    g = p.add_argument_group("logging")
    g.add_argument("--logging-format", choices=("text", "json"), default="text")
    g.add_argument(
        "-v",
        "--v",
        dest="verbosity",
        type=int,
        default=0,
        metavar="LEVEL",
        help="Log verbosity (klog levels; 4 and above include debug messages).",
    )
    return p


def _split_ignored(argv: Sequence[str]) -> tuple[list[str], list[str]]:
    """Take the accepted-but-ignored library flags out of argv."""
    kept: list[str] = []
    ignored: list[str] = []
    args = list(argv)
    i = 0
    while i < len(args):
        arg = args[i]
        name = arg.split("=", 1)[0]
        if name in IGNORED_VALUE_FLAGS or name.startswith(("--audit-log-", "--audit-webhook-")):
            ignored.append(name)
            if "=" not in arg and i + 1 < len(args):
                i += 1
        elif name in IGNORED_BOOL_FLAGS:
            ignored.append(name)
        else:
            kept.append(arg)
        i += 1
    return kept, ignored


def _check(condition: bool, message: str) -> None:
    if not condition:
        raise FlagError(message)


def validate(ns: argparse.Namespace, ignored: Sequence[str]) -> Options:
    """Turn parsed flags into Options, refusing contradictions (FlagError names the flag).

    Only rules no component owns live here (resolution, staleness, files that must exist);
    each component's own rules run in `app.build`, called by `parse_options`.
    """
    resolution = ns.metric_resolution
    _check(resolution >= 10 * NS_PER_SECOND, "--metric-resolution must be at least 10s")
    staleness = ns.metric_staleness if ns.metric_staleness is not None else 2 * resolution
    _check(staleness >= resolution, "--metric-staleness must be at least --metric-resolution")
    if ns.tls_min_version in _REFUSED_TLS_VERSIONS:
        raise FlagError(f"--tls-min-version {ns.tls_min_version} is refused: TLS 1.2 is the minimum")
    _check(ns.verbosity >= 0, "-v must not be negative")
    for flag, path in (
        ("--kubeconfig", ns.kubeconfig),
        ("--authentication-kubeconfig", ns.authentication_kubeconfig),
        ("--authorization-kubeconfig", ns.authorization_kubeconfig),
        ("--kubelet-certificate-authority", ns.kubelet_certificate_authority),
        ("--kubelet-client-certificate", ns.kubelet_client_certificate),
        ("--kubelet-client-key", ns.kubelet_client_key),
        ("--tls-cert-file", ns.tls_cert_file),
        ("--tls-private-key-file", ns.tls_private_key_file),
        ("--client-ca-file", ns.client_ca_file),
        ("--requestheader-client-ca-file", ns.requestheader_client_ca_file),
    ):
        _check(not path or os.path.isfile(path), f"{flag}: no such file {path!r}")

    return Options(
        metric_resolution_ns=resolution,
        kubeconfig=ns.kubeconfig,
        node_selector=ns.node_selector,
        kubelet_port=ns.kubelet_port,
        kubelet_use_node_status_port=ns.kubelet_use_node_status_port,
        kubelet_preferred_address_types=tuple(ns.kubelet_preferred_address_types),
        kubelet_insecure_tls=ns.kubelet_insecure_tls,
        kubelet_certificate_authority=ns.kubelet_certificate_authority,
        kubelet_client_certificate=ns.kubelet_client_certificate,
        kubelet_client_key=ns.kubelet_client_key,
        kubelet_request_timeout_ns=ns.kubelet_request_timeout,
        kubelet_metrics_source=ns.kubelet_metrics_source,
        kubelet_max_response_bytes=ns.kubelet_max_response_bytes,
        kubelet_max_concurrency=ns.kubelet_max_concurrency,
        deprecated_kubelet_completely_insecure=ns.deprecated_kubelet_completely_insecure,
        metric_staleness_ns=staleness,
        serve_swap=ns.serve_swap,
        secure_port=ns.secure_port,
        bind_address=ns.bind_address,
        cert_dir=ns.cert_dir,
        tls_cert_file=ns.tls_cert_file,
        tls_private_key_file=ns.tls_private_key_file,
        tls_min_version=ns.tls_min_version,
        disable_http2_serving=ns.disable_http2_serving,
        authentication_kubeconfig=ns.authentication_kubeconfig,
        authentication_skip_lookup=ns.authentication_skip_lookup,
        authentication_tolerate_lookup_failure=ns.authentication_tolerate_lookup_failure,
        authentication_token_webhook_cache_ttl_ns=ns.authentication_token_webhook_cache_ttl,
        client_ca_file=ns.client_ca_file,
        requestheader_client_ca_file=ns.requestheader_client_ca_file,
        requestheader_allowed_names=tuple(ns.requestheader_allowed_names),
        requestheader_username_headers=tuple(ns.requestheader_username_headers),
        requestheader_group_headers=tuple(ns.requestheader_group_headers),
        requestheader_extra_headers_prefix=tuple(ns.requestheader_extra_headers_prefix),
        requestheader_uid_headers=tuple(ns.requestheader_uid_headers),
        authorization_kubeconfig=ns.authorization_kubeconfig,
        authorization_always_allow_paths=tuple(ns.authorization_always_allow_paths),
        authorization_webhook_cache_authorized_ttl_ns=ns.authorization_webhook_cache_authorized_ttl,
        authorization_webhook_cache_unauthorized_ttl_ns=ns.authorization_webhook_cache_unauthorized_ttl,
        logging_format=ns.logging_format,
        verbosity=ns.verbosity,
        ignored_flags=tuple(dict.fromkeys(ignored)),
        scrape_workers=ns.scrape_workers,
    )


def parse_options(argv: Sequence[str]) -> Options:
    """Parse and validate server flags, including every component's own rules.

    Raises FlagError naming the flag (or SystemExit from argparse for unknown flags).
    """
    kept, ignored = _split_ignored(argv)
    ns = build_parser().parse_args(kept)
    options = validate(ns, ignored)
    try:
        build(options)
    except (ValueError, KubeError) as exc:  # each component's error carries its flag
        flag = getattr(exc, "flag", "")
        message = str(exc)
        raise FlagError(message if message.startswith(flag) else f"{flag}: {message}") from exc
    return options


def _run_simulator(argv: Sequence[str]) -> int:
    # A separate interpreter keeps the simulator out of the server's process and imports.
    os.execv(sys.executable, [sys.executable, "-m", "kubesim.simulate", *argv])
    return 0  # pragma: no cover - execv does not return


def main(argv: Sequence[str] | None = None, *, run: Callable[[Options], int] | None = None) -> int:
    """Entry point of the `metrics-server` console script."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["simulate"]:
        return _run_simulator(args[1:])
    if "--version" in args:
        print(f"metrics-server {__version__}")
        return 0
    try:
        options = parse_options(args)
    except FlagError as exc:
        print(f"Error: {exc}", file=sys.stderr)
        return 2
    configure_logging(options.logging_format, options.verbosity)
    for flag in options.ignored_flags:
        log.warning("Flag has no effect in this implementation and is ignored", extra={"flag": flag})
    if run is None:
        from metrics_server.app import run_server

        run = run_server
    return run(options)


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
