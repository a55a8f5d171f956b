"""docs/operations.md states facts owned by the code: the flag table (cli.py), the health bodies
(health.py) and the log messages (the modules that log them). These tests keep the page honest."""

from __future__ import annotations

import ast
import json
import re
from pathlib import Path

import pytest

from metrics_server import app, cli
from metrics_server.api.health import Check, HealthChecks
from metrics_server.auth.requestmetrics import RequestMetrics
from metrics_server.kube.restmetrics import RestClientMetrics
from metrics_server.scrape.loop import TIMELY_FAILURE_MESSAGE
from metrics_server.shard.pool import WorkerPool

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
    "--scrape-worker-niceness",
    "--logtostderr",
    "--alsologtostderr",
}
"""Accepted here, not flags of metrics-server v0.8.0 (the last two are ignored klog flags)."""
AUDIT_PATTERNS = ("--audit-log-", "--audit-webhook-")
FLAGS = cli.flag_set()


def flag_table() -> dict[str, tuple[str, str]]:
    """`flag -> (status, notes)` from the compatibility table; `--audit-log-*` rows expand to
    every parser flag they match."""
    section = DOC.split("### Flag compatibility", 1)[1].split("\n## ", 1)[0]
    table: dict[str, tuple[str, str]] = {}
    for line in section.splitlines():
        if not line.startswith("| `-"):
            continue
        cells = [cell.strip() for cell in line.strip("|").split("|")]
        for flag in re.findall(r"`(-[^`]+)`", cells[0]):
            names = [f.name for f in FLAGS if f.name.startswith(flag[:-1])] if flag.endswith("*") else [flag]
            for name in names:
                assert name not in table, f"{name} is listed twice"
                table[name] = (cells[1], cells[2])
    return table


def long_names(table: dict[str, tuple[str, str]]) -> set[str]:
    return {name for name in table if name.startswith("--")}


def with_status(status: str) -> set[str]:
    return {flag for flag, (s, _) in flag_table().items() if s == status and flag.startswith("--")}


def test_every_status_is_one_of_the_four() -> None:
    assert {s for s, _ in flag_table().values()} == {"supported", "extra", "ignored", "refused"}


def test_every_accepted_flag_is_in_the_table_with_its_status() -> None:
    table = flag_table()
    assert long_names(table) - with_status("refused") == {f.name for f in FLAGS}
    for spec in FLAGS:
        status, notes = table[spec.name]
        expected = "ignored" if spec.ignored else ("extra" if spec.name in EXTRA_FLAGS else "supported")
        assert status == expected, spec.name
        if spec.ignored and not spec.name.startswith(AUDIT_PATTERNS):
            assert f"Would {spec.ignored}." in notes, spec.name
        if spec.shorthand:
            assert f"-{spec.shorthand}" in table


@pytest.mark.parametrize("flag", sorted(with_status("refused")))
def test_refused_flags_stop_start_up_with_a_reason(flag: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert flag not in FLAGS.flags
    assert flag_table()[flag][1], "a refused flag says why (or what to do instead)"
    assert cli.main([f"{flag}=1"], run=lambda o: 0) == 2
    assert capsys.readouterr().err == f"Error: unknown flag: {flag}\n"


def test_refused_values_are_documented_with_the_reason() -> None:
    table = flag_table()
    assert "`VersionTLS10` and `VersionTLS11` are refused" in table["--tls-min-version"][1]
    assert "RFC 8996" in table["--tls-min-version"][1]
    assert "insecure* suites" in table["--tls-cipher-suites"][1]
    for version in ("VersionTLS10", "VersionTLS11"):
        with pytest.raises(cli.FlagError, match=f"--tls-min-version: {version} is refused"):
            cli.parse_options([f"--tls-min-version={version}"])


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
            if name not in ("ping", "log") and not name.startswith("poststarthook/"):  # built-ins
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


# --- monitoring


def served_series() -> set[str]:
    """Every family and sample name the server's /metrics has (registry as `app.serve` builds it,
    with scrape workers)."""
    registry, make_metrics = app._registry()
    make_metrics(15.0)
    RequestMetrics(registry)
    RestClientMetrics(registry)
    registry.register(WorkerPool(1, lambda index: NotImplemented, request_timeout=1.0).collector())
    names: set[str] = set()
    for family in registry.collect():
        names.add(family.name)
        names.update(f"{family.name}{suffix}" for suffix in ("_total", "_bucket", "_sum", "_count"))
    return names


def test_monitoring_queries_use_served_series() -> None:
    section = DOC.split("\n## Monitoring\n", 1)[1].split("\n## ", 1)[0]
    table = section.split("| Panel | Query | Alert when |", 1)[1]
    used = set(
        re.findall(
            r"\b((?:metrics_server|apiserver|authentication|authorization|rest_client|process)_[a-z_]+)",
            table,
        )
    )
    assert len(used) >= 12
    assert used <= served_series(), sorted(used - served_series())
