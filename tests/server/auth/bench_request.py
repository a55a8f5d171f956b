"""Server-side CPU per request of the serving stack outside the API handlers (not a test).

    .venv/bin/python tests/server/auth/bench_request.py [--app trivial|api] [--http2]
        [--requests N] [--reps R] [--profile] [--baseline DIR] [--micro [--without-metrics]]

The server runs in a child process (this script with `--serve`): `serve_https` (hypercorn, TLS,
the peer-certificate shim) + `AuthMiddleware` with the real `Authenticator`, `Authorizer`,
`TokenReviewer`, `AccessReviewer` and `AuthenticationConfigSource` (CA files), in front of either
a trivial ASGI app (`--app trivial`: the serving and auth layers alone) or the real quart app
(`--app api`, a one-pod cluster). TokenReview and SubjectAccessReview are answered by a fake
kube-apiserver served in the same child (127.89.0.2); review caches use a 1 h TTL so that the
measured requests are all cache hits (in production one review per key per 10 s).

The parent sends `GET /apis/metrics.k8s.io/v1beta1/namespaces/default/pods/web-1` to 127.89.0.1
(httpx, HTTP/1.1 or `--http2`), R batches of N on one kept-alive connection per batch:

* `bearer`: `Authorization: Bearer <token>` (TokenReview + SAR served from cache);
* `front-proxy`: the front-proxy client certificate + `X-Remote-User`/`X-Remote-Group` (SAR
  from cache), as kube-aggregator sends them.

The child's user + system CPU (`getrusage`) is read before and after each batch; the report is
min / p25 / median server CPU microseconds per request over the batches. The machine is shared,
so compare versions with `--baseline DIR` (a copy of the `metrics_server` package, served by a
second child, batches alternating between the two) rather than run against run.
`--profile` then samples the first child on CPU time (SIGPROF, see `CpuSampler`) and splits the
samples by layer (leaf-most frame that belongs to a known package). `--micro` times our layers
alone, in process (`tls_extension(AuthMiddleware(no-op app))` on hypercorn-shaped scopes).

Measured 2026-11-27 17:00-17:40 on the shared 2-core VM (load average 4-5, so absolute figures
are inflated and noisy; each A/B is interleaved), CPython 3.11.7, hypercorn 0.18.0; `--baseline`
= the package with auth/ as it was before this round; server CPU us/request, p25 (median),
baseline -> current, 12 batches of 300 (run 1) or 400 (run 2) GETs:

    trivial HTTP/1.1 run 1  bearer 927 (1005) -> 703 (842)     front-proxy 1041 (1182) -> 847 (901)
    trivial HTTP/1.1 run 2  bearer 695 (901) -> 565 (689)      front-proxy  856 (1021) -> 636 (678)
    api     HTTP/1.1 run 1  bearer 1200 (1363) -> 1043 (1235)  front-proxy 1175 (1226) -> 1010 (1114)
    api     HTTP/1.1 run 2  bearer 1447 (2572) -> 1350 (1730)  front-proxy 1039 (1178) ->  954 (1066)
    trivial HTTP/2   run 1  bearer 1204 (1367) -> 1152 (1427)  front-proxy 1329 (1445) -> 1042 (1192)
    --micro (our layers alone)  bearer 18.5 -> 16.2            front-proxy 21.1 -> 18.2

Almost all of the gain is the shim's idle timer (~150 us) and skipped empty write (~30 us),
`metrics_server.auth.peercert`; our auth layers alone cost ~16-18 us per request.
"""

from __future__ import annotations

import argparse
import gc
import os
import resource
import signal
import ssl
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

HOST = "127.89.0.1"
APISERVER_HOST = "127.89.0.2"
FRONT_PROXY_CN = "front-proxy-client"
TOKEN = "bench-token"
PATH = "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods/web-1"
HPA_USER = "system:serviceaccount:kube-system:horizontal-pod-autoscaler"
HPA_GROUPS = ("system:serviceaccounts", "system:serviceaccounts:kube-system", "system:authenticated")

# ---------------------------------------------------------------------------------------------
# child: the server


