"""Unit tests for the `/metrics/resource` text parser: one test per rule, exact expected batches.

Its speed: `python -m bench.micro.parse`.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from metrics_server.scrape.batch import KubeletError, NodeBatch, ParseError, Point
from metrics_server.scrape.canonical import parse_canonical
from metrics_server.scrape.lines import parse_lines
from metrics_server.scrape.prometheus import parse_resource_metrics

SAMPLES = Path(__file__).resolve().parents[2] / "data" / "kubelet-samples" / "resource"
REQ = 1_700_000_000_000_000_000  # request time (ns) used where a sample has no timestamp
TS = 1_633_253_812_125  # a millisecond timestamp
TS_NS = TS * 1_000_000


def parse(text: str, request_time_ns: int = REQ) -> NodeBatch:
    return parse_resource_metrics(text.encode(), node="node-1", request_time_ns=request_time_ns)


def container(
    name: str, cpu: str, mem: str, *, pod: str = "p", ns: str = "ns", ts: int | None = TS, extra: str = ""
) -> str:
    """The two lines the kubelet writes for one container (CPU and working set)."""
    stamp = "" if ts is None else f" {ts}"
    labels = f'container="{name}",namespace="{ns}",pod="{pod}"{extra}'
    return (
        f"container_cpu_usage_seconds_total{{{labels}}} {cpu}{stamp}\n"
        f"container_memory_working_set_bytes{{{labels}}} {mem}{stamp}\n"
    )


NODE = f"node_cpu_usage_seconds_total 357.35491 {TS}\nnode_memory_working_set_bytes 1.616273408e+09 {TS}\n"
NODE_POINT = Point(TS_NS, 357_354_910_000, 1_616_273_408)


# --- accepted syntax -------------------------------------------------------------------------


def test_canonical_body() -> None:
    batch = parse(NODE + container("c", "4.710169", "1.253376e+07"))
    assert batch == NodeBatch(
        node="node-1",
        node_point=NODE_POINT,
        pods={("ns", "p"): {"c": Point(TS_NS, 4_710_169_000, 12_533_760)}},
    )


def test_help_type_comments_blank_lines_and_crlf() -> None:
    text = (
        "# HELP node_cpu_usage_seconds_total [STABLE] Cumulative cpu time consumed by the node\r\n"
        "# TYPE node_cpu_usage_seconds_total counter\r\n"
        "\r\n"
        '# any other comment, even with {braces} and "quotes" and \\ backslashes\r\n'
        f"node_cpu_usage_seconds_total 357.35491 {TS}\r\n"
        "   \r\n"
        "  # indented comment\r\n"
        f"node_memory_working_set_bytes 1.616273408e+09 {TS}\r\n"
    )
    assert parse(text).node_point == NODE_POINT


def test_alpha_and_stable_help_and_v1alpha1_gauge_types_parse_alike() -> None:
    alpha = NODE.replace("\n", "\n# TYPE x gauge\n# HELP x [ALPHA] y\n")
    assert parse(alpha).node_point == parse(NODE).node_point == NODE_POINT


def test_old_names_without_total() -> None:
    """1.18.0's `node_cpu_usage_seconds` / `container_cpu_usage_seconds` (k8s PR #89540 renamed them)."""
    text = (
        f"node_cpu_usage_seconds 357.35491 {TS}\nnode_memory_working_set_bytes 1.616273408e+09 {TS}\n"
        f'container_cpu_usage_seconds{{container="c",namespace="ns",pod="p"}} 1.5 {TS}\n'
        f'container_memory_working_set_bytes{{container="c",namespace="ns",pod="p"}} 100 {TS}\n'
    )
    batch = parse(text)
    assert batch.node_point == NODE_POINT
    assert batch.pods == {("ns", "p"): {"c": Point(TS_NS, 1_500_000_000, 100)}}


def test_label_order_and_extra_labels_are_irrelevant() -> None:
    text = (
        f'container_cpu_usage_seconds_total{{pod="p",extra="x",namespace="ns",container="c"}} 2 {TS}\n'
        f'container_memory_working_set_bytes{{namespace="ns", pod="p" ,container="c",}} 3 {TS}\n'
    )
    assert parse(text).pods == {("ns", "p"): {"c": Point(TS_NS, 2_000_000_000, 3)}}


