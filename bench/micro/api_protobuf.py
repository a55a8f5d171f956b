"""Size and encoding cost of an all-pods list in JSON and in protobuf (not a test; run by hand).

    .venv/bin/python -m bench.micro.api_protobuf [nodes] [pods-per-node]

Offline: builds `nodes x pods` pods (2 containers, 3 labels each, kubesim-like names and values)
and encodes the whole `PodMetricsList` with the server's encoders (`api.render`, `api.protobuf`),
cold (a new snapshot: every object encoded) and warm (fragments cached), and gzip-compressed
sizes for reference. Prints one line per figure.
"""

from __future__ import annotations

import gzip
import sys
import time

from metrics_server.api import protobuf, render
from metrics_server.kube.objects import PodInfo


def main(nodes: int = 5000, per_node: int = 30) -> None:
    infos, usages = [], []
    ts = 1_796_531_578_000_000_000
    for n in range(nodes):
        for p in range(per_node):
            name = f"app-{n % 97}-7d9f8c6b5-{n:05d}{p:02d}"
            labels = {"app": f"app-{n % 97}", "pod-template-hash": "7d9f8c6b5", "tier": "backend"}
            infos.append(PodInfo(f"ns-{(n * per_node + p) % 50}", name, "", labels, f"node-{n}"))
            containers = (
                ("app", 123_456_789 + p, 268_435_456 + 4096 * p, None),
                ("istio-proxy", 4_567_890, 41_943_040, None),
            )
            usages.append((ts, 15_000_000_000, containers))
    pairs = list(zip(infos, usages, strict=True))
    now = render.now_bytes(ts / 1e9)
    now_pb = protobuf.now_varint(ts / 1e9)
    for label, cold in (("cold", True), ("warm", False)):
        cache = render.FragmentCache()
        snap = object()
        if not cold:
            list(render.pod_fragments(cache, snap, pairs, False))  # fill the cache
            gen = cache.generation(snap)
            [protobuf.cached_pod_fragment(gen, i, u, False) for i, u in pairs]
        t0 = time.process_time()
        fragments = list(render.pod_fragments(cache, snap, pairs, False))
        json_body = b"".join(render.list_pieces("PodMetricsList", fragments, now))
        t1 = time.process_time()
        gen = cache.generation(snap)
        pb_fragments = [protobuf.cached_pod_fragment(gen, i, u, False) for i, u in pairs]
        pb_body = b"".join(protobuf.list_pieces("PodMetricsList", pb_fragments, now_pb, render.CHUNK))
        t2 = time.process_time()
        print(
            f"{nodes} x {per_node} ({len(pairs)} pods) {label}: JSON {len(json_body) / 2**20:.1f} MiB in "
            f"{t1 - t0:.2f} s CPU, protobuf {len(pb_body) / 2**20:.1f} MiB in {t2 - t1:.2f} s CPU "
            f"(size {len(pb_body) / len(json_body):.2f} of JSON)"
        )
    print(
        f"gzip -1: JSON {len(gzip.compress(json_body, 1)) / 2**20:.1f} MiB, "
        f"protobuf {len(gzip.compress(pb_body, 1)) / 2**20:.1f} MiB"
    )


if __name__ == "__main__":
    main(*(int(a) for a in sys.argv[1:3]))
