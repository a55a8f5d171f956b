"""Consistent hashing of nodes over workers."""

from __future__ import annotations

import pytest

from metrics_server.shard.config import default_workers
from metrics_server.shard.ring import HashRing

NAMES = [f"node-{i:05d}" for i in range(5000)]


def test_owners_are_stable_and_independent_of_order() -> None:
    a, b = HashRing(4), HashRing(4)
    assert [a.owner(n) for n in NAMES] == [b.owner(n) for n in reversed(NAMES)][::-1]
    shares = a.shares(NAMES)
    assert sorted(n for share in shares for n in share) == NAMES
    assert all(a.owner(n) == w for w, share in enumerate(shares) for n in share)


@pytest.mark.parametrize("workers", [1, 2, 3, 4, 8])
def test_shares_are_balanced(workers: int) -> None:
    sizes = [len(share) for share in HashRing(workers).shares(NAMES)]
    mean = len(NAMES) / workers
    assert max(sizes) <= mean * 1.25 and min(sizes) >= mean * 0.75, sizes


@pytest.mark.parametrize("workers", [1, 2, 3, 7])
def test_adding_a_worker_moves_only_nodes_to_it_and_few_of_them(workers: int) -> None:
    before, after = HashRing(workers), HashRing(workers + 1)
    moved = [n for n in NAMES if before.owner(n) != after.owner(n)]
    assert all(after.owner(n) == workers for n in moved)
    assert len(moved) <= 1.3 * len(NAMES) / (workers + 1)


def test_a_ring_needs_a_worker() -> None:
    with pytest.raises(ValueError, match="at least one worker"):
        HashRing(0)


@pytest.mark.parametrize(
    ("nodes", "cpus", "workers"),
    [(100, 8, 0), (2999, 8, 0), (3000, 2, 1), (5000, 2, 1), (5000, 1, 1), (12000, 8, 3), (30000, 4, 3)],
)
def test_auto_worker_count(nodes: int, cpus: int, workers: int) -> None:
    assert default_workers(nodes, cpus) == workers
