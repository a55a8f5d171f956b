"""The node and running-pod caches the server scrapes and serves from, with their informers.

Health checks (metrics-server names):
- `metric-informer-sync` (readyz): `KubeCaches.has_synced` (both caches listed once).
- `metadata-informer-sync` (healthz, livez, readyz): `KubeCaches.pods_synced` (the pod cache is
  the one metrics-server lists through its metadata informer factory).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import NoReturn

import httpx
import trio

from metrics_server.kube.informer import Informer, InformerConfig, InformerEvent, ResourceSpec
from metrics_server.kube.nodes import NodeCache
from metrics_server.kube.pods import RUNNING_FIELD_SELECTOR, PodCache


def node_spec(node_selector: str = "") -> ResourceSpec:
    return ResourceSpec(path="/api/v1/nodes", resource="nodes", label_selector=node_selector)


def pod_spec() -> ResourceSpec:
    return ResourceSpec(path="/api/v1/pods", resource="pods", field_selector=RUNNING_FIELD_SELECTOR)


class KubeCaches:
    """Owns `nodes` (a `NodeLister`) and `pods` (a `PodLister`) and keeps them current.

    `run()` starts both informers and returns only by cancellation; reads never block and
    return what is known now (empty before the first sync).
    """

    def __init__(
        self,
        client: httpx.AsyncClient,
        config: InformerConfig | None = None,
        *,
        rng: random.Random | None = None,
        observer: Callable[[InformerEvent], None] | None = None,
    ) -> None:
        cfg = config or InformerConfig()
        cfg.validate()
        self.nodes = NodeCache()
        self.pods = PodCache()
        rng = rng or random.Random()
        self.node_informer = Informer(
            client, node_spec(cfg.node_selector), self.nodes, cfg, rng=rng, observer=observer
        )
        self.pod_informer = Informer(client, pod_spec(), self.pods, cfg, rng=rng, observer=observer)

    @property
    def has_synced(self) -> bool:
        return self.node_informer.has_synced and self.pod_informer.has_synced

    @property
    def pods_synced(self) -> bool:
        return self.pod_informer.has_synced

    def not_synced_reason(self) -> str | None:
        """None when synced; otherwise which caches are missing and the latest error."""
        missing = [i for i in (self.node_informer, self.pod_informer) if not i.has_synced]
        if not missing:
            return None
        parts = []
        for informer in missing:
            err = informer.last_error
            parts.append(f"{informer.spec.resource} not synced" + (f" ({err})" if err else ""))
        return "; ".join(parts)

    async def wait_synced(self) -> None:
        await self.node_informer.wait_synced()
        await self.pod_informer.wait_synced()

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> NoReturn:
        async with trio.open_nursery() as nursery:
            await nursery.start(self.node_informer.run)
            await nursery.start(self.pod_informer.run)
            task_status.started()
            await trio.sleep_forever()
        raise AssertionError("unreachable")  # pragma: no cover
