"""Wiring: flags in, one trio nursery running everything the server does.

Data flows one way (see docs and the stage packages): `kube` (which nodes, which running pods) →
`scrape` (kubelet bodies → batches) → `storage` (points → rates, published per cycle) → `api`
(snapshots → JSON/Table), wrapped by `auth` (TLS, authentication, authorization).

`build(options)` turns validated flags into component configurations without touching the
network (so flag problems surface at start-up, naming the flag); `serve(options)` runs the
server under one nursery: the caches, the authentication ConfigMap watch, the scrape loop and
the HTTPS server. Unlike metrics-server, the HTTPS server starts before the caches have synced,
so probes answer (not ready, with the reason) while the apiserver is unreachable; the scrape
loop waits for the node cache. SIGTERM/SIGINT fail `/readyz` (`shutdown`), let open requests
finish, then cancel everything.
"""

from __future__ import annotations

import gc
import logging
import os
import signal
import sys
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import partial
from typing import cast

import httpx
import prometheus_client
import trio

from k8s_metrics.kubeconfig import ClusterConnection
from metrics_server import memory
from metrics_server.api.app import ApiOptions, create_app
from metrics_server.api.filters import LibraryHeaders
from metrics_server.api.health import HealthChecks
from metrics_server.asgi import ASGIApp, streamed
from metrics_server.auth.authconfig import AuthenticationConfigSource, AuthenticationOptions
from metrics_server.auth.authn import Authenticator
from metrics_server.auth.authz import Authorizer
from metrics_server.auth.connection import ConnectionMetrics
from metrics_server.auth.errors import AuthError
from metrics_server.auth.hsts import with_hsts
from metrics_server.auth.middleware import AuthMiddleware
from metrics_server.auth.requestmetrics import RequestMetrics
from metrics_server.auth.reviews import AccessReviewer, ReviewCacheOptions, TokenReviewer
from metrics_server.auth.serving import ServingConfig, serve_https
from metrics_server.kube.caches import KubeCaches
from metrics_server.kube.connection import load_connection, make_api_client
from metrics_server.kube.errors import KubeError
from metrics_server.kube.informer import InformerConfig
from metrics_server.kube.restmetrics import RestClientMetrics
from metrics_server.options import NS_PER_SECOND, Options
from metrics_server.priority import urgent_gets
from metrics_server.scrape.config import KubeletClientConfig, kubelet_ssl_context
from metrics_server.scrape.kubelet import KubeletClient
from metrics_server.scrape.loop import TIMELY_FAILURE_MESSAGE, ScrapeLoop
from metrics_server.scrape.scraper import Scraper
from metrics_server.selfmetrics import SelfMetrics
from metrics_server.shard.pool import WorkerPool
from metrics_server.shard.protocol import PROTOCOL_VERSION, Configure, NodeResult, kubelet_settings
from metrics_server.storage.store import Cycle, Storage

log = logging.getLogger(__name__)

STORAGE_NOT_READY = "no metrics to serve"


def _seconds(ns: int) -> float:
    return ns / NS_PER_SECOND


@dataclass(frozen=True)
class Components:
    """Every component's configuration, derived from the flags (no I/O beyond reading files)."""

    kubelet: KubeletClientConfig
    informer: InformerConfig
    authentication: AuthenticationOptions
    reviews: ReviewCacheOptions
    serving: ServingConfig
    api: ApiOptions
    resolution_s: float


def build(options: Options) -> Components:
    """Component configurations for `options`, each validated by its owner.

    Raises the owner's error (`scrape.config.ConfigError`, `kube.errors.OptionsError`,
    `auth.errors.ServingOptionsError`, `flagset.FlagError`), each of which names the flag.
    """
    options.validate()
    api = replace(options.api, node_selector=options.informer.node_selector)
    return Components(
        kubelet=options.kubelet,
        informer=options.informer,
        authentication=options.authentication,
        reviews=options.reviews,
        serving=options.serving.config(),
        api=api,
        resolution_s=options.server.metric_resolution_s,
    )


def _registry() -> tuple[prometheus_client.CollectorRegistry, Callable[[float], SelfMetrics]]:
    registry = prometheus_client.CollectorRegistry(auto_describe=True)
    prometheus_client.ProcessCollector(registry=registry)
    prometheus_client.PlatformCollector(registry=registry)
    prometheus_client.GCCollector(registry=registry)
    return registry, partial(SelfMetrics, registry)


