"""kube-aggregator: front-proxy identity, header stripping, query re-encoding, authz, availability."""

from __future__ import annotations

import httpx
import trio
from simhelpers import FakeMetricsServer, start_fake_metrics_server

from kubesim import SimCluster
from kubesim.aggregator import escape_extra_key, go_query_encode, identity_headers
from kubesim.policy import User


def test_go_query_encode_sorts_keys_and_uses_plus() -> None:
    params = {"labelSelector": ["app in (x,y)"], "b": ["2", "1"], "a": [""], "f": ["metadata.name=p~1"]}
    assert go_query_encode(params) == "a=&b=2&b=1&f=metadata.name%3Dp~1&labelSelector=app+in+%28x%2Cy%29"


def test_extra_keys_are_escaped_like_client_go() -> None:
    assert (
        escape_extra_key("authentication.kubernetes.io/pod-name") == "authentication.kubernetes.io%2Fpod-name"
    )
    assert escape_extra_key("a%b c") == "a%25b%20c"
    user = User("u", "uid-1", ("g1", "g2"), {"scopes": ("read", "write")})
    assert identity_headers(user) == [
        ("X-Remote-User", "u"),
        ("X-Remote-Group", "g1"),
        ("X-Remote-Group", "g2"),
        ("X-Remote-Extra-scopes", "read"),
        ("X-Remote-Extra-scopes", "write"),
    ]
    assert identity_headers(user, with_uid=True)[-1] == ("X-Remote-Uid", "uid-1")


async def _with_backend(cluster: SimCluster, nursery: trio.Nursery) -> FakeMetricsServer:
    backend = await start_fake_metrics_server(nursery, cluster.paths.front_proxy_ca_cert)
    cluster.set_metrics_server_url(backend.url)
    await cluster.wait_apiservice_available()
    return backend


def _headers(echo: dict[str, object]) -> list[tuple[str, str]]:
    return [(k, v) for k, v in echo["headers"]]  # type: ignore[attr-defined]


async def test_availability_probe_identity(cluster: SimCluster, admin: httpx.AsyncClient) -> None:
    async with trio.open_nursery() as nursery:
        backend = await _with_backend(cluster, nursery)
        probe = backend.requests[0]
        assert (probe.method, probe.path) == ("GET", "/apis/metrics.k8s.io/v1beta1")
        assert probe.peer.cert_common_name == "front-proxy-client"
        assert probe.header("x-remote-user") == "system:kube-aggregator"
        assert [v for k, v in probe.headers if k == b"x-remote-group"] == [b"system:masters"]
        assert probe.header("authorization") is None
        # Five parallel probes (one success is enough), then the aggregated discovery fetch of
        # /apis and, this backend answering plain JSON, its fallback to the group-version document.
        assert [r.path for r in backend.requests] == [
            *["/apis/metrics.k8s.io/v1beta1"] * 5,
            "/apis",
            "/apis/metrics.k8s.io/v1beta1",
        ]
        assert [v for k, v in backend.requests[6].headers if k == b"x-remote-group"] == []
        svc = (await admin.get("/apis/apiregistration.k8s.io/v1/apiservices/v1beta1.metrics.k8s.io")).json()
        cond = svc["status"]["conditions"][0]
        assert (cond["type"], cond["status"], cond["reason"], cond["message"]) == (
            "Available",
            "True",
            "Passed",
            "all checks passed",
        )
        nursery.cancel_scope.cancel()


async def test_proxy_strips_client_identity_and_reencodes_query(
    cluster: SimCluster, admin: httpx.AsyncClient
) -> None:
    async with trio.open_nursery() as nursery:
        await _with_backend(cluster, nursery)
        r = await admin.get(
            "/apis/metrics.k8s.io/v1beta1/namespaces/team-a/pods?limit=500&labelSelector=app+in+(x,y)&fieldSelector=",
            headers=[
                ("X-Remote-User", "mallory"),
                ("X-Remote-Group", "system:masters"),
                ("x-remote-extra-evil", "1"),
                ("Impersonate-User", "root"),
                ("Accept", "application/vnd.kubernetes.protobuf, */*"),
                ("Kubectl-Command", "kubectl top pod"),
            ],
        )
        assert r.status_code == 200
        echo = r.json()
        assert echo["path"] == "/apis/metrics.k8s.io/v1beta1/namespaces/team-a/pods"
        assert echo["query"] == "fieldSelector=&labelSelector=app+in+%28x%2Cy%29&limit=500"
        assert echo["cn"] == "front-proxy-client"
        headers = _headers(echo)
        names = [k for k, _ in headers]
        assert (
            "authorization" not in names
            and "impersonate-user" not in names
            and "x-remote-extra-evil" not in names
        )
        assert [(k, v) for k, v in headers if k.startswith("x-remote-")] == [
            ("x-remote-user", "kubernetes-admin"),
            ("x-remote-group", "system:masters"),
            ("x-remote-group", "system:authenticated"),
        ]
        assert ("accept", "application/vnd.kubernetes.protobuf, */*") in headers
        assert ("kubectl-command", "kubectl top pod") in headers
        nursery.cancel_scope.cancel()


