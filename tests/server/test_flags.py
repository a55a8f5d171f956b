"""Every flag of metrics-server v0.8.0, walked from its `--help` (`../shared/reference/bin/
metrics-server-v0.8.0.help.txt`): each is declared here with upstream's group, type, shorthand and
help text, and is either implemented (its value reaches its component) or accepted and reported
with exactly one start-up warning; refusals are only for values (see docs/operations.md).

Then one test family per flag group for what the walk cannot see: the rules, the refusals and
the behaviour each implemented flag has.
"""

from __future__ import annotations

import io
import json
import logging
import re
from dataclasses import dataclass
from pathlib import Path
from typing import ClassVar

import pytest
import trio
import trio.testing

from metrics_server import cli, logs
from metrics_server.app import begin_shutdown
from metrics_server.auth.hsts import HEADER, hsts_problem, with_hsts
from metrics_server.flagset import (
    FILE,
    GROUPS,
    INT,
    METRICS_SERVER,
    NS_PER_SECOND,
    STRINGS,
    Flag,
    FlagError,
    FlagSet,
    flag,
    flags_of,
)
from metrics_server.options import Options

REPO = Path(__file__).resolve().parents[2]
REFERENCE_HELP = REPO.parent / "shared" / "reference" / "bin" / "metrics-server-v0.8.0.help.txt"
_FLAG_LINE = re.compile(r"^  (?:-(\w), )?\s*(--[\w-]+)(?: (\S+))?\s{2,}(.*)$")
_DEFAULT = re.compile(r" ?\(default (.*)\)$")


@dataclass(frozen=True)
class UpstreamFlag:
    group: str
    name: str
    shorthand: str
    kind: str
    help: str


def upstream_flags() -> list[UpstreamFlag]:
    """The flags of the reference's `--help`, with their group, type and full help text."""
    if not REFERENCE_HELP.is_file():
        pytest.fail(f"{REFERENCE_HELP} is missing: the flag walk needs metrics-server's --help text")
    flags: list[UpstreamFlag] = []
    group = ""
    for line in REFERENCE_HELP.read_text().splitlines():
        if line.endswith("flags:") and not line.startswith(" "):
            group = line.removesuffix(":")
            continue
        m = _FLAG_LINE.match(line)
        if m:
            short, name, kind, text = m.groups()
            flags.append(UpstreamFlag(group, name, short or "", kind or "", text.strip()))
        elif flags and line.startswith("    ") and line.strip():
            last = flags[-1]
            flags[-1] = UpstreamFlag(
                last.group, last.name, last.shorthand, last.kind, f"{last.help}\n{line.strip()}"
            )
    return flags


UPSTREAM = upstream_flags()
FLAGS = cli.flag_set()

SAMPLES = {
    "--tls-min-version": "VersionTLS13",
    "--tls-cipher-suites": "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
    "--strict-transport-security-directives": "max-age=31536000,includeSubDomains",
    "--kubelet-preferred-address-types": "InternalIP",
    "--logging-format": "json",
    "--metric-resolution": "30s",
    "--node-selector": "role=worker",
    "--cors-allowed-origins": "^https://example\\.com$",
    "--emulated-version": "kube=1.30",
    "--goaway-chance": "0.01",
    "--tls-sni-cert-key": "a.crt,a.key:*.example.com",
}
KIND_SAMPLES = {
    "": "true",
    "int": "7",
    "float": "0.5",
    "float32": "1.5",
    "string": "x",
    "strings": "a,b",
    "duration": "3s",
    "ip": "127.0.0.2",
    "quantity": "1Ki",
    "Level": "2",
    "pattern=N,...": "server=2",
    "colonSeparatedMultimapStringString": "kube:SomeGate=true",
    "namedCertKey": "a.crt,a.key",
}


def sample(spec: Flag, tmp_file: str) -> str:
    if spec.name in SAMPLES:
        return SAMPLES[spec.name]
    if spec.kind is FILE:
        return tmp_file
    if spec.kind.is_bool and spec.ignored:
        return "false" if "true" in spec.same_as_ours else "true"
    if spec.kind.is_bool:
        return "false" if spec.default == "true" else "true"
    return KIND_SAMPLES[spec.kind.name]


@pytest.fixture
def tmp_file(tmp_path: Path) -> str:
    path = tmp_path / "file.pem"
    path.write_text("exists\n")
    return str(path)


def test_the_reference_help_has_every_flag_of_metrics_server_v0_8_0() -> None:
    assert len(UPSTREAM) == 101
    assert [g for g in GROUPS if any(u.group == g for u in UPSTREAM)] == list(GROUPS)