def _trivial_app() -> Any:
    body = b'{"kind":"PodMetrics","apiVersion":"metrics.k8s.io/v1beta1"}'
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]

    async def app(scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return app


def _api_app() -> Any:
    import prometheus_client

    from metrics_server.api.app import ApiOptions, create_app
    from metrics_server.api.health import HealthChecks
    from metrics_server.kube.objects import NodeInfo, PodInfo
    from metrics_server.storage.snapshot import ContainerUsage, DictSnapshot, NodeUsage, PodUsage

    ts = 1745601642_500_000_000
    node = NodeInfo("node-a", "uid-node-a", {"kubernetes.io/hostname": "node-a"}, (), 10250, None, True)
    pod = PodInfo("default", "web-1", "uid-web-1", {"app": "web"}, "node-a")
    snapshot = DictSnapshot(
        {"node-a": NodeUsage(ts, 15_000_000_000, 168_064_370, 1_994_969_088)},
        {("default", "web-1"): PodUsage(ts, 15_000_000_000, (ContainerUsage("app", 5_000, 1_000_000),))},
    )

    class Nodes:
        def get(self, name: str) -> Any:
            return node if name == node.name else None

        def list(self) -> Any:
            return [node]

    class Pods:
        def get(self, namespace: str, name: str) -> Any:
            return pod if (namespace, name) == (pod.namespace, pod.name) else None

        def list(self, namespace: str | None = None) -> Any:
            return [pod] if namespace in (None, pod.namespace) else []

    def ok() -> None:
        return None

    health = HealthChecks.standard(
        metric_collection_timely=ok,
        metric_storage_ready=ok,
        metric_informer_sync=ok,
        metadata_informer_sync=ok,
        shutdown=ok,
    )
    return create_app(
        nodes=Nodes(),
        pods=Pods(),
        snapshot=lambda: snapshot,
        health=health,
        registry=prometheus_client.CollectorRegistry(),
        options=ApiOptions(),
    )


async def _fake_apiserver(scope: Any, receive: Any, send: Any) -> None:
    """TokenReview: TOKEN is the HPA service account; SubjectAccessReview: always allowed."""
    import orjson

    if scope["type"] == "lifespan":
        await _trivial_app()(scope, receive, send)
        return
    body = b""
    while True:
        message = await receive()
        body += message.get("body", b"")
        if not message.get("more_body"):
            break
    obj = orjson.loads(body)
    if scope["path"].endswith("/tokenreviews"):
        ok = obj["spec"]["token"] == TOKEN
        user = {"username": HPA_USER, "uid": "uid-hpa", "groups": list(HPA_GROUPS[:2])}
        status: dict[str, Any] = {"authenticated": True, "user": user} if ok else {"authenticated": False}
    else:
        status = {"allowed": True}
    answer = orjson.dumps({**obj, "status": status})
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"application/json")]}
    )
    await send({"type": "http.response.body", "body": answer})


class CpuSampler:
    """A statistical profiler on process CPU time: SIGPROF (`ITIMER_PROF`, which only runs while
    the process uses CPU, user or system) records the main thread's stack. Unlike py-spy (whose
    idle detection does not work on this VM, so it samples wall time), a sample here is CPU spent.
    Each signal also wakes trio's loop once (its wakeup fd), a few % extra CPU in `trio`."""

    def __init__(self) -> None:
        self.counts: Counter[tuple[tuple[Any, int], ...]] = Counter()
        signal.signal(signal.SIGPROF, self._sample)  # main thread only; the timer starts it

    def _sample(self, signum: int, frame: Any) -> None:
        stack = []
        while frame is not None:
            stack.append((frame.f_code, frame.f_lineno))
            frame = frame.f_back
        self.counts[tuple(stack)] += 1

    def start(self, hz: float) -> None:
        self.counts.clear()
        signal.setitimer(signal.ITIMER_PROF, 1 / hz, 1 / hz)

    def stop(self, out: Path) -> None:
        """Write py-spy's raw format: `root;...;leaf count`, frames `name (short/path.py:line)`."""
        signal.setitimer(signal.ITIMER_PROF, 0, 0)
        lines = []
        for stack, n in list(self.counts.items()):
            frames = (f"{code.co_name} ({_short(code.co_filename)}:{line})" for code, line in reversed(stack))
            lines.append(f"{';'.join(frames)} {n}")
        out.write_text("\n".join(lines) + "\n")