def test_escaped_label_values_take_the_exact_path() -> None:
    text = (
        f'container_cpu_usage_seconds_total{{container="a\\"b",namespace="n\\\\s",pod="p\\nq"}} 2 {TS}\n'
        f'container_memory_working_set_bytes{{container="a\\"b",namespace="n\\\\s",pod="p\\nq"}} 3 {TS}\n'
    )
    assert parse(text).pods == {("n\\s", "p\nq"): {'a"b': Point(TS_NS, 2_000_000_000, 3)}}


def test_label_values_with_separators_and_non_ascii() -> None:
    weird = 'a,b=c} {d "'.replace('"', "")
    text = container(weird, "1", "2", pod="nginx-proxy-10.56.229.90", ns="näme")
    assert parse(text).pods == {("näme", "nginx-proxy-10.56.229.90"): {weird: Point(TS_NS, 10**9, 2)}}


def test_tabs_and_extra_spaces_take_the_exact_path() -> None:
    text = (
        f"node_cpu_usage_seconds_total\t357.35491\t{TS}  \n"
        f"node_memory_working_set_bytes  1.616273408e+09   {TS}\n"
    )
    assert parse(text).node_point == NODE_POINT


def test_value_forms() -> None:
    """Go float64 shortest form, with and without exponent, integer and `+` signs."""
    text = (
        NODE
        + container("a", "1e+00", "4.2E3")
        + container("b", "+0.5", "495616")
        + container("c", ".25", "1e1")
    )
    assert parse(text).pods == {
        ("ns", "p"): {
            "a": Point(TS_NS, 1_000_000_000, 4200),
            "b": Point(TS_NS, 500_000_000, 495_616),
            "c": Point(TS_NS, 250_000_000, 10),
        }
    }


def test_cpu_rounding_is_to_the_nearest_nanosecond() -> None:
    # 1.027602 * 1e9 == 1027601999.9999999 in float64: truncation (metrics-server) would lose 1 ns.
    assert 1.027602 * 1e9 < 1_027_602_000
    assert parse(container("c", "1.027602", "1")).pods[("ns", "p")]["c"].cpu_ns == 1_027_602_000


def test_large_counters() -> None:
    text = container("a", "994631.562157", "3.92847388672e+11") + container("b", "187944.3032901", "1")
    assert parse(text).pods == {
        ("ns", "p"): {
            "a": Point(TS_NS, 994_631_562_157_000, 392_847_388_672),
            "b": Point(TS_NS, 187_944_303_290_100, 1),
        }
    }


def test_bytes_are_truncated_like_metrics_server() -> None:
    assert parse(container("c", "1", "99.9")).pods[("ns", "p")]["c"].memory_bytes == 99


# --- timestamps --------------------------------------------------------------------------------


def test_missing_timestamps_use_the_request_time() -> None:
    text = "node_cpu_usage_seconds_total 1\nnode_memory_working_set_bytes 2\n" + container(
        "c", "3", "4", ts=None
    )
    batch = parse(text, request_time_ns=123_456_789)
    assert batch.node_point == Point(123_456_789, 10**9, 2)
    assert batch.pods == {("ns", "p"): {"c": Point(123_456_789, 3 * 10**9, 4)}}


def test_point_timestamp_is_the_cpu_samples() -> None:
    text = (
        f"node_cpu_usage_seconds_total 1 {TS}\nnode_memory_working_set_bytes 2 {TS + 7}\n"
        f'container_memory_working_set_bytes{{container="c",namespace="ns",pod="p"}} 4 {TS + 5}\n'
        f'container_cpu_usage_seconds_total{{container="c",namespace="ns",pod="p"}} 3 {TS}\n'
    )
    batch = parse(text)
    assert batch.node_point == Point(TS_NS, 10**9, 2)
    assert batch.pods == {("ns", "p"): {"c": Point(TS_NS, 3 * 10**9, 4)}}


@pytest.mark.parametrize("ts", ["0", "-62135596800000", "9223372036854776"])
def test_unusable_cpu_timestamp_drops_node_and_pod(ts: str) -> None:
    text = (
        f"node_cpu_usage_seconds_total 1 {ts}\nnode_memory_working_set_bytes 2 {TS}\n"
        f'container_cpu_usage_seconds_total{{container="c",namespace="ns",pod="p"}} 3 {ts}\n'
        f'container_memory_working_set_bytes{{container="c",namespace="ns",pod="p"}} 4 {TS}\n'
        + container("c", "5", "6", pod="other")
    )
    assert parse(text) == NodeBatch("node-1", None, {("ns", "other"): {"c": Point(TS_NS, 5 * 10**9, 6)}})


