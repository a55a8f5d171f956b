"""Where the server's memory goes at scale, measured in one process with no network.

`python -m bench.memory --nodes 5000 --pods-per-node 30 [--tracemalloc] [--json FILE]`

A child process (`--generate-into`, which imports the simulator) builds the cluster with
`kubesim` and writes what the server would receive: the node and running-pod list pages as the
simulated kube-apiserver serves them (500 objects a page) and two scrape cycles of
`/metrics/resource` bodies 15 s apart. The measuring process never imports the simulator; it
builds the server's long-lived structures the way the server builds them, one stage at a time:

1. the server's imports (`metrics_server.app`);
2. the node and pod caches, filled by the real `Informer` list path (`request_json`, then
   `NodeCache`/`PodCache` decoding) from an `httpx.MockTransport` that replays the pages;
3. the two-point `Storage`, fed two cycles of `NodeBatch`es from the real parser
   (`parse_resource_metrics`), published each time (so the snapshot of cycle 2 is live);
4. the API's `FragmentCache` with every node's and pod's fragment (what one all-pods and one
   all-nodes list leave behind), and the per-namespace label indexes an HPA in every namespace
   would build; the size of one all-pods list body is reported (transient, not kept);
5. the kubelet client's per-node state: one `httpx.AsyncClient` per node built as
   `scrape/kubelet.py` builds it (no connection opened), plus an estimate of one idle kept-alive
   TLS connection per node from client/server `SSLObject` pairs handshaken over memory BIOs.

After each stage it prints the RSS (VmRSS) and, with `--tracemalloc`, the Python heap the stage
added (tracing costs memory, so RSS figures of a `--tracemalloc` run are inflated: take RSS from a
run without it). At the end a reachability walk attributes every object to the first structure
that reaches it (`sys.getsizeof`, so allocator overhead is not included) and prints bytes per
pod / per container. The walk itself allocates: it runs after every RSS reading.

Measured 2026-11-27 (2-core VM shared with other jobs; the simulator's pods have unique
`pod-template-hash` labels, so the pod cache shares fewer label sets than a real cluster would):

| 5000 x 30 (150,000 pods, 200,791 containers) | RSS after, MiB | reachable, MiB | B/container |
|---|---|---|---|
| imports (`metrics_server.app`)                | 62             | -              | -           |
| node + pod caches (list pages decoded)       | 219 (+157)     | 4.2 + 75.8     | 22 + 396    |
| store cycle 1 / cycle 2 (+ snapshot)         | 331 / 527      | 173 + 57 + 5   | 905 + 299 + 27 |
| API fragment cache (every pod)               | 568            | 119            | 622         |
| API label indexes (5 namespaces)             | 568            | 15             | 77          |
| self-metrics (per-node series + 6.3 MiB text)| 591            | 15             | 78          |
| one httpx.AsyncClient per node (no socket)   | 606            | 10             | 53          |
| idle kept-alive TLS client connections       | (estimate) +332 | 68 KiB each (malloc) | -  |

Store row: points (pod_last/pod_prev dicts, Points, keys) + usages + snapshot dicts.
At 100 x 70 the same stages end at 98 MiB RSS, plus ~10 MiB for 100 TLS connections.
"""

from __future__ import annotations

import argparse
import gc
import struct
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from types import FunctionType, ModuleType
from typing import Any, BinaryIO

_LEN = struct.Struct(">I")
_TIME = struct.Struct(">Q")
PAGE_SIZE = 500
RESOLUTION_NS = 15 * 1_000_000_000
START_EPOCH_NS = 1_795_000_000 * 1_000_000_000


def rss_mib() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return 0.0


# --- data generation (child process: imports the simulator) -------------------------------------


def _write_record(out: BinaryIO, *parts: bytes) -> None:
    for part in parts:
        out.write(_LEN.pack(len(part)))
        out.write(part)


