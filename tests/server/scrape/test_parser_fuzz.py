"""Hypothesis fuzzing of both kubelet parsers (5,000 derandomized examples each).

Inputs mix kubelet-shaped lines / Summary documents with garbage and byte-level damage. Properties:
only ParseError or KubeletError ever escapes, and a returned batch satisfies the batch invariants
(plain ints in range, complete points, no empty pod, and no pod missing one of its containers
unless the kubelet reported that container as finished: CPU 0 and memory 0).
"""

from __future__ import annotations

import json
import random
import re
from collections.abc import Callable
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from metrics_server.scrape.batch import KubeletError, NodeBatch, ParseError, Point
from metrics_server.scrape.lines import parse_lines
from metrics_server.scrape.prometheus import parse_resource_metrics
from metrics_server.scrape.summary import parse_summary

FUZZ = settings(
    max_examples=5_000,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
REQ = 1_700_000_000_000_000_000
INT64 = 2**63

# --- shared invariants -------------------------------------------------------------------------------


def check_point(point: Point, *, node: bool) -> None:
    assert type(point) is Point
    for value in (point.timestamp_ns, point.cpu_ns, point.memory_bytes, point.start_time_ns):
        assert type(value) is int
        assert 0 <= value < INT64
    assert point.timestamp_ns > 0 and point.cpu_ns > 0 and point.memory_bytes > 0
    assert point.swap_bytes is None or (type(point.swap_bytes) is int and 0 <= point.swap_bytes < INT64)
    if node:
        assert point.start_time_ns == 0


def check_batch(
    batch: NodeBatch, present: dict[tuple[str, str], set[str]], finished: set[tuple[str, str, str]]
) -> None:
    """`present`: every container the input listed per pod; `finished`: those with a 0/0 sample."""
    assert type(batch) is NodeBatch and batch.node == "node-1"
    if batch.node_point is not None:
        check_point(batch.node_point, node=True)
    for (namespace, pod), containers in batch.pods.items():
        assert type(namespace) is str and namespace and type(pod) is str and pod
        assert containers, "a pod with no containers"
        for name, point in containers.items():
            assert type(name) is str and name and name != "POD"
            check_point(point, node=False)
        missing = present[(namespace, pod)] - containers.keys()
        assert all((namespace, pod, name) in finished for name in missing), (
            f"pod missing containers {missing}"
        )


# --- /metrics/resource --------------------------------------------------------------------------------

NAMES = [
    "container_cpu_usage_seconds_total",
    "container_memory_working_set_bytes",
    "container_start_time_seconds",
    "container_swap_usage_bytes",
    "container_cpu_usage_seconds",
    "node_cpu_usage_seconds_total",
    "node_memory_working_set_bytes",
    "node_swap_usage_bytes",
    "node_cpu_usage_seconds",
    "pod_cpu_usage_seconds_total",
    "scrape_error",
    "resource_scrape_error",
    "container_memory_commit_bytes",
    "x",
]


def line_pool(size: int = 3_000) -> tuple[str, ...]:
    """Kubelet-shaped sample lines, most valid, one in six with an odd or broken part; half of the
    entries are a container's CPU and memory lines together (so that bodies often hold whole pods).

    Built once from a fixed seed: drawing whole entries from a pool keeps each example to a few draws.
    """
    rng = random.Random(20_240_601)
    values = [
        "1",
        "4.710169",
        "1.253376e+07",
        "994631.562157",
        "1.7506078418297591e+09",
        "0.5",
        "0",
        "495616",
    ]
    defects: dict[str, list[str]] = {
        "name": NAMES,
        "label": ["", "POD", 'a"b', "a\\b", "x\ny", "é", "{}", "a,b=c", " ", "ns"],
        "value": [
            "1.8446743709127774e+19",
            "NaN",
            "+Inf",
            "-Inf",
            "-1",
            "-6.7953645788713455e+09",
            "1e-300",
            "9223372036.854775807",
            "1_0",
            "0x1p3",
            "inf",
            "",
            "abc",
            "1e",
            "\u0663",
            "1e999",
            "-0",
        ],
        "stamp": ["0", "-62135596800000", "9223372036854775807", "99999999999999999999", "1.5", "x", "1_000"],
        "shape": ["shuffle", "extra", "missing", "repeat", "spaces", "tab", "comma", "unescaped"],
    }

    def line(name: str, labels: list[tuple[str, str]]) -> str:
        value = rng.choice(values)
        stamp = rng.choice(["", "1633253812125", "1633253812126"])
        sep, space, end, escape = ",", " ", "", True
        defect = rng.choice(list(defects)) if rng.random() < 1 / 6 else None
        choice = rng.choice(defects[defect]) if defect else ""
        if defect == "name":
            name = choice
        elif defect == "label":
            i = rng.randrange(3)
            labels = [*labels[:i], (labels[i][0], choice), *labels[i + 1 :]]
        elif defect == "value":
            value = choice
        elif defect == "stamp":
            stamp = choice
        elif choice == "shuffle":
            labels = rng.sample(labels, len(labels))
        elif choice == "extra":
            labels = [*labels, ("extra", "x")]
        elif choice == "missing":
            labels = labels[:2]
        elif choice == "repeat":
            labels = [*labels, labels[0]]
        elif choice == "spaces":
            sep, space = ", ", "  "
        elif choice == "tab":
            space = "\t"
        elif choice == "comma":
            end = ","
        elif choice == "unescaped":
            escape = False
        if escape:
            labels = [
                (k, v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")) for k, v in labels
            ]
        body = sep.join(f'{k}="{v}"' for k, v in labels) + end
        head = name if name.startswith(("node", "scrape", "resource")) else f"{name}{{{body}}}"
        return f"{head}{space}{value}" + (f" {stamp}" if stamp else "")

    entries = []
    for _ in range(size):
        labels = [("container", rng.choice("ccd")), ("namespace", "ns"), ("pod", rng.choice("ppq"))]
        kind = rng.randrange(4)
        if kind < 2:
            entries.append(
                line("container_cpu_usage_seconds_total", labels)
                + "\n"
                + line("container_memory_working_set_bytes", labels)
            )
        elif kind == 2:
            entries.append(line(rng.choice(NAMES), labels))
        else:
            entries.append(
                line(rng.choice(["node_cpu_usage_seconds_total", "node_memory_working_set_bytes"]), labels)
            )
    return tuple(entries)


def junk_pool(size: int = 200) -> tuple[str, ...]:
    rng = random.Random(7)
    alphabet = 'abcde_{}",=\\ \t#\r019.+-eE:é\x00'
    return tuple("".join(rng.choice(alphabet) for _ in range(rng.randrange(1, 40))) for _ in range(size))


OTHER = ("", "", "# HELP x [STABLE] y", "# TYPE x counter", "  ", "scrape_error 1", "scrape_error 0")
# About one line in 22 is junk, one in 40 blank or a comment; the rest come from the sample pool.
LINES = st.sampled_from(line_pool() + OTHER * 15 + junk_pool())


# Hypothesis spreads its choices over the options rather than by their count in a list, so how
# often an input is damaged (or a document clean) is decided with a seeded random.Random it draws.
DICE = st.randoms(use_true_random=True)


@st.composite
def text_bodies(draw: st.DrawFn) -> bytes:
    lines = draw(st.lists(LINES, max_size=8))
    dice = draw(DICE)
    body = dice.choice(["\n", "\r\n"]).join(lines).encode("utf-8", "surrogatepass")
    damage = dice.random()
    if damage < 0.06 and body:
        body = body[: dice.randrange(len(body))]
    elif damage < 0.12:
        body += dice.randbytes(dice.randrange(1, 8))
    elif damage < 0.18:
        body = (
            dice.choice([b"An error has occurred while serving metrics:\n", b"\xef\xbb\xbf", b"\xff"]) + body
        )
    return body


TEXT_LINE = re.compile(
    r'container_(?:cpu_usage_seconds(?:_total)?|memory_working_set_bytes|start_time_seconds|swap_usage_bytes)\{container="([^"\\]*)",namespace="([^"\\]*)",pod="([^"\\]*)"\}\s+(\S+)'
)


def text_oracle(body: bytes) -> tuple[dict[tuple[str, str], set[str]], set[tuple[str, str, str]]]:
    """Containers the body lists per pod, and those with a CPU-0 and a memory-0 sample.

    Only canonical label sets are recognised here, so `present` may miss exotic ones: the check is
    then weaker, never wrong. Pods it does not know get an empty set (nothing to miss).
    """
    present: dict[tuple[str, str], set[str]] = {}
    zero_cpu: set[tuple[str, str, str]] = set()
    zero_mem: set[tuple[str, str, str]] = set()
    for line in body.decode("utf-8", "replace").replace("\r\n", "\n").split("\n"):
        m = TEXT_LINE.match(line)
        if m is None or "\\" in line:
            continue
        container, namespace, pod, value = m.groups()
        if container in ("", "POD"):
            continue
        present.setdefault((namespace, pod), set()).add(container)
        try:
            v = float(value)
        except ValueError:
            continue
        # Zero once converted: CPU rounds to the nanosecond, bytes truncate.
        if line.startswith("container_cpu") and 0.0 <= v < 5e-10:
            zero_cpu.add((namespace, pod, container))
        if line.startswith("container_memory") and 0.0 <= v < 1.0:
            zero_mem.add((namespace, pod, container))
    return _Defaulting(present), zero_cpu & zero_mem


class _Defaulting(dict[tuple[str, str], set[str]]):
    def __missing__(self, key: tuple[str, str]) -> set[str]:
        return set()


@FUZZ
@given(text_bodies())
def test_resource_parser_only_raises_scrape_errors_and_keeps_invariants(body: bytes) -> None:
    try:
        batch = parse_resource_metrics(body, node="node-1", request_time_ns=REQ)
    except (ParseError, KubeletError) as exc:
        assert str(exc)
        return
    check_batch(batch, *text_oracle(body))


# The whole-body fast path (`canonical.parse_canonical`) must give what the exact line parser gives, for
# any body it accepts. These bodies are kubelet-shaped families (comment lines, then samples) whose
# lines come from the same pool, so most are canonical and some carry one defect.
HEADERS = ("", "# TYPE x counter", "# HELP x [STABLE] y\n# TYPE x gauge", "#")
FAMILY_LINES = st.sampled_from(line_pool())


@st.composite
def family_bodies(draw: st.DrawFn) -> bytes:
    family = st.tuples(st.sampled_from(HEADERS), st.lists(FAMILY_LINES, max_size=5))
    families = draw(st.lists(family, max_size=5))
    lines: list[str] = []
    for header, samples in families:
        lines += [header, *samples] if header else samples
    dice = draw(DICE)
    if lines and dice.random() < 0.2:
        i = dice.randrange(len(lines))
        lines[i] = dice.choice(junk_pool() + OTHER)
    return ("\n".join(lines) + dice.choice(["\n", "", "\n\n"])).encode("utf-8", "surrogatepass")


def outcome(parse: Callable[..., NodeBatch], body: bytes) -> NodeBatch | tuple[type, str]:
    try:
        return parse(body, node="node-1", request_time_ns=REQ)
    except (ParseError, KubeletError) as exc:
        return type(exc), str(exc)


@settings(FUZZ, max_examples=3_000)
@given(family_bodies())
def test_resource_fast_path_equals_the_exact_parser(body: bytes) -> None:
    assert outcome(parse_resource_metrics, body) == outcome(parse_lines, body)


# --- /stats/summary ------------------------------------------------------------------------------------


def summary_pools(size: int = 1_500) -> tuple[tuple[Any, ...], tuple[Any, ...]]:
    """Clean Summary parts (every field read has the right JSON type; values still odd: zeros,
    nulls, 2^63, old or far dates), built once from a fixed seed: (containers, nodes)."""
    rng = random.Random(1_15)
    times = ["2023-11-10T06:20:52Z", "2023-11-10T06:20:53Z", "2023-11-10T06:18:00.5+01:00"] * 4 + [
        "0001-01-01T00:00:00Z",
        "2262-04-12T00:00:00Z",
        "1969-12-31T23:59:59Z",
        None,
    ]

    def number() -> int | None:
        if rng.random() < 0.75:
            return rng.randrange(1, 2**40)
        return rng.choice([0, 0, 0, 2**63 - 1, 2**63, 2**64 - 1, None])

    def block(field: str) -> dict[str, Any] | None:
        if rng.random() < 0.1:
            return None
        stats = {"time": rng.choice(times), field: number()}
        if rng.random() < 0.1:
            del stats[rng.choice(["time", field])]
        return stats

    containers = []
    for _ in range(size):
        c: dict[str, Any] = {"name": rng.choice(["c", "c", "d", "d", "e", "POD", ""])}
        for key, field in (
            ("cpu", "usageCoreNanoSeconds"),
            ("memory", "workingSetBytes"),
            ("swap", "swapUsageBytes"),
        ):
            if key != "swap" or rng.random() < 0.3:
                c[key] = block(field)
        if rng.random() < 0.8:
            c["startTime"] = rng.choice(times)
        containers.append(c)
    nodes = []
    for _ in range(size // 10):
        when = rng.choice(times)
        nodes.append(
            {
                "cpu": {"time": when, "usageCoreNanoSeconds": rng.randrange(1, 2**40)},
                "memory": {"time": when, "workingSetBytes": rng.randrange(1, 2**40)},
                "swap": block("swapUsageBytes"),
            }
        )
    return tuple(containers), tuple(nodes)


CONTAINERS, NODES = summary_pools()
CLEAN_DOCS = st.fixed_dictionaries(
    {
        "node": st.one_of(st.sampled_from(NODES), st.none()),
        "pods": st.lists(
            st.fixed_dictionaries(
                {
                    "podRef": st.fixed_dictionaries(
                        {
                            "name": st.sampled_from(["p", "q"]),
                            "namespace": st.sampled_from(["ns", "kube-system"]),
                        }
                    ),
                    "containers": st.lists(st.sampled_from(CONTAINERS), min_size=1, max_size=3),
                }
            ),
            min_size=1,
            max_size=4,
        ),
    }
)


def messy_docs() -> st.SearchStrategy[Any]:
    """Anything anywhere: wrong JSON types, missing parts, Status objects, bare scalars."""
    deep: Any = []
    for _ in range(300):  # deeper than orjson writes (254), shallower than it reads (1024)
        deep = [deep]
    scalars = st.one_of(
        st.none(), st.booleans(), st.integers(-3, 3), st.text(max_size=3), st.just(1.5), st.just(deep)
    )
    times = st.one_of(
        st.sampled_from(["2023-11-10T06:20:52Z", "2023-02-30T00:00:00Z", "2023-11-10 06:20", ""]), scalars
    )
    numbers = st.one_of(st.integers(0, 2**40), st.integers(-5, -1), scalars)

    def block(field: str) -> st.SearchStrategy[Any]:
        return st.one_of(st.fixed_dictionaries({}, optional={"time": times, field: numbers}), scalars)

    refs = st.one_of(
        st.fixed_dictionaries(
            {},
            optional={
                "name": st.one_of(st.just("p"), scalars),
                "namespace": st.one_of(st.just("ns"), scalars),
            },
        ),
        scalars,
    )
    container = st.fixed_dictionaries(
        {"name": st.one_of(st.sampled_from(["c", "d", "POD", ""]), scalars)},
        optional={
            "startTime": times,
            "cpu": block("usageCoreNanoSeconds"),
            "memory": block("workingSetBytes"),
            "swap": block("swapUsageBytes"),
        },
    )
    pod = st.fixed_dictionaries(
        {"podRef": refs}, optional={"containers": st.one_of(st.lists(container, max_size=3), scalars)}
    )
    node = st.fixed_dictionaries(
        {},
        optional={"cpu": block("usageCoreNanoSeconds"), "memory": block("workingSetBytes"), "swap": scalars},
    )
    return st.one_of(
        st.fixed_dictionaries(
            {},
            optional={
                "node": st.one_of(node, scalars),
                "pods": st.one_of(st.lists(pod, max_size=3), scalars),
            },
        ),
        st.fixed_dictionaries({"kind": st.just("Status"), "message": scalars}),
        scalars,
        st.lists(scalars, max_size=3),
    )


MESSY_DOCS = messy_docs()


@st.composite
def summary_bodies(draw: st.DrawFn) -> tuple[bytes, Any]:
    """(body, the document when the body is undamaged JSON of it, else None)."""
    dice = draw(DICE)
    doc = draw(CLEAN_DOCS if dice.random() < 0.7 else MESSY_DOCS)
    body = json.dumps(doc).encode()
    damage = dice.random()
    if damage < 0.08 and body:
        body = body[: dice.randrange(len(body))]
    elif damage < 0.16 and body:
        i = dice.randrange(len(body))
        body = body[:i] + bytes([dice.randrange(256)]) + body[i + 1 :]
    return body, doc if damage >= 0.16 else None


def summary_oracle(doc: Any) -> tuple[dict[tuple[str, str], set[str]], set[tuple[str, str, str]]]:
    """Containers the document lists per pod, and those with a CPU-0 and a memory-0 entry."""
    present: dict[tuple[str, str], set[str]] = _Defaulting()
    zero_cpu: set[tuple[str, str, str]] = set()
    zero_mem: set[tuple[str, str, str]] = set()
    if doc is None:
        return present, set()  # a damaged body: the invariants only
    for pod in doc.get("pods") or []:
        key = (pod["podRef"]["namespace"], pod["podRef"]["name"])
        for c in pod.get("containers") or []:
            if c["name"] in ("", "POD"):
                continue
            present.setdefault(key, set()).add(c["name"])
            if (c.get("cpu") or {}).get("usageCoreNanoSeconds") == 0:
                zero_cpu.add((*key, c["name"]))
            if (c.get("memory") or {}).get("workingSetBytes") == 0:
                zero_mem.add((*key, c["name"]))
    return present, zero_cpu & zero_mem


@FUZZ
@given(summary_bodies())
def test_summary_parser_only_raises_scrape_errors_and_keeps_invariants(case: tuple[bytes, Any]) -> None:
    body, doc = case
    try:
        batch = parse_summary(body, node="node-1", request_time_ns=REQ)
    except (ParseError, KubeletError) as exc:
        assert str(exc)
        return
    check_batch(batch, *summary_oracle(doc))
