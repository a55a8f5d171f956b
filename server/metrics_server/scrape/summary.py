"""Parse a kubelet `/stats/summary` body (JSON, Summary API v1alpha1) into a `NodeBatch`.

Read: `node.cpu.{usageCoreNanoSeconds,time}`, `node.memory.workingSetBytes`, `node.swap.swapUsageBytes`,
and for every `pods[]` (keyed by `podRef.namespace`/`podRef.name`; the UID is ignored, as in the text
form) every `containers[]` entry's `name`, `startTime`, `cpu`, `memory.workingSetBytes`,
`swap.swapUsageBytes` (and each block's `time`). Everything else (pod-level totals, network, fs,
PSI, ...) is skipped unread, so odd values there cannot fail a node.

The rules are the text form's (`assemble.assemble_batch`, explained in `assemble.py`), applied to
what the kubelet would have printed from this summary, so both endpoints give the same batch for
one kubelet state. In Summary terms:

* `Point.timestamp_ns` is `cpu.time`; a null or missing `time` (the Go zero time) makes the CPU
  sample unusable, which drops the node point or the pod. `memory.time` only orders duplicates.
* A container listed twice in a pod (docker on 1.15), or a pod listed twice (two UIDs, one name),
  is a duplicate series: the newest sample wins, per field, ties to the larger value.
* Finished containers (Windows init containers report CPU and memory as exactly 0) are left out of
  their pod; any other container entry with missing or zero CPU or memory leaves its pod out
  entirely (even one with no start time, which the text form would not list at all).
* Counters of 2^63 or more are unusable (as in the text form); node `startTime` is not used.
* Times are RFC 3339 with optional fractional seconds (kept to the nanosecond) and `Z` or `±hh:mm`.

Errors: `ParseError` for anything that is not JSON (orjson's message keeps its line/column), not
a Summary (an object with `node` or `pods`), or has a wrongly typed field among those read; the
message gives the JSON path (`$.pods[3].containers[0].cpu.time`) and an excerpt. A Kubernetes
`Status` object (what an error through the apiserver proxy looks like) is a `KubeletError`. No other
exception escapes, for any bytes.

Speed (CPython 3.11, one core of a busy 2-core machine): 0.26 ms for the 57 KB 1.28 capture (18 pods),
0.33 ms for the 93 KB 1.35 capture; orjson does most of the work. Command:
`.venv/bin/python tests/server/scrape/test_summary.py`.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Final

import orjson

from metrics_server.scrape.assemble import (
    INT64_LIMIT,
    ContainerKey,
    Sample,
    assemble_batch,
    excerpt,
)
from metrics_server.scrape.batch import KubeletError, NodeBatch, ParseError

_RFC3339: Final = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d+))?(?:Z|([+-])(\d\d):(\d\d))", re.ASCII
)
_EPOCH_ORDINAL: Final = datetime(1970, 1, 1).toordinal()
_UINT64_LIMIT: Final = 1 << 64


def _show(value: object) -> str:
    """A short excerpt of a decoded JSON value (never fails: no repr() of deep nesting)."""
    if type(value) is str:
        return excerpt(value)
    try:
        return excerpt(orjson.dumps(value).decode())
    except orjson.JSONEncodeError:  # orjson writes less nesting than it reads
        return f"a JSON {type(value).__name__} nested too deeply to show"


def _fail(path: str, what: str, value: object) -> ParseError:
    return ParseError(f"{path}: {what}, got {_show(value)}")


def _time_ns(text: str) -> int | None:
    """RFC 3339 -> ns since the epoch; None when malformed."""
    m = _RFC3339.fullmatch(text)
    if m is None:
        return None
    year, month, day, hour, minute, second = (int(m.group(i)) for i in range(1, 7))
    try:
        ordinal = datetime(year, month, day, hour, minute, second).toordinal()
    except ValueError:
        return None
    seconds = (ordinal - _EPOCH_ORDINAL) * 86400 + hour * 3600 + minute * 60 + second
    if m.group(8) is not None:
        off_h, off_m = int(m.group(9)), int(m.group(10))
        if off_h > 23 or off_m > 59:
            return None
        offset = off_h * 3600 + off_m * 60
        seconds -= offset if m.group(8) == "+" else -offset
    fraction = m.group(7)
    nanos = int(fraction[:9].ljust(9, "0")) if fraction else 0
    return seconds * 1_000_000_000 + nanos


class _Reader:
    """One body's walk: keeps a cache of parsed time strings (they repeat a lot)."""

    __slots__ = ("times",)

    def __init__(self) -> None:
        self.times: dict[str, int] = {}

    def time(self, value: object, path: str) -> int:
        """A `time`/`startTime` field -> ns since the epoch; 0 for null or outside (0, 2^63)."""
        if value is None:
            return 0
        if type(value) is not str:
            raise _fail(path, "expected an RFC 3339 time string or null", value)
        ns = self.times.get(value)
        if ns is None:
            parsed = _time_ns(value)
            if parsed is None:
                raise _fail(path, "malformed RFC 3339 time", value)
            ns = self.times[value] = parsed if 0 < parsed < INT64_LIMIT else 0
        return ns

    def sample(self, block: object, field: str, path: str) -> Sample | None:
        """`{time, <field>}` -> (time ns, value); None when the block or the field is absent."""
        if block is None:
            return None
        if type(block) is not dict:
            raise _fail(path, "expected an object or null", block)
        value = block.get(field)
        if value is None:
            return None
        if type(value) is not int or not 0 <= value < _UINT64_LIMIT:
            raise _fail(f"{path}.{field}", "expected an unsigned 64-bit integer", value)
        return self.time(block.get("time"), f"{path}.time"), value if value < INT64_LIMIT else -1


