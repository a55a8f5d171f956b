"""The resource handlers of `metrics.k8s.io/v1beta1`: node and pod metrics, lists and gets.

Request pipeline of the resource routes, in the apiserver's order: content negotiation (406) ->
spec-driven parameter checks (400) -> selector parsing (400) -> list-option validation (422) ->
field-label check (400) -> `watch` (405) -> data. A JSON list without selectors (all pods, one
namespace's pods, all nodes) is served from `api.listcache` while the snapshot and the lister's
objects are unchanged (warm all-pods list at 150,000 pods: ~0.1 s of CPU), and the lists asked
for during one snapshot are rebuilt for the next in the background (`api.refresh`); one request
building a list makes the others for it wait for that build rather than build it again. A
namespaced list whose label selector names values (`app=x`) reads only the candidate pods from a
per-namespace label index (`api.podindex`). Lists are selected, sorted, encoded and assembled in
short steps with trio checkpoints between them (~`steps.STEP_S` of encoding, `render.CHUNK`
objects otherwise), and a large body is handed to the server as its pieces (`steps.Pieces`), so
one huge list does not hold the event loop. While a large rebuild for a new snapshot runs,
requests are served the previous one (`api.refresh`, switch-over). Measured
with `python -m bench.micro.api_encode` (lists) and `python -m bench.micro.api_get` (single gets,
HPA-style lists); figures in docs/performance.md.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from typing import Any, cast

import trio
from quart import Response, request

from k8s_metrics.fieldselectors import META_FIELDS, FieldSelector, check_fields, parse_field_selector
from k8s_metrics.selectors import LabelSelector, SelectorError, parse_label_selector
from metrics_server.api import listcache, protobuf, render, status, yamlenc
from metrics_server.api import negotiate as neg
from metrics_server.api.discovery import GROUP
from metrics_server.api.params import OperationChecks
from metrics_server.api.podindex import PodIndexes, indexable
from metrics_server.api.query import (
    bad_include,
    indent,
    is_watch,
    list_option_errors,
    param_error,
    pretty,
    query_args,
)
from metrics_server.api.refresh import ListKey, ListRefresher
from metrics_server.api.responses import status_response
from metrics_server.api.steps import (
    BACKGROUND_STEP_S,
    CLOCK_EVERY,
    NAME,
    STEP_S,
    Pacer,
    Sweeper,
    chunked,
    pieces_response,
    sorted_by_name,
    sorted_pods,
)
from metrics_server.kube.objects import NodeInfo, NodeLister, PodInfo, PodLister
from metrics_server.priority import defer
from metrics_server.promtext import Stamps, one_stamp
from metrics_server.storage.snapshot import NodeUsage, PodUsageTuple, Snapshot

POD_FIELDS = (*META_FIELDS, "spec.nodeName")
"""Field selectors on pods: metrics-server's two plus `spec.nodeName` (kubernetes/kubernetes#131896)."""
NODE_FIELDS = META_FIELDS
_TABLES = neg.ENCODINGS | {neg.TABLE_V1, neg.TABLE_V1BETA1}
_ACCEPT_MEMO = 256
"""Distinct Accept headers remembered (the memo is cleared when full: arbitrary headers cannot grow it)."""
SWEEP_STEP = 1000
"""Items of dropped caches freed per step of the sweeper task (`steps.Sweeper`; ~0.5-1 ms)."""
MAX_CACHED_LISTS = 16
"""Lists without selectors kept (`api.listcache`), least recently used dropped: all pods, all nodes
and the namespaces listed most recently."""


_LIST_KINDS = {"nodes": "NodeMetricsList", "pods": "PodMetricsList"}


def _by_name(pair: tuple[NodeInfo | PodInfo, object]) -> str:
    return pair[0].name