def generate(directory: Path, nodes: int, pods_per_node: int) -> None:
    """Write nodes.bin, pods.bin (list pages) and cycle-1.bin, cycle-2.bin (kubelet bodies)."""
    from k8s_metrics.fieldselectors import parse_field_selector
    from kubesim.clock import SimClock
    from kubesim.kubeletbodies import KubeletRenderer
    from kubesim.model import ClusterModel, ModelOptions
    from kubesim.store import Filter, ResourceStore, Store

    directory.mkdir(parents=True, exist_ok=True)
    clock = SimClock(START_EPOCH_NS)
    model = ClusterModel(ModelOptions(nodes=nodes, pods_per_node=pods_per_node), clock, Store())
    model.populate()

    def pages(rs: ResourceStore, flt: Filter, out: BinaryIO) -> None:
        token = ""
        while True:
            page = rs.list(flt, PAGE_SIZE, token)
            meta = b'"resourceVersion":"%d"' % page.rv
            if page.continue_token:
                meta += b',"continue":"%s"' % page.continue_token.encode()
            if page.remaining is not None:
                meta += b',"remainingItemCount":%d' % page.remaining
            head = b'{"kind":"%sList","apiVersion":"%s","metadata":{' % (
                rs.kind.encode(),
                rs.api_version.encode(),
            )
            body = b"".join([head, meta, b'},"items":[', b",".join(o.body for o in page.items), b"]}"])
            _write_record(out, body)
            token = page.continue_token
            if not token:
                return

    with open(directory / "nodes.bin", "wb") as out:
        pages(model.api_nodes, Filter(), out)
    running = Filter(fields=parse_field_selector("status.phase=Running"))
    with open(directory / "pods.bin", "wb") as out:
        pages(model.api_pods, running, out)
    renderers = [KubeletRenderer(model, node) for node in model.nodes.values()]
    for cycle in (1, 2):
        now = START_EPOCH_NS + cycle * RESOLUTION_NS
        with open(directory / f"cycle-{cycle}.bin", "wb") as out:
            for renderer in renderers:
                name = renderer.node.name.encode()
                _write_record(out, name, _TIME.pack(now), renderer.metrics_resource(now))


def _records(path: Path, arity: int) -> Iterator[list[bytes]]:
    with open(path, "rb") as f:
        while True:
            head = f.read(_LEN.size)
            if not head:
                return
            parts = [f.read(_LEN.unpack(head)[0])]
            for _ in range(arity - 1):
                (size,) = _LEN.unpack(f.read(_LEN.size))
                parts.append(f.read(size))
            yield parts


# --- measurement -------------------------------------------------------------------------------


class Stages:
    """Prints RSS (and traced heap) after each stage; keeps the rows for the JSON output."""

    def __init__(self, traced: bool) -> None:
        self.traced = traced
        self.rows: list[dict[str, Any]] = []
        self._rss = rss_mib()
        self._heap = self._traced()
        print(f"{'stage':44s} {'RSS MiB':>9s} {'+RSS':>8s} {'+heap MiB':>10s}  note")
        self.mark("interpreter + bench (stdlib only)")

    def _traced(self) -> int:
        import tracemalloc

        return tracemalloc.get_traced_memory()[0] if self.traced else 0

    def mark(self, stage: str, note: str = "") -> None:
        gc.collect()
        rss, heap = rss_mib(), self._traced()
        row = {"stage": stage, "rss_mib": round(rss, 1), "delta_rss_mib": round(rss - self._rss, 1)}
        heap_text = ""
        if self.traced:
            row["delta_heap_mib"] = round((heap - self._heap) / 2**20, 1)
            heap_text = f"{row['delta_heap_mib']:10.1f}"
        row["note"] = note
        self.rows.append(row)
        print(f"{stage:44s} {rss:9.1f} {rss - self._rss:+8.1f} {heap_text:>10s}  {note}", flush=True)
        self._rss, self._heap = rss, heap


