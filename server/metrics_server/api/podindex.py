"""Per-namespace label indexes over the pod cache, so a selector list reads only the pods it can match.

An HPA asks every resolution for `namespaces/<ns>/pods?labelSelector=app=x,tier=y`. Testing every
pod of the namespace costs ~1.5 us per pod in Python (~55 ms per request for a namespace of
36,000 pods, the benchmark's 5000 x 30 shape). A `NamespaceIndex` maps each label key and value
to the pods carrying it; `candidates(selector)` returns the smallest set of pods that can match
(the union of the buckets of one `=`/`==`/`in` term), which the caller then filters with the
whole selector.

The pod cache exposes no version, so an index is kept in step with the tuple the lister returns
for each request (`PodLister.list(namespace)`):

* unchanged (the usual case): one C-level tuple comparison, identity first (~0.1 ms / 36k pods);
* changed in place (pods updated keep their position in the cache's dict, new pods are
  appended): one C-level identity pass over both tuples, position by position, finds them
  (~1-3 ms / 36k pods);
* otherwise (a deletion shifts positions): the two generations are diffed by object identity
  (`{id(pod): pod}` maps built in `CHUNK`-pod steps, then dict-view set differences; ~20 ms of
  CPU for 36k pods, the longest step ~5-10 ms);
* only the added and removed pods then touch the buckets; a diff larger than `REBUILD_FRACTION`
  of the namespace rebuilds it instead, also in `CHUNK`-pod steps. One sync runs at a time per
  namespace (a lock); the index changes only in the last step.

Identity is safe as a key because the index holds the previous pods until the diff is done, so
no id can be reused between the two generations. Equal-but-not-identical pods are equal by value,
so what a selection returns is exactly what a scan of the current pods returns (pinned by a
property test against `LabelSelector.matches`).

Memory: ~130 bytes per indexed pod with three labels (one bucket entry per label; see `_Bucket`),
plus the namespace's tuple. Only namespaces that received an indexable selector are indexed.

Not thread-safe; used from the one event loop. Mutations of one index never span a checkpoint,
and `candidates` returns a fresh list, so a request that yields never sees a half-updated index.
(A request cancelled mid-sync leaves the index as it was.)
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from itertools import compress
from operator import is_not

import trio

from k8s_metrics.selectors import POSITIVE, LabelSelector
from metrics_server.kube.objects import PodInfo
from metrics_server.priority import defer

CHUNK = 1000
"""Pods per step of a diff or a rebuild (~1-2 ms) between event-loop checkpoints."""
REBUILD_FRACTION = 0.25
"""Above this share of changed pods, rebuilding is cheaper than applying the diff."""
MAX_NAMESPACES = 1024
"""Indexes kept (least recently used evicted): bounds what departed namespaces can pin."""

_Bucket = PodInfo | dict[str, PodInfo]
"""The pods carrying one label value: the pod itself while it is the only one (most values of
unique labels such as `pod-template-hash` in the benchmark, or `statefulset.kubernetes.io/pod-name`),
else a dict by pod name. A one-pod dict costs ~200 bytes; at 150,000 pods that choice alone is
~30 MiB."""


def indexable(selector: LabelSelector) -> bool:
    """True when some term pins a label to listed values, so an index can narrow the candidates."""
    return any(r.operator in POSITIVE for r in selector.requirements)


class NamespaceIndex:
    """The pods of one namespace (as last seen) by label key, then value (see `_Bucket`)."""

    __slots__ = ("_by_key", "_lock", "_pods", "_rebuild_fraction")

    def __init__(self, rebuild_fraction: float = REBUILD_FRACTION) -> None:
        self._rebuild_fraction = rebuild_fraction
        self._lock = trio.Lock()
        self._pods: tuple[PodInfo, ...] = ()
        self._by_key: dict[str, dict[str, _Bucket]] = {}

    @property
    def pods(self) -> tuple[PodInfo, ...]:
        return self._pods

    def buckets(self) -> dict[str, dict[str, _Bucket]]:
        """The index itself (read-only by contract; tests check it against the pods)."""
        return self._by_key

    async def sync(self, current: tuple[PodInfo, ...]) -> None:
        """Bring the index in step with `current`, the namespace's pods now (see the module notes)."""
        if current == self._pods:
            return
        async with self._lock:  # one diff at a time: the next caller then usually finds it done
            old_pods = self._pods
            if current == old_pods:
                return
            if not old_pods:
                await self._rebuild(current)
                return
            diff = _positional_diff(old_pods, current)
            if diff is None:
                new = await _by_id(current)
                old = await _by_id(old_pods)
                diff = [old[k] for k in old.keys() - new.keys()], [new[k] for k in new.keys() - old.keys()]
            removed, added = diff
            if len(removed) + len(added) > self._rebuild_fraction * max(len(current), 1):
                await self._rebuild(current)
                return
            by_key = self._by_key
            for pod in removed:
                _remove(by_key, pod)
            for pod in added:
                _add(by_key, pod)
            self._pods = current

    async def _rebuild(self, current: tuple[PodInfo, ...]) -> None:
        by_key: dict[str, dict[str, _Bucket]] = {}
        for start in range(0, len(current), CHUNK):
            for pod in current[start : start + CHUNK]:
                _add(by_key, pod)
            await defer()
        # One assignment after the last checkpoint: readers see the old index or the new one.
        self._pods, self._by_key = current, by_key

    def candidates(self, selector: LabelSelector) -> list[PodInfo] | None:
        """A superset of the pods `selector` matches (filter them with it), or None when no term is
        indexable (the caller scans `pods`). The list is the caller's: the index may change later."""
        best: list[_Bucket] | None = None
        best_size = 0
        by_key = self._by_key
        for r in selector.requirements:
            if r.operator not in POSITIVE:
                continue
            values = by_key.get(r.key)
            found = [b for b in (values.get(v) for v in r.values) if b is not None] if values else []
            size = sum(len(b) if isinstance(b, dict) else 1 for b in found)
            if best is None or size < best_size:
                best, best_size = found, size
        if best is None:
            return None
        out: list[PodInfo] = []
        for bucket in best:  # a pod has one value per key: the buckets of one term are disjoint
            if isinstance(bucket, dict):
                out += bucket.values()
            else:
                out.append(bucket)
        return out


