"""Flag parsing and start-up validation: metrics-server's names, Go syntax, refusals naming the flag."""

from __future__ import annotations

import pytest

from metrics_server.cli import NS_PER_SECOND, FlagError, main, parse_options


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("15s", 15 * NS_PER_SECOND),
        ("1m30s", 90 * NS_PER_SECOND),
        (".5m", 30 * NS_PER_SECOND),
        ("12.5s", 12_500_000_000),
    ],
)
def test_duration_flags_take_go_durations(text: str, ns: int) -> None:
    # The grammar is k8s_metrics.durations' (tested with the client); the flag adds Go's error text.
    assert parse_options([f"--metric-resolution={text}"]).server.metric_resolution_ns == ns


@pytest.mark.parametrize("text", ["", "15", "1d", "s", "1.2.3s", "1m x"])
def test_bad_duration_flags_are_refused_as_go_refuses_them(text: str) -> None:
    with pytest.raises(FlagError) as err:
        parse_options([f"--metric-resolution={text}"])
    assert str(err.value) == (
        f'invalid argument "{text}" for "--metric-resolution" flag: time: invalid duration "{text}"'
    )


def test_defaults_are_metrics_servers() -> None:
    o = parse_options([])
    assert o.server.metric_resolution_ns == 60 * NS_PER_SECOND
    assert o.server.staleness_ns == 120 * NS_PER_SECOND
    assert o.kubelet.port == 10250
    assert o.kubelet.preferred_address_types == (
        "Hostname",
        "InternalDNS",
        "InternalIP",
        "ExternalDNS",
        "ExternalIP",
    )
    assert o.kubelet.request_timeout == 10.0
    assert o.kubelet.metrics_source == "auto"
    assert o.serving.secure_port == 443
    assert o.serving.bind_address == "0.0.0.0"
    assert o.serving.cert_dir == "apiserver.local.config/certificates"
    assert o.serving.tls_min_version == "VersionTLS12"
    assert o.serving.h2_max_concurrent_streams == 250
    assert o.authorization.always_allow_paths == ("/healthz", "/readyz", "/livez")
    assert o.authentication.requestheader_username_headers == ("x-remote-user",)
    assert o.authentication.requestheader_group_headers == ("x-remote-group",)
    assert o.authentication.requestheader_extra_headers_prefix == ("x-remote-extra-",)
    assert o.reviews.token_cache_ttl == 10.0
    assert o.logging.format == "text"
    assert o.api.serve_swap is False
    assert o.generic.shutdown_delay_ns == 0
    assert o.ignored_flags == ()


def test_manifest_args_parse() -> None:
    o = parse_options(
        [
            "--cert-dir=/tmp",
            "--secure-port=10250",
            "--kubelet-preferred-address-types=InternalIP,ExternalIP,Hostname",
            "--kubelet-use-node-status-port",
            "--metric-resolution=15s",
        ]
    )
    assert o.serving.cert_dir == "/tmp"
    assert o.serving.secure_port == 10250
    assert o.kubelet.preferred_address_types == ("InternalIP", "ExternalIP", "Hostname")
    assert o.kubelet.use_node_status_port is True
    assert o.server.metric_resolution_ns == 15 * NS_PER_SECOND
    assert o.server.staleness_ns == 30 * NS_PER_SECOND