def deep_size(roots: Iterable[object], seen: set[int]) -> tuple[int, int]:
    """(bytes, objects) reachable from `roots` and not in `seen` (which is updated).

    Types, modules and functions are not followed (they belong to the program, not the data)."""
    stack = list(roots)
    total = count = 0
    get_referents, getsizeof = gc.get_referents, sys.getsizeof
    skip = (type, ModuleType, FunctionType)
    while stack:
        obj = stack.pop()
        key = id(obj)
        if key in seen or isinstance(obj, skip):
            continue
        seen.add(key)
        total += getsizeof(obj)
        count += 1
        stack.extend(get_referents(obj))
    return total, count


def _pages_handler(nodes_file: Path, pods_file: Path) -> Callable[[Any], Any]:
    """An httpx MockTransport handler replaying the list pages in order (read from disk one by one)."""
    import httpx

    readers = {"/api/v1/nodes": _records(nodes_file, 1), "/api/v1/pods": _records(pods_file, 1)}

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.params.get("watch") == "true":
            return httpx.Response(200, content=b"")  # a watch that ends at once
        (body,) = next(readers[request.url.path])
        return httpx.Response(200, content=body, headers={"Content-Type": "application/json"})

    return handler


def fill_caches(nodes_file: Path, pods_file: Path) -> Any:
    import httpx
    import trio

    from metrics_server.kube.caches import KubeCaches
    from metrics_server.kube.informer import InformerConfig

    async def main() -> KubeCaches:
        transport = httpx.MockTransport(_pages_handler(nodes_file, pods_file))
        async with httpx.AsyncClient(transport=transport, base_url="https://apiserver.invalid") as client:
            caches = KubeCaches(client, InformerConfig(page_size=PAGE_SIZE, backoff_initial=30.0))
            async with trio.open_nursery() as nursery:
                await nursery.start(caches.run)
                await caches.wait_synced()
                nursery.cancel_scope.cancel()
        return caches

    return trio.run(main)


def store_cycles(storage: Any, cycle_files: list[Path]) -> tuple[int, int]:
    """Parse and store each cycle; returns (body bytes, batches) of the last cycle."""
    from metrics_server.scrape.prometheus import parse_resource_metrics

    body_bytes = batches = 0
    for path in cycle_files:
        body_bytes = batches = 0
        now = 0
        cycle = None
        for name_b, time_b, body in _records(path, 3):
            (now,) = _TIME.unpack(time_b)
            if cycle is None:
                cycle = storage.begin(now)
            cycle.add(parse_resource_metrics(body, node=name_b.decode(), request_time_ns=now))
            body_bytes += len(body)
            batches += 1
        assert cycle is not None
        cycle.publish((), now_ns=now)
    return body_bytes, batches


def build_fragments(caches: Any, snapshot: Any) -> tuple[Any, int]:
    """Every node's and pod's fragment in the API's `FragmentCache`, as one all-nodes and one
    all-pods list leave it; returns the cache and the size of the all-pods list body (the body is
    not kept here; the API's whole-list cache, when present, keeps about that much per list)."""
    from metrics_server.api import render

    cache = render.FragmentCache()
    gen = cache.generation(snapshot)
    # The API's one-object forms (render.py is being reworked: fall back to the plain encoders).
    node_fragment = getattr(render, "cached_node_fragment", None) or (
        lambda g, info, usage, swap: render.node_fragment(info, usage, swap, g)
    )
    pod_fragment = getattr(render, "cached_pod_fragment", None) or (
        lambda g, info, usage, swap: render.pod_fragment(info, usage, swap, g)
    )
    for info in sorted(caches.nodes.list(), key=lambda n: n.name):
        usage = snapshot.node(info.name)
        if usage is not None:
            node_fragment(gen, info, usage, False)
    fragments = []
    for info in sorted(caches.pods.list(), key=lambda p: (p.namespace, p.name)):
        usage = snapshot.pod(info.namespace, info.name)
        if usage is not None:
            fragments.append(pod_fragment(gen, info, usage, False))
    size = sum(len(piece) for piece in render.list_pieces("PodMetricsList", fragments, render.now_bytes(0)))
    return cache, size


