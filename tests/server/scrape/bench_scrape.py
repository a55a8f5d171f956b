"""CPU cost of scrape cycles: N fake kubelets (another process) serving the 70-pod sample over TLS.

Run: `python tests/server/scrape/bench_scrape.py [--nodes 200] [--cycles 5]` from the repository
root. The fakes run in a child process so that only the scraper's CPU is measured
(`time.process_time()` of this process). Prints the cold cycle (TLS handshakes) and each warm
cycle (kept-alive connections), plus the parse-only share. Not collected by pytest.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import trio
import trustme

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[3]))
    from tests.server.scrape.fakes import SAMPLE_70_PODS, FakeKubelet, make_node, server_context
else:
    from .fakes import SAMPLE_70_PODS, FakeKubelet, make_node, server_context

from metrics_server.scrape.config import KubeletClientConfig
from metrics_server.scrape.kubelet import KubeletClient
from metrics_server.scrape.prometheus import parse_resource_metrics
from metrics_server.scrape.scraper import Scraper


def hosts(count: int) -> list[str]:
    return [f"127.0.{10 + i // 250}.{1 + i % 250}" for i in range(count)]


async def serve(count: int, ca_path: str) -> None:
    ca = trustme.CA()
    ca.cert_pem.write_to_path(ca_path)
    fakes = [FakeKubelet(host, server_context(ca, host)) for host in hosts(count)]
    async with trio.open_nursery() as nursery:
        for fake in fakes:
            await nursery.start(fake.serve)
        print(json.dumps([[f.host, f.port] for f in fakes]), flush=True)
        await trio.sleep_forever()


async def scrape(count: int, cycles: int, concurrency: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        ca_path = str(Path(tmp) / "ca.pem")
        child = subprocess.Popen(  # noqa: ASYNC220 (a benchmark: blocking once at start-up is fine)
            [sys.executable, __file__, "--serve", str(count), ca_path], stdout=subprocess.PIPE, text=True
        )
        try:
            assert child.stdout is not None
            endpoints = json.loads(child.stdout.readline())
            config = KubeletClientConfig(
                use_node_status_port=True,
                preferred_address_types=("InternalIP",),
                certificate_authority=ca_path,
                max_concurrency=concurrency,
            )
            config.validate()
            nodes = [make_node(f"node-{i}", host, port) for i, (host, port) in enumerate(endpoints)]
            async with KubeletClient(config) as client:
                scraper = Scraper(
                    client, request_timeout=10, max_concurrency=concurrency, jitter=lambda b: 0.0
                )
                for cycle in range(cycles + 1):
                    cpu0, wall0 = time.process_time(), time.perf_counter()
                    result = await scraper.scrape(nodes, trio.current_time() + 60)
                    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
                    kind = "cold" if cycle == 0 else "warm"
                    print(
                        f"cycle {cycle} ({kind}): {len(result.batches)} ok, {len(result.failed)} failed, "
                        f"wall {wall:.3f} s, CPU {cpu:.3f} s = {cpu / count * 1e3:.2f} ms/node"
                    )
        finally:
            child.terminate()
            child.wait()
    runs = 50
    cpu0 = time.process_time()
    for _ in range(runs):
        parse_resource_metrics(SAMPLE_70_PODS, node="n", request_time_ns=0)
    print(f"parse only: {(time.process_time() - cpu0) / runs * 1e3:.2f} ms/node (70-pod sample)")


def main() -> None:
    if len(sys.argv) == 4 and sys.argv[1] == "--serve":
        trio.run(serve, int(sys.argv[2]), sys.argv[3])
        return
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", type=int, default=200)
    parser.add_argument("--cycles", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=256)
    args = parser.parse_args()
    trio.run(scrape, args.nodes, args.cycles, args.concurrency)


if __name__ == "__main__":
    main()