def test_unusable_memory_timestamp_does_not_matter() -> None:
    text = (
        f'container_cpu_usage_seconds_total{{container="c",namespace="ns",pod="p"}} 3 {TS}\n'
        f'container_memory_working_set_bytes{{container="c",namespace="ns",pod="p"}} 4 -5\n'
    )
    assert parse(text).pods == {("ns", "p"): {"c": Point(TS_NS, 3 * 10**9, 4)}}


# --- start times and swap ----------------------------------------------------------------------


def test_start_time_value_is_used_and_its_timestamp_ignored() -> None:
    text = container("c", "1", "2") + (
        'container_start_time_seconds{container="c",namespace="ns",pod="p"} 1.6243962483020916e+09 5\n'
    )
    point = parse(text).pods[("ns", "p")]["c"]
    assert point.start_time_ns == round(1.6243962483020916e09 * 1e9) == 1_624_396_248_302_091_520


@pytest.mark.parametrize("value", ["0", "-6.7953645788713455e+09", "NaN", "+Inf", "-Inf"])
def test_start_times_not_above_zero_are_ignored(value: str) -> None:
    text = container("c", "1", "2") + (
        f'container_start_time_seconds{{container="c",namespace="ns",pod="p"}} {value} -62135596800000\n'
    )
    assert parse(text).pods == {("ns", "p"): {"c": Point(TS_NS, 10**9, 2, 0)}}


def test_swap_node_and_container() -> None:
    text = (
        NODE
        + f"node_swap_usage_bytes 3.4340864e+07 {TS}\n"
        + container("c", "1", "2")
        + f'container_swap_usage_bytes{{container="c",namespace="ns",pod="p"}} 0 {TS}\n'
        + container("d", "1", "2")
        + f'pod_swap_usage_bytes{{namespace="ns",pod="p"}} 1.024e+06 {TS}\n'
    )
    batch = parse(text)
    assert batch.node_point == NODE_POINT._replace(swap_bytes=34_340_864)
    assert batch.pods == {("ns", "p"): {"c": Point(TS_NS, 10**9, 2, 0, 0), "d": Point(TS_NS, 10**9, 2)}}


@pytest.mark.parametrize("value", ["1.8446743709127774e+19", "9.223372036854775808e18", "NaN", "+Inf", "-1"])
def test_unusable_swap_is_none_and_keeps_the_point(value: str) -> None:
    text = (
        NODE
        + f"node_swap_usage_bytes {value} {TS}\n"
        + container("c", "1", "2")
        + f'container_swap_usage_bytes{{container="c",namespace="ns",pod="p"}} {value} {TS}\n'
    )
    batch = parse(text)
    assert batch.node_point == NODE_POINT
    assert batch.pods == {("ns", "p"): {"c": Point(TS_NS, 10**9, 2)}}


def test_largest_usable_swap() -> None:
    text = NODE + "node_swap_usage_bytes 9.223372036854775e18\n"  # the float just below 2^63
    assert parse(text).node_point == NODE_POINT._replace(swap_bytes=2**63 - 1024)


# --- dropping rules (metrics-server decode.go, plus the finished-container exception) ------------


@pytest.mark.parametrize(
    "node_lines",
    [
        f"node_cpu_usage_seconds_total 0 {TS}\nnode_memory_working_set_bytes 1 {TS}\n",
        f"node_cpu_usage_seconds_total 1 {TS}\nnode_memory_working_set_bytes 0 {TS}\n",
        f"node_cpu_usage_seconds_total 1 {TS}\n",
        f"node_memory_working_set_bytes 1 {TS}\n",
        f"node_cpu_usage_seconds_total NaN {TS}\nnode_memory_working_set_bytes 1 {TS}\n",
        f"node_cpu_usage_seconds_total 1 {TS}\nnode_memory_working_set_bytes +Inf {TS}\n",
        f"node_cpu_usage_seconds_total -1 {TS}\nnode_memory_working_set_bytes 1 {TS}\n",
        f"node_cpu_usage_seconds_total 1e10 {TS}\nnode_memory_working_set_bytes 1 {TS}\n",
        f"node_cpu_usage_seconds_total 1 {TS}\nnode_memory_working_set_bytes 1e19 {TS}\n",
    ],
)
def test_incomplete_node_point_is_dropped(node_lines: str) -> None:
    assert parse(node_lines + container("c", "1", "2")) == NodeBatch(
        "node-1", None, {("ns", "p"): {"c": Point(TS_NS, 10**9, 2)}}
    )


