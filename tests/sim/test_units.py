"""Pure units of the simulator: Go float formatting, profiles, field selectors, policy loading."""

from __future__ import annotations

from pathlib import Path

import pytest

from k8s_metrics.selectors import SelectorError
from kubesim import MI, Bursty, ConfigError, Sine, Steady
from kubesim.aggregator import _request_timeout
from kubesim.gofmt import go_float
from kubesim.listwatch import field_selector
from kubesim.policy import Attributes, Policy, User, forbidden_message

SAMPLES = Path(__file__).resolve().parents[1] / "data" / "kubelet-samples" / "resource"
S = 1_000_000_000


@pytest.mark.parametrize(
    "sample", ["ersilia-eks-2025-stable-no-scrape_error.txt", "metrics-server-kind-v1.21-70pods.txt"]
)
def test_go_float_reproduces_real_kubelet_values(sample: str) -> None:
    checked = 0
    for line in (SAMPLES / sample).read_text().splitlines():
        if not line or line[0] == "#":
            continue
        text = line.rsplit("} ", 1)[-1].split()[0] if "}" in line else line.split()[1]
        assert go_float(float(text)) == text
        checked += 1
    assert checked > 50


def test_go_float_edge_cases() -> None:
    assert [go_float(v) for v in (0.0, 1.0, -1.0, 1e21, 1.8446743709127774e19, 0.0001, 0.00001)] == [
        "0",
        "1",
        "-1",
        "1e+21",
        "1.8446743709127774e+19",
        "0.0001",
        "1e-05",
    ]


def test_steady_profile_is_exact() -> None:
    p = Steady(10 * S, millicores=250, memory=64 * MI)
    assert p.cpu_ns(10 * S) == 0
    assert p.cpu_ns(25 * S) == 15 * S // 4
    assert p.rate_millicores(11 * S, 26 * S) == 250.0
    assert p.memory_bytes(99 * S) == 64 * MI


def test_sine_integral_matches_numeric_integration() -> None:
    p = Sine(0, mean_millicores=400, amplitude_millicores=300, period_s=60, phase=1.0)
    step = S // 1000
    numeric = sum(p.cpu_millicores(t + step // 2) * step / 1000 for t in range(5 * S, 50 * S, step))
    assert abs((p.cpu_ns(50 * S) - p.cpu_ns(5 * S)) - numeric) < 1e3  # ns
    counters = [p.cpu_ns(t * S // 10) for t in range(0, 1000)]
    assert counters == sorted(counters)
    with pytest.raises(ConfigError):
        Sine(0, mean_millicores=100, amplitude_millicores=100)


def test_bursty_profile_is_deterministic_and_monotonic() -> None:
    a = Bursty(0, base_millicores=50, burst_millicores=950, slot_s=10, probability=0.3, key=42)
    b = Bursty(0, base_millicores=50, burst_millicores=950, slot_s=10, probability=0.3, key=42)
    times = [t * S for t in range(0, 3600, 7)]
    ca = [a.cpu_ns(t) for t in times]
    assert ca == [b.cpu_ns(t) for t in reversed(times)][::-1]  # no hidden state: call order does not matter
    assert ca == sorted(ca)
    rates = {a.cpu_millicores(t) for t in times}
    assert rates == {50.0, 1000.0}
    assert a.cpu_ns(3600 * S) == sum(a.cpu_millicores(t * S) * S // 1000 for t in range(3600))


def test_field_selectors_of_core_resources_accept_only_their_fields() -> None:
    """The grammar is the client's (tests/client/test_selectors.py); the field check is the apiserver's."""
    known = ("metadata.name", "status.phase")
    sel = field_selector(r"metadata.name!=a\,b,status.phase==Running", known)
    fields = {"metadata.name": "c", "status.phase": "Running"}
    assert sel.matches(fields.__getitem__)
    assert not sel.matches({**fields, "metadata.name": "a,b"}.__getitem__)
    assert field_selector("", known).requirements == ()
    with pytest.raises(SelectorError, match=r"^invalid selector: 'bad'; can't understand 'bad'$"):
        field_selector("bad", known)
    with pytest.raises(SelectorError, match=r"^field label not supported: spec\.x$"):
        field_selector("spec.x=1", known)


def test_policy_errors_name_the_problem(tmp_path: Path) -> None:
    bad = tmp_path / "p.yaml"
    bad.write_text("users: [{name: a}]\n")
    with pytest.raises(ConfigError, match=r"users\[0\] \(a\) needs a token"):
        Policy.load(bad)
    bad.write_text("bindings: [{name: b, role: nope, subjects: []}]\n")
    with pytest.raises(ConfigError, match="unknown role 'nope'"):
        Policy.load(bad)


def test_forbidden_messages() -> None:
    u = User("alice")
    assert forbidden_message(Attributes(u, "get", True, "ns", "", "v1", "pods", "", "p1")) == (
        'pods "p1" is forbidden: User "alice" cannot get resource "pods" in API group "" '
        'in the namespace "ns"'
    )
    assert forbidden_message(Attributes(u, "get", True, "", "", "v1", "nodes", "metrics", "n1")) == (
        'nodes "n1" is forbidden: User "alice" cannot get resource "nodes/metrics" in API group "" '
        "at the cluster scope"
    )
    assert forbidden_message(Attributes(u, "get", False, path="/metrics")) == (
        'forbidden: User "alice" cannot get path "/metrics"'
    )


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("32s", 32.0),
        ("1.5s", 1.5),
        ("500ms", 0.5),
        ("1m", 60.0),
        ("2m", 60.0),
        ("0s", 60.0),
        ("-1s", 60.0),
        ("", 60.0),
        ("32", 60.0),
        ("soon", 60.0),
    ],
)
def test_aggregator_request_timeout_is_the_go_duration_capped_at_60s(value: str, seconds: float) -> None:
    assert _request_timeout(value) == seconds