def test_pflag_forms() -> None:
    o = parse_options(
        [
            "--kubelet-insecure-tls=false",
            "--serve-swap=true",
            "--requestheader-allowed-names",
            "front-proxy-client",
            "--requestheader-allowed-names=aggregator",
            "-v",
            "4",
            "--logging-format=json",
            "--profiling=false",
            "--max-requests-inflight",
            "400",
            "--audit-log-maxage=3",
            "-lrole=worker",
            "--kubelet-port=0x2802",
            '--requestheader-group-headers="x-a,b",x-c',
        ]
    )
    assert o.kubelet.insecure_tls is False
    assert o.api.serve_swap is True
    assert o.authentication.requestheader_allowed_names == ("front-proxy-client", "aggregator")
    assert o.logging.verbosity == 4
    assert o.logging.format == "json"
    assert o.informer.node_selector == "role=worker"
    assert o.kubelet.port == 10242
    assert o.authentication.requestheader_group_headers == ("x-a,b", "x-c")
    # --profiling=false is what this server does anyway: not reported.
    assert [f.name for f in o.ignored_flags] == ["--max-requests-inflight", "--audit-log-maxage"]


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--kubelet-insecure-tls", "false"], "unexpected argument 'false'"),
        (["--bogus"], "unknown flag: --bogus"),
        (["-x"], "unknown shorthand flag: 'x' in -x"),
        (["--kubelet-port"], "flag needs an argument: --kubelet-port"),
        (["--kubelet-port=ten"], 'invalid argument "ten" for "--kubelet-port" flag: strconv.ParseInt'),
        (["--serve-swap=yes"], 'invalid argument "yes" for "--serve-swap" flag: strconv.ParseBool'),
        (["--v=-1"], 'invalid argument "-1" for "-v, --v" flag: strconv.ParseUint'),
        (["--metric-resolution=15"], 'invalid argument "15" for "--metric-resolution" flag: time: invalid'),
    ],
)
def test_syntax_errors_name_the_flag(argv: list[str], message: str) -> None:
    with pytest.raises(FlagError) as info:
        parse_options(argv)
    assert str(info.value).startswith(message)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--metric-resolution=5s"], "--metric-resolution must be at least 10s"),
        (["--kubelet-request-timeout=0s"], "--kubelet-request-timeout should be positive"),
        (
            ["--metric-resolution=10s", "--kubelet-request-timeout=10s"],
            "--kubelet-request-timeout (10s) must not exceed 90% of --metric-resolution (10s)",
        ),
        (
            ["--metric-resolution=15s", "--metric-staleness=10s"],
            "--metric-staleness must be at least --metric-resolution",
        ),
        (
            ["--kubelet-insecure-tls", "--kubelet-certificate-authority=pyproject.toml"],
            "--kubelet-certificate-authority: cannot use both --kubelet-certificate-authority and "
            "--kubelet-insecure-tls",
        ),
        (
            ["--kubelet-client-certificate=pyproject.toml"],
            "--kubelet-client-key: need both --kubelet-client-key and --kubelet-client-certificate",
        ),
        (
            ["--deprecated-kubelet-completely-insecure", "--kubelet-insecure-tls"],
            "--kubelet-insecure-tls: cannot use both --kubelet-insecure-tls and "
            "--deprecated-kubelet-completely-insecure",
        ),
        (
            ["--kubelet-preferred-address-types=InternalIP,Bogus"],
            "--kubelet-preferred-address-types: unknown address type(s) Bogus",
        ),
        (
            ["--tls-cert-file=pyproject.toml"],
            "--tls-private-key-file: --tls-cert-file and --tls-private-key-file must be given together",
        ),
        (["--tls-min-version=VersionTLS11"], "--tls-min-version: VersionTLS11 is refused"),
        (["--tls-min-version=TLS12"], "--tls-min-version: unsupported version 'TLS12'"),
        (
            ["--kubeconfig=does-not-exist"],
            'invalid argument "does-not-exist" for "--kubeconfig" flag: no such file \'does-not-exist\'',
        ),
        (["--kubelet-max-concurrency=0"], "--kubelet-max-concurrency should be positive"),
        (
            ["--node-selector=a=("],
            "--node-selector: unable to parse requirement: found '(', expected: identifier",
        ),
        (["--secure-port=70000"], "--secure-port: 70000 must be between 1 and 65535"),
        (["--bind-address=nope"], 'invalid argument "nope" for "--bind-address" flag: failed to parse IP'),
    ],
)
def test_contradictions_are_refused_naming_the_flag(argv: list[str], message: str) -> None:
    with pytest.raises(FlagError) as info:
        parse_options(argv)
    assert str(info.value).startswith(message)


def test_main_reports_flag_errors_with_exit_code_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--metric-resolution=1s"], run=lambda o: 0) == 2
    assert capsys.readouterr().err == "Error: --metric-resolution must be at least 10s\n"


def test_main_hands_options_to_the_runner() -> None:
    seen = []
    assert main(["--metric-resolution=30s"], run=lambda o: seen.append(o) or 0) == 0
    assert seen[0].server.metric_resolution_ns == 30 * NS_PER_SECOND


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    assert capsys.readouterr().out == "metrics-server 0.1.0\n"


@pytest.mark.parametrize(("value", "parsed"), [("auto", -1), ("0", 0), ("3", 3)])
def test_scrape_workers(value: str, parsed: int) -> None:
    assert parse_options([f"--scrape-workers={value}"]).shard.scrape_workers == parsed
    assert parse_options([]).shard.scrape_workers == -1  # auto by default


@pytest.mark.parametrize(
    ("value", "why"), [("-1", "must not be negative"), ("two", "expected a count or auto")]
)
def test_scrape_workers_refused(value: str, why: str) -> None:
    with pytest.raises(FlagError) as info:
        parse_options([f"--scrape-workers={value}"])
    assert str(info.value) == f'invalid argument "{value}" for "--scrape-workers" flag: {why}'


@pytest.mark.parametrize(("value", "parsed"), [("0", 0), ("5", 5), ("19", 19)])
def test_scrape_worker_niceness(value: str, parsed: int) -> None:
    assert parse_options([f"--scrape-worker-niceness={value}"]).shard.scrape_worker_niceness == parsed
    assert parse_options([]).shard.scrape_worker_niceness == 10


@pytest.mark.parametrize("value", ["-1", "20"])
def test_scrape_worker_niceness_refused(value: str) -> None:
    with pytest.raises(FlagError) as info:
        parse_options([f"--scrape-worker-niceness={value}"])
    assert str(info.value) == "--scrape-worker-niceness: must be between 0 and 19"