def test_largest_usable_values() -> None:
    text = (
        f"node_cpu_usage_seconds_total 9223372036.854 {TS}\n"
        f"node_memory_working_set_bytes 9.223372036854775e18 {TS}\n"
    )
    assert parse(text).node_point == Point(TS_NS, round(9223372036.854 * 1e9), 2**63 - 1024)
    assert round(9223372036.854 * 1e9) < 2**63


@pytest.mark.parametrize(
    "bad_container",
    [
        container("bad", "0", "2"),
        container("bad", "1", "0"),
        container("bad", "NaN", "2"),
        container("bad", "1", "-Inf"),
        container("bad", "-0.5", "2"),
        container("bad", "1", "-1"),
        container("bad", "1", "2").split("\n")[0] + "\n",  # CPU only
        container("bad", "1", "2").split("\n")[1] + "\n",  # memory only
        'container_start_time_seconds{container="bad",namespace="ns",pod="p"} 1.6e9\n',  # nil stats
        f'container_swap_usage_bytes{{container="bad",namespace="ns",pod="p"}} 5 {TS}\n',
    ],
)
def test_a_pod_with_an_incomplete_container_is_left_out(bad_container: str) -> None:
    text = NODE + container("good", "1", "2") + bad_container + container("c", "3", "4", pod="other")
    assert parse(text) == NodeBatch(
        "node-1", NODE_POINT, {("ns", "other"): {"c": Point(TS_NS, 3 * 10**9, 4)}}
    )


def test_finished_container_with_zero_cpu_and_memory_is_left_out_of_its_pod() -> None:
    """Windows reports terminated init containers with CPU and working set exactly 0."""
    text = container("init", "0", "0") + container("app", "1", "2")
    assert parse(text).pods == {("ns", "p"): {"app": Point(TS_NS, 10**9, 2)}}


def test_a_pod_of_only_finished_containers_is_omitted() -> None:
    assert parse(NODE + container("init", "0", "0")) == NodeBatch("node-1", NODE_POINT, {})


def test_sandbox_and_empty_container_names_are_ignored() -> None:
    text = container("POD", "0", "0") + container("", "1", "0") + container("c", "1", "2")
    assert parse(text).pods == {("ns", "p"): {"c": Point(TS_NS, 10**9, 2)}}


def test_other_families_are_ignored() -> None:
    text = (
        NODE
        + f"node_memory_commit_bytes 2000 {TS}\n"
        + f'pod_cpu_usage_seconds_total{{namespace="ns",pod="p"}} 99 {TS}\n'
        + f'pod_memory_working_set_bytes{{namespace="ns",pod="p"}} 0 {TS}\n'
        + f'container_memory_commit_bytes{{container="c",namespace="ns",pod="p"}} 0 {TS}\n'
        + f'container_swap_limit_bytes{{container="c",namespace="ns",pod="p"}} 0 {TS}\n'
        + f'container_cpu_usage_seconds_total_other{{container="x",namespace="ns",pod="p"}} 0 {TS}\n'
        + container("c", "1", "2")
    )
    assert parse(text) == NodeBatch("node-1", NODE_POINT, {("ns", "p"): {"c": Point(TS_NS, 10**9, 2)}})


# --- duplicates ----------------------------------------------------------------------------------


def test_duplicate_series_keep_the_newest_sample_per_family() -> None:
    text = (
        container("c", "994631.562157", "5.690306969e+10", ts=TS)
        + container("c", "295207.606798", "3.3157259264e+10", ts=TS + 121)
        + f'container_cpu_usage_seconds_total{{container="c",namespace="ns",pod="p"}} 7 {TS - 1}\n'
    )
    assert parse(text).pods == {
        ("ns", "p"): {"c": Point((TS + 121) * 1_000_000, 295_207_606_798_000, 33_157_259_264)}
    }