def _keep(samples: dict[ContainerKey, Sample], key: ContainerKey, sample: Sample | None) -> None:
    """Keep the newer of two samples of one series (tie: the larger value)."""
    if sample is None:
        return
    old = samples.get(key)
    if old is None or sample > old:
        samples[key] = sample


def parse_summary(body: bytes, *, node: str, request_time_ns: int) -> NodeBatch:
    """Parse a `/stats/summary` body (full or `?only_cpu_and_memory=true`) into a NodeBatch.

    `request_time_ns` is accepted for symmetry with `parse_resource_metrics`: every Summary sample
    carries its own time, so it is not used. Raises ParseError for malformed input (JSON path +
    excerpt), KubeletError for a `Status` failure body. Never raises anything else.
    """
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise ParseError(f"not valid JSON: {exc}") from None
    if type(doc) is not dict:
        raise _fail("$", "expected a Summary object", doc)
    if doc.get("kind") == "Status":
        raise KubeletError(f"kubelet answered with a Status: {_show(doc.get('message', ''))}")
    if "node" not in doc and "pods" not in doc:
        raise _fail("$", "not a kubelet Summary (no 'node' or 'pods' field)", doc)

    reader = _Reader()
    node_cpu: Sample | None = None
    node_mem: Sample | None = None
    node_swap: Sample | None = None
    stats = doc.get("node")
    if stats is not None:
        if type(stats) is not dict:
            raise _fail("$.node", "expected an object or null", stats)
        node_cpu = reader.sample(stats.get("cpu"), "usageCoreNanoSeconds", "$.node.cpu")
        node_mem = reader.sample(stats.get("memory"), "workingSetBytes", "$.node.memory")
        node_swap = reader.sample(stats.get("swap"), "swapUsageBytes", "$.node.swap")

    cpu: dict[ContainerKey, Sample] = {}
    mem: dict[ContainerKey, Sample] = {}
    start: dict[ContainerKey, Sample] = {}
    swap: dict[ContainerKey, Sample] = {}
    pods = doc.get("pods")
    if pods is None:
        pods = []
    elif type(pods) is not list:
        raise _fail("$.pods", "expected an array or null", pods)
    for pi, pod in enumerate(pods):
        if type(pod) is not dict:
            raise _fail(f"$.pods[{pi}]", "expected an object", pod)
        ref = pod.get("podRef")
        if type(ref) is not dict:
            raise _fail(f"$.pods[{pi}].podRef", "expected an object", ref)
        namespace, name = ref.get("namespace"), ref.get("name")
        if type(namespace) is not str or not namespace:
            raise _fail(f"$.pods[{pi}].podRef.namespace", "expected a non-empty string", namespace)
        if type(name) is not str or not name:
            raise _fail(f"$.pods[{pi}].podRef.name", "expected a non-empty string", name)
        containers = pod.get("containers")
        if containers is None:
            continue
        if type(containers) is not list:
            raise _fail(f"$.pods[{pi}].containers", "expected an array or null", containers)
        for ci, container in enumerate(containers):
            path = f"$.pods[{pi}].containers[{ci}]"
            if type(container) is not dict:
                raise _fail(path, "expected an object", container)
            cname = container.get("name")
            if type(cname) is not str:
                raise _fail(f"{path}.name", "expected a string", cname)
            if not cname or cname == "POD":
                continue  # as in the text form (cAdvisor sandbox conventions)
            key = (namespace, name, cname)
            _keep(cpu, key, reader.sample(container.get("cpu"), "usageCoreNanoSeconds", f"{path}.cpu"))
            _keep(mem, key, reader.sample(container.get("memory"), "workingSetBytes", f"{path}.memory"))
            _keep(swap, key, reader.sample(container.get("swap"), "swapUsageBytes", f"{path}.swap"))
            # Always recorded, so that a container entry without cpu or memory leaves its pod out.
            # Start times carry no timestamp in the text form: duplicates tie, the larger wins.
            _keep(start, key, (0, reader.time(container.get("startTime"), f"{path}.startTime")))
    return assemble_batch(node, node_cpu, node_mem, node_swap, cpu, mem, start, swap)
