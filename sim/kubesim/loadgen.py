"""`python -m kubesim.loadgen`: scrape every kubelet of a running kubesim like a metrics server would.

Reads the node list from the apiserver with the metrics server's kubeconfig token, then every
`--interval` seconds fetches `/metrics/resource` from all nodes concurrently over keep-alive
HTTPS (verifying the cluster CA). Prints per-round wall time, failures and bytes: a load
generator for measuring the simulator's cost per request, not a test.
"""

from __future__ import annotations

import argparse
import ssl
import time
from pathlib import Path

import httpx
import trio
import yaml


async def amain(args: argparse.Namespace) -> None:
    state: Path = args.state_dir
    config = yaml.safe_load((state / "metrics-server.kubeconfig").read_text())
    server = config["clusters"][0]["cluster"]["server"]
    token = config["users"][0]["user"]["token"]
    ctx = ssl.create_default_context(cafile=str(state / "ca.crt"))
    limits = httpx.Limits(max_connections=None, max_keepalive_connections=None)
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(verify=ctx, headers=headers, limits=limits, timeout=30) as client:
        nodes = (await client.get(f"{server}/api/v1/nodes")).json()["items"]
        urls = []
        for n in nodes:
            ip = next(a["address"] for a in n["status"]["addresses"] if a["type"] == "InternalIP")
            urls.append(
                f"https://{ip}:{n['status']['daemonEndpoints']['kubeletEndpoint']['Port']}/metrics/resource"
            )
        print(f"{len(urls)} nodes", flush=True)
        limiter = trio.CapacityLimiter(args.concurrency)
        for round_no in range(args.rounds):
            start = time.monotonic()
            failures = 0
            total = 0

            async def one(url: str) -> None:
                nonlocal failures, total
                async with limiter:
                    try:
                        r = await client.get(url)
                        total += len(r.content)
                        failures += r.status_code != 200
                    except httpx.HTTPError:
                        failures += 1

            async with trio.open_nursery() as nursery:
                for url in urls:
                    nursery.start_soon(one, url)
            took = time.monotonic() - start
            print(f"round {round_no}: {took:.2f}s failures={failures} bytes={total}", flush=True)
            await trio.sleep(max(0.0, args.interval - took))


def main() -> None:
    p = argparse.ArgumentParser(prog="python -m kubesim.loadgen", description=__doc__)
    p.add_argument("--state-dir", type=Path, default=Path("kubesim-state"))
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--interval", type=float, default=15.0)
    p.add_argument("--concurrency", type=int, default=500)
    trio.run(amain, p.parse_args())


if __name__ == "__main__":
    main()