@pytest.mark.parametrize("up", UPSTREAM, ids=[u.name for u in UPSTREAM])
def test_declared_as_upstream_declares_it(up: UpstreamFlag) -> None:
    spec = FLAGS.flags.get(up.name)
    assert spec is not None, f"{up.name} is not accepted"
    assert (spec.group, spec.shorthand, spec.kind.name) == (up.group, up.shorthand, up.kind)
    ours = spec.usage_text().removeprefix(f"[ignored: {spec.ignored}] ")
    assert _lines(ours) == _lines(up.help), "the help text (with its default) is metrics-server's"


def _lines(text: str) -> list[str]:
    return [line.rstrip() for line in text.splitlines()]


@pytest.mark.parametrize("up", UPSTREAM, ids=[u.name for u in UPSTREAM])
def test_implemented_or_reported_once(
    up: UpstreamFlag, tmp_file: str, caplog: pytest.LogCaptureFixture
) -> None:
    spec = FLAGS.flags[up.name]
    value = sample(spec, tmp_file)
    options = cli.parse_options([f"{up.name}={value}"], validate=False)
    if spec.ignored:
        assert options.ignored_flags == (spec,)
        ran: list[Options] = []
        caplog.set_level(logging.WARNING, logger="metrics_server.cli")
        if up.name != "--version":
            cli.main([f"{up.name}={value}"], run=lambda o: ran.append(o) or 0)
            warnings = [r for r in caplog.records if r.name == "metrics_server.cli"]
            assert [(r.getMessage(), getattr(r, "flag", None)) for r in warnings] == [
                (cli.IGNORED_MESSAGE, up.name)
            ]
            assert getattr(warnings[0], "would", "") == spec.ignored
    else:
        assert options.ignored_flags == ()
        assert spec.owner is not None
        [component] = [c for c in options.components() if type(c) is spec.owner]
        assert getattr(component, spec.field) == spec.convert(value)
        assert getattr(component, spec.field) != spec.default_value(), "the sample changes the value"


def test_help_lists_every_flag_in_upstreams_groups(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["--help"]) == 0
    out = capsys.readouterr().out
    headings = [line.removesuffix(":") for line in out.splitlines() if line.endswith(" flags:")]
    assert headings == list(GROUPS)
    for spec in FLAGS:
        head = f"  -{spec.shorthand}, {spec.name}" if spec.shorthand else f"      {spec.name}"
        [line] = [x for x in out.splitlines() if x.startswith(head + " ")]
        assert spec.help.splitlines()[0] in line
        assert (f"[ignored: {spec.ignored}]" in line) is bool(spec.ignored)


def test_help_layout_is_pflags_for_an_unchanged_group() -> None:
    """The authorization group has exactly upstream's flags: its block is upstream's, byte for byte."""
    reference = REFERENCE_HELP.read_text()
    block = reference.split("Apiserver authorization flags:\n", 1)[1].split("\n\n", 2)
    ours = cli.usage().split("Apiserver authorization flags:\n", 1)[1].split("\n\n", 2)
    assert ours[1] == block[1]


# --- the flag set itself -----------------------------------------------------------------------------


@dataclass(frozen=True)
class _Demo:
    FLAG_GROUP: ClassVar[str] = METRICS_SERVER
    items: tuple[str, ...] = flag("--items", STRINGS, "a", "Items.")
    count: int = flag("--count", INT, "3", "Count.")


def test_lists_replace_their_default_then_append_and_non_lists_keep_the_last() -> None:
    fs = FlagSet([_Demo])
    assert fs.parse([]).get(_Demo) == _Demo(items=("a",), count=3)
    parsed = fs.parse(["--items=b", "--items", "c,d", "--count=4", "--count", "5"])
    assert parsed.get(_Demo) == _Demo(items=("b", "c", "d"), count=5)
    assert parsed.given == ("--items", "--count")
    assert fs.parse(["--items="]).get(_Demo).items == ()
    with pytest.raises(FlagError, match="unexpected argument 'x'"):
        fs.parse(["--", "x"])


def test_a_flag_declared_twice_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="--items is declared twice"):
        FlagSet([_Demo, _Demo])
    assert [f.name for f in flags_of(_Demo)] == ["--items", "--count"]


