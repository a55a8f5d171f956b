"""Start-up refusals: `app.build()` raises the owning component's error naming the flag, and the
command line turns each into exit code 2 with the message (`cli.main`, `app.run_server`).

`build()` is fed `Options` with one contradiction each (made with `dataclasses.replace`, as
`cli.parse_options` would refuse them before `build()` ever saw them); `cli.main` gets the same
contradictions as argv.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from k8s_metrics.selectors import SelectorError, parse_label_selector
from metrics_server.app import Components, build, run_server
from metrics_server.auth.errors import ServingOptionsError
from metrics_server.cli import main, parse_options
from metrics_server.kube.errors import OptionsError
from metrics_server.options import NS_PER_SECOND, Options
from metrics_server.scrape.config import ConfigError

BASE = parse_options([])


def changed(options: Options, changes: dict[str, dict[str, object]]) -> Options:
    """`options` with fields of its components replaced: {"kubelet": {"port": 1}}."""
    parts = {name: replace(getattr(options, name), **fields) for name, fields in changes.items()}
    return replace(options, **parts)  # type: ignore[arg-type]


BUILD_CASES: list[tuple[str, dict[str, dict[str, object]], type[Exception], str, str]] = [
    # (id, changes, owner's error, flag, message)
    (
        "kubelet-ca-with-insecure-tls",
        {"kubelet": {"insecure_tls": True, "certificate_authority": "ca.pem"}},
        ConfigError,
        "--kubelet-certificate-authority",
        "cannot use both --kubelet-certificate-authority and --kubelet-insecure-tls",
    ),
    (
        "kubelet-cert-without-key",
        {"kubelet": {"client_certificate": "client.pem"}},
        ConfigError,
        "--kubelet-client-key",
        "need both --kubelet-client-key and --kubelet-client-certificate",
    ),
    (
        "completely-insecure-with-insecure-tls",
        {"kubelet": {"deprecated_completely_insecure": True, "insecure_tls": True}},
        ConfigError,
        "--kubelet-insecure-tls",
        "cannot use both --kubelet-insecure-tls and --deprecated-kubelet-completely-insecure",
    ),
    (
        "timeout-over-90%-of-resolution",
        {"server": {"metric_resolution_ns": 10 * NS_PER_SECOND}},  # the default timeout is 10 s
        ConfigError,
        "--kubelet-request-timeout",
        "--kubelet-request-timeout (10s) must not exceed 90% of --metric-resolution (10s)",
    ),
    (
        "no-address-types",
        {"kubelet": {"preferred_address_types": ()}},
        ConfigError,
        "--kubelet-preferred-address-types",
        "--kubelet-preferred-address-types must not be empty",
    ),
    (
        "bad-node-selector",
        {"informer": {"node_selector": "a in ("}},
        OptionsError,
        "--node-selector",
        "--node-selector: unable to parse requirement: found '', expected: ',', ')' or identifier",
    ),
    (
        "empty-requestheader-header",
        {"authentication": {"requestheader_username_headers": ("",)}},
        OptionsError,
        "--requestheader-username-headers",
        '--requestheader-username-headers: empty value in "requestheader-username-headers"',
    ),
    (
        "negative-review-ttl",
        {"reviews": {"authorized_ttl": -1e-9}},
        OptionsError,
        "--authorization-webhook-cache-authorized-ttl",
        "--authorization-webhook-cache-authorized-ttl: must not be negative",
    ),
    (
        "bind-address-not-an-ip",
        {"serving": {"bind_address": "localhost"}},
        ServingOptionsError,
        "--bind-address",
        "--bind-address: 'localhost' is not a valid IP address",
    ),
    (
        "tls-cert-without-key",
        {"serving": {"tls_cert_file": "tls.crt"}},
        ServingOptionsError,
        "--tls-private-key-file",
        "--tls-private-key-file: --tls-cert-file and --tls-private-key-file must be given together",
    ),
    (
        "unknown-tls-version",
        {"serving": {"tls_min_version": "VersionTLS14"}},
        ServingOptionsError,
        "--tls-min-version",
        "--tls-min-version: unsupported version 'VersionTLS14': use one of VersionTLS12, VersionTLS13",
    ),
]


def test_the_base_options_build() -> None:
    components = build(BASE)
    assert isinstance(components, Components)
    assert components.resolution_s == 60.0


@pytest.mark.parametrize(
    ("changes", "error", "flag", "message"), [c[1:] for c in BUILD_CASES], ids=[c[0] for c in BUILD_CASES]
)
def test_build_refuses_naming_the_flag(
    changes: dict[str, dict[str, object]], error: type[Exception], flag: str, message: str
) -> None:
    options = changed(BASE, changes)
    with pytest.raises(error) as caught:
        build(options)
    assert (type(caught.value), getattr(caught.value, "flag", None), str(caught.value)) == (
        error,
        flag,
        message,
    )


@pytest.mark.parametrize(
    ("changes", "message"), [(c[1], c[4]) for c in BUILD_CASES[:3]], ids=[c[0] for c in BUILD_CASES[:3]]
)
def test_run_server_exits_2_with_the_message(
    changes: dict[str, dict[str, object]], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """`run_server` builds before anything starts: a contradiction never reaches the network."""
    assert run_server(changed(BASE, changes)) == 2
    assert capsys.readouterr().err == f"Error: {message}\n"


@pytest.fixture
def pem_file(tmp_path: Path) -> str:
    """Any existing file: the command line checks that file flags name files before the rest."""
    path = tmp_path / "ca.pem"
    path.write_text("not checked at this stage\n")
    return str(path)


ARGV_CASES = [
    (
        "kubelet-ca-with-insecure-tls",
        ["--kubelet-insecure-tls", "--kubelet-certificate-authority={pem}"],
        "--kubelet-certificate-authority: "
        "cannot use both --kubelet-certificate-authority and --kubelet-insecure-tls",
    ),
    (
        "timeout-over-90%-of-resolution",
        ["--metric-resolution=10s"],
        "--kubelet-request-timeout (10s) must not exceed 90% of --metric-resolution (10s)",
    ),
    (
        "bad-node-selector",
        ["--node-selector=a in ("],
        "--node-selector: unable to parse requirement: found '', expected: ',', ')' or identifier",
    ),
    (
        "bind-address-not-an-ip",
        ["--bind-address=localhost"],
        'invalid argument "localhost" for "--bind-address" flag: failed to parse IP: "localhost"',
    ),
    (
        "negative-token-ttl",
        ["--authentication-token-webhook-cache-ttl=-1s"],
        "--authentication-token-webhook-cache-ttl: must not be negative",
    ),
    (
        "unknown-tls-version",
        ["--tls-min-version=VersionTLS14"],
        "--tls-min-version: unsupported version 'VersionTLS14': use one of VersionTLS12, VersionTLS13",
    ),
    (
        "refused-tls-version",
        ["--tls-min-version=VersionTLS11"],
        "--tls-min-version: VersionTLS11 is refused: TLS 1.2 is the minimum (RFC 8996)",
    ),
    ("resolution-below-10s", ["--metric-resolution=5s"], "--metric-resolution must be at least 10s"),
]


@pytest.mark.parametrize(("argv", "message"), [c[1:] for c in ARGV_CASES], ids=[c[0] for c in ARGV_CASES])
def test_cli_main_exits_2_naming_the_flag(
    argv: list[str], message: str, pem_file: str, capsys: pytest.CaptureFixture[str]
) -> None:
    ran: list[Options] = []

    def run(options: Options) -> int:
        ran.append(options)
        return 0

    assert main([a.format(pem=pem_file) for a in argv], run=run) == 2
    assert ran == []
    assert capsys.readouterr().err == f"Error: {message}\n"


# --- --node-selector: start-up checks it with the same parser the API uses ---------------------------
# A regression guard: build() once used a second, stricter-and-looser parser, so a selector could
# pass build() and then kill serve() with a traceback. The one parser follows Go's labels.Parse:
# `a in (x y)` and `a>-1` are refused, `a in ()` is accepted (the set {""}).


@pytest.mark.parametrize("selector", ["a in (x y)", "a>-1"])
def test_build_refuses_a_node_selector_the_api_layer_refuses(selector: str) -> None:
    with pytest.raises(SelectorError):
        parse_label_selector(selector)
    with pytest.raises(OptionsError) as caught:
        build(changed(BASE, {"informer": {"node_selector": selector}}))
    assert caught.value.flag == "--node-selector"


def test_build_accepts_a_node_selector_the_api_layer_accepts() -> None:
    parse_label_selector("a in ()")
    build(changed(BASE, {"informer": {"node_selector": "a in ()"}}))
