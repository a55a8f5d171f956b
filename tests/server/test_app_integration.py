"""The whole server, in-process, against the simulated cluster, over real TLS (issue 5, full stack).

One stack (`SimCluster` with 4 nodes, Steady profiles, and `metrics_server.app.serve()` with
`--metric-resolution=10s`) runs in a background thread for the whole module (`app_harness`); it
starts as soon as the module's first test is set up, so its two scrape cycles overlap with the
apiserver-down test, which runs its own stack in the test's trio loop.

The simulator's ground truth gives the exact usage: CPU within 1m (kubelet counters are floats
of seconds), memory exact. Node `sim-node-0003`'s kubelet refuses connections from the start, so
the stack also serves metrics-server's two "exists but has no metrics" NotFounds.

Clients: raw httpx as kube-aggregator calls (front-proxy certificate + `X-Remote-*` headers), and
the generated client through a kubeconfig pointing straight at the server (client certificate
signed by the cluster CA, or a bearer token checked with a TokenReview). Every JSON body is
validated against the OpenAPI spec's schemas with jsonschema-rs.
"""

from __future__ import annotations

import gc
import hashlib
import logging
import os
import re
import threading
import time
from collections.abc import Awaitable, Callable, Iterator, Mapping, Sequence
from functools import partial
from pathlib import Path
from typing import Any

import httpx
import jsonschema_rs
import orjson
import pytest
import trio
import trio.testing
import yaml
from app_harness import (
    API,
    MASTERS,
    MI,
    NS_PER_S,
    TABLE_ACCEPT,
    WINDOWS,
    GatedProxy,
    GroundTruth,
    NodeTruth,
    PodTruth,
    StackConfig,
    StackThread,
    aggregator_async_client,
    aggregator_client,
    b64_file,
    client_ssl_context,
    go_cpu,
    go_memory,
    ground_truth,
    identity_headers,
    is_sample_time,
    parse_cpu_nanocores,
    parse_rfc3339_seconds,
    server_ca_pem,
    server_options,
    wait_for_metrics,
    write_kubeconfig,
)
from prometheus_client.parser import text_string_to_metric_families

from k8s_metrics.api.discovery import (
    get_api_groups,
    get_metrics_api_group,
    get_metrics_api_resources,
)
from k8s_metrics.api.metrics import (
    list_namespaced_pod_metrics,
    list_node_metrics,
    list_pod_metrics_for_all_namespaces,
    read_namespaced_pod_metrics,
    read_node_metrics,
)
from k8s_metrics.client import metrics_client
from k8s_metrics.errors import ApiError, Forbidden, NotFound
from k8s_metrics.models import (
    APIGroup,
    APIGroupList,
    APIResourceList,
    NodeMetrics,
    NodeMetricsList,
    PodMetrics,
    PodMetricsList,
)
from kubesim import LIMITED_NAMESPACE, LIMITED_USER, ContainerSpec, SimCluster, Steady
from kubesim.policy import Policy
from metrics_server.app import serve

REPO = Path(__file__).resolve().parents[2]
SPEC_PATH = REPO / "openapi" / "metrics.k8s.io-v1beta1.yaml"

# Loopback addresses of this module (others: tests/server/auth 127.0.0.61-62, e2e 127.81-83).
SERVER_HOST = "127.0.0.71"
APISERVER_HOST = "127.0.0.72"
KUBELET_PREFIX = (127, 87)
DOWN_SERVER_HOST = "127.0.0.73"
DOWN_APISERVER_HOST = "127.0.0.74"
DOWN_KUBELET_PREFIX = (127, 88)

BROKEN = "sim-node-0003"
"""Its kubelet refuses connections: in the node cache, never in storage."""
GROUP = "metrics.k8s.io"
READY_TIMEOUT = 60.0
CPU_TOLERANCE_NS = 1_000_000
"""1m: kubelet CPU counters are float seconds, so a rate may be off by a few nanocores."""
JANE = identity_headers(LIMITED_USER, ["developers", "system:authenticated"])


# --- the shared stack ---------------------------------------------------------------------------


def add_pods(cluster: SimCluster) -> None:
    """Hand-picked pods (exact numbers), a Pending one, and one on the broken node."""
    n0, n1, _, n3 = cluster.node_names()
    an_hour_ago = cluster.now_ns() - 3600 * NS_PER_S
    cluster.add_pod(
        n0,
        "itest",
        "web-0",
        [
            ContainerSpec("app", Steady(0, millicores=250, memory=300 * MI)),
            ContainerSpec("sidecar", Steady(0, millicores=50, memory=20 * MI + 4096)),
        ],
        labels={"tier": "frontend", "app": "web"},
        start_ns=an_hour_ago,
    )
    cluster.add_pod(
        n1,
        "itest",
        "pending-0",
        [ContainerSpec("app", Steady(0, millicores=10, memory=8 * MI))],
        phase="Pending",
    )
    cluster.add_pod(
        n3,
        "itest",
        "on-broken",
        [ContainerSpec("app", Steady(0, millicores=10, memory=8 * MI))],
        start_ns=an_hour_ago,
    )
    cluster.add_pod(
        n1,
        LIMITED_NAMESPACE,
        "team-pod",
        [ContainerSpec("app", Steady(0, millicores=120, memory=100 * MI))],
        labels={"app": "team"},
        start_ns=an_hour_ago,
    )


@pytest.fixture(scope="module", params=[0, 2], ids=["in-process", "2-workers"])
def workers(request: pytest.FixtureRequest) -> int:
    """Every test runs against the server scraping in its own process and with two scrape worker
    processes (`--scrape-workers`): the same answers, the same shutdown (issue 15)."""
    return int(request.param)


@pytest.fixture(scope="module", autouse=True)
def background(tmp_path_factory: pytest.TempPathFactory, workers: int) -> Iterator[StackThread]:
    """Started before the module's first test; stopped (and checked to stop cleanly) after the last."""
    stack = StackThread(
        StackConfig(
            root=tmp_path_factory.mktemp("app-stack"),
            server_host=SERVER_HOST,
            apiserver_host=APISERVER_HOST,
            kubelet_prefix=KUBELET_PREFIX,
            nodes=4,
            pods_per_node=2,
            seed=5,
            prepare=add_pods,
            broken_nodes=(BROKEN,),
            ready_timeout=READY_TIMEOUT,
            extra_args=(f"--scrape-workers={workers}",),
        )
    ).start()
    yield stack
    stack.stop()
    assert stack.serve_returned
    assert worker_processes() == []


@pytest.fixture(scope="module")
def stack(background: StackThread) -> StackThread:
    background.wait_ready()
    return background


@pytest.fixture(scope="module")
def cluster(stack: StackThread) -> SimCluster:
    assert stack.cluster is not None
    return stack.cluster


@pytest.fixture(scope="module")
def truth(stack: StackThread) -> GroundTruth:
    assert stack.truth is not None
    return stack.truth


@pytest.fixture(scope="module")
def server_ca(stack: StackThread) -> bytes:
    return server_ca_pem(stack.cert_dir)


@pytest.fixture(scope="module")
def agg(stack: StackThread, cluster: SimCluster, server_ca: bytes) -> Iterator[httpx.Client]:
    """kube-aggregator's view: front-proxy certificate, the server's certificate verified."""
    with aggregator_client(stack.url, cluster, server_ca) as client:
        yield client