def test_duplicate_series_with_equal_timestamps_keep_the_larger_value_in_any_order() -> None:
    a = container("c", "1", "20") + "node_cpu_usage_seconds_total 5\nnode_memory_working_set_bytes 6\n"
    b = container("c", "2", "10") + "node_cpu_usage_seconds_total 4\nnode_memory_working_set_bytes 7\n"
    start = 'container_start_time_seconds{{container="c",namespace="ns",pod="p"}} {}\n'
    s1, s2 = start.format("1.7691949565992033e+09"), start.format("1.7691949565992032e+09")
    expected = NodeBatch(
        "node-1",
        Point(REQ, 5 * 10**9, 7),
        {("ns", "p"): {"c": Point(TS_NS, 2 * 10**9, 20, round(1.7691949565992033e09 * 1e9))}},
    )
    assert parse(a + s1 + b + s2) == expected
    assert parse(s2 + b + s1 + a) == expected


def test_an_unusable_duplicate_loses_a_tie_and_a_newer_one_wins() -> None:
    assert (
        parse(container("c", "NaN", "1") + container("c", "2", "1")).pods[("ns", "p")]["c"].cpu_ns
        == 2 * 10**9
    )
    text = container("c", "2", "1") + container("c", "NaN", "1", ts=TS + 1)
    assert parse(text).pods == {}


# --- errors --------------------------------------------------------------------------------------


def test_scrape_error_with_nothing_usable_is_a_kubelet_error() -> None:
    with pytest.raises(KubeletError, match="scrape_error"):
        parse("scrape_error 1\nresource_scrape_error 1\n")
    with pytest.raises(KubeletError):
        parse("resource_scrape_error 1\n" + container("c", "0", "1"))


def test_scrape_error_with_usable_samples_returns_them() -> None:
    assert parse("resource_scrape_error 1\n" + NODE) == NodeBatch("node-1", NODE_POINT, {})


def test_scrape_error_zero_and_empty_bodies_are_empty_batches() -> None:
    assert parse("scrape_error 0\nresource_scrape_error 0\n") == NodeBatch("node-1")
    assert parse("") == NodeBatch("node-1")


def test_client_library_error_page_is_a_kubelet_error() -> None:
    body = (
        "An error has occurred while serving metrics:\n\n"
        "2 error(s) occurred:\n"
        '* collected metric "x" was collected before with the same name and label values\n'
    )
    with pytest.raises(
        KubeletError, match=r"^kubelet served a metrics error page: ': 2 error\(s\) occurred: \* coll"
    ):
        parse(body)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("node_cpu_usage_seconds_total\n", r"^line 1: not a sample line .*: 'node_cpu_usage_seconds_total'$"),
        ("\n\nnode_cpu_usage_seconds_total abc 1\n", r"^line 3: malformed value 'abc'"),
        ("node_cpu_usage_seconds_total 1 1.5\n", r"^line 1: malformed timestamp '1.5'"),
        ("node_cpu_usage_seconds_total 1 2 3\n", r"^line 1: not a sample line"),
        ("node_cpu_usage_seconds_total 1_0\n", r"^line 1: malformed number"),
        ("node_cpu_usage_seconds_total ١\n", r"^line 1: malformed number"),
        ("0node 1\n", r"^line 1: not a sample line"),
        ('x{container="c" 1\n', r"^line 1: not a sample line"),
        ('x{container="c} 1\n', r"^line 1: not a sample line"),
        ("x{container=c} 1\n", r"^line 1: not a sample line"),
        ('x{1c="c"} 1\n', r"^line 1: not a sample line"),
        ('x{a="b",a="c"} 1\n', r"^line 1: label 'a' given twice"),
        ('x{a="\\q"} 1\n', r"^line 1: invalid escape sequence '\\\\q'"),
        ('x{a="b"}\n', r"^line 1: not a sample line"),
        (
            f'container_cpu_usage_seconds_total{{container="c",pod="p"}} 1 {TS}\n',
            r"without a 'namespace' label",
        ),
        ('container_cpu_usage_seconds_total{container="c",namespace="",pod="p"} 1\n', r"empty namespace"),
        ("container_cpu_usage_seconds_total 1\n", r"^line 1: a container series without a 'container' label"),
        (
            "container_cpu_usage_seconds_total{} 1\n",
            r"^line 1: a container series without a 'container' label",
        ),
        ('container_memory_working_set_bytes{namespace="ns",pod="p",container="c"', r"^line 1: not a sample"),
    ],
)
def test_malformed_lines(text: str, message: str) -> None:
    with pytest.raises(ParseError, match=message):
        parse(text)


def test_long_lines_are_cut_in_the_message() -> None:
    with pytest.raises(ParseError) as info:
        parse("x " + "y" * 500 + "\n")
    assert len(str(info.value)) < 250
    assert str(info.value).endswith("...'")


