"""kube-aggregator for `metrics.k8s.io/v1beta1`: availability probing and the authenticating proxy.

Behaviour follows kube-aggregator (see apiserver-wire.md §1):

* Proxied requests carry the front-proxy client certificate, no Authorization header, and the
  caller's identity as `X-Remote-User`, one `X-Remote-Group` per group and
  `X-Remote-Extra-<escaped key>` per extra value; any such headers the client sent are removed.
  The query is re-encoded like Go's `url.Values.Encode` (keys sorted, space as `+`).
* The availability probe GETs `/apis/metrics.k8s.io/v1beta1` five times in parallel as
  `system:kube-aggregator` / `system:masters`, without verifying the server certificate, with a
  5 s timeout; any 2xx/3xx marks the APIService Available.
* When the APIService is not Available, or the backend cannot be reached, the reply is the
  plain-text 503 `service unavailable`.
* Aggregated discovery: after every availability check the backend's `/apis` is fetched with the
  aggregated-discovery Accept (falling back to `/apis/metrics.k8s.io/v1beta1` as
  `system:kube-aggregator` without groups) into `discovery`, which the apiserver's `/apis` serves
  (see `kubesim.discovery`).
"""

from __future__ import annotations

import logging
import ssl
from pathlib import Path
from typing import Any
from urllib.parse import quote_plus

import httpx
import orjson
import trio

from k8s_metrics.durations import parse_duration_ns

from . import discovery as agg_discovery
from .clock import NS_PER_S, SimClock
from .gofmt import rfc3339
from .httpserver import Request, Response
from .policy import User
from .responses import service_unavailable

log = logging.getLogger(__name__)

GROUP = "metrics.k8s.io"
VERSION = "v1beta1"
APISERVICE_NAME = f"{VERSION}.{GROUP}"
DISCOVERY_PATH = f"/apis/{GROUP}/{VERSION}"
SERVICE = ("kube-system", "metrics-server")

_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
    }
)
_TOKEN_CHARS = frozenset("!#$&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")


def escape_extra_key(key: str) -> str:
    """client-go's headerKeyEscape: bytes outside an HTTP token, and '%', become %XX (upper hex)."""
    return "".join(chr(b) if chr(b) in _TOKEN_CHARS else f"%{b:02X}" for b in key.encode())


def go_query_encode(params: dict[str, list[str]]) -> str:
    """Go's url.Values.Encode: keys sorted, values in order, QueryEscape (space -> '+')."""
    return "&".join(
        f"{quote_plus(k, safe='')}={quote_plus(v, safe='')}" for k in sorted(params) for v in params[k]
    )


def identity_headers(user: User, *, with_uid: bool = False) -> list[tuple[str, str]]:
    headers = [("X-Remote-User", user.name)]
    headers += [("X-Remote-Group", g) for g in user.groups]
    for key, values in user.extra.items():
        headers += [(f"X-Remote-Extra-{escape_extra_key(key)}", v) for v in values]
    if with_uid and user.uid:
        headers.append(("X-Remote-Uid", user.uid))
    return headers


def _is_stripped(name: str) -> bool:
    return (
        name in _HOP_BY_HOP
        or name == "authorization"
        or name.startswith("impersonate-")
        or name.startswith("x-remote-")
    )


