"""Unit tests for the `/stats/summary` JSON parser: one test per rule, exact expected batches.

Speed measurement (not a test; prints per-body times for Summary captures):
.venv/bin/python tests/server/scrape/test_summary.py
"""

from __future__ import annotations

import functools
import json
import timeit
from pathlib import Path
from typing import Any

import pytest

from metrics_server.scrape.batch import KubeletError, NodeBatch, ParseError, Point
from metrics_server.scrape.summary import parse_summary

T0 = "2023-11-10T06:20:52Z"
T0_NS = 1_699_597_252 * 10**9
START = "2023-11-10T06:18:37Z"
START_NS = 1_699_597_117 * 10**9


def node(
    cpu: int = 117_133_655_000, memory: int = 884_572_160, when: str | None = T0, **extra: Any
) -> dict[str, Any]:
    return {
        "nodeName": "node-1",
        "startTime": START,
        "cpu": {"time": when, "usageNanoCores": 677703301, "usageCoreNanoSeconds": cpu},
        "memory": {"time": when, "availableBytes": 1, "workingSetBytes": memory, "rssBytes": 5},
        **extra,
    }


def container(
    name: str = "c", cpu: Any = 2_003_015_000, memory: Any = 10_407_936, when: Any = T0, **extra: Any
) -> dict[str, Any]:
    return {
        "name": name,
        "startTime": START,
        "cpu": {"time": when, "usageNanoCores": 80666400, "usageCoreNanoSeconds": cpu},
        "memory": {"time": when, "workingSetBytes": memory, "usageBytes": 3},
        **extra,
    }


def pod(
    *containers: dict[str, Any], name: str = "p", namespace: str = "ns", uid: str = "u-1"
) -> dict[str, Any]:
    return {
        "podRef": {"name": name, "namespace": namespace, "uid": uid},
        "startTime": START,
        "containers": list(containers),
        "cpu": {"time": T0, "usageCoreNanoSeconds": 1},
        "memory": {"time": T0, "workingSetBytes": 0},
    }


def parse(doc: Any) -> NodeBatch:
    return parse_summary(json.dumps(doc).encode(), node="node-1", request_time_ns=5)


NODE_POINT = Point(T0_NS, 117_133_655_000, 884_572_160)
C_POINT = Point(T0_NS, 2_003_015_000, 10_407_936, START_NS)


def test_full_document() -> None:
    assert parse({"node": node(), "pods": [pod(container())]}) == NodeBatch(
        "node-1", NODE_POINT, {("ns", "p"): {"c": C_POINT}}
    )


def test_only_cpu_and_memory_form_and_extra_fields_are_ignored() -> None:
    doc = {
        "node": {
            "nodeName": "n",
            "cpu": {"time": T0, "usageCoreNanoSeconds": 5},
            "memory": {"time": T0, "workingSetBytes": 6},
            "network": "anything",
            "fs": [1, 2],
            "systemContainers": None,
        },
        "pods": [
            {
                "podRef": {"name": "p", "namespace": "ns"},
                "containers": [
                    {
                        "name": "c",
                        "cpu": {"time": T0, "usageCoreNanoSeconds": 7},
                        "memory": {"time": T0, "workingSetBytes": 8},
                        "rootfs": {"time": None},
                        "userDefinedMetrics": None,
                        "io": {"psi": "x"},
                    }
                ],
                "volume": "?",
                "ephemeral-storage": 3,
            }
        ],
        "extra": {"whatever": True},
    }
    assert parse(doc) == NodeBatch("node-1", Point(T0_NS, 5, 6), {("ns", "p"): {"c": Point(T0_NS, 7, 8)}})


# --- times ---------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "ns"),
    [
        ("2023-11-10T06:20:52Z", T0_NS),
        ("2023-11-10T06:20:52.5Z", T0_NS + 500_000_000),
        ("2023-11-10T06:20:52.123456789Z", T0_NS + 123_456_789),
        ("2023-11-10T06:20:52.1234567891234Z", T0_NS + 123_456_789),
        ("2023-11-10T08:20:52+02:00", T0_NS),
        ("2023-11-10T00:50:52.000000001-05:30", T0_NS + 1),
        ("2024-02-29T00:00:00Z", 1_709_164_800 * 10**9),
        ("1970-01-01T00:00:00.000000001Z", 1),
    ],
)
def test_rfc3339_times(text: str, ns: int) -> None:
    batch = parse({"node": node(when=text)})
    assert batch.node_point == NODE_POINT._replace(timestamp_ns=ns)