@pytest.fixture(scope="module")
def kubeconfig(
    stack: StackThread, cluster: SimCluster, server_ca: bytes, tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """Straight at the server: `admin` (client certificate CN=kubernetes-admin, O=system:masters,
    signed by the cluster CA, the server's client CA from the authentication ConfigMap) and
    `jane` (a bearer token, reviewed by the cluster's TokenReview)."""
    return write_kubeconfig(
        tmp_path_factory.mktemp("kubeconfig") / "config",
        stack.url,
        server_ca,
        {
            "admin": {
                "client-certificate-data": b64_file(cluster.paths.admin_cert),
                "client-key-data": b64_file(cluster.paths.admin_key),
            },
            "jane": {"token": cluster.token(LIMITED_USER)},
        },
        current="admin",
    )


# --- schemas and expected bodies ----------------------------------------------------------------


_SPEC_COMPONENTS = yaml.safe_load(SPEC_PATH.read_text("utf-8"))["components"]


def validate(schema: str, body: Any) -> None:
    """`body` against `#/components/schemas/<schema>` of the spec (the approach of tests/server/api)."""
    full = next(k for k in _SPEC_COMPONENTS["schemas"] if k == schema or k.endswith(f".{schema}"))
    validator = jsonschema_rs.Draft4Validator(
        {"$ref": f"#/components/schemas/{full}", "components": _SPEC_COMPONENTS}
    )
    assert [e.message for e in validator.iter_errors(body)] == [], f"{schema} body does not match the spec"


def test_the_validator_can_fail() -> None:
    with pytest.raises(AssertionError):
        validate(
            "NodeMetrics", {"metadata": {"name": "n"}, "timestamp": "x", "window": "10s", "usage": {"cpu": 1}}
        )


def go_json(obj: object) -> bytes:
    """Go's `json.Encoder` output for these bodies (no HTML-escapable characters in them)."""
    return orjson.dumps(obj) + b"\n"


def status(code: int, reason: str, message: str, details: Mapping[str, object] | None = None) -> bytes:
    body: dict[str, object] = {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": message,
        "reason": reason,
    }
    if details is not None:
        body["details"] = dict(details)
    body["code"] = code
    return go_json(body)


class Clock:
    """Wall-clock seconds around a request, for the response-time `creationTimestamp`."""

    def __init__(self) -> None:
        self.before = int(time.time())
        self.after = self.before

    def done(self) -> Clock:
        self.after = int(time.time()) + 1
        return self


def timed(fn: Callable[[], httpx.Response]) -> tuple[httpx.Response, Clock]:
    clock = Clock()
    response = fn()
    return response, clock.done()


def check_timestamps(obj: Mapping[str, Any], clock: Clock, sample_times: Sequence[tuple[int, int]]) -> None:
    """creationTimestamp is the response time; `timestamp` is one of the kubelet's sample times
    (some (phase, skew) pair) within the last three periods; `window` is whole periods."""
    created = parse_rfc3339_seconds(obj["metadata"]["creationTimestamp"])
    assert clock.before <= created <= clock.after
    ts = obj["timestamp"]
    assert any(is_sample_time(ts, phase, skew) for phase, skew in sample_times), ts
    assert clock.before - 35 <= parse_rfc3339_seconds(ts) <= clock.after
    assert obj["window"] in WINDOWS


def check_cpu(quantity: str, nanocores: int) -> None:
    assert abs(parse_cpu_nanocores(quantity) - nanocores) <= CPU_TOLERANCE_NS, (quantity, go_cpu(nanocores))


def check_node(
    obj: Mapping[str, Any], node: NodeTruth, clock: Clock, *, item: bool = False, ordered: bool = True
) -> None:
    """One NodeMetrics: exact fields, usage against the truth, and (`ordered`: a wire body, not a
    generated model) the key order Go encodes."""
    if ordered:
        head = [] if item else ["kind", "apiVersion"]
        assert list(obj) == [*head, "metadata", "timestamp", "window", "usage"]
        assert list(obj["metadata"]) == ["name", "creationTimestamp", "labels"]
        assert list(obj["metadata"]["labels"]) == sorted(node.labels)
    check_timestamps(obj, clock, [(node.phase_ms, node.skew_ms)])
    check_cpu(obj["usage"]["cpu"], node.nanocores)
    expected = {
        "metadata": {
            "name": node.name,
            "creationTimestamp": obj["metadata"]["creationTimestamp"],
            "labels": node.labels,
        },
        "timestamp": obj["timestamp"],
        "window": obj["window"],
        "usage": {"cpu": obj["usage"]["cpu"], "memory": go_memory(node.memory)},
    }
    if not item:
        expected |= {"kind": "NodeMetrics", "apiVersion": "metrics.k8s.io/v1beta1"}
    assert obj == expected


def check_pod(
    obj: Mapping[str, Any],
    pod: PodTruth,
    truth: GroundTruth,
    clock: Clock,
    *,
    item: bool = False,
    ordered: bool = True,
) -> None:
    """One PodMetrics, as `check_node`; the timestamp is one of its containers' sample times."""
    if ordered:
        head = [] if item else ["kind", "apiVersion"]
        assert list(obj) == [*head, "metadata", "timestamp", "window", "containers"]
        assert list(obj["metadata"]) == ["name", "namespace", "creationTimestamp", "labels"]
        assert list(obj["metadata"]["labels"]) == sorted(pod.labels)
    phase = truth.nodes[pod.node].phase_ms
    check_timestamps(obj, clock, [(phase, c.skew_ms) for c in pod.containers])
    for served, container in zip(obj["containers"], pod.containers, strict=True):
        check_cpu(served["usage"]["cpu"], container.nanocores)
    expected = {
        "metadata": {
            "name": pod.name,
            "namespace": pod.namespace,
            "creationTimestamp": obj["metadata"]["creationTimestamp"],
            "labels": pod.labels,
        },
        "timestamp": obj["timestamp"],
        "window": obj["window"],
        "containers": [
            {"name": c.name, "usage": {"cpu": served["usage"]["cpu"], "memory": go_memory(c.memory)}}
            for c, served in zip(pod.containers, obj["containers"], strict=True)
        ],
    }
    if not item:
        expected |= {"kind": "PodMetrics", "apiVersion": "metrics.k8s.io/v1beta1"}
    assert obj == expected


def check_node_list(
    body: Mapping[str, Any], truth: GroundTruth, clock: Clock, names: Sequence[str], *, ordered: bool = True
) -> None:
    if ordered:
        assert list(body) == ["kind", "apiVersion", "metadata", "items"]
    assert (body["kind"], body["apiVersion"], body["metadata"]) == (
        "NodeMetricsList",
        "metrics.k8s.io/v1beta1",
        {},
    )
    assert [i["metadata"]["name"] for i in body["items"]] == list(names)
    for item, name in zip(body["items"], names, strict=True):
        check_node(item, truth.nodes[name], clock, item=True, ordered=ordered)


def check_pod_list(
    body: Mapping[str, Any],
    truth: GroundTruth,
    clock: Clock,
    pods: Sequence[PodTruth],
    *,
    ordered: bool = True,
) -> None:
    if ordered:
        assert list(body) == ["kind", "apiVersion", "metadata", "items"]
    assert (body["kind"], body["apiVersion"], body["metadata"]) == (
        "PodMetricsList",
        "metrics.k8s.io/v1beta1",
        {},
    )
    served = [(i["metadata"]["namespace"], i["metadata"]["name"]) for i in body["items"]]
    assert served == [(p.namespace, p.name) for p in pods]
    for item, pod in zip(body["items"], pods, strict=True):
        check_pod(item, pod, truth, clock, item=True, ordered=ordered)


# --- 4. apiserver down at start, then ready, then a graceful shutdown ---------------------------
# First in the module: it runs while the shared stack (started by the autouse fixture) warms up.

HEALTH_READER = "health-reader"


def policy_with_health_reader(path: Path) -> Path:
    """The packaged policy plus a user allowed `GET /readyz/*` (single checks need authorization)."""
    doc = yaml.safe_load(Policy.default_path().read_text("utf-8"))
    doc["roles"][HEALTH_READER] = [{"nonResourceURLs": ["/readyz/*"], "verbs": ["get"]}]
    doc["bindings"].append(
        {"name": HEALTH_READER, "role": HEALTH_READER, "subjects": [{"kind": "User", "name": HEALTH_READER}]}
    )
    path.write_text(yaml.safe_dump(doc, sort_keys=False))
    return path


def down_cluster(state: Path, policy: Path, port: int = 0, kubelet_port: int = 0) -> SimCluster:
    return SimCluster(
        nodes=2,
        pods_per_node=2,
        seed=9,
        state_dir=state,
        host=DOWN_APISERVER_HOST,
        port=port,
        kubelet_port=kubelet_port,
        address_prefix=DOWN_KUBELET_PREFIX,
        profile_kinds=("steady",),
        policy_file=policy,
    )


def worker_processes() -> list[int]:
    """Live scrape worker processes started by this process."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_bytes()
            cmdline = Path(f"/proc/{entry}/cmdline").read_bytes()
        except OSError:
            continue
        parent = int(stat[stat.rindex(b")") + 2 :].split()[1])
        if parent == os.getpid() and b"metrics_server.shard.worker" in cmdline:
            found.append(int(entry))
    return found


async def test_apiserver_down_at_start_then_ready_then_graceful_shutdown(
    tmp_path: Path, workers: int, caplog: pytest.LogCaptureFixture
) -> None:
    """Issue 4 at the whole-server level, then the shutdown contract of `serve(stop=...)`:

    1. the kube-apiserver's port is closed: `serve()` starts anyway (with
       --authentication-tolerate-lookup-failure) and /readyz names what is missing;
    2. the apiserver comes up on that port: caches sync, the authentication ConfigMap is read,
       two scrapes later every pod is served and /readyz passes;
    3. `stop` is set while two requests wait on their SubjectAccessReviews (held by a proxy):
       both complete, one showing /readyz's `shutdown` check failing; `serve()` returns, the port
       is closed, and no task is left behind.
    """
    tasks_at_start = trio.lowlevel.current_statistics().tasks_living
    caplog.set_level(logging.INFO, logger="metrics_server.shard.pool")
    state = tmp_path / "sim"
    policy = policy_with_health_reader(tmp_path / "policy.yaml")
    # A first run writes the cluster's files (CAs, kubeconfigs, front-proxy pair) and picks the
    # apiserver's and kubelets' ports; then the apiserver is gone: the server starts against a
    # closed port.
    async with down_cluster(state, policy) as first:
        port, kubelet_port = first.port, first.model_options.kubelet_port
    cert_dir = tmp_path / "serving-certs"
    proxy = GatedProxy("127.0.0.1", DOWN_APISERVER_HOST, port)  # the apiserver's certificate names 127.0.0.1
    async with trio.open_nursery() as nursery:
        await nursery.start(proxy.run)
        # SubjectAccessReviews go through the proxy, so the test can keep requests open.
        sa_kubeconfig = yaml.safe_load(first.paths.metrics_server_kubeconfig.read_text("utf-8"))
        sa_kubeconfig["clusters"][0]["cluster"]["server"] = proxy.url
        authz_kubeconfig = tmp_path / "authz.kubeconfig"
        authz_kubeconfig.write_text(yaml.safe_dump(sa_kubeconfig))
        options = server_options(
            first,
            DOWN_SERVER_HOST,
            cert_dir,
            [
                f"--authorization-kubeconfig={authz_kubeconfig}",
                "--authentication-tolerate-lookup-failure",
                f"--scrape-workers={workers}",
            ],
        )
        stop = trio.Event()
        responses: dict[str, httpx.Response | Exception] = {}
        async with trio.open_nursery() as server_nursery:
            with trio.fail_after(30):
                urls: list[str] = await server_nursery.start(partial(serve, options, stop=stop))
            url = urls[0]
            server_ca = server_ca_pem(cert_dir)

            # Serving, not ready, and saying why (the verbose body is what a probe shows).
            async with httpx.AsyncClient(base_url=url, verify=client_ssl_context(server_ca)) as anonymous:
                r = await anonymous.get("/readyz?verbose")
                failing = ["metric-storage-ready", "metric-informer-sync", "metadata-informer-sync"]
                assert (r.status_code, r.text) == (500, verbose("readyz", READYZ_CHECKS, failing))
                assert (await anonymous.get("/readyz")).text == r.text  # failures are always verbose

            # The apiserver comes up on its port: caches sync, the ConfigMap is found, two scrapes.
            second = down_cluster(state, policy, port, kubelet_port)
            await nursery.start(second.run)
            second.add_pod(
                second.node_names()[0],
                LIMITED_NAMESPACE,
                "team-pod",
                [ContainerSpec("app", Steady(0, millicores=120, memory=100 * MI))],
                labels={"app": "team"},
                start_ns=second.now_ns() - 3600 * NS_PER_S,
            )
            truth = ground_truth(second)
            async with aggregator_async_client(url, second, server_ca, keepalive=False) as agg:
                with trio.fail_after(READY_TIMEOUT):
                    await wait_for_metrics(second, agg, truth)
                r = await agg.get("/readyz?verbose", headers=MASTERS)
                assert (r.status_code, r.text) == (200, verbose("readyz", READYZ_CHECKS))
                r = await agg.get(f"{API}/namespaces/{LIMITED_NAMESPACE}/pods", headers=JANE)
                assert r.status_code == 200  # SubjectAccessReviews pass through the open proxy

            # Two requests wait on their SubjectAccessReviews when the stop comes.
            proxy.hold()

            async def fetch(key: str, path: str, headers: list[tuple[str, str]]) -> None:
                async with aggregator_async_client(url, second, server_ca) as client:
                    try:
                        responses[key] = await client.get(path, headers=headers)
                    except httpx.HTTPError as exc:
                        responses[key] = exc

            clock = Clock()
            async with trio.open_nursery() as requests:
                requests.start_soon(
                    fetch,
                    "readyz",
                    "/readyz/shutdown",
                    identity_headers(HEALTH_READER, ["system:authenticated"]),
                )
                requests.start_soon(fetch, "pod", f"{API}/namespaces/{LIMITED_NAMESPACE}/pods/team-pod", JANE)
                with trio.fail_after(10):
                    await proxy.wait_held(2)
                stop.set()
                with trio.fail_after(10):
                    await trio.testing.wait_all_tasks_blocked(cushion=0.1)
                proxy.release()
            clock.done()
        # serve() returned: its nursery is closed, so none of its tasks is left. A socket it leaked
        # (e.g. a review cut off mid-handshake) warns now, in this test, not in a later one.
        gc.collect()

        readyz, pod = responses["readyz"], responses["pod"]
        assert isinstance(readyz, httpx.Response), f"open request cut off by the shutdown: {readyz!r}"
        assert (readyz.status_code, readyz.text) == (500, "internal server error: process is shutting down\n")
        assert isinstance(pod, httpx.Response), f"open request cut off by the shutdown: {pod!r}"
        assert pod.status_code == 200
        check_pod(pod.json(), truth.pods[(LIMITED_NAMESPACE, "team-pod")], truth, clock)

        async with httpx.AsyncClient(base_url=url, verify=client_ssl_context(server_ca)) as late:
            with pytest.raises(httpx.ConnectError):
                await late.get("/readyz")
        nursery.cancel_scope.cancel()
    # Nothing escaped into system tasks (threads from trio.to_thread are not tasks), and no
    # scrape worker process outlived serve() (the module's background stack, in another thread,
    # has its own).
    assert trio.lowlevel.current_statistics().tasks_living == tasks_at_start
    started = [
        r.pid  # type: ignore[attr-defined]
        for r in caplog.records
        if r.getMessage() == "Scrape worker ready" and r.threadName == threading.current_thread().name
    ]
    assert len(started) == workers
    assert [pid for pid in started if os.path.exists(f"/proc/{pid}")] == []  # noqa: ASYNC240


# --- 1. every endpoint, raw, as kube-aggregator calls it ----------------------------------------

GV = {"groupVersion": "metrics.k8s.io/v1beta1", "version": "v1beta1"}
API_GROUP = {"name": GROUP, "versions": [GV], "preferredVersion": GV}
DISCOVERY = {
    # As metrics-server writes it: no apiVersion; the serving port (masked by the test) named.
    "/apis": (
        "APIGroupList",
        {
            "kind": "APIGroupList",
            "groups": [
                {
                    **API_GROUP,
                    "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": ":PORT"}],
                }
            ],
        },
    ),
    "/apis/metrics.k8s.io": ("APIGroup", {"kind": "APIGroup", "apiVersion": "v1", **API_GROUP}),
    API: (
        "APIResourceList",
        {
            "kind": "APIResourceList",
            "apiVersion": "v1",
            "groupVersion": "metrics.k8s.io/v1beta1",
            "resources": [
                {
                    "name": "nodes",
                    "singularName": "",
                    "namespaced": False,
                    "kind": "NodeMetrics",
                    "verbs": ["get", "list"],
                },
                {
                    "name": "pods",
                    "singularName": "",
                    "namespaced": True,
                    "kind": "PodMetrics",
                    "verbs": ["get", "list"],
                },
            ],
        },
    ),
}


def etag(body: bytes) -> str:
    return '"' + hashlib.sha512(body).hexdigest().upper() + '"'


@pytest.mark.parametrize("path", list(DISCOVERY))
def test_discovery_documents(agg: httpx.Client, path: str) -> None:
    schema, expected = DISCOVERY[path]
    r = agg.get(path, headers=MASTERS)
    assert r.status_code == 200
    port = agg.base_url.port
    assert r.content == go_json(expected).replace(b":PORT", f":{port}".encode())
    assert r.headers["content-type"] == "application/json"
    assert "etag" not in r.headers and "vary" not in r.headers  # metrics-server caches only /apis v2
    validate(schema, r.json())


def test_aggregated_discovery(agg: httpx.Client) -> None:
    """kube-aggregator's periodic `GET /apis` asks for `apidiscovery.k8s.io/v2`."""
    accept = "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json"
    r = agg.get(
        "/apis", headers=[*identity_headers("system:kube-aggregator", ["system:masters"]), ("Accept", accept)]
    )
    assert r.status_code == 200
    assert r.headers["content-type"] == "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList"

    def resource(name: str, kind: str, scope: str, singular: str) -> dict[str, object]:
        return {
            "resource": name,
            "responseKind": {"group": "", "version": "", "kind": kind},
            "scope": scope,
            "singularResource": singular,
            "verbs": ["get", "list"],
        }

    assert r.json() == {
        "kind": "APIGroupDiscoveryList",
        "apiVersion": "apidiscovery.k8s.io/v2",
        "metadata": {},
        "items": [
            {
                "metadata": {"name": GROUP, "creationTimestamp": None},
                "versions": [
                    {
                        "version": "v1beta1",
                        "resources": [
                            resource("nodes", "NodeMetrics", "Cluster", ""),
                            resource("pods", "PodMetrics", "Namespaced", ""),
                        ],
                        "freshness": "Current",
                    }
                ],
            }
        ],
    }


