"""Smoke test of the scale benchmark: the harness runs end to end on a tiny cluster.

Runs `python -m bench run` (simulator and metrics server, with one scrape worker, in their own
processes) for 50 nodes x 10 pods, three 10 s cycles, and checks the result's shape and its exact
counts. No performance thresholds: CI machines vary; the figures live in docs/performance.md.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
NODES, PODS_PER_NODE, CYCLES = 50, 10, 3

SUMMARY_KEYS = {
    "cycle_s",
    "server_cores_avg",
    "server_cpu_s_per_cycle",
    "server_rss_mib_max",
    "server_rss_mib_end",
    "server_rss_mib_peak",
    "server_pss_mib_max",
    "server_pss_mib_end",
    "server_processes",
    "simulator_cores_avg",
    "simulator_rss_mib_end",
    "harness_cores_avg",
    "other_cores_avg",
    "steal_cores_avg",
    "serving_cpu_wait_share",
    "loadavg_1m_end",
    "scrape_requests_ok",
    "scrape_errors",
    "nodes_served",
    "pods_served",
    "containers_served",
    "metrics_endpoint_ms_p50",
    "measured_wall_s",
    "api",
    "harness_loop_lag",
    "api_server_side",
}
CYCLE_KEYS = {
    "index",
    "duration_s",
    "merged_ticks",
    "server_cores",
    "server_rss_mib",
    "server_pss_mib",
    "server_pss_mib_by_process",
    "simulator_cores",
    "harness_cores",
    "scrape_ok",
    "scrape_failed",
    "node_points",
    "container_points",
}
PATTERN_KEYS = {"count", "errors", "p50_ms", "p99_ms", "max_ms", "mean_bytes", "last_error", "slowest"}


def test_harness_end_to_end(tmp_path: Path) -> None:
    out = tmp_path / "results"
    argv = [
        sys.executable,
        "-m",
        "bench",
        "run",
        f"--nodes={NODES}",
        f"--pods-per-node={PODS_PER_NODE}",
        "--resolution=10s",
        f"--cycles={CYCLES}",
        f"--out={out}",
        "--address-prefix=90",
        # One scrape worker: the harness measures the server's process tree.
        "--server-arg=--scrape-workers=1",
    ]
    done = subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stdout + done.stderr
    progress = [line for line in done.stdout.splitlines() if line.startswith("cycle ")]
    assert [line.split(":")[0] for line in progress] == [f"cycle {i}/{CYCLES}" for i in (1, 2, 3)]

    result = json.loads((out / f"result-{NODES}x{PODS_PER_NODE}.json").read_text())
    assert set(result) == {"scenario", "date", "machine", "startup", "summary", "cycles"}
    assert result["scenario"]["nodes"] == NODES
    assert result["scenario"]["resolution_s"] == 10.0
    assert result["machine"]["nproc"] >= 1

    summary = result["summary"]
    assert set(summary) == SUMMARY_KEYS
    assert summary["nodes_served"] == NODES
    assert summary["pods_served"] == NODES * PODS_PER_NODE
    assert summary["containers_served"] >= summary["pods_served"]
    assert summary["scrape_requests_ok"] == NODES * CYCLES
    assert summary["scrape_errors"] == 0
    assert summary["server_cores_avg"] > 0
    assert summary["server_rss_mib_max"] > 0
    assert summary["server_processes"] == 2  # the serving process and its worker
    assert 0 < summary["server_pss_mib_max"] <= summary["server_rss_mib_max"]
    assert summary["simulator_cores_avg"] > 0
    assert 0 < summary["cycle_s"]["p50"] <= summary["cycle_s"]["p99"] <= summary["cycle_s"]["max"]
    assert 0 <= summary["serving_cpu_wait_share"] < 1
    lag = summary["harness_loop_lag"]
    assert set(lag) == {"p50_ms", "p99_ms", "max_ms"}
    assert 0 <= lag["p50_ms"] <= lag["p99_ms"] <= lag["max_ms"]
    for name in ("hpa", "kubectl", "get"):
        pattern = summary["api"][name]
        assert set(pattern) == PATTERN_KEYS
        assert pattern["errors"] == 0, pattern["last_error"]
        assert pattern["count"] > 0
        assert 0 < pattern["p50_ms"] <= pattern["p99_ms"] <= pattern["max_ms"]
        slowest = pattern["slowest"]
        assert 0 < len(slowest) <= 5 and slowest[0][1] == pytest.approx(pattern["max_ms"], abs=0.06)
        # The server's own view, from its request duration histogram between the first and the
        # last reading of /metrics. Its count is not the harness's: requests in flight at either
        # reading fall on one side only.
        server_side = summary["api_server_side"][name]
        assert set(server_side) == {"count", "p50_le_ms", "p99_le_ms"}
        assert server_side["count"] > 0
        assert 0 < server_side["p50_le_ms"] <= server_side["p99_le_ms"]

    assert len(result["cycles"]) == CYCLES
    for i, cycle in enumerate(result["cycles"], start=1):
        assert set(cycle) == CYCLE_KEYS
        assert cycle["index"] == i
        assert cycle["duration_s"] > 0
        assert cycle["scrape_ok"] == NODES
        assert cycle["scrape_failed"] == 0
        assert cycle["node_points"] == NODES
        assert cycle["server_rss_mib"] > 0
        serving, worker = cycle["server_pss_mib_by_process"]
        assert serving > 0 and worker > 0
        assert round(serving + worker, 1) == pytest.approx(cycle["server_pss_mib"], abs=0.2)

    table = (out / "results.md").read_text()
    assert f"| {NODES} × {PODS_PER_NODE} | 10 s |" in table
    assert (out / "scaling.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