@pytest.mark.parametrize(
    "text",
    [
        "2023-11-10 06:20:52Z",
        "2023-11-10T06:20:52",
        "2023-11-10t06:20:52z",
        "2023-13-10T06:20:52Z",
        "2023-02-30T06:20:52Z",
        "2023-11-10T24:00:00Z",
        "2023-11-10T06:20:60Z",
        "2023-11-10T06:20:52+24:00",
        "2023-11-10T06:20:52.Z",
        "0000-01-01T00:00:00Z",
        "",
        "yesterday",
        "２０２３-11-10T06:20:52Z",
    ],
)
def test_malformed_times_are_parse_errors_with_the_path(text: str) -> None:
    doc = {"node": node(), "pods": [pod(container(), container("d", when=text))]}
    with pytest.raises(
        ParseError, match=r"^\$\.pods\[0\]\.containers\[1\]\.cpu\.time: malformed RFC 3339 time, got "
    ):
        parse(doc)


@pytest.mark.parametrize(
    "when", [None, "1970-01-01T00:00:00Z", "0001-01-01T00:00:00Z", "2262-04-12T00:00:00Z"]
)
def test_null_or_out_of_range_cpu_time_drops_node_and_pod(when: str | None) -> None:
    doc = {
        "node": node(when=when),
        "pods": [pod(container(), container("d", when=when)), pod(container(), name="q")],
    }
    assert parse(doc) == NodeBatch("node-1", None, {("ns", "q"): {"c": C_POINT}})


def test_missing_cpu_time_is_like_null() -> None:
    c = container()
    del c["cpu"]["time"]
    assert parse({"pods": [pod(c)]}) == NodeBatch("node-1")


def test_memory_time_does_not_matter() -> None:
    c = container()
    c["memory"]["time"] = None
    assert parse({"pods": [pod(c)]}).pods == {("ns", "p"): {"c": C_POINT}}


def test_point_timestamp_is_the_cpu_time() -> None:
    c = container()
    c["memory"]["time"] = "2023-11-10T06:20:59Z"
    assert parse({"pods": [pod(c)]}).pods == {("ns", "p"): {"c": C_POINT}}


@pytest.mark.parametrize("start", [None, "0001-01-01T00:00:00Z", "1969-12-31T23:59:59Z", "missing"])
def test_unknown_start_time_is_zero(start: str | None) -> None:
    c = container()
    if start == "missing":
        del c["startTime"]
    else:
        c["startTime"] = start
    assert parse({"pods": [pod(c)]}).pods == {("ns", "p"): {"c": C_POINT._replace(start_time_ns=0)}}


def test_node_start_time_is_not_used() -> None:
    """The text form cannot carry it; using it from one form only would look like a restart on a switch."""
    assert parse({"node": node()}).node_point == Point(T0_NS, 117_133_655_000, 884_572_160, 0)


# --- swap ----------------------------------------------------------------------------------------


def test_swap_node_and_container() -> None:
    swap = {"time": T0, "swapAvailableBytes": 1073737728, "swapUsageBytes": 4096}
    doc = {"node": node(swap=swap), "pods": [pod(container(swap=swap), container("d", swap={"time": T0}))]}
    assert parse(doc) == NodeBatch(
        "node-1",
        NODE_POINT._replace(swap_bytes=4096),
        {("ns", "p"): {"c": C_POINT._replace(swap_bytes=4096), "d": C_POINT}},
    )


def test_swap_of_2_to_the_63_or_more_is_none() -> None:
    swap = {"time": T0, "swapUsageBytes": 18446743709127774208}
    doc = {"node": node(swap=swap), "pods": [pod(container(swap=swap))]}
    assert parse(doc) == NodeBatch("node-1", NODE_POINT, {("ns", "p"): {"c": C_POINT}})


# --- dropping rules ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "stats",
    [
        node(cpu=0),
        node(memory=0),
        node(cpu=2**63),
        node(memory=2**64 - 1),
        {"cpu": {"time": T0, "usageCoreNanoSeconds": 5}},
        {"memory": {"time": T0, "workingSetBytes": 5}},
        {"cpu": {"time": T0}, "memory": {"time": T0, "workingSetBytes": 5}},
        {"cpu": None, "memory": None},
        None,
    ],
)
def test_incomplete_node_point_is_dropped(stats: Any) -> None:
    assert parse({"node": stats, "pods": [pod(container())]}) == NodeBatch(
        "node-1", None, {("ns", "p"): {"c": C_POINT}}
    )


def without(key: str, inner: str | None = None) -> dict[str, Any]:
    c = container("bad")
    if inner is None:
        del c[key]
    else:
        del c[key][inner]
    return c