async def test_service_account_extra_is_forwarded(cluster: SimCluster) -> None:
    from simhelpers import cluster_client

    from kubesim import METRICS_SERVER_USER

    async with trio.open_nursery() as nursery:
        await _with_backend(cluster, nursery)
        async with cluster_client(cluster, token=cluster.token(METRICS_SERVER_USER)) as sa:
            echo = (await sa.get(cluster.api_url + "/apis/metrics.k8s.io/v1beta1")).json()
        remote = [(k, v) for k, v in _headers(echo) if k.startswith("x-remote-")]
        assert remote == [
            ("x-remote-user", "system:serviceaccount:kube-system:metrics-server"),
            ("x-remote-group", "system:serviceaccounts"),
            ("x-remote-group", "system:serviceaccounts:kube-system"),
            ("x-remote-group", "system:authenticated"),
            ("x-remote-extra-authentication.kubernetes.io%2fpod-name", "metrics-server-5d8c9b6f4-abcde"),
        ]
        nursery.cancel_scope.cancel()


async def test_limited_user_is_forbidden_before_proxying(cluster: SimCluster) -> None:
    from simhelpers import cluster_client

    from kubesim import LIMITED_USER

    async with trio.open_nursery() as nursery:
        backend = await _with_backend(cluster, nursery)
        before = len(backend.requests)
        async with cluster_client(cluster, token=cluster.token(LIMITED_USER)) as jane:
            denied = await jane.get(cluster.api_url + "/apis/metrics.k8s.io/v1beta1/namespaces/default/pods")
            allowed = await jane.get(cluster.api_url + "/apis/metrics.k8s.io/v1beta1/namespaces/team-a/pods")
            nodes = await jane.get(cluster.api_url + "/apis/metrics.k8s.io/v1beta1/nodes")
        assert denied.status_code == 403
        assert denied.json() == {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": 'pods.metrics.k8s.io is forbidden: User "jane" cannot list resource "pods" '
            "in API group "
            '"metrics.k8s.io" in the namespace "default"',
            "reason": "Forbidden",
            "details": {"group": "metrics.k8s.io", "kind": "pods"},
            "code": 403,
        }
        assert nodes.json()["message"] == (
            'nodes.metrics.k8s.io is forbidden: User "jane" cannot list resource "nodes" in API group '
            '"metrics.k8s.io" at the cluster scope'
        )
        assert allowed.status_code == 200
        assert [r.path for r in backend.requests[before:]] == [
            "/apis/metrics.k8s.io/v1beta1/namespaces/team-a/pods"
        ]
        nursery.cancel_scope.cancel()


async def test_plain_503_when_unavailable(cluster: SimCluster, admin: httpx.AsyncClient) -> None:
    r = await admin.get("/apis/metrics.k8s.io/v1beta1/nodes")
    assert (r.status_code, r.headers["content-type"], r.content) == (
        503,
        "text/plain; charset=utf-8",
        b"service unavailable\n",
    )
    groups = (await admin.get("/apis")).json()["groups"]  # still listed while unavailable
    assert "metrics.k8s.io" in [g["name"] for g in groups]
    cond = (await admin.get("/apis/apiregistration.k8s.io/v1/apiservices")).json()["items"][0]["status"][
        "conditions"
    ][0]
    assert (cond["status"], cond["reason"]) == ("False", "ServiceNotFound")

    async with trio.open_nursery() as nursery:
        backend = await _with_backend(cluster, nursery)
        assert (await admin.get("/apis/metrics.k8s.io/v1beta1/nodes")).status_code == 200
        nursery.cancel_scope.cancel()
    # The backend is gone: the next probe fails and the proxy answers 503 without dialing.
    cluster.set_metrics_server_url(backend.url)
    await cluster.aggregator.wait_probe()
    assert not cluster.aggregator.available
    assert cluster.aggregator.reason == "FailedDiscoveryCheck"
    assert cluster.aggregator.message.startswith(
        f"failing or missing response from {backend.url}/apis/metrics.k8s.io/v1beta1: "
    )
    r = await admin.get("/apis/metrics.k8s.io/v1beta1/nodes")
    assert (r.status_code, r.content) == (503, b"service unavailable\n")