def test_availability_probe_without_verifying(
    stack: StackThread, cluster: SimCluster, server_ca: bytes
) -> None:
    """The aggregator's availability probe skips TLS verification and sends system:kube-aggregator."""
    with aggregator_client(stack.url, cluster, server_ca, verify=False) as probe:
        r = probe.get(API, headers=identity_headers("system:kube-aggregator", ["system:masters"]))
    assert (r.status_code, r.content) == (200, go_json(DISCOVERY[API][1]))


def test_node_metrics(agg: httpx.Client, truth: GroundTruth) -> None:
    r, clock = timed(lambda: agg.get(f"{API}/nodes", headers=MASTERS))
    assert (r.status_code, r.headers["content-type"]) == (200, "application/json")
    body = r.json()
    check_node_list(body, truth, clock, truth.served_nodes)
    validate("NodeMetricsList", body)
    for name in truth.served_nodes:
        r, clock = timed(lambda name=name: agg.get(f"{API}/nodes/{name}", headers=MASTERS))  # type: ignore[misc]
        assert r.status_code == 200
        check_node(r.json(), truth.nodes[name], clock)
        validate("NodeMetrics", r.json())


def test_node_metrics_selectors(agg: httpx.Client, truth: GroundTruth) -> None:
    zone_a = [
        n for n in truth.served_nodes if truth.nodes[n].labels["topology.kubernetes.io/zone"] == "sim-zone-a"
    ]
    assert zone_a == ["sim-node-0000"]  # sim-node-0003 is in zone a too, but has no metrics
    r, clock = timed(
        lambda: agg.get(
            f"{API}/nodes",
            params={"labelSelector": "topology.kubernetes.io/zone=sim-zone-a"},
            headers=MASTERS,
        )
    )
    check_node_list(r.json(), truth, clock, zone_a)
    r, clock = timed(
        lambda: agg.get(
            f"{API}/nodes", params={"fieldSelector": "metadata.name!=sim-node-0001"}, headers=MASTERS
        )
    )
    check_node_list(r.json(), truth, clock, ["sim-node-0000", "sim-node-0002"])


