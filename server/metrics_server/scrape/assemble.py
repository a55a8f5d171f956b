"""The rules both kubelet formats share: from resolved samples to a `NodeBatch`.

`prometheus.py` (text) and `summary.py` (JSON) both reduce a body to resolved samples (the text
parsers keep them in `Samples`) and hand them to `assemble_batch`, so one kubelet state gives the
same batch whichever endpoint it was read from. Where we differ from metrics-server, it says so:

* Values. CPU seconds become integer nanoseconds as `round(v * 1e9)`. That equals the kubelet's own
  integer counter exactly up to 4e15 ns (about 46 core-days); above it the float64 the kubelet printed
  no longer holds every nanosecond and the result is off by a few ns (at most about a dozen at 1e17 ns),
  far below what a 15 s rate window can see. Bytes become `int(v)` (truncation, as metrics-server).
  A value that is NaN, infinite, negative, or does not fit in int64 once converted is *unusable*:
  for CPU or memory that drops the node point or the pod (as a missing sample would); for swap it
  gives `swap_bytes=None`. (The swap underflow `1.8446743709127774e+19` is such a value.)
* Timestamps are milliseconds; a sample without one gets `request_time_ns`. A timestamp that is not
  in (0, 2^63) ns is unusable: such a CPU sample drops the node point or the pod.
* Duplicate series (same name and labels) keep the sample with the newest timestamp; on a tie, the
  larger value (the rule of metrics-server PR #1779), so the result does not depend on line order.
  CPU, memory, start time and swap are each resolved on their own.
* `Point.timestamp_ns` is the CPU sample's time (metrics-server takes whichever of CPU and memory
  came last). Start times <= 0 (Go's zero time) are ignored (start_time_ns=0); the timestamp on a
  start-time sample is ignored. Node points have start_time_ns=0: the text form cannot say it.
* Node point: dropped when its CPU timestamp is unusable or CPU or memory is missing, 0 or unusable.
* Pods: a pod any of whose containers lacks CPU or memory, or has either 0 or unusable, is left out
  entirely. One exception (ours): a container whose CPU *and* memory are both exactly 0 is a finished
  container (a terminated init container on Windows, whose usage the kubelet still reports as 0):
  it is left out of its pod and the pod is kept. It adds nothing to a sum; metrics-server would drop
  the pod for as long as the kubelet lists the old container. A pod with no containers left is omitted.
* Series with `container=""` or `container="POD"` (cAdvisor sandbox conventions) are ignored.
* `scrape_error`/`resource_scrape_error` non-zero with nothing usable parsed -> `KubeletError`;
  with usable samples, the batch is returned.

Also here: the families of the text format (`WANTED`, the kind constants) and the number limits
both text parsers (`canonical.py`, `lines.py`) convert with.
"""

from __future__ import annotations

import re
from typing import Final

from metrics_server.scrape.batch import KubeletError, NodeBatch, PodKey, Point

ContainerKey = tuple[str, str, str]
"""(namespace, pod name, container name)."""

Sample = tuple[int, int]
"""(timestamp ns, value) after conversion; value -1 means unusable, timestamp 0 means unusable."""

INT64_LIMIT: Final = 1 << 63
# 2^63 as a float: the first float whose int() no longer fits in int64.
FLOAT_INT64_LIMIT: Final = 9.223372036854775808e18
# Above this many core-seconds, round(v * 1e9) would not fit in int64.
CPU_SECONDS_LIMIT: Final = 9223372036.854775

# The families we read (container kinds are contiguous: the parser tests a range).
NODE_CPU: Final = 1
NODE_MEM: Final = 2
NODE_SWAP: Final = 3
C_CPU: Final = 4
C_MEM: Final = 5
C_START: Final = 6
C_SWAP: Final = 7
ERR: Final = 8
IGNORED: Final = 0
WANTED: Final[dict[str, int]] = {
    "node_cpu_usage_seconds_total": NODE_CPU,
    "node_cpu_usage_seconds": NODE_CPU,  # 1.18.0 before k8s PR #89540
    "node_memory_working_set_bytes": NODE_MEM,
    "node_swap_usage_bytes": NODE_SWAP,
    "container_cpu_usage_seconds_total": C_CPU,
    "container_cpu_usage_seconds": C_CPU,
    "container_memory_working_set_bytes": C_MEM,
    "container_start_time_seconds": C_START,
    "container_swap_usage_bytes": C_SWAP,
    "scrape_error": ERR,
    "resource_scrape_error": ERR,
}

METRIC_NAME: Final = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
LABEL_NAME: Final = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*")

_EXCERPT_LEN: Final = 80