def test_not_utf8() -> None:
    with pytest.raises(ParseError, match=r"^line 2: not UTF-8 \(byte 8: invalid start byte\)$"):
        parse_resource_metrics(b"x 1 2\nx \xff\n", node="n", request_time_ns=REQ)


def test_nan_and_inf_values_parse_in_ignored_families() -> None:
    text = NODE + f'pod_cpu_usage_seconds_total{{namespace="ns",pod="p"}} NaN\nfoo +Inf {TS}\nbar -Inf\n'
    assert parse(text) == NodeBatch("node-1", NODE_POINT)


# --- speed measurement (run this file as a script) -----------------------------------------------


def synthetic_body(pods: int = 110, containers: int = 2) -> bytes:
    """A 1.29+-form body (GA families, start times without timestamps, pod totals), sorted like a kubelet."""
    base = 1_750_705_768_415
    names = [(f"namespace-{i % 7}", f"workload-{i:03d}-7d9f8b6c5d-x{i:04d}") for i in range(pods)]
    keys = sorted((f"container-{j}", ns, pod) for ns, pod in names for j in range(containers))
    lines: list[str] = []

    def family(name: str, kind: str, rows: list[str]) -> None:
        lines.append(f"# HELP {name} [STABLE] help text for {name}")
        lines.append(f"# TYPE {name} {kind}")
        lines.extend(rows)

    def labels(key: tuple[str, str, str]) -> str:
        return f'container="{key[0]}",namespace="{key[1]}",pod="{key[2]}"'

    family(
        "container_cpu_usage_seconds_total",
        "counter",
        [
            f"container_cpu_usage_seconds_total{{{labels(k)}}} {40 + i * 1.234567891:.9f} {base + i}"
            for i, k in enumerate(keys)
        ],
    )
    family(
        "container_memory_working_set_bytes",
        "gauge",
        [
            f"container_memory_working_set_bytes{{{labels(k)}}} {1.7391616e07 + i * 4096:.7e} {base + i}"
            for i, k in enumerate(keys)
        ],
    )
    family(
        "container_start_time_seconds",
        "gauge",
        [f"container_start_time_seconds{{{labels(k)}}} 1.7506078418297591e+09" for k in keys],
    )
    family("node_cpu_usage_seconds_total", "counter", [f"node_cpu_usage_seconds_total 6197.005020909 {base}"])
    family(
        "node_memory_working_set_bytes", "gauge", [f"node_memory_working_set_bytes 1.137475584e+09 {base}"]
    )
    pod_keys = sorted((ns, pod) for ns, pod in names)
    family(
        "pod_cpu_usage_seconds_total",
        "counter",
        [
            f'pod_cpu_usage_seconds_total{{namespace="{ns}",pod="{pod}"}} 184.599228293 {base}'
            for ns, pod in pod_keys
        ],
    )
    family(
        "pod_memory_working_set_bytes",
        "gauge",
        [
            f'pod_memory_working_set_bytes{{namespace="{ns}",pod="{pod}"}} 2.4911872e+07 {base}'
            for ns, pod in pod_keys
        ],
    )
    family("resource_scrape_error", "gauge", ["resource_scrape_error 0"])
    return ("\n".join(lines) + "\n").encode()


def test_synthetic_body_parses_completely() -> None:
    batch = parse_resource_metrics(synthetic_body(), node="n", request_time_ns=REQ)
    assert len(batch.pods) == 110
    assert all(len(c) == 2 for c in batch.pods.values())
    # The first series of each family: 40.000000000, 1.7391616e+07, 1.7506078418297591e+09.
    assert batch.pods[("namespace-0", "workload-000-7d9f8b6c5d-x0000")]["container-0"] == Point(
        1_750_705_768_415_000_000, 40_000_000_000, 17_391_616, 1_750_607_841_829_759_232
    )


def test_kubelet_bodies_take_the_fast_path_and_give_the_exact_result() -> None:
    """The whole-body fast path accepts real kubelet output (else it would never be used)."""
    for body in (SAMPLES.joinpath("metrics-server-kind-v1.21-70pods.txt").read_bytes(), synthetic_body()):
        fast = parse_canonical(body.decode("ascii"), "n", REQ)
        assert fast is not None
        assert fast == parse_lines(body, node="n", request_time_ns=REQ)