def test_pod_metrics(agg: httpx.Client, truth: GroundTruth) -> None:
    r, clock = timed(lambda: agg.get(f"{API}/pods", headers=MASTERS))
    assert (r.status_code, r.headers["content-type"]) == (200, "application/json")
    check_pod_list(r.json(), truth, clock, truth.served_pods())
    validate("PodMetricsList", r.json())
    namespaces = sorted({p.namespace for p in truth.served_pods()})
    assert {"itest", "kube-system", LIMITED_NAMESPACE} <= set(namespaces)
    for ns in [*namespaces, "empty-namespace"]:
        r, clock = timed(lambda ns=ns: agg.get(f"{API}/namespaces/{ns}/pods", headers=MASTERS))  # type: ignore[misc]
        assert r.status_code == 200
        check_pod_list(r.json(), truth, clock, truth.served_pods(ns))
        validate("PodMetricsList", r.json())
    for pod in truth.served_pods():
        path = f"{API}/namespaces/{pod.namespace}/pods/{pod.name}"
        r, clock = timed(lambda path=path: agg.get(path, headers=MASTERS))  # type: ignore[misc]
        assert r.status_code == 200
        check_pod(r.json(), pod, truth, clock)
        validate("PodMetrics", r.json())


def test_hand_picked_pod_exactly(agg: httpx.Client, truth: GroundTruth) -> None:
    """The pod added with known usage: every number written out."""
    r, clock = timed(lambda: agg.get(f"{API}/namespaces/itest/pods/web-0", headers=MASTERS))
    body = r.json()
    check_pod(body, truth.pods[("itest", "web-0")], truth, clock)
    assert body["metadata"]["labels"] == {"app": "web", "tier": "frontend"}
    assert [c["usage"]["memory"] for c in body["containers"]] == ["300Mi", "20484Ki"]
    for container, nanocores in zip(body["containers"], (250_000_000, 50_000_000), strict=True):
        check_cpu(container["usage"]["cpu"], nanocores)