async def serve(
    options: Options,
    *,
    components: Components | None = None,
    stop: trio.Event | None = None,
    on_synced: Callable[[], None] | None = None,
    task_status: trio.TaskStatus[list[str]] = trio.TASK_STATUS_IGNORED,
) -> None:
    """Run the server until `stop` is set (or a signal arrives, when `stop` is None).

    `task_status.started()` reports the HTTPS URLs. `on_synced()` runs once both caches are listed
    (the process entry point freezes the garbage collector's view of them there). Start-up
    errors (bad files, an unreachable authentication ConfigMap without
    --authentication-tolerate-lookup-failure) raise before `started()`.
    """
    c = components or build(options)
    # Loading may read files or run an exec credential plugin: keep it off the event loop.
    apiserver = await trio.to_thread.run_sync(load_connection, options.server.kubeconfig)
    authn_conn, authz_conn = apiserver, apiserver
    if options.authentication.kubeconfig:
        authn_conn = await trio.to_thread.run_sync(
            partial(load_connection, options.authentication.kubeconfig, flag="--authentication-kubeconfig")
        )
    if options.authorization.kubeconfig:
        authz_conn = await trio.to_thread.run_sync(
            partial(load_connection, options.authorization.kubeconfig, flag="--authorization-kubeconfig")
        )
    registry, make_metrics = _registry()
    rest_metrics = RestClientMetrics(registry)
    request_metrics = RequestMetrics(registry)
    kubelet_config = c.kubelet
    if kubelet_config.auth is None and not kubelet_config.deprecated_completely_insecure:
        kubelet_config = _with_auth(kubelet_config, apiserver.auth)

    async with (
        make_api_client(apiserver, metrics=rest_metrics) as api,
        _client_for(authn_conn, apiserver, api, rest_metrics) as authn_api,
        _client_for(authz_conn, apiserver, api, rest_metrics) as authz_api,
        KubeletClient(kubelet_config, ssl_context=kubelet_ssl_context(kubelet_config, apiserver)) as kubelets,
    ):
        caches = KubeCaches(api, c.informer)
        auth_source = AuthenticationConfigSource(
            c.authentication, None if c.authentication.skip_lookup else authn_api
        )
        authenticator = Authenticator(auth_source, TokenReviewer(authn_api, c.reviews))
        authorizer = Authorizer(
            AccessReviewer(authz_api, c.reviews),
            always_allow_paths=options.authorization.always_allow_paths,
        )
        storage = Storage(
            staleness_ns=options.server.staleness_ns, resolution_ns=options.server.metric_resolution_ns
        )
        metrics = make_metrics(c.resolution_s)
        connection_metrics = ConnectionMetrics(registry)
        scraping = _Scraping(options, c, kubelets, caches, storage, metrics, registry)
        shutting_down = trio.Event()
        health = HealthChecks.standard(
            metric_collection_timely=lambda: None if scraping.timely() else TIMELY_FAILURE_MESSAGE,
            metric_storage_ready=lambda: None if storage.ready() else STORAGE_NOT_READY,
            metric_informer_sync=caches.not_synced_reason,
            metadata_informer_sync=lambda: None if caches.pods_synced else "1 informers not started yet",
            shutdown=lambda: "process is shutting down" if shutting_down.is_set() else None,
        )
        app = create_app(
            nodes=caches.nodes,
            pods=caches.pods,
            snapshot=storage.snapshot,
            health=health,
            registry=registry,
            options=c.api,
            observe_freshness=metrics.observe_freshness,
        )
        served = streamed(
            urgent_gets(
                with_hsts(
                    LibraryHeaders(
                        AuthMiddleware(cast(ASGIApp, app), authenticator, authorizer, request_metrics)
                    ),
                    options.generic.strict_transport_security_directives,
                )
            )
        )
        handle_signals = stop is None
        if stop is None:
            stop = trio.Event()
        stop_serving = trio.Event()

        serving_done = trio.Event()

        async def serve_until_stopped(task_status: trio.TaskStatus[list[str]]) -> None:
            try:
                await serve_https(
                    served,
                    c.serving,
                    client_cas=auth_source,
                    connection_metrics=connection_metrics,
                    shutdown_trigger=stop_serving.wait,
                    task_status=task_status,
                )
            finally:
                serving_done.set()

        async with trio.open_nursery() as nursery:
            await nursery.start(caches.run)
            await nursery.start(auth_source.run)
            urls: list[str] = await nursery.start(serve_until_stopped)
            log.info("Serving securely", extra={"addresses": ",".join(urls)})
            nursery.start_soon(scraping.run, on_synced)
            if handle_signals:
                nursery.start_soon(_stop_on_signals, stop)
            task_status.started(urls)
            await stop.wait()
            await begin_shutdown(shutting_down, stop_serving, options.generic.shutdown_delay_ns)
            # hypercorn stops accepting, lets open requests finish (bounded by the serving
            # config's graceful timeout), then returns; only then are caches and scraping stopped.
            await serving_done.wait()
            nursery.cancel_scope.cancel()