def _short(filename: str) -> str:
    for marker in ("site-packages/", "/server/", "/lib/python3."):
        if marker in filename:
            rest = filename.rsplit(marker, 1)[1]
            return rest.split("/", 1)[1] if marker == "/lib/python3." else rest
    return filename.rsplit("/", 1)[-1]


def _control(sampler: CpuSampler) -> None:
    """stdin commands: `cpu` -> this process's user and system CPU seconds; `prof-start <hz>`,
    `prof-stop <file>` -> `ok`. EOF ends the process."""
    for line in sys.stdin:
        command, _, arg = line.strip().partition(" ")
        if command == "cpu":
            r = resource.getrusage(resource.RUSAGE_SELF)
            print(repr(r.ru_utime), repr(r.ru_stime), flush=True)
        elif command == "prof-start":
            sampler.start(float(arg))
            print("ok", flush=True)
        elif command == "prof-stop":
            sampler.stop(Path(arg))
            print("ok", flush=True)
    os._exit(0)


async def _serve(directory: Path, app_kind: str) -> None:
    import httpx
    import trio

    from metrics_server.auth.authconfig import AuthenticationConfigSource, AuthenticationOptions
    from metrics_server.auth.authn import Authenticator
    from metrics_server.auth.authz import Authorizer
    from metrics_server.auth.middleware import AuthMiddleware
    from metrics_server.auth.reviews import AccessReviewer, ReviewCacheOptions, TokenReviewer
    from metrics_server.auth.serving import ServingConfig, serve_https

    cert, key = str(directory / "serving.crt"), str(directory / "serving.key")
    async with trio.open_nursery() as nursery:
        api_serving = ServingConfig(
            bind_address=APISERVER_HOST, secure_port=0, tls_cert_file=cert, tls_private_key_file=key
        )
        api_urls = await nursery.start(
            lambda task_status: serve_https(_fake_apiserver, api_serving, task_status=task_status)
        )
        source = AuthenticationConfigSource(
            AuthenticationOptions(
                client_ca_file=str(directory / "client-ca.crt"),
                requestheader_client_ca_file=str(directory / "proxy-ca.crt"),
                requestheader_allowed_names=(FRONT_PROXY_CN,),
            ),
            None,
        )
        options = ReviewCacheOptions(token_cache_ttl=3600, authorized_ttl=3600, retry_steps=1)
        verify = ssl.create_default_context(cafile=str(directory / "server-ca.crt"))
        async with httpx.AsyncClient(base_url=api_urls[0], verify=verify, trust_env=False) as client:
            inner = _api_app() if app_kind == "api" else _trivial_app()
            app = AuthMiddleware(
                inner,
                Authenticator(source, TokenReviewer(client, options)),
                Authorizer(AccessReviewer(client, options)),
            )
            serving = ServingConfig(
                bind_address=HOST, secure_port=0, tls_cert_file=cert, tls_private_key_file=key
            )
            urls = await nursery.start(
                lambda task_status: serve_https(app, serving, client_cas=source, task_status=task_status)
            )
            gc.freeze()  # as the process entry point does (metrics_server.app._tune_gc)
            gc.set_threshold(10_000, 10, 100)
            threading.Thread(target=_control, args=(CpuSampler(),), daemon=True).start()
            print("READY", urls[0], flush=True)
            await trio.sleep_forever()


# ---------------------------------------------------------------------------------------------
# parent: certificates, client, measurement, profile split

LAYERS = (
    ("auth (metrics_server/auth)", ("metrics_server/auth/",)),
    ("review caches (auth/reviews.py)", ("metrics_server/auth/reviews",)),
    ("API app (metrics_server/api etc.)", ("metrics_server/",)),
    ("trivial app (this script)", ("bench_request",)),
    ("quart/werkzeug", ("quart/", "quart_trio/", "werkzeug/")),
    ("hypercorn", ("hypercorn/",)),
    ("h11/h2/hpack", ("h11/", "h2/", "hpack/")),
    ("TLS (ssl, trio SSLStream)", ("/ssl.py", "trio/_ssl.py")),
    ("logging", ("logging/",)),
    ("trio (scheduler, I/O)", ("trio/",)),
)