def test_pod_metrics_selectors(agg: httpx.Client, truth: GroundTruth) -> None:
    r, clock = timed(
        lambda: agg.get(
            f"{API}/pods", params={"labelSelector": "app=web,tier in (frontend)"}, headers=MASTERS
        )
    )
    want = [
        p for p in truth.served_pods() if p.labels.get("app") == "web" and p.labels.get("tier") == "frontend"
    ]
    assert ("itest", "web-0") in [(p.namespace, p.name) for p in want]
    check_pod_list(r.json(), truth, clock, want)
    r, clock = timed(
        lambda: agg.get(
            f"{API}/pods", params={"fieldSelector": "spec.nodeName=sim-node-0000"}, headers=MASTERS
        )
    )
    check_pod_list(r.json(), truth, clock, [p for p in truth.served_pods() if p.node == "sim-node-0000"])


TABLE_COLUMNS = [
    {
        "name": "Name",
        "type": "string",
        "format": "name",
        "description": "Name of the resource",
        "priority": 0,
    },
    {"name": "cpu", "type": "string", "format": "quantity", "description": "", "priority": 0},
    {"name": "memory", "type": "string", "format": "quantity", "description": "", "priority": 0},
    {"name": "Window", "type": "string", "format": "duration", "description": "", "priority": 0},
]


def test_table_output(agg: httpx.Client, truth: GroundTruth) -> None:
    """`kubectl get nodemetrics` / `podmetrics`: metrics-server's columns; pods summed over containers."""
    r, clock = timed(
        lambda: agg.get(f"{API}/nodes", params={"limit": "500"}, headers=[*MASTERS, ("Accept", TABLE_ACCEPT)])
    )
    assert (r.status_code, r.headers["content-type"]) == (200, "application/json")  # as metrics-server
    body = r.json()
    assert list(body) == ["kind", "apiVersion", "metadata", "columnDefinitions", "rows"]
    assert (body["kind"], body["apiVersion"], body["metadata"]) == ("Table", "meta.k8s.io/v1", {})
    assert body["columnDefinitions"] == TABLE_COLUMNS
    assert [row["cells"][0] for row in body["rows"]] == list(truth.served_nodes)
    for row, name in zip(body["rows"], truth.served_nodes, strict=True):
        node = truth.nodes[name]
        check_cpu(row["cells"][1], node.nanocores)
        assert row["cells"][2] == go_memory(node.memory)
        assert row["cells"][3] in WINDOWS
        created = row["object"]["metadata"]["creationTimestamp"]
        assert clock.before <= parse_rfc3339_seconds(created) <= clock.after
        assert row["object"] == {
            "kind": "PartialObjectMetadata",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": {"name": name, "creationTimestamp": created, "labels": node.labels},
        }

    r, clock = timed(
        lambda: agg.get(f"{API}/namespaces/itest/pods", headers=[*MASTERS, ("Accept", TABLE_ACCEPT)])
    )
    body = r.json()
    assert body["columnDefinitions"] == TABLE_COLUMNS
    (row,) = body["rows"]
    check_cpu(row["cells"][1], 300_000_000)
    assert row["cells"][0] == "web-0" and row["cells"][2] == go_memory(320 * MI + 4096) == "327684Ki"
    created = row["object"]["metadata"]["creationTimestamp"]
    assert row["object"] == {
        "kind": "PartialObjectMetadata",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": {
            "name": "web-0",
            "namespace": "itest",
            "creationTimestamp": created,
            "labels": {"app": "web", "tier": "frontend"},
        },
    }


def test_version(agg: httpx.Client) -> None:
    from importlib.metadata import version

    r = agg.get("/version", headers=MASTERS)
    assert (r.status_code, r.headers["content-type"]) == (200, "application/json")
    body = r.json()
    assert list(body) == [
        "major",
        "minor",
        "gitVersion",
        "gitCommit",
        "gitTreeState",
        "buildDate",
        "goVersion",
        "compiler",
        "platform",
    ]
    package = version("k8s-metrics-server")
    assert body["gitVersion"] == f"v{package}"
    assert [body["major"], body["minor"]] == package.split(".")[:2]
    assert re.fullmatch(r"python3\.\d+\.\d+", body["goVersion"]) and body["platform"].startswith("linux/")


def test_openapi(agg: httpx.Client) -> None:
    """v3 index -> the group-version document (the spec, as JSON) with hash, ETag and caching;
    v2 a Swagger 2.0 rendering of the same paths."""
    gv = agg.get("/openapi/v3/apis/metrics.k8s.io/v1beta1", headers=MASTERS)
    assert gv.status_code == 200
    spec = yaml.safe_load(SPEC_PATH.read_text("utf-8"))
    assert gv.json()["paths"] == {p: v for p, v in spec["paths"].items() if p.startswith(API)}
    digest = hashlib.sha512(gv.content).hexdigest().upper()
    assert gv.headers["etag"] == f'"{digest}"'
    index = agg.get("/openapi/v3", headers=MASTERS)
    url = f"/openapi/v3/apis/metrics.k8s.io/v1beta1?hash={digest}"
    assert list(index.json()["paths"]) == [
        "apis",
        "apis/metrics.k8s.io",
        "apis/metrics.k8s.io/v1beta1",
        "version",
    ]
    assert index.json()["paths"]["apis/metrics.k8s.io/v1beta1"] == {"serverRelativeURL": url}
    assert index.headers["etag"] == etag(index.content)
    pinned = agg.get(url, headers=MASTERS)
    assert (pinned.status_code, pinned.content, pinned.headers["cache-control"]) == (
        200,
        gv.content,
        "public, immutable",
    )
    stale = agg.get("/openapi/v3/apis/metrics.k8s.io/v1beta1?hash=0BAD", headers=MASTERS)
    assert (stale.status_code, stale.headers["location"]) == (301, url)
    assert agg.get(url, headers=[*MASTERS, ("If-None-Match", f'"{digest}"')]).status_code == 304
    refused = agg.get(url, headers=[*MASTERS, ("Accept", "application/xml")])
    assert (refused.status_code, refused.content) == (406, b"")

    v2 = agg.get("/openapi/v2", headers=MASTERS)
    assert (v2.status_code, v2.headers["content-type"], v2.headers["etag"]) == (
        200,
        "application/json",
        etag(v2.content),
    )
    doc = v2.json()
    assert (doc["swagger"], doc["info"]["title"], doc["info"]["version"]) == (
        "2.0",
        "Kubernetes metrics-server",
        "v1beta1",
    )
    assert list(doc["paths"]) == list(spec["paths"])
    metrics = "io.k8s.metrics.pkg.apis.metrics.v1beta1."
    assert {
        *(metrics + k for k in ("NodeMetrics", "NodeMetricsList", "PodMetrics", "PodMetricsList")),
        "io.k8s.apimachinery.pkg.apis.meta.v1.Status",
    } <= set(doc["definitions"])