async def begin_shutdown(shutting_down: trio.Event, stop_serving: trio.Event, delay_ns: int) -> None:
    """Fail /readyz at once; close the listener `delay_ns` later (--shutdown-delay-duration), so
    that load balancers and the aggregator stop sending requests first; open requests then finish
    (bounded by the serving config's graceful timeout)."""
    log.info("Shutting down: readyz fails from now on, open requests may finish")
    shutting_down.set()
    if delay_ns > 0:
        log.info("Serving on during --shutdown-delay-duration", extra={"delay_s": delay_ns / NS_PER_SECOND})
        await trio.sleep(delay_ns / NS_PER_SECOND)
    stop_serving.set()


def _with_auth(config: KubeletClientConfig, auth: httpx.Auth | None) -> KubeletClientConfig:
    return replace(config, auth=auth)


class _Borrowed:
    """An async context manager that lends an existing client without closing it."""

    def __init__(self, client: httpx.AsyncClient) -> None:
        self._client = client

    async def __aenter__(self) -> httpx.AsyncClient:
        return self._client

    async def __aexit__(self, *exc: object) -> None:
        return None


def _client_for(
    conn: ClusterConnection,
    apiserver: ClusterConnection,
    shared: httpx.AsyncClient,
    metrics: RestClientMetrics,
) -> httpx.AsyncClient | _Borrowed:
    return _Borrowed(shared) if conn is apiserver else make_api_client(conn, metrics=metrics)


class _Scraping:
    """The scrape side of the server: in this process (a `Scraper` over the shared kubelet
    client), or in `--scrape-workers` worker processes (`shard.pool.WorkerPool`), decided once the
    node cache has synced (`auto`: from the node count and the CPUs, `shard.config`). Either way
    one `ScrapeLoop` ticks and publishes into `storage`, and after each publish the freed memory
    goes back to the system (`memory.trim`)."""

    def __init__(
        self,
        options: Options,
        components: Components,
        kubelets: KubeletClient,
        caches: KubeCaches,
        storage: Storage,
        metrics: SelfMetrics,
        registry: prometheus_client.CollectorRegistry,
    ) -> None:
        self._options = options
        self._components = components
        self._kubelets = kubelets
        self._caches = caches
        self._storage = storage
        self._metrics = metrics
        self._registry = registry
        self.loop: ScrapeLoop | None = None
        self.workers = 0

    def timely(self) -> bool:
        return self.loop is None or self.loop.collection_timely()

    async def run(self, on_synced: Callable[[], None] | None) -> None:
        # As metrics-server: scraping starts once both caches are listed. Scraping an empty node
        # list would publish an empty store, and at 150,000 pods the first pod list competes with
        # the first scrape for the one core we have (measured in docs/performance.md).
        caches, c = self._caches, self._components
        await caches.wait_synced()
        if on_synced is not None:
            on_synced()
        self.workers = workers = self._options.shard.workers(len(list(caches.nodes.list())), _cpus())
        timeout = c.kubelet.request_timeout
        scraper: Scraper | WorkerPool
        if workers == 0:
            scraper = Scraper(
                self._kubelets,
                request_timeout=timeout,
                max_concurrency=c.kubelet.max_concurrency,
                metrics=self._metrics,
            )
        else:
            scraper = WorkerPool(
                workers,
                self._configure,
                request_timeout=timeout,
                metrics=self._metrics,
                niceness=self._options.shard.scrape_worker_niceness,
            )
            self._registry.register(scraper.collector())
        self.loop = ScrapeLoop(
            scraper=scraper,
            nodes=caches.nodes,
            storage=self._storage,
            resolution=c.resolution_s,
            metrics=self._metrics,
            ingest=_add_usages if workers else None,
            after_publish=_release_memory,
        )
        if not isinstance(scraper, WorkerPool):
            log.info("Caches synced; starting the scrape loop")
            await self.loop.run()
            return
        log.info("Caches synced; starting scrape workers", extra={"workers": workers})
        async with trio.open_nursery() as nursery:
            await nursery.start(scraper.run)
            await scraper.wait_started()
            await self.loop.run()

    def _configure(self, index: int) -> Configure:
        options = self._options
        return Configure(
            version=PROTOCOL_VERSION,
            worker=index,
            kubeconfig=options.server.kubeconfig,
            kubelet=kubelet_settings(self._components.kubelet),
            resolution_ns=options.server.metric_resolution_ns,
            staleness_ns=options.server.staleness_ns,
            log_format=options.logging.format,
            verbosity=options.logging.verbosity,
        )


