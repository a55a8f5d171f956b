"""The running-pod cache: `PodInfo` slices, indexed by namespace then name.

Full Pod objects or metadata-only (`PartialObjectMetadata`) lists? metrics-server lists pods
metadata-only. We list **full objects** and keep only the needed fields, because:

- `PodInfo.node_name` (`spec.nodeName`) backs the `spec.nodeName` field selector we serve (the
  most requested missing feature of metrics-server, kubernetes/kubernetes#131896); a
  `PartialObjectMetadata` object does not carry it.
- The phase is in `status`, so a MODIFIED event that leaves `Running` can be dropped defensively
  even if the apiserver did not turn it into a DELETED event for the field selector.
- The saving of metadata-only is smaller than it looks: the metadata (annotations, managedFields,
  ownerReferences) is a large share of a typical pod object, and the event rate is the same
  (every status change bumps the resourceVersion either way).
- The cost is bounded: lists are paginated (500 objects a page), decoded page by page and reduced
  at once, so transient memory stays at one page; the kept cache is the same size either way.

Switching to metadata-only is a matter of `ResourceSpec.accept` (`application/json;as=
PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json`): `decode_pod` accepts both shapes
and leaves `node_name` empty when `spec` is absent.

Pods are listed and watched with `fieldSelector=status.phase=Running`, across all namespaces.
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterator, Mapping
from itertools import chain
from typing import Any

from metrics_server.kube.interning import LabelInterner
from metrics_server.kube.objects import PodInfo

RUNNING_FIELD_SELECTOR = "status.phase=Running"


def pod_is_running(obj: Mapping[str, Any]) -> bool:
    """False only when the object says its phase is something other than Running."""
    status = obj.get("status")
    if not isinstance(status, dict) or "phase" not in status:
        return True  # metadata-only objects carry no phase; the field selector vouches for them
    return bool(status["phase"] == "Running")


def decode_pod(obj: Mapping[str, Any], interner: LabelInterner) -> PodInfo:
    """Extract a `PodInfo`; raise KeyError/TypeError/ValueError when the object is malformed."""
    meta = obj["metadata"]
    name = meta["name"]
    namespace = meta["namespace"]
    if not isinstance(name, str) or not name or not isinstance(namespace, str) or not namespace:
        raise ValueError("pod without metadata.name or metadata.namespace")
    spec = obj.get("spec")
    node_name = spec.get("nodeName") if isinstance(spec, dict) else None
    return PodInfo(
        namespace=sys.intern(namespace),
        name=name,
        uid=str(meta.get("uid") or ""),
        labels=interner.labels(meta.get("labels")),
        node_name=sys.intern(node_name) if isinstance(node_name, str) else "",
    )


def _unchanged(get: Callable[[str, str], PodInfo | None], pod: PodInfo) -> PodInfo:
    """The cached pod equal to `pod` if there is one, else `pod`.

    A relist then allocates only the new generation's dicts, not a second copy of every pod, and
    pods keep their identity, which the API's fragment cache, list cache and label indexes test
    first. Relisting 150,000 unchanged pods (tests/server/kube/podcache_memory.py's mix, traced
    with tracemalloc while the old generation is still held) keeps ~6 MiB of new memory, peak
    ~11 MiB (docs/performance.md)."""
    old = get(pod.namespace, pod.name)
    return old if old is not None and old == pod else pod


def _key(obj: Mapping[str, Any]) -> tuple[str, str]:
    meta = obj["metadata"]
    return str(meta["namespace"]), str(meta["name"])


class _PodReplacement:
    def __init__(self, cache: PodCache) -> None:
        self._cache = cache
        self._pods: dict[str, dict[str, PodInfo]] = {}

    def add(self, obj: Mapping[str, Any]) -> None:
        if not pod_is_running(obj):
            return
        cache = self._cache
        pod = _unchanged(cache.get, decode_pod(obj, cache._interner))
        self._pods.setdefault(pod.namespace, {})[pod.name] = pod

    def commit(self) -> None:
        self._cache._pods = self._pods
        self._cache._count = sum(len(v) for v in self._pods.values())
        self._cache._listed.clear()
        self._cache._prune_labels()


class PodCache:
    """Implements `PodLister` (reads) and the informer `Store` (writes). Reads never block.

    Only Running pods are kept: a pod leaving that phase arrives as DELETED (the apiserver's
    field-selector semantics) or, defensively, as MODIFIED with another phase; both remove it.
    """

    def __init__(self) -> None:
        self._interner = LabelInterner()
        self._pods: dict[str, dict[str, PodInfo]] = {}
        self._count = 0
        self._listed: dict[str | None, tuple[PodInfo, ...]] = {}
        """`list()` results by namespace (None: all) until the next change: an unchanged cache
        returns the same tuple, so readers (the API's list cache) recognise it by identity."""

    # PodLister
    def get(self, namespace: str, name: str) -> PodInfo | None:
        by_name = self._pods.get(namespace)
        return by_name.get(name) if by_name is not None else None

    def list(self, namespace: str | None = None) -> tuple[PodInfo, ...]:
        """A snapshot of all running pods, or of one namespace's; later updates do not affect it.
        Until the cache changes, the same tuple is returned again."""
        listed = self._listed.get(namespace)
        if listed is not None:
            return listed
        if namespace is not None:
            by_name = self._pods.get(namespace)
            listed = tuple(by_name.values()) if by_name else ()
        else:
            # chain.from_iterable builds the tuple in C: ~9 ms instead of ~30 ms at 150,000 pods.
            listed = tuple(chain.from_iterable(by_name.values() for by_name in self._pods.values()))
        self._listed[namespace] = listed
        return listed

    def _changed(self, namespace: str) -> None:
        listed = self._listed
        if listed:
            listed.pop(namespace, None)
            listed.pop(None, None)

    def namespaces(self) -> tuple[str, ...]:
        return tuple(self._pods)

    def __len__(self) -> int:
        return self._count

    def _iter_all(self) -> Iterator[PodInfo]:
        for by_name in self._pods.values():
            yield from by_name.values()

    # Store
    def begin_replace(self) -> _PodReplacement:
        return _PodReplacement(self)

    def upsert(self, obj: Mapping[str, Any]) -> None:
        if not pod_is_running(obj):
            self.delete(obj)
            return
        pod = decode_pod(obj, self._interner)
        by_name = self._pods.setdefault(pod.namespace, {})
        old = by_name.get(pod.name)
        if old is None:
            self._count += 1
        elif old == pod:
            return  # a status-only change: keep the object readers and the API's caches hold
        by_name[pod.name] = pod
        self._changed(pod.namespace)
        if self._interner.should_prune():
            self._prune_labels()

    def _prune_labels(self) -> None:
        self._interner.retain(p.labels for p in self._iter_all())

    def delete(self, obj: Mapping[str, Any]) -> None:
        namespace, name = _key(obj)
        by_name = self._pods.get(namespace)
        if by_name is not None and by_name.pop(name, None) is not None:
            self._count -= 1
            self._changed(namespace)
            if not by_name:
                del self._pods[namespace]