def _positional_diff(
    old: tuple[PodInfo, ...], new: tuple[PodInfo, ...]
) -> tuple[list[PodInfo], list[PodInfo]] | None:
    """(removed, added) by position: the pods that differ at the same index, plus either tail.

    Always a correct diff (a pod that merely moved is removed, then added back), and a small one
    for how the cache's dicts change on updates (in place) and creations (appended): one C-level
    identity pass (~1-3 ms / 36k pods). None when it is not small (a deletion shifts the rest).
    """
    common = min(len(old), len(new))
    positions = list(compress(range(common), map(is_not, old, new)))
    if len(positions) + abs(len(new) - len(old)) > REBUILD_FRACTION * max(len(new), 1):
        return None
    removed = [old[i] for i in positions]
    removed += old[common:]
    added = [new[i] for i in positions]
    added += new[common:]
    return removed, added


async def _by_id(pods: tuple[PodInfo, ...]) -> dict[int, PodInfo]:
    """`{id(pod): pod}`, built at C speed in `CHUNK`-pod steps (~10 ms for 36,000 pods in one go:
    the ids are new ints, and addresses hash poorly)."""
    out: dict[int, PodInfo] = {}
    for start in range(0, len(pods), CHUNK):
        chunk = pods[start : start + CHUNK]
        out.update(zip(map(id, chunk), chunk, strict=True))
        await defer()
    return out


def _add(by_key: dict[str, dict[str, _Bucket]], pod: PodInfo) -> None:
    name = pod.name
    for key, value in pod.labels.items():
        values = by_key.get(key)
        if values is None:
            values = by_key[key] = {}
        bucket = values.get(value)
        if bucket is None:
            values[value] = pod
        elif isinstance(bucket, dict):
            bucket[name] = pod
        else:  # names are unique in a namespace, and a diff removes before it adds
            values[value] = {bucket.name: bucket, name: pod}


def _remove(by_key: dict[str, dict[str, _Bucket]], pod: PodInfo) -> None:
    name = pod.name
    for key, value in pod.labels.items():
        values = by_key.get(key)
        if values is None:
            continue
        bucket = values.get(value)
        if bucket is pod:
            del values[value]
        elif isinstance(bucket, dict) and bucket.get(name) is pod:
            del bucket[name]
            if len(bucket) == 1:
                values[value] = next(iter(bucket.values()))
        if not values:
            del by_key[key]


class PodIndexes:
    """`NamespaceIndex`es by namespace, least recently used evicted beyond `max_namespaces`."""

    def __init__(self, max_namespaces: int = MAX_NAMESPACES) -> None:
        self._indexes: OrderedDict[str, NamespaceIndex] = OrderedDict()
        self._max = max_namespaces

    async def select(self, namespace: str, pods: Iterable[PodInfo], selector: LabelSelector) -> list[PodInfo]:
        """Candidates for `selector` among `pods` (the namespace's pods now), via the namespace's
        index. The selector must be `indexable`. Filter the result with the selector."""
        current = pods if isinstance(pods, tuple) else tuple(pods)
        index = self._indexes.get(namespace)
        if index is None:
            index = self._indexes[namespace] = NamespaceIndex()
            while len(self._indexes) > self._max:
                self._indexes.popitem(last=False)
        else:
            self._indexes.move_to_end(namespace)
        await index.sync(current)
        found = index.candidates(selector)
        assert found is not None, "select() needs an indexable selector"
        return found

    def __len__(self) -> int:
        return len(self._indexes)
