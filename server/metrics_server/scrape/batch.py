"""What the scrape stage hands to storage: one node's samples from one kubelet response.

Both kubelet formats (`/metrics/resource` text and `/stats/summary` JSON) parse into these types,
so storage never knows which format a node spoke. Times are integer nanoseconds since the Unix
epoch and CPU is cumulative integer nanoseconds: integers keep the rate arithmetic exact.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import NamedTuple


class Point(NamedTuple):
    """One complete sample of a node or a container, as its kubelet reported it.

    `timestamp_ns` is the sample time of the CPU counter (the window of a rate is measured
    between two of these). `start_time_ns` is 0 when the kubelet did not say. `swap_bytes` is
    None when the kubelet reported no swap figure.
    """

    timestamp_ns: int
    cpu_ns: int
    memory_bytes: int
    start_time_ns: int = 0
    swap_bytes: int | None = None


PodKey = tuple[str, str]
"""(namespace, pod name)."""


@dataclass(slots=True)
class NodeBatch:
    """Everything one kubelet response said, already filtered to complete samples.

    `node_point` is None when the response had no complete node sample. `pods` maps a pod to
    its containers' points; a pod any of whose containers lacked a complete sample is left out
    entirely (a partial pod would make the HPA under-count it).
    """

    node: str
    node_point: Point | None = None
    pods: dict[PodKey, dict[str, Point]] = field(default_factory=dict)


class ScrapeError(Exception):
    """A node could not be scraped this cycle; no other node is affected."""


class ParseError(ScrapeError):
    """A kubelet body could not be parsed; the message says what was wrong and where (line/field)."""


class KubeletError(ScrapeError):
    """The kubelet answered, but with an error (a status code, or a body that only reports failure)."""