@pytest.mark.parametrize(
    "bad",
    [
        container("bad", cpu=0),
        container("bad", memory=0),
        container("bad", cpu=2**63),
        container("bad", memory=2**63),
        without("cpu"),
        without("memory"),
        without("cpu", "usageCoreNanoSeconds"),
        without("memory", "workingSetBytes"),
        {"name": "bad"},
        {"name": "bad", "startTime": START, "cpu": None, "memory": None},
    ],
)
def test_a_pod_with_an_incomplete_container_is_left_out(bad: dict[str, Any]) -> None:
    doc = {"node": node(), "pods": [pod(container(), bad), pod(container(), name="q")]}
    assert parse(doc) == NodeBatch("node-1", NODE_POINT, {("ns", "q"): {"c": C_POINT}})


def test_finished_containers_are_left_out_and_the_pod_kept() -> None:
    """Windows keeps listing terminated init containers with CPU and working set 0."""
    doc = {
        "pods": [
            pod(container("init", cpu=0, memory=0), container()),
            pod(container("init", cpu=0, memory=0), name="q"),
        ]
    }
    assert parse(doc).pods == {("ns", "p"): {"c": C_POINT}}


@pytest.mark.parametrize("containers", [[], None, "absent"])
def test_pods_without_containers_are_omitted(containers: Any) -> None:
    p = pod()
    if containers == "absent":
        del p["containers"]
    else:
        p["containers"] = containers
    assert parse({"node": node(), "pods": [p]}) == NodeBatch("node-1", NODE_POINT)


@pytest.mark.parametrize("doc", [{"node": None}, {"pods": None}, {"pods": []}, {"node": None, "pods": None}])
def test_empty_summaries(doc: dict[str, Any]) -> None:
    assert parse(doc) == NodeBatch("node-1")


def test_sandbox_and_empty_container_names_are_ignored() -> None:
    doc = {"pods": [pod(container("POD", cpu=0), container("", memory=0), container())]}
    assert parse(doc).pods == {("ns", "p"): {"c": C_POINT}}


# --- duplicates ----------------------------------------------------------------------------------


def test_duplicate_containers_keep_the_newest_sample_per_field() -> None:
    """Docker on 1.15 lists every container twice, samples about 2 s apart."""
    older = container(cpu=71_550_463_563, memory=280_944_640, when="2020-06-03T08:54:20Z")
    newer = container(cpu=71_990_499_159, memory=280_952_832, when="2020-06-03T08:54:28Z")
    newer["memory"]["time"] = "2020-06-03T08:54:10Z"  # memory: the first entry is newer
    expected = {("ns", "p"): {"c": Point(1_591_174_468 * 10**9, 71_990_499_159, 280_944_640, START_NS)}}
    assert parse({"pods": [pod(older, newer)]}).pods == expected
    assert parse({"pods": [pod(newer, older)]}).pods == expected


def test_duplicate_samples_with_equal_times_keep_the_larger_value() -> None:
    a, b = container(cpu=5, memory=60), container(cpu=6, memory=50)
    b["startTime"] = "2023-11-10T06:18:38Z"
    expected = {("ns", "p"): {"c": Point(T0_NS, 6, 60, START_NS + 10**9)}}
    assert parse({"pods": [pod(a, b)]}).pods == expected
    assert parse({"pods": [pod(b, a)]}).pods == expected


def test_two_pods_with_one_name_merge_like_the_text_form() -> None:
    """A recreated StatefulSet pod whose old cgroup is still reported: only the UID differs."""
    old = pod(container(cpu=10, when="2023-11-10T06:20:40Z"), container("sidecar"), uid="old")
    new = pod(container(cpu=3), uid="new")
    assert parse({"pods": [old, new]}).pods == {
        ("ns", "p"): {"c": Point(T0_NS, 3, 10_407_936, START_NS), "sidecar": C_POINT}
    }


# --- errors --------------------------------------------------------------------------------------