class ResourceApi:
    """The resource handlers. Holds read-only inputs and two caches: encoded fragments per snapshot
    and label indexes per namespace (`api.podindex`)."""

    def __init__(
        self,
        nodes: NodeLister,
        pods: PodLister,
        snapshot: Callable[[], Snapshot],
        serve_swap: bool,
        node_selector: LabelSelector,
        clock: Callable[[], float],
        observe_freshness: Callable[[float, Stamps], None] | None,
    ) -> None:
        self.nodes = nodes
        self.pods = pods
        self.snapshot = snapshot
        self.serve_swap = serve_swap
        self.node_selector = node_selector
        self.clock = clock
        self.observe_freshness = observe_freshness
        self.sweeper = Sweeper(SWEEP_STEP)
        self.cache = render.FragmentCache(on_trash=self.sweeper.wake)
        self.indexes = PodIndexes()
        self.lists: dict[ListKey, listcache.CachedList] = {}
        self.refresher = ListRefresher(self._refresh_list, on_switch=self._switched)
        self._building: dict[ListKey, tuple[Snapshot, trio.Event]] = {}
        """Cached lists being built, by key: the snapshot and an event set when it is done."""
        self.now = render.Clock()
        self._accept: dict[str | None, str | None] = {}
        self._pb_timestamps: list[int] = []

    def negotiate(self) -> str | None:
        """`negotiate(Accept, _TABLES)`, memoised by header value (clients repeat theirs)."""
        header = request.headers.get("Accept")
        try:
            return self._accept[header]
        except KeyError:
            pass
        rep = neg.negotiate(header, _TABLES)
        if len(self._accept) >= _ACCEPT_MEMO:
            self._accept.clear()
        self._accept[header] = rep
        return rep

    async def list_resource(
        self, op: OperationChecks, resource: str, namespace: str | None, path_params: Mapping[str, str]
    ) -> Response:
        rep = self.negotiate()
        if rep is None:
            return status_response(neg.rejection(request.headers.get("Accept"), streams=True), 406)
        err = rep if rep in neg.ENCODINGS else neg.JSON  # errors: a Table client gets JSON
        bad = param_error(op, path_params, err)
        if bad is not None:
            return bad
        query = query_args()
        try:
            label = parse_label_selector(query.get("labelSelector", [""])[0])
            fields = parse_field_selector(query.get("fieldSelector", [""])[0])
        except SelectorError as exc:
            return status_response(status.bad_request(str(exc)), 400, err)
        watch = is_watch(query)
        errors = list_option_errors(query, watch)
        if errors:
            return status_response(status.invalid("ListOptions", "meta.k8s.io", "", errors), 422, err)
        try:
            check_fields(fields, POD_FIELDS if resource == "pods" else NODE_FIELDS)
        except SelectorError as exc:
            return status_response(status.bad_request(str(exc)), 400, err)
        if watch:
            return status_response(status.method_not_supported(resource, GROUP, "watch"), 405, err)
        include = render.INCLUDE_METADATA
        if rep not in neg.ENCODINGS:
            include = query.get("includeObject", [render.INCLUDE_METADATA])[0] or render.INCLUDE_METADATA
            if include not in (render.INCLUDE_NONE, render.INCLUDE_METADATA, render.INCLUDE_OBJECT):
                return status_response(bad_include(include), 400)

        snap = cast(Snapshot, self.refresher.serving(self.snapshot()))
        now_s = self.clock()
        kind = "NodeMetrics" if resource == "nodes" else "PodMetrics"
        cacheable = rep == neg.JSON and label.empty and fields.empty
        if cacheable:
            self.refresher.want((resource, namespace))
            try:
                cached = await self._cached_list(snap, resource, namespace)
            except Exception as exc:
                return status_response(status.internal_error(f"failed listing {resource}: {exc}"), 500, err)
            if self.observe_freshness is not None:
                self.observe_freshness(now_s, cached.stamps)
            return await self._respond(
                cached.pieces(self.now.now_bytes(now_s)), neg.CONTENT_TYPES[rep], cached.stamps.size
            )
        pb = rep == neg.PROTOBUF
        try:
            if resource == "nodes":
                fragments = await self._node_fragments(snap, label, fields, pb)
            else:
                fragments = await self._pod_fragments(snap, namespace, label, fields, pb)
        except Exception as exc:
            return status_response(status.internal_error(f"failed listing {resource}: {exc}"), 500, err)
        if pb:
            self._observe_pb(now_s, fragments)
            pieces = protobuf.list_pieces(f"{kind}List", fragments, protobuf.now_varint(now_s), render.CHUNK)
            return await self._respond(pieces, protobuf.CONTENT_TYPE, len(fragments))
        if self.observe_freshness is not None:
            counts: Counter[int] = Counter()
            for start in range(0, len(fragments), render.CHUNK):
                listcache.count_stamps(counts, fragments[start : start + render.CHUNK])
                await defer()
            self.observe_freshness(now_s, listcache.stamps_of(counts))
        now = self.now.now_bytes(now_s)
        if rep == neg.YAML:
            body = yamlenc.from_json(b"".join(render.list_pieces(f"{kind}List", fragments, now)))
            return Response(body, status=200, content_type=yamlenc.CONTENT_TYPE)
        if rep == neg.JSON:
            pieces = render.list_pieces(f"{kind}List", fragments, now)
        else:
            version = "v1" if rep == neg.TABLE_V1 else "v1beta1"
            pieces = render.table_pieces(version, kind, fragments, now, include)
        return await self._respond(pieces, neg.CONTENT_TYPES[rep], len(fragments))

    async def get_resource(
        self,
        op: OperationChecks,
        resource: str,
        namespace: str | None,
        name: str,
        path_params: Mapping[str, str],
    ) -> Response:
        rep = self.negotiate()
        if rep is None:
            return status_response(neg.rejection(request.headers.get("Accept")), 406)
        err = rep if rep in neg.ENCODINGS else neg.JSON
        bad = param_error(op, path_params, err)
        if bad is not None:
            return bad
        include = render.INCLUDE_METADATA
        if rep not in neg.ENCODINGS:
            include = request.args.get("includeObject") or render.INCLUDE_METADATA
            if include not in (render.INCLUDE_NONE, render.INCLUDE_METADATA, render.INCLUDE_OBJECT):
                return status_response(bad_include(include), 400)
        snap = cast(Snapshot, self.refresher.serving(self.snapshot()))
        now_s = self.clock()
        fragment: render.Fragment
        pb: protobuf.Fragment = (b"", b"", b"")
        try:
            if resource == "nodes":
                node = self.nodes.get(name)
                if node is None:
                    return status_response(status.not_found("node", name), 404, err)
                node_usage = snap.node(name)
                if node_usage is None:
                    return status_response(status.not_found("nodemetrics", name, group=GROUP), 404, err)
                gen = self.cache.generation(snap)
                fragment = render.cached_node_fragment(gen, node, node_usage, self.serve_swap)
                if rep == neg.PROTOBUF:
                    pb = protobuf.cached_node_fragment(gen, node, node_usage, self.serve_swap)
                kind = "NodeMetrics"
            else:
                assert namespace is not None
                pod = self.pods.get(namespace, name)
                if pod is None:
                    return status_response(status.not_found("pods", name), 404, err)
                pod_usage = snap.pod(namespace, name)
                if pod_usage is None:
                    return status_response(
                        status.not_found("podmetrics", f"{namespace}/{name}", group=GROUP), 404, err
                    )
                gen = self.cache.generation(snap)
                fragment = render.cached_pod_fragment(gen, pod, pod_usage, self.serve_swap)
                if rep == neg.PROTOBUF:
                    pb = protobuf.cached_pod_fragment(gen, pod, pod_usage, self.serve_swap)
                kind = "PodMetrics"
        except Exception as exc:
            return status_response(
                status.internal_error(f"failed getting {resource} {name}: {exc}"), 500, err
            )
        if self.observe_freshness is not None:
            self.observe_freshness(now_s, one_stamp(fragment[render.TIMESTAMP] / 1e9))
        now = self.now.now_bytes(now_s)
        if rep == neg.PROTOBUF:
            body = protobuf.object_body(kind, pb, protobuf.now_varint(now_s))
            return Response(body, status=200, content_type=protobuf.CONTENT_TYPE)
        if rep in (neg.JSON, neg.YAML):
            body = render.object_body(kind, fragment, now)
            if rep == neg.YAML:
                return Response(yamlenc.from_json(body), status=200, content_type=yamlenc.CONTENT_TYPE)
        else:
            version = "v1" if rep == neg.TABLE_V1 else "v1beta1"
            body = b"".join(render.table_pieces(version, kind, [fragment], now, include))
        if pretty():
            body = indent(body)
        return Response(body, status=200, content_type=neg.CONTENT_TYPES[rep])

    async def _cached_list(
        self, snap: Snapshot, resource: str, namespace: str | None, *, background: bool = False
    ) -> listcache.CachedList:
        """The JSON list without selectors of `resource` (in `namespace`), from `self.lists` when it
        is of this snapshot (or of the newest one) and of the lister's current state, else built
        (see `api.listcache`; in steps of `BACKGROUND_STEP_S` if `background`). While another task
        builds it for this snapshot, waits for that build and uses it if still valid."""
        key = (resource, namespace)
        while True:
            state = self._list_state(key)
            entry = self.lists.get(key)
            if entry is not None and self._valid(entry, snap, state):
                self.lists[key] = self.lists.pop(key)  # most recently used last
                await defer()  # listing and comparing 150,000 pods is ~10 ms
                return entry
            building = self._building.get(key)
            if building is None or building[0] is not snap:
                break
            await building[1].wait()
        done = trio.Event()
        self._building[key] = (snap, done)
        try:
            return await self._list_entry(snap, key, state, entry, background)
        finally:
            if self._building.get(key) == (snap, done):
                del self._building[key]
            done.set()

    def _switched(self, serving: object, latest: object) -> None:
        """Requests are served `serving` from now on (`ListRefresher`): the caches of older
        snapshots go (fragments, and lists nobody asked for again), in sweeper steps."""
        self.cache.keep_only(serving, latest)
        for key, entry in list(self.lists.items()):
            if entry.snapshot is not serving and entry.snapshot is not latest:
                del self.lists[key]
                self.cache.discard(entry.chunks, render.CHUNK)
                self.cache.discard((entry.snapshot, entry.state), 1)

    def _list_state(self, key: ListKey) -> Sequence[NodeInfo] | Sequence[PodInfo]:
        resource, namespace = key
        return _as_sequence(self.nodes.list() if resource == "nodes" else self.pods.list(namespace))

    def _valid(self, entry: listcache.CachedList, snap: Snapshot, state: Sequence[object]) -> bool:
        """Whether `entry` may serve a request of `snap`: built from `snap` or from the newest
        snapshot (a rebuild that finished before the switch-over), for the lister's `state`."""
        return (entry.snapshot is snap or entry.snapshot is self.refresher.latest) and _same_state(
            entry, state
        )

    async def _refresh_list(self, snap: object, key: ListKey) -> None:
        """`_cached_list` for the refresher (`api.refresh`): in short steps while requests are
        served the previous snapshot, as fast as requests allow otherwise (they may wait for it)."""
        resource, namespace = key
        await self._cached_list(cast(Snapshot, snap), resource, namespace, background=self.refresher.holding)

    async def _list_entry(
        self,
        snap: Snapshot,
        key: ListKey,
        state: Sequence[NodeInfo] | Sequence[PodInfo],
        entry: listcache.CachedList | None,
        background: bool = False,
    ) -> listcache.CachedList:
        """Builds the list `key` of `snap` and `state`; `entry` is the cached one it replaces."""
        resource = key[0]
        same_state = entry is not None and _same_state(entry, state)
        order: Sequence[Any]
        if entry is not None and same_state:
            order = entry.order  # same objects, so the same selection and order: only usage is new
        elif resource == "nodes":
            nodes = [n for n in state if self.node_selector.empty or self.node_selector.matches(n.labels)]
            nodes.sort(key=NAME)
            order = nodes
        else:
            order = await sorted_pods(cast(Sequence[PodInfo], state))
        gen = self.cache.generation(snap)
        serve_swap = self.serve_swap
        fragment_of: Callable[[Any], render.Fragment | None]
        if resource == "nodes":
            node_usage = snap.node

            def fragment_of(info: NodeInfo) -> render.Fragment | None:
                usage = node_usage(info.name)
                return None if usage is None else render.cached_node_fragment(gen, info, usage, serve_swap)

        else:
            pod_usage = snap.pod

            def fragment_of(info: PodInfo) -> render.Fragment | None:
                usage = pod_usage(info.namespace, info.name)
                return None if usage is None else render.cached_pod_fragment(gen, info, usage, serve_swap)

        chunk = render.CHUNK
        chunks: list[tuple[bytes, ...]] = []
        stamps: Counter[int] = Counter()
        pending: list[render.Fragment] = []
        pacer = Pacer(BACKGROUND_STEP_S if background else STEP_S)
        for i, info in enumerate(order, 1):
            fragment = fragment_of(info)
            if fragment is not None:
                pending.append(fragment)
                if len(pending) == chunk:
                    chunks.append(listcache.chunk_pieces(pending, not chunks))
                    listcache.count_stamps(stamps, pending)
                    pending = []
            if i % CLOCK_EVERY == 0:
                await pacer.pace(i)
        if pending:
            chunks.append(listcache.chunk_pieces(pending, not chunks))
            listcache.count_stamps(stamps, pending)
        await defer()
        built = listcache.CachedList(
            snap, state, order, render.list_head(_LIST_KINDS[resource]), chunks, listcache.stamps_of(stamps)
        )
        self.refresher.sized(key, built.stamps.size)
        replaced = self.lists.pop(key, None)
        if (
            replaced is not None
            and replaced.snapshot is self.refresher.latest
            and snap is not replaced.snapshot
        ):
            # Built meanwhile for the newest snapshot: keep that one; this one serves its request.
            self.lists[key] = replaced
            return built
        self.lists[key] = built
        if replaced is not None:
            # 150,000 objects' pieces freed at once held the loop for ~10-30 ms: dropped in steps instead
            self.cache.discard(replaced.chunks, render.CHUNK)
            self.cache.discard((replaced.snapshot, replaced.state), 1)  # maybe their last references
        while len(self.lists) > MAX_CACHED_LISTS:
            self.cache.discard(self.lists.pop(next(iter(self.lists))).chunks, render.CHUNK)
        return built

    def _observe_pb(self, now_s: float, fragments: Sequence[Any]) -> None:
        """Freshness of protobuf fragments: their timestamps are in the selection's usages."""
        observe = self.observe_freshness
        if observe is not None:
            counts = Counter(ts // 1_000_000 for ts in self._pb_timestamps)
            observe(now_s, listcache.stamps_of(counts))
        self._pb_timestamps = []

    async def _node_fragments(
        self, snap: Snapshot, label: LabelSelector, fields: FieldSelector, pb: bool = False
    ) -> list[Any]:
        selected: list[tuple[NodeInfo, NodeUsage]] = []
        node_selector = self.node_selector
        for info in self.nodes.list():
            if not (node_selector.empty or node_selector.matches(info.labels)):
                continue
            if not (label.empty or label.matches(info.labels)):
                continue
            if not fields.empty and not fields.matches(_node_field_getter(info)):
                continue
            usage = snap.node(info.name)
            if usage is not None:
                selected.append((info, usage))
        selected.sort(key=_by_name)
        if pb:
            self._pb_timestamps = [usage[0] for _, usage in selected]
            gen = self.cache.generation(snap)
            swap = self.serve_swap
            return await chunked(protobuf.cached_node_fragment(gen, i, u, swap) for i, u in selected)
        return await chunked(render.node_fragments(self.cache, snap, selected, self.serve_swap))

    async def _pod_fragments(
        self,
        snap: Snapshot,
        namespace: str | None,
        label: LabelSelector,
        fields: FieldSelector,
        pb: bool = False,
    ) -> list[Any]:
        # An exact metadata.name term lets a list of one pod skip the scan (kubectl top pod --field-selector).
        exact_name = fields.exact("metadata.name") if namespace is not None else None
        candidates: Iterable[PodInfo]
        if exact_name is not None and namespace is not None:
            one = self.pods.get(namespace, exact_name)
            candidates = [one] if one is not None else []
        elif namespace is not None and indexable(label):
            # HPA-style `app=x[,...]` in one namespace: read only the pods carrying one named label.
            candidates = await self.indexes.select(namespace, self.pods.list(namespace), label)
        else:
            candidates = self.pods.list(namespace)
        matches = label.matcher()
        check_fields = not fields.empty
        # Selected pods by namespace; sorted per namespace below, which gives the order of sorting
        # by (namespace, name). Usage is looked up while rendering: pairing each pod with its usage
        # here would make 150,000 short-lived tuples whose release, in sorted order rather than
        # allocation order, alone held the event loop for ~30 ms.
        by_namespace: dict[str, list[PodInfo]] = {}
        count = 0
        for info in candidates:
            count += 1
            if count % render.CHUNK == 0:
                await defer()
            if not matches(info.labels):
                continue
            if check_fields and not fields.matches(_pod_field_getter(info)):
                continue
            group = by_namespace.get(info.namespace)
            if group is None:
                group = by_namespace[info.namespace] = []
            group.append(info)
        ordered = [await sorted_by_name(by_namespace[ns]) for ns in sorted(by_namespace)]
        lookup = snap.pod

        def with_usage() -> Iterator[tuple[PodInfo, PodUsageTuple]]:
            for group in ordered:
                for info in group:
                    usage = lookup(info.namespace, info.name)
                    if usage is not None:
                        yield info, usage

        if pb:
            pairs = list(with_usage())
            self._pb_timestamps = [usage[0] for _, usage in pairs]
            gen = self.cache.generation(snap)
            swap = self.serve_swap
            return await chunked(protobuf.cached_pod_fragment(gen, i, u, swap) for i, u in pairs)
        return await chunked(render.pod_fragments(self.cache, snap, with_usage(), self.serve_swap))

    async def _respond(self, pieces: Iterable[bytes], content_type: str, count: int) -> Response:
        """Produce the body piece by piece, yielding to the event loop every ~`steps.STEP_S` (`Pacer`).

        The body is complete before the status line is sent (with its Content-Length), which keeps
        error handling simple: nothing can fail afterwards. A large body is then handed to the
        server as its pieces (`Pieces`) rather than joined: joining 55 MB (150,000 pods) held the
        loop for ~35 ms, and the server encrypts and writes one part per step instead.
        """
        if count <= render.CHUNK:
            body = b"".join(pieces)
        else:
            parts: list[bytes] = []
            pacer = Pacer()
            for piece in pieces:
                parts.append(piece)
                await pacer.pace()
            await defer()
            if not pretty():
                return pieces_response(parts, content_type)
            body = b"".join(parts)
        if pretty():
            body = indent(body)
        return Response(body, status=200, content_type=content_type)


def _same_state(entry: listcache.CachedList, state: Sequence[object]) -> bool:
    """Whether `entry` was built from the lister's `state` (identity first: ~1 ms at 150,000 pods)."""
    return entry.state is state or entry.state == state


def _as_sequence(items: Iterable[Any]) -> Sequence[Any]:
    return items if isinstance(items, (tuple, list)) else tuple(items)


def _node_field_getter(info: NodeInfo) -> Callable[[str], str]:
    return lambda f: info.name if f == "metadata.name" else ""


def _pod_field_getter(info: PodInfo) -> Callable[[str], str]:
    def get(f: str) -> str:
        if f == "metadata.name":
            return info.name
        if f == "metadata.namespace":
            return info.namespace
        if f == "spec.nodeName":
            return info.node_name
        return ""

    return get
