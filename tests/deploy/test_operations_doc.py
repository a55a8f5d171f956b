"""docs/operations.md states facts owned by the code: the flag table (cli.py), the health bodies
(health.py) and the log messages (the modules that log them). These tests keep the page honest."""

from __future__ import annotations

import ast
import contextlib
import io
import json
import re
from pathlib import Path

import pytest

from metrics_server import cli
from metrics_server.health import Check, HealthChecks
from metrics_server.scrape.loop import TIMELY_FAILURE_MESSAGE

REPO = Path(__file__).resolve().parents[2]
DOC = (REPO / "docs" / "operations.md").read_text()
SERVER = REPO / "server" / "metrics_server"

EXTRA_FLAGS = {
    "--kubelet-metrics-source",
    "--kubelet-max-response-bytes",
    "--kubelet-max-concurrency",
    "--metric-staleness",
    "--serve-swap",
    "--scrape-workers",
}
AUDIT_PATTERNS = {"--audit-log-*": "--audit-log-maxage", "--audit-webhook-*": "--audit-webhook-mode"}


def flag_table() -> dict[str, str]:
    """`flag -> status` from the compatibility table (every flag named in a row's first cell)."""
    section = DOC.split("### Flag compatibility", 1)[1].split("\n## ", 1)[0]
    table: dict[str, str] = {}
    for line in section.splitlines():
        if not line.startswith("| `-"):
            continue
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        for flag in re.findall(r"`(-[^`]+)`", cells[0]):
            assert flag not in table, f"{flag} is listed twice"
            table[flag] = cells[1]
    return table


def parser_flags() -> set[str]:
    flags = {s for action in cli.build_parser()._actions for s in action.option_strings}
    return flags - {"-h", "--help"}


def with_status(status: str) -> set[str]:
    return {flag for flag, s in flag_table().items() if s == status}


def test_every_status_is_one_of_the_four() -> None:
    assert set(flag_table().values()) == {"supported", "extra", "ignored", "refused"}


def test_every_parser_flag_is_supported_or_extra() -> None:
    assert with_status("supported") | with_status("extra") == parser_flags()
    assert with_status("extra") == EXTRA_FLAGS


def test_ignored_rows_are_exactly_the_ignored_flags() -> None:
    expected = set(cli.IGNORED_VALUE_FLAGS) | set(cli.IGNORED_BOOL_FLAGS) | set(AUDIT_PATTERNS)
    assert with_status("ignored") == expected


@pytest.mark.parametrize("flag", sorted(with_status("ignored")))
def test_ignored_flags_are_accepted_and_reported(flag: str) -> None:
    name = AUDIT_PATTERNS.get(flag, flag)
    argv = [name] if name in cli.IGNORED_BOOL_FLAGS else [f"{name}=1"]
    options = cli.parse_options([*argv, "--metric-resolution=15s"])
    assert options.ignored_flags == (name,)
    assert options.metric_resolution_ns == 15 * cli.NS_PER_SECOND


@pytest.mark.parametrize("flag", sorted(with_status("refused")))
def test_refused_flags_stop_start_up(flag: str) -> None:
    assert flag not in parser_flags()
    stderr = io.StringIO()
    with contextlib.redirect_stderr(stderr), pytest.raises(SystemExit) as info:
        cli.parse_options([f"{flag}=1"])
    assert info.value.code == 2
    assert stderr.getvalue().splitlines()[-1] == f"metrics-server: error: unrecognized arguments: {flag}=1"


def test_refused_tls_versions_are_documented_as_refused() -> None:
    for version in ("VersionTLS10", "VersionTLS11"):
        with pytest.raises(cli.FlagError, match=f"--tls-min-version {version} is refused"):
            cli.parse_options([f"--tls-min-version={version}"])
    [row] = [line for line in DOC.splitlines() if line.startswith("| `--tls-min-version`")]
    assert "`VersionTLS10` and `VersionTLS11` are refused" in row


# --- health bodies


def ok() -> str | None:
    return None


def failing(reason: str) -> Check:
    return lambda: reason