class Aggregator:
    """The metrics.k8s.io APIService: its backend URL, Available condition, and proxy."""

    def __init__(
        self,
        clock: SimClock,
        aggregator_user: User,
        front_proxy_cert: Path,
        front_proxy_key: Path,
        *,
        backend_url: str | None = None,
        backend_ca: Path | None = None,
        probe_interval_s: float = 30.0,
        send_uid: bool = False,
    ) -> None:
        self._clock = clock
        self._user = aggregator_user
        self._cert = (str(front_proxy_cert), str(front_proxy_key))
        self._backend_ca = backend_ca
        self.backend_url = backend_url.rstrip("/") if backend_url else None
        self.probe_interval_s = probe_interval_s
        self.send_uid = send_uid
        self.available = False
        self.reason = "ServiceNotFound"
        self.message = f'service/{SERVICE[1]} in "{SERVICE[0]}" is not present'
        self.last_transition_ns = clock.now_ns()
        self.created_ns = clock.now_ns()
        self._wake = trio.Event()
        self._became_available = trio.Event()
        self._probed = trio.Event()
        self._proxy_client: httpx.AsyncClient | None = None
        self._probe_client: httpx.AsyncClient | None = None
        self.probes = 0
        self.discovery = agg_discovery.BackendDiscovery(None, "not fetched")

    # --- configuration -----------------------------------------------------------------

    def set_backend(self, url: str | None) -> None:
        """Point the APIService at another metrics server (or none) and re-probe at once."""
        self.backend_url = url.rstrip("/") if url else None
        self._wake.set()

    def _proxy_ssl(self) -> ssl.SSLContext:
        if self._backend_ca is not None:
            ctx = ssl.create_default_context(cafile=str(self._backend_ca))
            ctx.check_hostname = (
                False  # the aggregator dials an IP but verifies <svc>.<ns>.svc; we skip the name
            )
        else:  # insecureSkipTLSVerify: true, as metrics-server's own manifest sets
            ctx = ssl.create_default_context()
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        ctx.minimum_version = ssl.TLSVersion.TLSv1_2
        ctx.load_cert_chain(*self._cert)
        return ctx

    def _probe_ssl(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE  # the real probe does not verify either (kubernetes#135883)
        ctx.load_cert_chain(*self._cert)
        return ctx

    # --- availability ------------------------------------------------------------------

    def _set_condition(self, available: bool, reason: str, message: str) -> None:
        if available != self.available:
            self.last_transition_ns = self._clock.now_ns()
            if available:
                self._became_available.set()
            else:
                self._became_available = trio.Event()
        self.available, self.reason, self.message = available, reason, message

    async def wait_available(self) -> None:
        """Return once the APIService is Available."""
        while not self.available:
            await self._became_available.wait()

    async def wait_probe(self) -> None:
        """Return after the next availability check has updated the condition."""
        await self._probed.wait()

    async def probe_once(self) -> None:
        """One availability check (five parallel probes), updating the condition."""
        try:
            await self._probe()
        finally:
            self.probes += 1
            probed, self._probed = self._probed, trio.Event()
            probed.set()

    async def _probe(self) -> None:
        url = self.backend_url
        if url is None:
            self._set_condition(
                False, "ServiceNotFound", f'service/{SERVICE[1]} in "{SERVICE[0]}" is not present'
            )
            return
        assert self._probe_client is not None
        target = url + DISCOVERY_PATH
        errors: list[str] = []
        ok = False

        async def attempt() -> None:
            nonlocal ok
            try:
                resp = await self._probe_client.get(  # type: ignore[union-attr]
                    target, headers=identity_headers(self._user), timeout=5.0
                )
            except httpx.TimeoutException:
                errors.append(f"timed out waiting for {target}")
                return
            except httpx.HTTPError as exc:
                errors.append(f'Get "{target}": {exc}')
                return
            if 200 <= resp.status_code < 400:
                ok = True
            else:
                errors.append(f"bad status from {target}: {resp.status_code}")

        async with trio.open_nursery() as nursery:
            for _ in range(5):
                nursery.start_soon(attempt)
        if ok:
            # Discovery first, so that whoever waits for availability finds it published too.
            await self.refresh_discovery(probed_ok=True)
            self._set_condition(True, "Passed", "all checks passed")
        else:
            self.discovery = agg_discovery.BackendDiscovery(None, "APIService not available")
            self._set_condition(
                False, "FailedDiscoveryCheck", f"failing or missing response from {target}: {errors[0]}"
            )

    async def refresh_discovery(self, *, probed_ok: bool = False) -> None:
        """Fetch the backend's discovery for this APIService as kube-aggregator does (see module doc)."""
        url, client = self.backend_url, self._proxy_client
        if not (self.available or probed_ok) or url is None or client is None:
            self.discovery = agg_discovery.BackendDiscovery(None, "APIService not available")
            return
        headers = [("Accept", agg_discovery.ACCEPT_FROM_AGGREGATOR), *identity_headers(self._user)]
        try:
            resp = await client.get(url + "/apis", headers=headers, timeout=5.0)
            version = agg_discovery.parse_content_type(resp.headers.get("content-type"))
            if resp.status_code == 200 and version is not None:
                for item in orjson.loads(resp.content).get("items") or []:
                    if (item.get("metadata") or {}).get("name") != GROUP:
                        continue
                    for entry in item.get("versions") or []:
                        if entry.get("version") == VERSION:
                            self.discovery = agg_discovery.BackendDiscovery(entry, "aggregated")
                            return
            legacy_user = User(self._user.name)
            resp = await client.get(
                url + DISCOVERY_PATH,
                headers=[("Accept", "application/json"), *identity_headers(legacy_user)],
                timeout=5.0,
            )
            if resp.status_code != 200:
                raise httpx.HTTPError(f"bad status from {url + DISCOVERY_PATH}: {resp.status_code}")
            entry = agg_discovery.converted_backend_entry(orjson.loads(resp.content), VERSION)
            self.discovery = agg_discovery.BackendDiscovery(entry, "legacy")
        except (httpx.HTTPError, orjson.JSONDecodeError, KeyError, TypeError) as exc:
            log.info("aggregated discovery of %s failed: %s", url, exc)
            self.discovery = agg_discovery.BackendDiscovery(None, str(exc))

    def discovery_entry(self) -> dict[str, Any]:
        """The version entry `/apis` publishes for this APIService (Stale when not fetched)."""
        entry = self.discovery.entry
        return entry if entry is not None else agg_discovery.stale_entry(VERSION)

    async def run(self, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED) -> None:
        """Own the HTTP clients and re-probe: every `probe_interval_s`, sooner while failing."""
        async with (
            httpx.AsyncClient(verify=self._proxy_ssl(), http2=False) as proxy_client,
            httpx.AsyncClient(verify=self._probe_ssl(), follow_redirects=False) as probe_client,
        ):
            self._proxy_client, self._probe_client = proxy_client, probe_client
            task_status.started()
            backoff = 0.5
            try:
                while True:
                    self._wake = trio.Event()
                    await self.probe_once()
                    if self.available:
                        backoff = 0.5
                        delay = self.probe_interval_s
                    else:
                        delay, backoff = (
                            min(backoff, self.probe_interval_s),
                            min(backoff * 2, self.probe_interval_s),
                        )
                    with trio.move_on_after(delay):
                        await self._wake.wait()
            finally:
                self._proxy_client = self._probe_client = None

    # --- objects -----------------------------------------------------------------------

    def apiservice(self) -> dict[str, Any]:
        spec: dict[str, Any] = {
            "service": {"namespace": SERVICE[0], "name": SERVICE[1], "port": 443},
            "group": GROUP,
            "version": VERSION,
            "groupPriorityMinimum": 100,
            "versionPriority": 100,
        }
        if self._backend_ca is None:
            spec["insecureSkipTLSVerify"] = True
        return {
            "kind": "APIService",
            "apiVersion": "apiregistration.k8s.io/v1",
            "metadata": {
                "name": APISERVICE_NAME,
                "uid": "3b0c6a4e-2f55-4c5e-9d7a-6b5d3f0a1e01",
                "resourceVersion": "1",
                "creationTimestamp": rfc3339(self.created_ns),
                "labels": {"k8s-app": "metrics-server"},
            },
            "spec": spec,
            "status": {
                "conditions": [
                    {
                        "type": "Available",
                        "status": "True" if self.available else "False",
                        "lastTransitionTime": rfc3339(self.last_transition_ns),
                        "reason": self.reason,
                        "message": self.message,
                    }
                ]
            },
        }

    # --- proxy -------------------------------------------------------------------------

    def forward_headers(self, request: Request, user: User) -> list[tuple[str, str]]:
        """The client's headers minus credentials, hop-by-hop and X-Remote-*, plus the identity."""
        headers = [
            (k.decode("latin-1"), v.decode("latin-1"))
            for k, v in request.headers
            if not _is_stripped(k.decode("latin-1").lower())
        ]
        return headers + identity_headers(user, with_uid=self.send_uid)

    async def proxy(self, request: Request, user: User) -> Response:
        """Forward an authorized request under /apis/metrics.k8s.io/v1beta1 to the metrics server."""
        url = self.backend_url
        client = self._proxy_client
        if not self.available or url is None or client is None:
            return service_unavailable()
        query = go_query_encode(request.query)
        target = url + request.path + (f"?{query}" if query else "")
        discovery = request.path.rstrip("/") == DISCOVERY_PATH
        timeout = 5.0 if discovery else _request_timeout(request.param("timeout"))
        try:
            resp = await client.send(
                client.build_request(
                    request.method, target, headers=self.forward_headers(request, user), content=request.body
                ),
                stream=True,
            )
            try:
                with trio.fail_after(timeout):
                    body = b"".join([chunk async for chunk in resp.aiter_raw()])
            finally:
                await resp.aclose()
        except (httpx.HTTPError, trio.TooSlowError) as exc:
            log.info("proxy to %s failed: %s", target, exc)
            return service_unavailable()
        headers = [(k, v) for k, v in resp.headers.multi_items() if k.lower() not in _HOP_BY_HOP]
        return Response(resp.status_code, headers, body)


def _request_timeout(value: str) -> float:
    """The client's `?timeout=` (a Go duration) in seconds, at most kube-apiserver's default 60 s,
    which also stands for a missing, unparsable or non-positive one."""
    try:
        ns = parse_duration_ns(value)
    except ValueError:
        return 60.0
    return min(ns / NS_PER_S, 60.0) if ns > 0 else 60.0