def build_indexes(caches: Any) -> Any:
    """One label index per namespace, as an `app=<value>` HPA in each namespace builds them."""
    import trio

    from k8s_metrics.selectors import parse_label_selector
    from metrics_server.api.podindex import PodIndexes

    indexes = PodIndexes()

    async def main() -> None:
        for namespace in caches.pods.namespaces():
            pods = caches.pods.list(namespace)
            app = next((p.labels["app"] for p in pods if "app" in p.labels), "none")
            await indexes.select(namespace, pods, parse_label_selector(f"app={app}"))

    trio.run(main)
    return indexes


def build_selfmetrics(caches: Any) -> tuple[Any, bytes]:
    """The self-metrics after two scrapes of every node, and one rendered exposition."""
    import prometheus_client

    from metrics_server.selfmetrics import SelfMetrics, exposition

    registry = prometheus_client.CollectorRegistry(auto_describe=True)
    metrics = SelfMetrics(registry, RESOLUTION_NS / 1e9)
    now = START_EPOCH_NS / 1e9
    for node in caches.nodes.list():
        for i in range(2):
            metrics.record_kubelet_request(node.name, success=True, duration_s=0.01 * i, now_unix_s=now)
    return metrics, exposition(registry)


def kubelet_clients(nodes: int) -> list[Any]:
    """`httpx.AsyncClient`s configured as `KubeletClient._connection` configures them."""
    import ssl

    import httpx

    ctx = ssl.create_default_context()
    return [
        httpx.AsyncClient(
            verify=ctx,
            headers={"User-Agent": "metrics-server/bench (python)"},
            limits=httpx.Limits(max_connections=2, max_keepalive_connections=2, keepalive_expiry=60.0),
            timeout=None,
            follow_redirects=False,
            trust_env=False,
        )
        for _ in range(nodes)
    ]


def _malloc_in_use() -> int | None:
    """Bytes in use from glibc's malloc (OpenSSL allocates there, out of tracemalloc's sight)."""
    import ctypes

    class MallInfo2(ctypes.Structure):
        _fields_ = [
            (name, ctypes.c_size_t)
            for name in [
                "arena",
                "ordblks",
                "smblks",
                "hblks",
                "hblkhd",
                "usmblks",
                "fsmblks",
                "uordblks",
                "fordblks",
                "keepcost",
            ]
        ]

    try:
        libc = ctypes.CDLL("libc.so.6")
        libc.mallinfo2.restype = MallInfo2
    except (OSError, AttributeError):
        return None
    info = libc.mallinfo2()
    return int(info.uordblks + info.hblkhd)


def tls_connection_bytes(body_size: int, samples: int = 300) -> float:
    """Memory of one idle kept-alive TLS client connection (memory BIOs, no sockets).

    Each sample is a full TLS handshake with a trustme CA, one request and one `body_size`
    response read to the end, as a scrape leaves a connection. Only the client side is kept:
    the `SSLObject` (OpenSSL's SSL with its buffers, session and peer certificate) and its BIOs,
    counted as malloc's in-use bytes (RSS when mallinfo2 is missing). httpcore's objects around
    a connection are not included (a few KB)."""
    import ssl

    import trustme

    ca = trustme.CA()
    server_ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ca.issue_cert("127.0.0.1").configure_cert(server_ctx)
    client_ctx = ssl.create_default_context()
    ca.configure_trust(client_ctx)
    response = b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n" % body_size + b"x" * body_size

    def step(side: ssl.SSLObject) -> bool:
        try:
            side.do_handshake()
        except ssl.SSLWantReadError:
            return False
        return True

    def connection() -> tuple[ssl.SSLObject, ssl.MemoryBIO, ssl.MemoryBIO]:
        c_in, c_out, s_in, s_out = ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO(), ssl.MemoryBIO()
        client = client_ctx.wrap_bio(c_in, c_out, server_hostname="127.0.0.1")
        server = server_ctx.wrap_bio(s_in, s_out, server_side=True)
        done_c = done_s = False
        while not (done_c and done_s):
            done_c = done_c or step(client)
            done_s = done_s or step(server)
            s_in.write(c_out.read())
            c_in.write(s_out.read())
        client.write(b"GET /metrics/resource HTTP/1.1\r\n\r\n")
        s_in.write(c_out.read())
        server.read(65536)
        server.write(response)
        c_in.write(s_out.read())
        received = 0
        while received < len(response):
            received += len(client.read(65536))
        return client, c_in, c_out

    connection()  # warm-up: lazily loaded OpenSSL state
    gc.collect()
    before, before_rss = _malloc_in_use(), rss_mib()
    kept = [connection() for _ in range(samples)]
    gc.collect()
    after = _malloc_in_use()
    if before is None or after is None:
        per = (rss_mib() - before_rss) * 2**20 / samples
    else:
        per = (after - before) / samples
    del kept
    return per