def health(**failures: str) -> HealthChecks:
    names = (
        "metric_collection_timely",
        "metric_storage_ready",
        "metric_informer_sync",
        "metadata_informer_sync",
    )
    checks = {name: failing(failures[name]) if name in failures else ok for name in (*names, "shutdown")}
    return HealthChecks.standard(**checks)


@pytest.mark.parametrize(
    ("checks", "root"),
    [
        (health(), "readyz"),
        (health(), "livez"),
        (health(metric_collection_timely=TIMELY_FAILURE_MESSAGE), "livez"),
    ],
)
def test_documented_verbose_bodies_are_what_the_server_renders(checks: HealthChecks, root: str) -> None:
    response = checks.root(root, verbose=True, exclude=())
    assert f"```text\n{response.body}```" in DOC


def test_documented_readyz_failure_line_is_what_the_server_renders() -> None:
    response = health(metric_storage_ready="no metrics to serve").root("readyz", verbose=True, exclude=())
    assert response.status == 500
    assert "[-]metric-storage-ready failed: reason withheld\n" in response.body
    assert "`[-]metric-storage-ready failed: reason withheld`" in DOC
    single = health(metric_storage_ready="no metrics to serve").single("readyz", "metric-storage-ready")
    assert single is not None
    assert single.body == "internal server error: no metrics to serve\n"
    assert "`internal server error: <reason>`" in DOC


def test_documented_check_names_are_the_servers() -> None:
    checks = health()
    table = DOC.split("| Check | On | Fails while |", 1)[1].split("\n\n", 1)[0]
    documented = {
        name: {root.strip() for root in roots.split(",")}
        for name, roots in re.findall(r"^\| `([a-z-]+)` \| ([a-z, ]+) \|", table, re.MULTILINE)
    }
    expected: dict[str, set[str]] = {}
    for root in ("healthz", "livez", "readyz"):
        for name in checks.names(root):
            if name not in ("ping", "log"):
                expected.setdefault(name, set()).add(root)
    assert documented == expected
    assert f"`{TIMELY_FAILURE_MESSAGE}`" in table


# --- log lines

KLOG_LINE = re.compile(
    r'^[IWE]\d{4} \d\d:\d\d:\d\d\.\d{6} +\d+ (?P<file>\w+\.py):\d+\] (?P<msg>"(?:[^"\\]|\\.)*")'
)


def documented_log_lines() -> list[tuple[str, str]]:
    found = []
    for line in DOC.splitlines():
        m = KLOG_LINE.match(line.strip().strip("`"))
        if m:
            found.append((m["file"], json.loads(m["msg"])))
    return found


def message_patterns(source: Path) -> list[re.Pattern[str]]:
    """Every string literal and f-string of a module, placeholders (`%s`, `{...}`) as wildcards."""
    patterns = []
    for node in ast.walk(ast.parse(source.read_text())):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            parts = re.split(r"%[sdr]", node.value)
            patterns.append(re.compile(".*".join(re.escape(p) for p in parts), re.DOTALL))
        elif isinstance(node, ast.JoinedStr):
            text = "".join(re.escape(v.value) if isinstance(v, ast.Constant) else ".*" for v in node.values)
            patterns.append(re.compile(text, re.DOTALL))
    return patterns


def test_the_page_quotes_log_lines() -> None:
    files = {file for file, _ in documented_log_lines()}
    assert {"scraper.py", "health.py", "store.py", "loop.py", "informer.py", "authconfig.py"} <= files


@pytest.mark.parametrize(("file", "message"), documented_log_lines())
def test_documented_log_messages_come_from_the_named_module(file: str, message: str) -> None:
    [source] = list(SERVER.rglob(file))
    assert any(p.fullmatch(message) for p in message_patterns(source)), f"{message!r} is not logged by {file}"


def github_slug(heading: str) -> str:
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def test_internal_links_point_at_headings() -> None:
    slugs = {github_slug(h) for h in re.findall(r"^#+ (.+)$", DOC, re.MULTILINE)}
    links = set(re.findall(r"\]\(#([^)]+)\)", DOC))
    assert links
    assert links <= slugs, sorted(links - slugs)