def _layer(stack: list[str]) -> str:
    """The layer of the leaf-most frame that belongs to one (stdlib helpers go to their caller)."""
    for frame in reversed(stack):
        location = frame.rsplit("(", 1)[-1]
        if location.startswith("ssl.py"):
            return "TLS (ssl, trio SSLStream)"
        for name, needles in LAYERS:
            if any(n in location for n in needles):
                return name
    return "other (stdlib, GC, ...)"


def _split(raw: Path) -> Counter[str]:
    counts: Counter[str] = Counter()
    for line in raw.read_text().splitlines():
        stack, _, n = line.rpartition(" ")
        if stack and n.isdigit():
            counts[_layer(stack.split(";"))] += int(n)
    return counts


def _write_pki(directory: Path) -> None:
    import trustme
    from auth_testkit import issue_client_cert

    server_ca, proxy_ca, client_ca = trustme.CA(), trustme.CA(), trustme.CA()
    leaf = server_ca.issue_cert(HOST, APISERVER_HOST)
    (directory / "serving.crt").write_bytes(leaf.cert_chain_pems[0].bytes())
    (directory / "serving.key").write_bytes(leaf.private_key_pem.bytes())
    (directory / "server-ca.crt").write_bytes(server_ca.cert_pem.bytes())
    (directory / "proxy-ca.crt").write_bytes(proxy_ca.cert_pem.bytes())
    (directory / "client-ca.crt").write_bytes(client_ca.cert_pem.bytes())
    proxy = issue_client_cert(proxy_ca, FRONT_PROXY_CN)
    (directory / "proxy.crt").write_bytes(proxy.cert_pem)
    (directory / "proxy.key").write_bytes(proxy.key_pem)


class Child:
    def __init__(self, directory: Path, app_kind: str, label: str, env: dict[str, str]) -> None:
        self.label = label
        self.proc = subprocess.Popen(
            [sys.executable, __file__, "--serve", str(directory), "--app", app_kind],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, **env},
        )
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self._in, self._out = self.proc.stdin, self.proc.stdout
        line = self._out.readline().split()
        if not line or line[0] != "READY":
            raise SystemExit(f"server did not start: {line}")
        self.url = line[1]

    def command(self, line: str) -> str:
        self._in.write(line + "\n")
        self._in.flush()
        return self._out.readline().strip()

    def cpu(self) -> tuple[float, float]:
        """(user, system) CPU seconds of the server process so far."""
        self._in.write("cpu\n")
        self._in.flush()
        user, system = self._out.readline().split()
        return float(user), float(system)

    def close(self) -> None:
        self._in.close()
        self.proc.wait(timeout=10)


def _client(directory: Path, url: str, *, cert: bool, http2: bool) -> Any:
    import httpx

    ctx = ssl.create_default_context(cafile=str(directory / "server-ca.crt"))
    if cert:
        ctx.load_cert_chain(directory / "proxy.crt", directory / "proxy.key")
    return httpx.Client(base_url=url, verify=ctx, http2=http2, trust_env=False)


SCENARIOS: dict[str, tuple[bool, list[tuple[str, str]]]] = {
    "bearer": (False, [("Accept", "application/json, */*"), ("Authorization", f"Bearer {TOKEN}")]),
    "front-proxy": (
        True,
        [
            ("Accept", "application/json, */*"),
            ("X-Remote-User", HPA_USER),
            *[("X-Remote-Group", g) for g in HPA_GROUPS],
        ],
    ),
}


def _batch(client: Any, headers: list[tuple[str, str]], n: int) -> None:
    for _ in range(n):
        response = client.get(PATH, headers=headers)
        if response.status_code != 200:
            raise SystemExit(f"unexpected {response.status_code}: {response.text[:300]}")


def _profile(child: Child, client: Any, headers: list[tuple[str, str]], n: int, out: Path) -> None:
    child.command("prof-start 1000")
    _batch(client, headers, n)
    child.command(f"prof-stop {out}")


def _measure(child: Child, client: Any, headers: list[tuple[str, str]], n: int) -> tuple[float, float]:
    """(user, system) server CPU microseconds per request over `n` requests."""
    user0, sys0 = child.cpu()
    _batch(client, headers, n)
    user1, sys1 = child.cpu()
    return (user1 - user0) / n * 1e6, (sys1 - sys0) / n * 1e6