HOOKS = ["poststarthook/max-in-flight-filter", "poststarthook/storage-object-count-tracker-hook"]
READYZ_CHECKS = [
    "ping",
    "log",
    *HOOKS,
    "metric-storage-ready",
    "metric-informer-sync",
    "metadata-informer-sync",
    "shutdown",
]
LIVEZ_CHECKS = ["ping", "log", *HOOKS, "metric-collection-timely", "metadata-informer-sync"]
HEALTHZ_CHECKS = ["ping", "log", *HOOKS, "metadata-informer-sync"]


def verbose(root: str, checks: Sequence[str], failed: Sequence[str] = ()) -> str:
    lines = [f"[-]{c} failed: reason withheld\n" if c in failed else f"[+]{c} ok\n" for c in checks]
    return "".join(lines) + f"{root} check {'failed' if failed else 'passed'}\n"


@pytest.mark.parametrize(
    ("root", "checks"), [("healthz", HEALTHZ_CHECKS), ("livez", LIVEZ_CHECKS), ("readyz", READYZ_CHECKS)]
)
def test_health(agg: httpx.Client, root: str, checks: list[str]) -> None:
    r = agg.get(f"/{root}", headers=MASTERS)
    assert (r.status_code, r.text, r.headers["content-type"], r.headers["x-content-type-options"]) == (
        200,
        "ok",
        "text/plain; charset=utf-8",
        "nosniff",
    )
    r = agg.get(f"/{root}?verbose", headers=MASTERS)
    assert (r.status_code, r.text) == (200, verbose(root, checks))
    r = agg.get(f"/{root}/{checks[-1]}", headers=MASTERS)
    assert (r.status_code, r.text) == (200, "ok")


def test_health_without_credentials(stack: StackThread, server_ca: bytes) -> None:
    """The three roots are always allowed, even for anonymous callers (kubelet probes)."""
    with httpx.Client(base_url=stack.url, verify=client_ssl_context(server_ca)) as anonymous:
        for root in ("healthz", "livez", "readyz"):
            assert (anonymous.get(f"/{root}").status_code, anonymous.get(f"/{root}").text) == (200, "ok")


WORKER_FAMILIES = {
    "metrics_server_scrape_worker_up": "gauge",
    "metrics_server_scrape_worker_restarts": "counter",
    "metrics_server_scrape_worker_nodes": "gauge",
    "metrics_server_scrape_worker_cpu_seconds": "counter",
    "metrics_server_scrape_worker_resident_memory_bytes": "gauge",
    "metrics_server_scrape_worker_proportional_memory_bytes": "gauge",
    "metrics_server_scrape_worker_cycle_duration_seconds": "gauge",
    "metrics_server_scrape_worker_received_bytes": "counter",
}


def test_self_metrics(agg: httpx.Client, truth: GroundTruth, workers: int) -> None:
    r = agg.get("/metrics", headers=MASTERS)
    assert (r.status_code, r.headers["content-type"]) == (200, "text/plain; version=0.0.4; charset=utf-8")
    families = {f.name: f for f in text_string_to_metric_families(r.text)}
    ours = {name: f.type for name, f in families.items() if name.startswith("metrics_server_")}
    if workers:
        # Per worker: up, nodes shared out (4 in all), its own CPU and memory.
        assert {name: ours.pop(name) for name in WORKER_FAMILIES} == WORKER_FAMILIES
        per_worker = {
            name: {
                s.labels["worker"]: s.value for s in families[name].samples if not s.name.endswith("_created")
            }
            for name in WORKER_FAMILIES
        }
        assert per_worker["metrics_server_scrape_worker_up"] == {"0": 1.0, "1": 1.0}
        assert per_worker["metrics_server_scrape_worker_restarts"] == {"0": 0.0, "1": 0.0}
        assert sum(per_worker["metrics_server_scrape_worker_nodes"].values()) == len(truth.nodes)
        assert all(v > 0 for v in per_worker["metrics_server_scrape_worker_cpu_seconds"].values())
        assert all(
            v > 1 << 20 for v in per_worker["metrics_server_scrape_worker_resident_memory_bytes"].values()
        )
    assert ours == {
        "metrics_server_api_metric_freshness_seconds": "histogram",
        "metrics_server_kubelet_last_request_time_seconds": "gauge",
        "metrics_server_kubelet_request_duration_seconds": "histogram",
        "metrics_server_kubelet_request": "counter",  # the parser drops `_total`
        "metrics_server_manager_tick_duration_seconds": "histogram",
        "metrics_server_storage_points": "gauge",
    }
    points = {s.labels["type"]: s.value for s in families["metrics_server_storage_points"].samples}
    containers = sum(len(p.containers) for p in truth.served_pods())
    assert points == {"node": len(truth.served_nodes), "container": containers}
    requests = {
        s.labels["success"]: s.value
        for s in families["metrics_server_kubelet_request"].samples
        if s.name.endswith("_total")
    }
    assert (
        set(requests) == {"true", "false"}
        and requests["true"] >= 2 * len(truth.served_nodes)
        and requests["false"] >= 2
    )
    last = {s.labels["node"] for s in families["metrics_server_kubelet_last_request_time_seconds"].samples}
    assert last == set(truth.nodes)
    # metrics-server's buckets at --metric-resolution=10s: the defaults (10 s is already the largest)
    tick = [
        s.labels["le"]
        for s in families["metrics_server_manager_tick_duration_seconds"].samples
        if s.name.endswith("_bucket")
    ]
    assert tick == [
        "0.005",
        "0.01",
        "0.025",
        "0.05",
        "0.1",
        "0.25",
        "0.5",
        "1.0",
        "2.5",
        "5.0",
        "10.0",
        "+Inf",
    ]
    freshness = [
        s
        for s in families["metrics_server_api_metric_freshness_seconds"].samples
        if s.name.endswith("_count")
    ]
    assert freshness[0].value > 0


