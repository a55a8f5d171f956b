"""Which worker scrapes which node: consistent hashing, so that a change in the number of workers
moves few nodes (each keeps its kept-alive connection and its stored points where it was).

Each worker has `REPLICAS` points on a 64-bit ring (BLAKE2b of `"<worker>/<replica>"`); a node
belongs to the worker of the first point at or after the hash of its name. Stable across
processes, restarts and replicas (no `hash()` randomisation). Going from N to N + 1 workers moves
~1/(N + 1) of the nodes, all of them to the new worker; removing one moves only its own nodes.
"""

from __future__ import annotations

import bisect
import hashlib
from collections.abc import Iterable

REPLICAS = 128
"""Points per worker: the largest share is within ~10 % of the mean for a few workers."""


def _hash(text: str) -> int:
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


class HashRing:
    """Node name -> worker index in `range(workers)`. Remembers each name's hash (call `forget`
    for names that went away, or `retain`)."""

    def __init__(self, workers: int, *, replicas: int = REPLICAS) -> None:
        if workers < 1:
            raise ValueError(f"a ring needs at least one worker, got {workers}")
        points = sorted((_hash(f"{w}/{r}"), w) for w in range(workers) for r in range(replicas))
        self.workers = workers
        self._keys = [key for key, _ in points]
        self._owners = [owner for _, owner in points]
        self._hashes: dict[str, int] = {}

    def owner(self, name: str) -> int:
        h = self._hashes.get(name)
        if h is None:
            h = self._hashes[name] = _hash(name)
        i = bisect.bisect_left(self._keys, h)
        return self._owners[i if i < len(self._keys) else 0]

    def shares(self, names: Iterable[str]) -> list[list[str]]:
        """`names` split by owner, each share in the order given; forgets names not given."""
        out: list[list[str]] = [[] for _ in range(self.workers)]
        seen = set()
        for name in names:
            seen.add(name)
            out[self.owner(name)].append(name)
        for gone in [n for n in self._hashes if n not in seen]:
            del self._hashes[gone]
        return out