def _report_profile(raw: Path, cpu_us: float) -> None:
    counts = _split(raw)
    total = sum(counts.values()) or 1
    print(f"  CPU profile: {total} samples, shares of {cpu_us:.0f} us/request")
    for layer, count in counts.most_common():
        print(f"    {layer:36s} {100 * count / total:5.1f} %  ~{cpu_us * count / total:5.0f} us")


async def _micro(args: argparse.Namespace) -> None:
    """Our layers alone, in process: `tls_extension(AuthMiddleware(no-op app))` called with the
    scope hypercorn builds (headers as h11 gives them, a connection state carrying `PeerTLS`),
    reviews answered by an in-memory transport (warm caches)."""
    import httpx
    import orjson

    from metrics_server.auth.authconfig import AuthenticationConfigSource, AuthenticationOptions
    from metrics_server.auth.authn import Authenticator
    from metrics_server.auth.authz import Authorizer
    from metrics_server.auth.middleware import AuthMiddleware
    from metrics_server.auth.peercert import PEER_STATE_KEY, PeerTLS, tls_extension
    from metrics_server.auth.reviews import AccessReviewer, ReviewCacheOptions, TokenReviewer

    def answer(request: httpx.Request) -> httpx.Response:
        obj = orjson.loads(request.content)
        if request.url.path.endswith("/tokenreviews"):
            user = {"username": HPA_USER, "uid": "uid-hpa", "groups": list(HPA_GROUPS[:2])}
            return httpx.Response(
                200, content=orjson.dumps({**obj, "status": {"authenticated": True, "user": user}})
            )
        return httpx.Response(200, content=orjson.dumps({**obj, "status": {"allowed": True}}))

    with tempfile.TemporaryDirectory(prefix="bench-request-") as tmp:
        directory = Path(tmp)
        _write_pki(directory)
        source = AuthenticationConfigSource(
            AuthenticationOptions(
                client_ca_file=str(directory / "client-ca.crt"),
                requestheader_client_ca_file=str(directory / "proxy-ca.crt"),
                requestheader_allowed_names=(FRONT_PROXY_CN,),
            ),
            None,
        )
        proxy_pem = (directory / "proxy.crt").read_text()
    options = ReviewCacheOptions(token_cache_ttl=3600, authorized_ttl=3600, retry_steps=1)
    sent: list[int] = []

    async def inner(scope: Any, receive: Any, send: Any) -> None:
        sent.append(1)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    async def send(message: Any) -> None:
        pass

    async def receive() -> Any:
        return {"type": "http.request", "body": b"", "more_body": False}

    async with httpx.AsyncClient(
        base_url="https://127.89.0.2", transport=httpx.MockTransport(answer), trust_env=False
    ) as client:
        from prometheus_client import CollectorRegistry

        from metrics_server.auth.requestmetrics import RequestMetrics

        metrics = None if args.without_metrics else RequestMetrics(CollectorRegistry())
        app = tls_extension(
            AuthMiddleware(
                inner,
                Authenticator(source, TokenReviewer(client, options)),
                Authorizer(AccessReviewer(client, options)),
                metrics,
            )
        )
        common = [
            (b"host", b"127.89.0.1:443"),
            (b"accept", b"application/json, */*"),
            (b"accept-encoding", b"gzip, deflate"),
            (b"connection", b"keep-alive"),
            (b"user-agent", b"python-httpx/0.28.1"),
        ]
        scenarios = {
            "bearer": (None, [*common, (b"authorization", f"Bearer {TOKEN}".encode())]),
            "front-proxy": (
                proxy_pem,
                [
                    *common,
                    (b"x-remote-user", HPA_USER.encode()),
                    *[(b"x-remote-group", g.encode()) for g in HPA_GROUPS],
                ],
            ),
        }
        for name, (pem, headers) in scenarios.items():
            state = {PEER_STATE_KEY: PeerTLS(pem, 0x0304)}

            def scope(
                headers: list[tuple[bytes, bytes]] = headers, state: dict[str, Any] = state
            ) -> dict[str, Any]:
                return {
                    "type": "http",
                    "asgi": {"spec_version": "2.1", "version": "3.0"},
                    "http_version": "1.1",
                    "method": "GET",
                    "scheme": "https",
                    "path": PATH,
                    "raw_path": PATH.encode(),
                    "query_string": b"",
                    "root_path": "",
                    "headers": list(headers),
                    "client": ("127.0.0.1", 5000),
                    "server": ("127.89.0.1", 443),
                    "state": dict(state),
                    "extensions": {},
                }

            for _ in range(args.warmup):
                await app(scope(), receive, send)
            n = args.requests * 5
            scopes = [scope() for _ in range(n)]
            sent.clear()
            gc.collect()
            cpu0 = time.process_time()
            for s in scopes:
                await app(s, receive, send)
            cpu = time.process_time() - cpu0
            assert len(sent) == n, "a request was refused"
            print(f"{name:12s}: our layers {cpu / n * 1e6:6.1f} us/request (in process, {n} calls)")
            if args.profile:
                import cProfile
                import pstats

                scopes = [scope() for _ in range(n)]
                profiler = cProfile.Profile()
                profiler.enable()
                for s in scopes:
                    await app(s, receive, send)
                profiler.disable()
                pstats.Stats(profiler).sort_stats("tottime").print_stats(15)