NOT_FOUND = "the server could not find the requested resource"
NO_METHOD = "the server does not allow this method on the requested resource"
FIELD_ERROR = "Forbidden: resourceVersionMatch is forbidden unless resourceVersion is provided"
ERROR_CASES: list[tuple[str, str, list[tuple[str, str]], bytes]] = [
    ("GET", f"{API}/nope", [], status(404, "NotFound", NOT_FOUND, {})),
    ("GET", f"{API}/unknown", [], status(404, "NotFound", NOT_FOUND, {})),
    (
        "GET",
        f"{API}/nodes/nope",
        [],
        status(404, "NotFound", 'node "nope" not found', {"name": "nope", "kind": "node"}),
    ),
    (
        "GET",
        f"{API}/nodes/{BROKEN}",
        [],
        status(
            404,
            "NotFound",
            f'nodemetrics.metrics.k8s.io "{BROKEN}" not found',
            {"name": BROKEN, "group": GROUP, "kind": "nodemetrics"},
        ),
    ),
    (
        "GET",
        f"{API}/namespaces/itest/pods/pending-0",
        [],
        status(404, "NotFound", 'pods "pending-0" not found', {"name": "pending-0", "kind": "pods"}),
    ),
    (
        "GET",
        f"{API}/namespaces/itest/pods/on-broken",
        [],
        status(
            404,
            "NotFound",
            'podmetrics.metrics.k8s.io "itest/on-broken" not found',
            {"name": "itest/on-broken", "group": GROUP, "kind": "podmetrics"},
        ),
    ),
    (
        "GET",
        f"{API}/pods?labelSelector=a+in+(",
        [],
        status(400, "BadRequest", "unable to parse requirement: found '', expected: ',', ')' or identifier"),
    ),
    (
        "GET",
        f"{API}/nodes?fieldSelector=spec.nodeName%3Dx",
        [],
        status(
            400,
            "BadRequest",
            '"spec.nodeName" is not a known field selector: only "metadata.name", "metadata.namespace"',
        ),
    ),
    (
        "GET",
        f"{API}/pods?fieldSelector=status.phase%3DRunning",
        [],
        status(
            400,
            "BadRequest",
            '"status.phase" is not a known field selector: '
            'only "metadata.name", "metadata.namespace", "spec.nodeName"',
        ),
    ),
    (
        "GET",
        f"{API}/pods?watch=true",
        [],
        status(
            405,
            "MethodNotAllowed",
            'watch is not supported on resources of kind "pods.metrics.k8s.io"',
            {"group": GROUP, "kind": "pods"},
        ),
    ),
    (
        "GET",
        f"{API}/nodes?watch=1",
        [],
        status(
            405,
            "MethodNotAllowed",
            'watch is not supported on resources of kind "nodes.metrics.k8s.io"',
            {"group": GROUP, "kind": "nodes"},
        ),
    ),
    ("POST", f"{API}/nodes", [], status(405, "MethodNotAllowed", NO_METHOD, {})),
    ("DELETE", f"{API}/namespaces/itest/pods/web-0", [], status(405, "MethodNotAllowed", NO_METHOD, {})),
    (
        "GET",
        f"{API}/nodes",
        [("Accept", "application/xml")],
        orjson.dumps(
            orjson.loads(
                status(
                    406,
                    "NotAcceptable",
                    "406: Not Acceptable\n\nAvailable representations: application/json, application/yaml, "
                    "application/vnd.kubernetes.protobuf, application/json;stream=watch, "
                    "application/vnd.kubernetes.protobuf;stream=watch",
                    {},
                )
            ),
            option=orjson.OPT_INDENT_2,
        ),
    ),
    (
        "GET",
        f"{API}/pods?resourceVersionMatch=Exact",
        [],
        status(
            422,
            "Invalid",
            f'ListOptions.meta.k8s.io "" is invalid: resourceVersionMatch: {FIELD_ERROR}',
            {
                "group": "meta.k8s.io",
                "kind": "ListOptions",
                "causes": [
                    {"reason": "FieldValueForbidden", "message": FIELD_ERROR, "field": "resourceVersionMatch"}
                ],
            },
        ),
    ),
]


@pytest.mark.parametrize(
    ("method", "path", "headers", "expected"), ERROR_CASES, ids=[f"{c[0]} {c[1]}" for c in ERROR_CASES]
)
def test_error_statuses(
    agg: httpx.Client, method: str, path: str, headers: list[tuple[str, str]], expected: bytes
) -> None:
    r = agg.request(method, path, headers=[*MASTERS, *headers])
    assert (r.status_code, r.headers["content-type"], r.content) == (
        orjson.loads(expected)["code"],
        "application/json",
        expected,
    )
    validate("Status", r.json())


def cannot(user: str, verb: str, resource: str, scope: str, name: str = "") -> str:
    """The library's Forbidden message for a resource request (apiserver-wire.md §3.4)."""
    subject = f"{resource}.metrics.k8s.io" + (f' "{name}"' if name else "")
    return (
        f'{subject} is forbidden: User "{user}" cannot {verb} resource "{resource}" '
        f'in API group "metrics.k8s.io" {scope}'
    )


CLUSTER = "at the cluster scope"
JANE_NODES = cannot("jane", "list", "nodes", CLUSTER)
AUTH_CASES = [
    # (who, path, expected)
    (
        "anonymous",
        f"{API}/nodes",
        status(
            403,
            "Forbidden",
            cannot("system:anonymous", "list", "nodes", CLUSTER),
            {"group": GROUP, "kind": "nodes"},
        ),
    ),
    (
        "anonymous",
        "/metrics",
        status(403, "Forbidden", 'forbidden: User "system:anonymous" cannot get path "/metrics"', {}),
    ),
    ("bad-token", f"{API}/nodes", status(401, "Unauthorized", "Unauthorized")),
    ("jane-token", f"{API}/nodes", status(403, "Forbidden", JANE_NODES, {"group": GROUP, "kind": "nodes"})),
    (
        "jane-proxied",
        f"{API}/namespaces/default/pods",
        status(
            403,
            "Forbidden",
            cannot("jane", "list", "pods", 'in the namespace "default"'),
            {"group": GROUP, "kind": "pods"},
        ),
    ),
    (
        "jane-proxied",
        f"{API}/nodes/sim-node-0000",
        status(
            403,
            "Forbidden",
            cannot("jane", "get", "nodes", CLUSTER, "sim-node-0000"),
            {"name": "sim-node-0000", "group": GROUP, "kind": "nodes"},
        ),
    ),
]


def test_forbidden_message_format() -> None:
    assert cannot("jane", "get", "nodes", CLUSTER, "n1") == (
        'nodes.metrics.k8s.io "n1" is forbidden: User "jane" cannot get resource "nodes" '
        'in API group "metrics.k8s.io" at the cluster scope'
    )


@pytest.mark.parametrize(("who", "path", "expected"), AUTH_CASES, ids=[f"{c[0]} {c[1]}" for c in AUTH_CASES])
def test_authentication_and_authorization(
    stack: StackThread,
    agg: httpx.Client,
    server_ca: bytes,
    cluster: SimCluster,
    who: str,
    path: str,
    expected: bytes,
) -> None:
    """Delegated authn/z through the whole stack: anonymous and tokens reviewed by the cluster,
    front-proxy identities authorized with SubjectAccessReviews."""
    if who == "jane-proxied":
        r = agg.get(path, headers=JANE)
    else:
        headers = {
            "bad-token": [("Authorization", "Bearer nope")],
            "jane-token": [("Authorization", f"Bearer {cluster.token(LIMITED_USER)}")],
        }.get(who, [])
        with httpx.Client(base_url=stack.url, verify=client_ssl_context(server_ca)) as client:
            r = client.get(path, headers=headers)
    assert (r.status_code, r.content) == (orjson.loads(expected)["code"], expected)
    validate("Status", r.json())


def test_limited_user_sees_its_namespace(agg: httpx.Client, truth: GroundTruth) -> None:
    r, clock = timed(lambda: agg.get(f"{API}/namespaces/{LIMITED_NAMESPACE}/pods", headers=JANE))
    assert r.status_code == 200
    check_pod_list(r.json(), truth, clock, truth.served_pods(LIMITED_NAMESPACE))


# --- 3. every JSON body against the spec (beyond those checked above) ---------------------------

SCHEMA_CASES = [
    ("/apis", "APIGroupList"),
    ("/apis/metrics.k8s.io", "APIGroup"),
    (API, "APIResourceList"),
    (f"{API}/nodes", "NodeMetricsList"),
    (f"{API}/nodes?labelSelector=nothing%3Dmatches", "NodeMetricsList"),
    (f"{API}/nodes/sim-node-0001", "NodeMetrics"),
    (f"{API}/pods", "PodMetricsList"),
    (f"{API}/namespaces/itest/pods", "PodMetricsList"),
    (f"{API}/namespaces/itest/pods/web-0", "PodMetrics"),
    (f"{API}/namespaces/itest/pods/nope", "Status"),
    (f"{API}/nodes?limit=x", "Status"),
]