def test_status_body_is_a_kubelet_error() -> None:
    status = {"kind": "Status", "apiVersion": "v1", "status": "Failure", "message": "no metrics", "code": 503}
    with pytest.raises(KubeletError, match=r"^kubelet answered with a Status: 'no metrics'$"):
        parse(status)


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b"", r"^not valid JSON: .*line 1 column 1"),
        (b'{"node": {}', r"^not valid JSON: "),
        (b"\xff\xfe", r"^not valid JSON: .*UTF-8"),
        (b'{"pods": [1e400]}', r"^not valid JSON: "),
        (b"[]", r"^\$: expected a Summary object, got '\[\]'$"),
        (b'"x"', r"^\$: expected a Summary object"),
        (b'{"containers": []}', r"^\$: not a kubelet Summary \(no 'node' or 'pods' field\)"),
        (b'{"node": []}', r"^\$\.node: expected an object or null"),
        (b'{"pods": {}}', r"^\$\.pods: expected an array or null"),
        (b'{"pods": [null]}', r"^\$\.pods\[0\]: expected an object, got 'null'$"),
        (b'{"pods": [{}]}', r"^\$\.pods\[0\]\.podRef: expected an object"),
        (
            b'{"pods": [{"podRef": {"name": "p"}}]}',
            r"^\$\.pods\[0\]\.podRef\.namespace: expected a non-empty string",
        ),
        (
            b'{"pods": [{"podRef": {"name": "", "namespace": "n"}}]}',
            r"^\$\.pods\[0\]\.podRef\.name: expected",
        ),
        (
            b'{"pods": [{"podRef": {"name": "p", "namespace": "n"}, "containers": 3}]}',
            r"containers: expected an array",
        ),
        (
            b'{"pods": [{"podRef": {"name": "p", "namespace": "n"}, "containers": [3]}]}',
            r"containers\[0\]: expected an object",
        ),
        (
            b'{"pods": [{"podRef": {"name": "p", "namespace": "n"}, "containers": [{}]}]}',
            r"containers\[0\]\.name: expected a string",
        ),
        (b'{"node": {"cpu": 5}}', r"^\$\.node\.cpu: expected an object or null, got '5'$"),
        (
            b'{"node": {"cpu": {"usageCoreNanoSeconds": "5"}}}',
            r"^\$\.node\.cpu\.usageCoreNanoSeconds: expected an unsigned 64-bit integer",
        ),
        (
            b'{"node": {"cpu": {"usageCoreNanoSeconds": 5.0}}}',
            r"usageCoreNanoSeconds: expected an unsigned 64-bit integer, got '5.0'",
        ),
        (
            b'{"node": {"cpu": {"usageCoreNanoSeconds": true}}}',
            r"usageCoreNanoSeconds: expected an unsigned 64-bit integer, got 'true'",
        ),
        (
            b'{"node": {"cpu": {"usageCoreNanoSeconds": -1}}}',
            r"usageCoreNanoSeconds: expected an unsigned 64-bit integer",
        ),
        (
            b'{"node": {"cpu": {"usageCoreNanoSeconds": 18446744073709551616}}}',
            r"usageCoreNanoSeconds: expected an unsigned 64-bit",
        ),
        (
            b'{"node": {"memory": {"workingSetBytes": 1, "time": 5}}}',
            r"^\$\.node\.memory\.time: expected an RFC 3339 time string or null",
        ),
        (b'{"node": {"swap": {"swapUsageBytes": [1]}}}', r"^\$\.node\.swap\.swapUsageBytes: expected"),
    ],
)
def test_malformed_documents(body: bytes, message: str) -> None:
    with pytest.raises(ParseError, match=message):
        parse_summary(body, node="n", request_time_ns=5)


def test_error_excerpts_are_short() -> None:
    with pytest.raises(ParseError) as info:
        parse({"pods": "x" * 1000})
    assert len(str(info.value)) < 150
    assert str(info.value).endswith("...'")


def test_deeply_nested_values_in_errors() -> None:
    """orjson reads 1024 levels but writes only 254: the excerpt must not fail on such a value."""
    body = b'{"pods": [' + b"[" * 1000 + b"]" * 1000 + b"]}"
    with pytest.raises(
        ParseError, match=r"^\$\.pods\[0\]: expected an object, got a JSON list nested too deeply"
    ):
        parse_summary(body, node="n", request_time_ns=5)
    status = b'{"kind": "Status", "message": ' + b"[" * 1000 + b"]" * 1000 + b"}"
    with pytest.raises(KubeletError, match="nested too deeply"):
        parse_summary(status, node="n", request_time_ns=5)


def _measure() -> None:
    samples = Path(__file__).resolve().parents[2] / "data" / "kubelet-samples" / "summary"
    for name in ("nri-k8s-1.28-minikube-containerd-swap.json", "nri-k8s-1.35-minikube-containerd2.json"):
        body = (samples / name).read_bytes()
        runs = 200
        call = functools.partial(parse_summary, body, node="n", request_time_ns=5)
        best = min(timeit.repeat(call, number=runs, repeat=15))
        print(f"{name}: {len(body)} bytes: {best / runs * 1e3:.3f} ms per body (best of 15 x {runs})")


if __name__ == "__main__":
    _measure()
