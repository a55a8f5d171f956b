"""The scrape shards' flags, `--scrape-workers` and `--scrape-worker-niceness`, and how many workers
`auto` means.

`ShardOptions.workers(nodes, cpus)` is the count to start once the node cache has synced: the
flag's value, or for `auto` (the default) `default_workers(nodes, cpus)`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

from metrics_server.flagset import INT, KUBELET_CLIENT, Kind, flag

AUTO = -1
"""The parsed value of `--scrape-workers=auto`."""
AUTO_MIN_NODES = 3000
"""At 1000 and 2000 nodes one process serves as fast as with a worker, with 58-94 MiB less memory
and 7-12 % less CPU; at 5000 one process is saturated (get p99 in seconds). The crossover lies
between; 3000 until 5000-node figures refine it. Figures and commands: docs/performance.md,
"Round 3: scrape workers"."""
NODES_PER_WORKER = 5000


def _parse_workers(text: str) -> int:
    if text == "auto":
        return AUTO
    try:
        value = int(text)
    except ValueError:
        raise ValueError("expected a count or auto") from None
    if value < 0:
        raise ValueError("must not be negative")
    return value


WORKERS = Kind("string", _parse_workers, quote_default=True)

NICENESS_MAX = 19
"""The largest nice value Linux has (the lowest priority)."""


def _niceness(value: int) -> str | None:
    if 0 <= value <= NICENESS_MAX:
        return None
    return f"must be between 0 and {NICENESS_MAX}"


def default_workers(nodes: int, cpus: int) -> int:
    """`auto`: 0 (scrape in the serving process) below `AUTO_MIN_NODES` nodes; above, one worker per
    `NODES_PER_WORKER` nodes (rounded up), at most one less than the CPUs (the serving process
    needs one), at least one."""
    if nodes < AUTO_MIN_NODES:
        return 0
    return max(1, min(math.ceil(nodes / NODES_PER_WORKER), cpus - 1))


@dataclass(frozen=True, slots=True)
class ShardOptions:
    FLAG_GROUP: ClassVar[str] = KUBELET_CLIENT

    scrape_workers: int = flag(
        "--scrape-workers",
        WORKERS,
        "auto",
        (
            "Scrape worker processes, each owning a share of the nodes (their kubelet connections, "
            "parsing and stored points); 0 scrapes in the serving process. auto: 0 below 3000 nodes, "
            "else one per 5000 nodes, at most CPUs - 1 (decided once the node list is known)."
        ),
    )

    scrape_worker_niceness: int = flag(
        "--scrape-worker-niceness",
        INT,
        "10",
        (
            "How much lower the CPU priority of scrape workers is than the serving process's (added "
            "to its nice value, 0-19), so that API requests are not kept waiting behind parsing when "
            "the CPUs are busy; 0 runs them at the same priority."
        ),
        check=_niceness,
    )

    def validate(self) -> None:
        """Every value the flags parse to is valid (`_parse_workers` and `_niceness` refuse the others)."""

    def workers(self, nodes: int, cpus: int) -> int:
        return default_workers(nodes, cpus) if self.scrape_workers == AUTO else self.scrape_workers
