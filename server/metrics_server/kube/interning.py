"""Sharing of repeated strings and label sets between cached objects.

At 150,000 pods most label sets repeat (every replica of a ReplicaSet, every DaemonSet pod of a
revision carries the same labels), and namespaces, label keys/values and node names repeat far
more. Strings go through `sys.intern`; identical label sets become one shared, read-only dict.

The table holds its label sets strongly (weak references would cost more than the sets save), so
the owning cache calls `retain()` with the sets still in use now and then (see `should_prune`):
label sets of pods long gone, e.g. of old ReplicaSets after rollouts, do not accumulate.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from typing import Any


class Labels(dict[str, str]):
    """A label set shared between objects; hashable by content. Never mutate one (it is exposed
    as `Mapping`, and its hash would go stale)."""

    __slots__ = ()

    def __hash__(self) -> int:  # type: ignore[override]
        return hash(frozenset(self.items()))


class LabelInterner:
    """Turns a `metadata.labels` JSON object into a shared `Labels` instance. One per cache."""

    def __init__(self) -> None:
        self._sets: dict[Labels, Labels] = {}
        self._empty = Labels()
        self._prune_at = 4096

    def labels(self, raw: Any) -> Mapping[str, str]:
        """Raises TypeError when `raw` is neither absent nor a string-to-string object."""
        if not raw:
            return self._empty
        if not isinstance(raw, dict):
            raise TypeError("metadata.labels is not an object")
        candidate = Labels()
        for key, value in raw.items():
            candidate[sys.intern(key)] = sys.intern(value)  # TypeError unless both are strings
        shared = self._sets.get(candidate)
        if shared is None:
            self._sets[candidate] = shared = candidate
        return shared

    def should_prune(self) -> bool:
        """True when the table has doubled since the last `retain()`: time to call it again."""
        return len(self._sets) > self._prune_at

    def retain(self, live: Iterable[Mapping[str, str]]) -> None:
        """Forget every label set not in `live` (the label mappings the cache still holds)."""
        keep = {id(m) for m in live}
        self._sets = {k: v for k, v in self._sets.items() if id(v) in keep}
        self._prune_at = max(4096, 2 * len(self._sets))

    def __len__(self) -> int:
        return len(self._sets)