def _cpus() -> int:
    """The CPUs this process may run on (its affinity mask; the CPU count where there is none)."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


async def _release_memory() -> None:
    # In a thread: at ~1 GiB of heap the walk takes ~20-30 ms, and ctypes lets the event loop
    # run meanwhile (allocations of Python's small objects do not need the malloc lock).
    await trio.to_thread.run_sync(memory.trim)


def _add_usages(cycle: Cycle) -> Callable[[NodeResult], None]:
    def add(result: NodeResult) -> None:
        cycle.add_usages(result.node, result.usage, result.pods, first=result.first)

    return add


async def _stop_on_signals(stop: trio.Event) -> None:
    with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT) as signals:
        async for signum in signals:
            log.info("Received signal, shutting down", extra={"signal": signal.Signals(signum).name})
            stop.set()
            return


def _tune_gc() -> None:
    # What survives a cycle at 5000 x 30 (store rows, usages, the API's fragments) is plain tuples
    # that the collector untracks on its first pass (storage.store `Storage._made`), so ~0.18M
    # objects stay tracked (pod infos, their static encodings, the big dicts) instead of ~2.3M.
    # Measured with bench/micro/storage_gc.py (store cycles + the all-pods list, 5000 x 30,
    # collector CPU per cycle / longest gen0-gen1 pause / full collection): (10_000, 10, 100)
    # 325-358 ms / 21-25 ms / 0.43 s, every ~10 cycles; (20_000, 10, 100) 327 ms / 47 ms;
    # (5_000, 10, 100) no less CPU, and full collections twice as often (docs/performance.md).
    # No periodic gc.freeze(): it would take the long-lived objects out of the full collections,
    # but the permanent generation is never collected, so any cyclic garbage frozen with them
    # (or a cycle they later become part of) would leak for good; only a full collection first
    # makes freezing safe, and that is the pause it would save. `_freeze` runs twice, at start-up
    # and after the informers' lists, each after a full collection.
    _freeze()
    gc.set_threshold(10_000, 10, 100)


def _freeze() -> None:
    """Move every live object to the collector's permanent generation, collecting first.

    Frozen objects are never examined again, so unreachable cycles frozen with them would never be
    freed (a leak for the process's lifetime): with the thresholds above a full collection is
    rare. Measured with `python -m bench.memory` (the informer list path, then this freeze): 144
    cyclic garbage objects pending after the lists at 100 x 70, 578 at 5000 x 30 (small: the
    leak was bounded, but it grows with whatever cycles the lists leave, e.g. a failed page's
    exception and traceback). The full collection costs 5 ms of CPU at 100 x 70 and ~0.4 s at
    5000 x 30, once, before scraping starts.
    """
    gc.collect()
    gc.freeze()


def run_server(options: Options) -> int:
    """Process entry point used by `cli.main`: returns the exit code."""
    try:
        components = build(options)
    except (ValueError, KubeError) as exc:  # every component error names its flag
        print(f"Error: {exc}", file=sys.stderr)
        return 2
    _tune_gc()
    failed = False
    try:
        # The cached objects live as long as their pods: once listed, keep them out of every GC
        # walk (a cold 150,000-pod list otherwise costs ~420 ms collector pauses,
        # bench/micro/api_encode.py).
        trio.run(partial(serve, options, components=components, stop=None, on_synced=_freeze))
    except* (KubeError, AuthError) as group:
        # Start-up problems with a clear cause (unreadable kubeconfig, ConfigMap lookup refused,
        # port in use): one log line each, no traceback.
        for error in group.exceptions:
            log.error("Start-up failed", extra={"err": str(error)})
        failed = True
    return 1 if failed else 0
