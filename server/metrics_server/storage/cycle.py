"""One scrape cycle being built aside (`Cycle`), then published into its `Storage`.

Duplicate pods across nodes (a StatefulSet pod still reported by its old node): the first batch
that reports the pod wins; each duplicate is logged once (again only if it goes away and comes
back). A node scraped OK wins over a pod kept from a failed node.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Iterator, Mapping
from typing import TYPE_CHECKING, NamedTuple

from metrics_server import memory
from metrics_server.scrape.batch import NodeBatch, PodKey
from metrics_server.storage.rates import NodeState, retain, update_node
from metrics_server.storage.snapshot import NodeUsage, PodUsageTuple

if TYPE_CHECKING:
    from metrics_server.storage.store import Storage

logger = logging.getLogger(__name__)

PUBLISH_STEP_PODS = 2048
"""Default size of one step of `Cycle.publish_steps`, in pods (a node counts as one): a few ms."""
_MAX_SHARED_STRINGS = 100_000


class NodeResult(NamedTuple):
    """What one node's batch gave (`Cycle.add`): its usages, for whoever forwards them."""

    node_usage: NodeUsage | None
    pod_usage: Mapping[PodKey, PodUsageTuple]
    """Only the pods with a rate; not to be mutated (the store keeps it)."""
    first: bool
    """The store held no points for this node before this batch, so only fresh containers can have a
    rate: an owner of older usages (another store) should keep its own until they go stale."""