# --- Metrics server flags --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "error"),
    [
        (
            ["--metric-resolution=11s"],
            "--kubelet-request-timeout (10s) must not exceed 90% of --metric-resolution (11s)",
        ),
        (
            ["--metric-resolution=20s", "--kubelet-request-timeout=19s"],
            "--kubelet-request-timeout (19s) must not exceed 90%",
        ),
        (["--metric-resolution=11s", "--kubelet-request-timeout=9900ms"], None),
        (["--metric-resolution=10s", "--kubelet-request-timeout=9s"], None),
        (
            ["--metric-resolution=9s", "--kubelet-request-timeout=1s"],
            "--metric-resolution must be at least 10s",
        ),
        (
            ["--metric-resolution=15s", "--metric-staleness=14s"],
            "--metric-staleness must be at least --metric-resolution",
        ),
        (["--metric-staleness=-1s"], "--metric-staleness: can not be negative value"),
    ],
)
def test_resolution_rules_are_metrics_servers(argv: list[str], error: str | None) -> None:
    """Checked against the reference binary: 11s with the default 10s timeout and 20s/19s are
    refused there too; 10s/9s starts."""
    if error is None:
        cli.parse_options(argv)
        return
    with pytest.raises(FlagError) as info:
        cli.parse_options(argv)
    assert str(info.value).startswith(error)


def test_staleness_defaults_to_twice_the_resolution() -> None:
    assert cli.parse_options(["--metric-resolution=20s"]).server.staleness_ns == 40 * NS_PER_SECOND
    options = cli.parse_options(["--metric-resolution=20s", "--metric-staleness=50s"])
    assert options.server.staleness_ns == 50 * NS_PER_SECOND


# --- Generic flags ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("argv", "error"),
    [
        (["--goaway-chance=0.5"], "--goaway-chance can not be less than 0 or greater than 0.02"),
        (["--max-requests-inflight=-1"], "--max-requests-inflight: can not be negative value"),
        (["--shutdown-delay-duration=-1s"], "--shutdown-delay-duration: can not be negative value"),
        (["--cors-allowed-origins=("], "--cors-allowed-origins has an invalid regular expression"),
        (["--strict-transport-security-directives=foo"], "--strict-transport-security-directives invalid"),
        (["--advertise-address=nope"], 'invalid argument "nope" for "--advertise-address" flag'),
        (["--feature-gates=Gate"], 'invalid argument "Gate" for "--feature-gates" flag'),
    ],
)
def test_generic_values_are_checked_as_metrics_server_checks_them(argv: list[str], error: str) -> None:
    with pytest.raises(FlagError) as info:
        cli.parse_options(argv)
    assert str(info.value).startswith(error)


def test_shutdown_delay_is_kept() -> None:
    assert (
        cli.parse_options(["--shutdown-delay-duration=15s"]).generic.shutdown_delay_ns == 15 * NS_PER_SECOND
    )


def test_hsts_directives_are_checked_as_the_library_does() -> None:
    assert hsts_problem(("max-age=31536000", "includeSubDomains", "preload")) is None
    assert hsts_problem(("max-age=x",)) is None  # the library checks the shape only
    assert hsts_problem(("max-age",)) is not None
    assert hsts_problem(("",)) == "empty value in strict-transport-security-directives"


async def test_hsts_header_on_every_http_response() -> None:
    sent: list[dict[str, object]] = []

    async def app(scope: object, receive: object, send: object) -> None:
        await send({"type": "http.response.start", "status": 200, "headers": [(b"a", b"b")]})  # type: ignore[operator]
        await send({"type": "http.response.body", "body": b"x"})  # type: ignore[operator]

    async def record(message: dict[str, object]) -> None:
        sent.append(message)

    wrapped = with_hsts(app, ("max-age=1", "includeSubDomains"))
    await wrapped({"type": "http"}, None, record)  # type: ignore[arg-type]
    assert sent[0]["headers"] == [(b"a", b"b"), (HEADER, b"max-age=1; includeSubDomains")]
    assert sent[1] == {"type": "http.response.body", "body": b"x"}
    assert with_hsts(app, ()) is app


# --- Apiserver authentication / authorization flags ----------------------------------------------------


def test_authentication_and_authorization_flags_reach_their_components(tmp_file: str) -> None:
    o = cli.parse_options(
        [
            f"--authentication-kubeconfig={tmp_file}",
            f"--authorization-kubeconfig={tmp_file}",
            "--authentication-skip-lookup",
            "--authentication-token-webhook-cache-ttl=30s",
            "--authorization-webhook-cache-unauthorized-ttl=1s",
            "--authorization-always-allow-paths=/healthz,/metrics*",
            "--requestheader-uid-headers=X-Remote-Uid",
        ]
    )
    assert (o.authentication.kubeconfig, o.authorization.kubeconfig) == (tmp_file, tmp_file)
    assert o.authentication.skip_lookup is True
    assert (o.reviews.token_cache_ttl, o.reviews.unauthorized_ttl) == (30.0, 1.0)
    assert o.authorization.always_allow_paths == ("/healthz", "/metrics*")
    assert o.authentication.requestheader_uid_headers == ("X-Remote-Uid",)
    with pytest.raises(FlagError, match=r'only trailing \* allowed in "a\*b"'):
        cli.parse_options(["--authorization-always-allow-paths=/a*b"])