def _children(args: argparse.Namespace, directory: Path) -> list[Child]:
    specs: list[tuple[str, dict[str, str]]] = [("current", {})]
    if args.baseline:
        path = os.pathsep.join(
            p for p in (str(Path(args.baseline).resolve()), os.environ.get("PYTHONPATH")) if p
        )
        specs.append(("baseline", {"PYTHONPATH": path}))
    for spec in args.child_env:
        label, _, assignment = spec.partition(":")
        key, _, value = assignment.partition("=")
        specs.append((label, {key: value}))
    return [Child(directory, args.app, label, env) for label, env in specs]


def main(args: argparse.Namespace) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-request-") as tmp:
        directory = Path(args.keep or tmp)
        directory.mkdir(exist_ok=True)
        _write_pki(directory)
        children = _children(args, directory)
        try:
            print(
                f"app={args.app} http2={args.http2}: {args.reps} batches x {args.requests} GETs per server "
                "and scenario, each on a new kept-alive connection after 50 unmeasured GETs (hypercorn ends "
                "a connection after 1000 requests); batches alternate between servers"
            )
            print("server CPU us/request over the batches: min / p25 / median (user + system)")
            for name, (cert, headers) in SCENARIOS.items():
                runs: dict[str, list[float]] = {c.label: [] for c in children}
                for rep in range(args.reps):
                    for child in children:
                        with _client(directory, child.url, cert=cert, http2=args.http2) as client:
                            _batch(client, headers, args.warmup if rep == 0 else 50)
                            user, system = _measure(child, client, headers, args.requests)
                            runs[child.label].append(user + system)
                for child in children:
                    xs = sorted(runs[child.label])
                    q = statistics.quantiles(xs, n=4) if len(xs) > 1 else [xs[0]] * 3
                    print(f"  {name:12s} {child.label:10s} {xs[0]:6.0f} / {q[0]:6.0f} / {q[1]:6.0f}")
                if args.profile:
                    out = directory / f"{name}.raw"
                    with _client(directory, children[0].url, cert=cert, http2=args.http2) as client:
                        _batch(client, headers, 50)
                        _profile(children[0], client, headers, min(900, args.requests * args.reps // 2), out)
                    _report_profile(out, statistics.median(runs[children[0].label]))
        finally:
            for child in children:
                child.close()


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--app", choices=("trivial", "api"), default="trivial")
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--reps", type=int, default=20)
    parser.add_argument("--warmup", type=int, default=300)
    parser.add_argument("--http2", action="store_true")
    parser.add_argument("--profile", action="store_true")
    parser.add_argument("--keep", help=argparse.SUPPRESS)
    parser.add_argument("--micro", action="store_true", help="our layers alone, in process")
    parser.add_argument(
        "--without-metrics", action="store_true", help="--micro without the request metrics (for an A/B)"
    )
    parser.add_argument(
        "--baseline", help="also serve from this copy of the server package (PYTHONPATH), alternating batches"
    )
    parser.add_argument("--child-env", action="append", default=[], help=argparse.SUPPRESS)
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    parsed = parser.parse_args()
    if parsed.serve is not None:
        import trio

        trio.run(_serve, parsed.serve, parsed.app)
    elif parsed.micro:
        import trio

        trio.run(_micro, parsed)
    else:
        main(parsed)