class Cycle:
    """One scrape cycle being built aside; nothing of it is visible before `publish()`.

    `add()` takes over each batch's `pods` dict and empties it (its points are copied into the
    store's rows; freeing them there, one node at a time, keeps that work out of whichever step
    drops the scrape round's batches), so the caller must not reuse it. A second batch for the same
    node in one cycle is ignored (logged). Odd data never raises: each rule degrades to "no rate
    this cycle" for the node or pod concerned. Using a cycle after `publish()`, or publishing a
    cycle begun before another cycle was published, raises RuntimeError.
    """

    __slots__ = (
        "_base",
        "_containers",
        "_duplicates",
        "_kept",
        "_nodes",
        "_now_ns",
        "_owner",
        "_pods",
        "_states",
        "_storage",
        "_storage_made",
    )

    def __init__(self, storage: Storage, now_ns: int) -> None:
        self._storage: Storage | None = storage
        self._storage_made = storage._made
        self._base = storage._states
        self._now_ns = now_ns
        # Mappings that grow all cycle long go to the collector's oldest generation while empty.
        self._states: dict[str, NodeState]
        self._nodes: dict[str, NodeUsage]
        self._pods: dict[PodKey, PodUsageTuple]
        self._owner: dict[PodKey, str]
        """Which node reported each pod first this cycle (duplicates: the first batch wins)."""
        self._states, self._nodes, self._pods, self._owner = memory.old_dicts(4)
        self._duplicates: dict[PodKey, tuple[str, str]] = {}
        self._containers = 0
        self._kept: set[str] = set()
        """Nodes added with `first` whose previous usages are kept (as if their scrape failed)."""

    def add(self, batch: NodeBatch) -> NodeResult | None:
        """Ingest one node scraped OK; its usages (None for a second batch of the node, ignored)."""
        storage = self._live()
        name = batch.node
        if name in self._states:
            logger.warning("node %s: a second batch in one cycle is ignored", name)
            return None
        strings = storage._strings
        if len(strings) > _MAX_SHARED_STRINGS:
            strings.clear()  # names of long-gone pods; the live ones are shared again as pods come
        old = self._base.get(name)
        state = update_node(
            batch,
            old,
            storage._fresh_max_age_ns,
            storage._staleness_ns,
            strings,
            storage._made,
            storage._serves,
        )
        batch.pods.clear()
        result = NodeResult(state.node_usage, state.pod_usage, old is None or not old.has_points)
        if storage._serves:
            self._merge(name, state)
        else:
            self._states[name] = state._replace(pod_usage={}, served_containers=0)
            if old is not None:
                # Nobody reads this store's snapshot: the node's old points go now, not at the
                # publish, so the store holds about one generation of points instead of two.
                del self._base[name]
        storage._reap_a_step()
        return result

    def add_usages(
        self,
        name: str,
        node_usage: NodeUsage | None,
        pod_usage: dict[PodKey, PodUsageTuple],
        *,
        first: bool = False,
    ) -> None:
        """Ingest one node's usages computed elsewhere (a scrape worker's store): what `add` does
        with a batch, without points. The store keeps equal copies of `pod_usage`'s usages (see below),
        not the mapping itself.

        `first` (`NodeResult.first` of the other store): when this store still holds usages of the
        node, it keeps them, as for a failed node, until they go stale or a later cycle brings
        rates; so a node that moved to another worker, or whose worker restarted, is not missing
        for the cycle in which its new store has only one point."""
        storage = self._live()
        if name in self._states:
            logger.warning("node %s: a second batch in one cycle is ignored", name)
            return
        old = self._base.get(name)
        if first and old is not None:
            self._kept.add(name)
            return
        # Decoded keys are new objects every cycle: the previous cycle's key (and its namespace
        # and name strings) are kept instead, ~190 bytes less per pod and snapshot.
        known = {key: key for key in old.pod_usage} if old is not None and old.pod_usage else {}
        # The tuples came from elsewhere (a decoder), which makes a tuple before its items (msgspec
        # allocates, and so tracks, the outer tuple first). The collector looks at the tuples of a
        # generation in the order they were tracked and untracks one only when its items already
        # are, so each level of nesting took one more collection: the usages of every cycle, ~2
        # tuples per pod, were still tracked when a gen1 collection (20-120 ms at 2000 x 30 with a
        # worker) moved them to the oldest generation. So the two outer levels are made again
        # here, items first (~0.1 us per pod), and registered with `Storage._made` like the
        # store's own, so the collector untracks them on its first pass. The containers' tuples
        # too, with the store's shared name strings instead of the decoded ones (~50 bytes less
        # per container and snapshot; ~0.3 us per container).
        made = self._storage_made
        strings = storage._strings
        if len(strings) > _MAX_SHARED_STRINGS:
            strings.clear()
        share = strings.setdefault
        served = 0
        rebuilt: dict[PodKey, PodUsageTuple] = {}
        for key, (timestamp, window, containers) in pod_usage.items():
            containers = tuple([(share(c, c), cpu, memory, swap) for c, cpu, memory, swap in containers])
            usage = (timestamp, window, containers)
            rebuilt[known.get(key, key)] = usage
            served += len(containers)
            made += containers
            made.append(containers)
            made.append(usage)
        pod_usage = rebuilt
        made += pod_usage.keys()
        self._merge(name, NodeState(None, None, node_usage, pod_usage, pod_usage, served, False))
        storage._reap_a_step()

    def _merge(self, name: str, state: NodeState) -> None:
        self._states[name] = state
        if state.node_usage is not None:
            self._nodes[name] = state.node_usage
        keys = state.pods.keys()
        if self._owner.keys().isdisjoint(keys):
            self._pods.update(state.pod_usage)
            self._owner.update(dict.fromkeys(keys, name))
            self._containers += state.served_containers
        else:
            self._merge_slow(name, state, report=True)

    def publish(self, failed_nodes: Collection[str], *, now_ns: int | None = None) -> None:
        """Finish the cycle and make it the one readers see: `publish_steps` run to the end."""
        for _ in self.publish_steps(failed_nodes, now_ns=now_ns):
            pass

    def publish_steps(
        self, failed_nodes: Collection[str], *, now_ns: int | None = None, step_pods: int = PUBLISH_STEP_PODS
    ) -> Iterator[None]:
        """`publish`, as a generator that pauses every `step_pods` pods' worth of work, so that
        an event loop can serve requests in between (`for _ in steps: await checkpoint()`).

        `failed_nodes`: nodes whose scrape failed; each keeps its previous points (node and pods)
        until they are sampled more than the staleness limit before `now_ns` (default: the time
        given to `begin`). A node that was also added counts as scraped OK. A node neither added
        nor failed is forgotten.

        Steps: keep the failed nodes' points; publish (one reference swap, readers see the old
        cycle before it and the new one after); free the replaced cycle's points. Once iteration
        has started the cycle takes no more `add` (RuntimeError). Abandoning the iterator before
        the swap publishes nothing and leaves the stored points as they were (like an abandoned
        cycle); abandoning it after the swap leaves the rest to be freed at once with the cycle.
        """
        if step_pods <= 0:
            raise ValueError(f"step_pods must be positive, got {step_pods}")
        storage = self._live()
        self._storage = None
        cutoff = (self._now_ns if now_ns is None else now_ns) - storage._staleness_ns
        work = 0
        if self._kept:
            failed_nodes = self._kept.union(failed_nodes)
        for name in failed_nodes:
            previous = self._base.get(name)
            if name in self._states or previous is None:
                continue
            work += len(previous.pods) + 1
            kept = retain(previous, cutoff)
            if kept is not None:
                self._states[name] = kept
                if kept.node_usage is not None:
                    self._nodes[name] = kept.node_usage
                self._merge_slow(name, kept, report=False)
            if work >= step_pods:
                work = 0
                yield
        storage._publish(
            self._base, self._states, self._nodes, self._pods, self._containers, self._duplicates
        )
        self._owner = {}
        yield
        yield from storage._reap(self._base, step_pods)

    def _live(self) -> Storage:
        if self._storage is None:
            raise RuntimeError("this cycle was already published (or is being published)")
        return self._storage

    def _merge_slow(self, name: str, state: NodeState, *, report: bool) -> None:
        """Merge a node's pods one by one, the earlier owner of a pod winning. `report` is False
        for nodes kept after a failed scrape: being superseded by a node scraped OK is the
        expected case (a pod rescheduled), not a duplicate to report."""
        owner = self._owner
        usages = state.pod_usage
        for key in state.pods:
            first = owner.setdefault(key, name)
            if first != name:
                if report:
                    self._duplicates.setdefault(key, (first, name))
                else:
                    logger.debug("pod %s/%s: kept from failed node %s, superseded by %s", *key, name, first)
                continue
            usage = usages.get(key)
            if usage is not None:
                self._pods[key] = usage
                self._containers += len(usage[2])