# --- Apiserver secure serving flags (handshakes: tests/server/auth/test_tls_flags.py) ------------------


@pytest.mark.parametrize(
    ("argv", "error"),
    [
        (
            ["--tls-cipher-suites=NOPE"],
            "--tls-cipher-suites: Cipher suite NOPE not supported or doesn't exist",
        ),
        (
            ["--tls-cipher-suites=TLS_RSA_WITH_AES_128_GCM_SHA256"],
            "--tls-cipher-suites: cipher suite TLS_RSA_WITH_AES_128_GCM_SHA256 is insecure",
        ),
        (
            ["--tls-cipher-suites=TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384"],
            "--tls-cipher-suites: HTTP/2 requires one of",
        ),
        (["--tls-min-version=VersionTLS10"], "--tls-min-version: VersionTLS10 is refused"),
        (["--tls-min-version=TLS12"], "--tls-min-version: unsupported version 'TLS12'"),
    ],
)
def test_tls_values_refused_naming_the_flag(argv: list[str], error: str) -> None:
    with pytest.raises(FlagError) as info:
        cli.parse_options(argv)
    assert str(info.value).startswith(error)


@pytest.mark.parametrize(
    "argv",
    [
        ["--tls-cipher-suites=TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", "--disable-http2-serving"],
        ["--tls-cipher-suites=TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", "--tls-min-version=VersionTLS13"],
        ["--tls-cipher-suites=TLS_AES_128_GCM_SHA256", "--disable-http2-serving"],
    ],
)
def test_tls_combinations_go_accepts(argv: list[str]) -> None:
    cli.parse_options(argv)


@pytest.mark.parametrize(("value", "streams"), [("0", 250), ("-1", 250), ("100", 100)])
def test_http2_max_streams_zero_means_the_librarys_default(value: str, streams: int) -> None:
    options = cli.parse_options([f"--http2-max-streams-per-connection={value}"])
    assert options.serving.config().h2_max_concurrent_streams == streams


# --- Logging flags -----------------------------------------------------------------------------------


def test_split_stream_sends_errors_and_the_rest_apart() -> None:
    errors, info = io.StringIO(), io.StringIO()
    options = cli.parse_options(["--logging-format=json", "--log-json-split-stream"]).logging
    assert options.split_stream is True
    assert cli.parse_options(["--log-json-split-stream"]).logging.split_stream is False  # text format
    logs.configure_logging(options.format, options.verbosity, errors, split_stream=True, info_stream=info)
    try:
        log = logging.getLogger("metrics_server.test_split")
        log.info("an info line")
        log.warning("a warning")
        log.error("an error")
    finally:
        logs.configure_logging("text", 0)
    assert [line["msg"] for line in map(json.loads, info.getvalue().splitlines())] == [
        "an info line",
        "a warning",
    ]
    assert [json.loads(line)["msg"] for line in errors.getvalue().splitlines()] == ["an error"]


def test_logging_format_and_verbosity() -> None:
    with pytest.raises(FlagError, match="--logging-format: format 'xml' not supported"):
        cli.parse_options(["--logging-format=xml"])
    assert cli.parse_options(["-v", "4"]).logging.verbosity == 4
    assert cli.parse_options(["--v=6"]).logging.verbosity == 6


async def test_shutdown_delay_fails_readyz_first_then_closes_the_listener(
    autojump_clock: trio.testing.MockClock,
) -> None:
    shutting_down, stop_serving = trio.Event(), trio.Event()
    async with trio.open_nursery() as nursery:
        nursery.start_soon(begin_shutdown, shutting_down, stop_serving, 15 * NS_PER_SECOND)
        await trio.testing.wait_all_tasks_blocked()
        start = trio.current_time()
        assert shutting_down.is_set() and not stop_serving.is_set()
        await stop_serving.wait()
        assert trio.current_time() - start == 15
    shutting_down, stop_serving = trio.Event(), trio.Event()
    await begin_shutdown(shutting_down, stop_serving, 0)
    assert shutting_down.is_set() and stop_serving.is_set()