def measure(args: argparse.Namespace) -> dict[str, Any]:
    if args.tracemalloc:
        import tracemalloc

        tracemalloc.start()
    stages = Stages(args.tracemalloc)
    data = Path(args.data)
    if not (data / "cycle-2.bin").exists():
        t0 = time.monotonic()
        subprocess.run(
            [
                sys.executable,
                "-m",
                "bench.memory",
                "--generate-into",
                str(data),
                "--nodes",
                str(args.nodes),
                "--pods-per-node",
                str(args.pods_per_node),
            ],
            check=True,
        )
        print(f"(generated the cluster's data in a child process: {time.monotonic() - t0:.0f} s)")

    import metrics_server.app  # the server's whole import footprint
    from metrics_server.api.render import FragmentCache  # noqa: F401
    from metrics_server.scrape.prometheus import parse_resource_metrics  # noqa: F401
    from metrics_server.storage.store import Storage

    metrics_server.app._tune_gc()  # as the process entry does: freeze, then the server's thresholds
    stages.mark("import metrics_server.app (+ render, parser)")

    caches = fill_caches(data / "nodes.bin", data / "pods.bin")
    n_nodes, n_pods = len(caches.nodes), len(caches.pods)
    # What the server's on_synced freeze would have made permanent without a collection first.
    cpu = time.process_time()
    pending = gc.collect()
    cpu = time.process_time() - cpu
    stages.mark(
        "node + pod caches (informer list path)",
        f"{n_nodes} nodes, {n_pods} pods; {pending} cyclic garbage objects pending "
        f"(full collection {cpu * 1000:.0f} ms CPU)",
    )
    gc.freeze()  # on_synced

    storage = Storage(staleness_ns=2 * RESOLUTION_NS, resolution_ns=RESOLUTION_NS)
    store_cycles(storage, [data / "cycle-1.bin"])
    stages.mark("store: cycle 1 (points only, no rates yet)")
    body_bytes, batches = store_cycles(storage, [data / "cycle-2.bin"])
    nodes_served, containers_served = storage.points()
    snapshot = storage.snapshot()
    pods_served = len(snapshot.pods)
    stages.mark(
        "store: cycle 2 (points + published snapshot)",
        f"{nodes_served} nodes, {pods_served} pods, {containers_served} containers served; "
        f"kubelet bodies {body_bytes / 2**20:.0f} MiB/cycle (transient)",
    )

    fragment_cache, list_size = build_fragments(caches, snapshot)
    stages.mark("API fragment cache (every node and pod)", f"all-pods list body {list_size / 2**20:.1f} MiB")
    indexes = build_indexes(caches)
    stages.mark("API label indexes (one HPA per namespace)", f"{len(indexes)} namespaces")

    selfmetrics = build_selfmetrics(caches)
    stages.mark(
        "self-metrics: per-node series + /metrics text", f"{len(selfmetrics[1]) / 2**20:.1f} MiB text"
    )

    clients = kubelet_clients(n_nodes)
    stages.mark("kubelet client: one httpx.AsyncClient per node", "no connection opened")
    tls_per_conn = tls_connection_bytes(body_bytes // max(batches, 1))
    stages.mark(
        "(TLS estimate scratch, freed)",
        f"~{tls_per_conn / 1024:.1f} KiB per idle TLS client connection (malloc) -> "
        f"~{tls_per_conn * n_nodes / 2**20:.0f} MiB for {n_nodes} kept-alive kubelet connections",
    )
    final_rss = rss_mib()

    # Attribution walk (allocates: after every RSS reading). The order decides who owns shared
    # objects: caches first (interned names, label sets), then the store, the snapshot, the API.
    seen: set[int] = set()
    # Every root stays referenced until the walk ends: `seen` holds ids, which a freed object's
    # successor could reuse.
    program = [sys.modules, gc.get_referents(sys.modules)]
    deep_size(program, seen)  # program objects, not data
    containers = max(containers_served, 1)
    pods = max(n_pods, 1)
    walk: list[tuple[str, list[object]]] = [
        ("node cache (NodeInfo, labels, addresses)", [caches.nodes]),
        ("pod cache (PodInfo, labels, names, uids)", [caches.pods]),
        ("store: points (pod_last/pod_prev dicts, Points, keys)", [_points(storage)]),
        ("store: usages (pod_usage dicts, PodUsage, ...)", [_usages(storage)]),
        ("store: per-node state records", [storage._states]),
        ("snapshot dicts (keys -> usages)", [snapshot.pods, snapshot.nodes]),
        ("API fragment cache", [fragment_cache]),
        ("API label indexes", [indexes]),
        ("self-metrics (per-node series, rendered text)", [selfmetrics]),
        ("kubelet httpx.AsyncClient per node", [clients]),
    ]
    head = f"{'MiB':>8s} {'objects':>10s} {'B/pod':>7s} {'B/cont':>7s}"
    print(f"\n{'structure (sys.getsizeof walk)':52s} {head}")
    sizes: list[dict[str, Any]] = []
    for label, roots in walk:
        size, count = deep_size(roots, seen)
        sizes.append({"structure": label, "bytes": size, "objects": count})
        print(
            f"{label:52s} {size / 2**20:8.1f} {count:10d} {size / pods:7.0f} {size / containers:7.0f}",
            flush=True,
        )
    return {
        "nodes": n_nodes,
        "pods": n_pods,
        "containers_served": containers_served,
        "rss_final_mib": round(final_rss, 1),
        "stages": stages.rows,
        "structures": sizes,
        "tls_bytes_per_connection": round(tls_per_conn),
        "all_pods_list_bytes": list_size,
    }


def _points(storage: Any) -> list[object]:
    out: list[object] = []
    for state in storage._states.values():
        out += [state.node_last, state.node_prev, state.pod_last, state.pod_prev]
    return out


def _usages(storage: Any) -> list[object]:
    out: list[object] = []
    for state in storage._states.values():
        out += [state.node_usage, state.pod_usage]
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.memory", description=__doc__.split("\n\n")[0])
    p.add_argument("--nodes", type=int, default=5000)
    p.add_argument("--pods-per-node", type=int, default=30)
    p.add_argument("--tracemalloc", action="store_true", help="also report the traced Python heap per stage")
    p.add_argument("--data", default="", help="reuse (or create) the generated data in this directory")
    p.add_argument("--json", default="", help="write the figures to this file")
    p.add_argument("--generate-into", default="", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.generate_into:
        import trio

        async def run_generate() -> None:  # the simulator's clock reads trio's
            generate(Path(args.generate_into), args.nodes, args.pods_per_node)

        trio.run(run_generate)
        return 0
    if args.data:
        result = measure(args)
    else:  # ~0.6 GB of generated data at 5000 x 30: not left behind
        import shutil

        data = tempfile.mkdtemp(prefix="bench-memory-")
        try:
            result = measure(argparse.Namespace(**{**vars(args), "data": data}))
        finally:
            shutil.rmtree(data, ignore_errors=True)
    if args.json:
        import json

        Path(args.json).write_text(json.dumps(result, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