@pytest.mark.parametrize(("path", "schema"), SCHEMA_CASES)
def test_responses_match_the_spec(agg: httpx.Client, path: str, schema: str) -> None:
    r = agg.get(path, headers=[*MASTERS, ("Accept", "application/json, */*")])
    assert (r.status_code == 200) == (schema != "Status")
    assert r.headers["content-type"] == "application/json"
    validate(schema, r.json())


# --- 2. the generated client, straight at the server --------------------------------------------


def wire(model: Any) -> dict[str, Any]:
    """A generated model back in wire form (`to_dict`, with `Z` for the UTC offset)."""

    def fix(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: fix(v) for k, v in value.items()}
        if isinstance(value, list):
            return [fix(v) for v in value]
        if isinstance(value, str) and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\+00:00", value):
            return value.removesuffix("+00:00") + "Z"
        return value

    body: dict[str, Any] = fix(model.to_dict())
    return body


def check_client_results(results: Mapping[str, Any], truth: GroundTruth, clock: Clock) -> None:
    assert isinstance(results["groups"], APIGroupList)
    assert isinstance(results["group"], APIGroup)
    assert isinstance(results["resources"], APIResourceList)
    groups = results["groups"].to_dict()
    served = groups["groups"][0]["serverAddressByClientCIDRs"][0]["serverAddress"]  # ":<port>"
    assert groups == orjson.loads(go_json(DISCOVERY["/apis"][1]).replace(b":PORT", served.encode()))
    assert results["group"].to_dict() == DISCOVERY["/apis/metrics.k8s.io"][1]
    assert results["resources"].to_dict() == DISCOVERY[API][1]
    assert isinstance(results["nodes"], NodeMetricsList)
    check_node_list(wire(results["nodes"]), truth, clock, truth.served_nodes, ordered=False)
    assert isinstance(results["node"], NodeMetrics)
    check_node(wire(results["node"]), truth.nodes["sim-node-0002"], clock, ordered=False)
    assert isinstance(results["pods"], PodMetricsList)
    check_pod_list(wire(results["pods"]), truth, clock, truth.served_pods(), ordered=False)
    assert isinstance(results["itest"], PodMetricsList)
    check_pod_list(wire(results["itest"]), truth, clock, truth.served_pods("itest"), ordered=False)
    assert isinstance(results["web"], PodMetrics)
    check_pod(wire(results["web"]), truth.pods[("itest", "web-0")], truth, clock, ordered=False)
    missing = results["missing"]  # error answers raise, with the Status as served
    assert isinstance(missing, NotFound)
    assert missing.status.to_dict() == orjson.loads(
        status(
            404,
            "NotFound",
            f'nodemetrics.metrics.k8s.io "{BROKEN}" not found',
            {"name": BROKEN, "group": GROUP, "kind": "nodemetrics"},
        )
    )
    team = results["jane-team"]
    assert isinstance(team, PodMetricsList)
    check_pod_list(wire(team), truth, clock, truth.served_pods(LIMITED_NAMESPACE), ordered=False)
    denied = results["jane-nodes"]
    assert isinstance(denied, Forbidden)
    assert (denied.code, denied.reason, denied.message) == (403, "Forbidden", JANE_NODES)


def raised(call: Callable[..., object], *args: object, **kwargs: object) -> ApiError:
    """The ApiError that ``call`` raises."""
    with pytest.raises(ApiError) as caught:
        call(*args, **kwargs)
    return caught.value


def test_generated_client_sync(kubeconfig: Path, truth: GroundTruth) -> None:
    clock = Clock()
    results: dict[str, Any] = {}
    with metrics_client(kubeconfig=kubeconfig, context="admin") as client:
        results["groups"] = get_api_groups.sync(client=client)
        results["group"] = get_metrics_api_group.sync(client=client)
        results["resources"] = get_metrics_api_resources.sync(client=client)
        results["nodes"] = list_node_metrics.sync(client=client)
        results["node"] = read_node_metrics.sync("sim-node-0002", client=client)
        results["pods"] = list_pod_metrics_for_all_namespaces.sync(client=client)
        results["itest"] = list_namespaced_pod_metrics.sync("itest", client=client)
        results["web"] = read_namespaced_pod_metrics.sync("itest", "web-0", client=client)
        results["missing"] = raised(read_node_metrics.sync, BROKEN, client=client)
    with metrics_client(kubeconfig=kubeconfig, context="jane") as client:
        results["jane-team"] = list_namespaced_pod_metrics.sync(LIMITED_NAMESPACE, client=client)
        results["jane-nodes"] = raised(list_node_metrics.sync, client=client)
    check_client_results(results, truth, clock.done())


async def test_generated_client_async_under_trio(kubeconfig: Path, truth: GroundTruth) -> None:
    clock = Clock()
    results: dict[str, Any] = {}
    # Concurrently, on one client.
    async with (
        metrics_client(kubeconfig=kubeconfig, context="admin") as client,
        trio.open_nursery() as nursery,
    ):

        async def fetch(key: str, call: Callable[[], Awaitable[object]]) -> None:
            try:
                results[key] = await call()
            except ApiError as exc:
                results[key] = exc

        calls: dict[str, Callable[[], Awaitable[object]]] = {
            "groups": partial(get_api_groups.asyncio, client=client),
            "group": partial(get_metrics_api_group.asyncio, client=client),
            "resources": partial(get_metrics_api_resources.asyncio, client=client),
            "nodes": partial(list_node_metrics.asyncio, client=client),
            "node": partial(read_node_metrics.asyncio, "sim-node-0002", client=client),
            "pods": partial(list_pod_metrics_for_all_namespaces.asyncio, client=client),
            "itest": partial(list_namespaced_pod_metrics.asyncio, "itest", client=client),
            "web": partial(read_namespaced_pod_metrics.asyncio, "itest", "web-0", client=client),
            "missing": partial(read_node_metrics.asyncio, BROKEN, client=client),
        }
        for key, call in calls.items():
            nursery.start_soon(fetch, key, call)
    async with metrics_client(kubeconfig=kubeconfig, context="jane") as client:
        results["jane-team"] = await list_namespaced_pod_metrics.asyncio(LIMITED_NAMESPACE, client=client)
        with pytest.raises(ApiError) as denied:
            await list_node_metrics.asyncio(client=client)
        results["jane-nodes"] = denied.value
    check_client_results(results, truth, clock.done())


async def test_raw_async_client_under_trio(
    stack: StackThread, cluster: SimCluster, server_ca: bytes, truth: GroundTruth
) -> None:
    """The aggregator's requests from trio code, concurrently over one HTTP/1.1 pool."""
    clock = Clock()
    bodies: dict[str, Any] = {}
    async with aggregator_async_client(stack.url, cluster, server_ca) as client:

        async def get(path: str) -> None:
            r = await client.get(path, headers=MASTERS)
            assert r.status_code == 200
            bodies[path] = r.json()

        async with trio.open_nursery() as nursery:
            for path in (f"{API}/nodes", f"{API}/pods", *(f"{API}/nodes/{n}" for n in truth.served_nodes)):
                nursery.start_soon(get, path)
    clock.done()
    check_node_list(bodies[f"{API}/nodes"], truth, clock, truth.served_nodes)
    check_pod_list(bodies[f"{API}/pods"], truth, clock, truth.served_pods())
    for name in truth.served_nodes:
        check_node(bodies[f"{API}/nodes/{name}"], truth.nodes[name], clock)