def excerpt(text: str) -> str:
    """A short quoted piece of bad input for an error message."""
    if len(text) > _EXCERPT_LEN:
        text = text[:_EXCERPT_LEN] + "..."
    return repr(text)


def assemble_batch(
    node: str,
    node_cpu: Sample | None,
    node_mem: Sample | None,
    node_swap: Sample | None,
    cpu: dict[ContainerKey, Sample],
    mem: dict[ContainerKey, Sample],
    start: dict[ContainerKey, Sample],
    swap: dict[ContainerKey, Sample],
) -> NodeBatch:
    """Apply the dropping rules (module docstring) to resolved samples and build the batch.

    CPU values are nanoseconds, memory and swap bytes, start times nanoseconds since the epoch;
    each is -1 when unusable (and start times 0 when unknown). Timestamps are 0 when unusable.
    """
    batch = NodeBatch(node=node)
    if (
        node_cpu is not None
        and node_mem is not None
        and node_cpu[0] > 0
        and node_cpu[1] > 0
        and node_mem[1] > 0
    ):
        node_swap_bytes = node_swap[1] if node_swap is not None and node_swap[1] >= 0 else None
        batch.node_point = Point(node_cpu[0], node_cpu[1], node_mem[1], 0, node_swap_bytes)

    pods = batch.pods
    new_point = tuple.__new__  # Point's own __new__ is a Python function: 3x slower
    bad: set[PodKey] = set()
    cpu_keys = cpu.keys()
    for others in (mem, start, swap):
        if others:
            for key in others.keys() - cpu_keys:
                bad.add((key[0], key[1]))
    for key, c in cpu.items():
        namespace, pod, container = key
        pod_key = (namespace, pod)
        if pod_key in bad:
            continue
        m = mem.get(key)
        if m is None:
            bad.add(pod_key)
            continue
        cpu_ns = c[1]
        memory = m[1]
        if cpu_ns == 0 and memory == 0:
            continue  # a finished container: see the module docstring
        if cpu_ns <= 0 or memory <= 0 or c[0] <= 0:
            bad.add(pod_key)
            continue
        s = start.get(key)
        w = swap.get(key)
        start_ns = s[1] if s is not None else 0
        swap_bytes = w[1] if w is not None and w[1] >= 0 else None
        point = new_point(Point, (c[0], cpu_ns, memory, start_ns, swap_bytes))
        containers = pods.get(pod_key)
        if containers is None:
            pods[pod_key] = {container: point}
        else:
            containers[container] = point
    for pod_key in bad:
        pods.pop(pod_key, None)
    return batch


class Samples:
    """The samples of one text body, resolved as they are read (both text parsers keep these).

    Container samples go straight into the four dicts (the parsers' hot loops); node and
    scrape-error samples through `node_sample`. `finish` applies `assemble_batch`.
    """

    __slots__ = ("cpu", "failed", "mem", "node_cpu", "node_mem", "node_swap", "start", "swap")

    def __init__(self) -> None:
        self.node_cpu: Sample | None = None
        self.node_mem: Sample | None = None
        self.node_swap: Sample | None = None
        self.cpu: dict[ContainerKey, Sample] = {}
        self.mem: dict[ContainerKey, Sample] = {}
        self.start: dict[ContainerKey, Sample] = {}
        self.swap: dict[ContainerKey, Sample] = {}
        self.failed = False

    def node_sample(self, kind: int, ts: int, v: float) -> None:
        """A node (or scrape-error) sample of family `kind`, value `v` as printed."""
        if kind == NODE_CPU:
            sample = (ts, round(v * 1e9) if 0.0 <= v < CPU_SECONDS_LIMIT else -1)
            if self.node_cpu is None or sample > self.node_cpu:
                self.node_cpu = sample
        elif kind == NODE_MEM:
            sample = (ts, int(v) if 0.0 <= v < FLOAT_INT64_LIMIT else -1)
            if self.node_mem is None or sample > self.node_mem:
                self.node_mem = sample
        elif kind == NODE_SWAP:
            sample = (ts, int(v) if 0.0 <= v < FLOAT_INT64_LIMIT else -1)
            if self.node_swap is None or sample > self.node_swap:
                self.node_swap = sample
        elif kind == ERR and v != 0.0:
            self.failed = True

    def finish(self, node: str) -> NodeBatch:
        """The batch of these samples; `KubeletError` when the kubelet reported a scrape error and
        nothing usable was read."""
        batch = assemble_batch(
            node, self.node_cpu, self.node_mem, self.node_swap, self.cpu, self.mem, self.start, self.swap
        )
        if self.failed and batch.node_point is None and not batch.pods:
            raise KubeletError("kubelet reported scrape_error/resource_scrape_error and no usable samples")
        return batch
