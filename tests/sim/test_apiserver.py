"""The simulated kube-apiserver over HTTPS: discovery, lists, watches, reviews, authn/authz."""

from __future__ import annotations

import json

import httpx
import trio
import trio.testing
from simhelpers import cluster_client

from kubesim import LIMITED_USER, METRICS_SERVER_USER, MI, ContainerSpec, SimCluster, Steady


async def test_discovery(admin: httpx.AsyncClient) -> None:
    api = (await admin.get("/api")).json()
    assert api["kind"] == "APIVersions" and api["versions"] == ["v1"]
    groups = (await admin.get("/apis")).json()
    assert groups["kind"] == "APIGroupList"
    metrics = next(g for g in groups["groups"] if g["name"] == "metrics.k8s.io")
    assert metrics["preferredVersion"] == {"groupVersion": "metrics.k8s.io/v1beta1", "version": "v1beta1"}
    core = (await admin.get("/api/v1")).json()
    assert {r["name"] for r in core["resources"]} == {"configmaps", "namespaces", "nodes", "pods"}
    r = await admin.get("/version")
    assert r.headers["content-type"] == "application/json" and r.json()["major"] == "1"
    r = await admin.get("/nope")
    assert r.status_code == 404 and r.json()["message"] == "the server could not find the requested resource"


async def test_nodes(cluster: SimCluster, admin: httpx.AsyncClient) -> None:
    doc = (await admin.get("/api/v1/nodes")).json()
    assert doc["kind"] == "NodeList" and [n["metadata"]["name"] for n in doc["items"]] == cluster.node_names()
    node = doc["items"][1]
    assert node["status"]["addresses"] == [
        {"type": "InternalIP", "address": "127.77.0.2"},
        {"type": "Hostname", "address": node["metadata"]["name"]},
    ]
    port = cluster.model_options.kubelet_port
    assert port != 0 and cluster.kubelet_url(node["metadata"]["name"]) == f"https://127.77.0.2:{port}"
    assert node["status"]["daemonEndpoints"] == {"kubeletEndpoint": {"Port": port}}
    assert {"cpu", "memory", "pods"} <= set(node["status"]["allocatable"]) & set(node["status"]["capacity"])
    ready = next(c for c in node["status"]["conditions"] if c["type"] == "Ready")
    assert ready["status"] == "True"
    one = (await admin.get(f"/api/v1/nodes/{cluster.node_names()[0]}")).json()
    assert (one["kind"], one["apiVersion"]) == ("Node", "v1")
    r = await admin.get("/api/v1/nodes/ghost")
    assert r.status_code == 404
    assert r.json() == {
        "kind": "Status",
        "apiVersion": "v1",
        "metadata": {},
        "status": "Failure",
        "message": 'nodes "ghost" not found',
        "reason": "NotFound",
        "details": {"name": "ghost", "kind": "nodes"},
        "code": 404,
    }


async def test_requests_and_capacity_are_canonical_quantities(
    cluster: SimCluster, admin: httpx.AsyncClient
) -> None:
    node = cluster.node_names()[0]
    containers = [
        ContainerSpec("a", Steady(0, millicores=250, memory=1024 * MI)),
        ContainerSpec("b", Steady(0, millicores=2000, memory=300 * MI)),
    ]
    cluster.add_pod(node, "default", "quantities", containers)
    pod = (await admin.get("/api/v1/namespaces/default/pods/quantities")).json()
    requests = [c["resources"]["requests"] for c in pod["spec"]["containers"]]
    assert requests == [{"cpu": "250m", "memory": "1Gi"}, {"cpu": "2", "memory": "300Mi"}]
    model = cluster.model.node(node)
    status = (await admin.get(f"/api/v1/nodes/{node}")).json()["status"]
    assert status["capacity"]["cpu"] == str(model.cpu_capacity_mc // 1000)
    assert status["capacity"]["memory"] == f"{model.memory_capacity // 1024}Ki"
    assert status["allocatable"]["cpu"] == f"{model.cpu_allocatable_mc}m"


async def test_pod_lists_and_selectors(cluster: SimCluster, admin: httpx.AsyncClient) -> None:
    node = cluster.node_names()[0]
    cluster.add_pod(node, "team-a", "w1", [ContainerSpec("c", Steady(0))], labels={"app": "w", "tier": "x"})
    cluster.add_pod(node, "team-a", "w2", [ContainerSpec("c", Steady(0))], labels={"app": "w", "tier": "y"})
    cluster.set_pod_phase("team-a", "w2", "Succeeded")
    all_pods = (await admin.get("/api/v1/pods")).json()["items"]
    assert len(all_pods) == len(cluster.pods())
    for p in all_pods:
        assert {"creationTimestamp", "labels", "namespace"} <= set(p["metadata"])
        assert p["spec"]["nodeName"] and p["spec"]["containers"]

    def names(r: httpx.Response) -> list[str]:
        return [p["metadata"]["name"] for p in r.json()["items"]]

    r = await admin.get("/api/v1/namespaces/team-a/pods", params={"labelSelector": "app=w"})
    assert names(r) == ["w1", "w2"]
    r = await admin.get("/api/v1/namespaces/team-a/pods", params={"labelSelector": "app in (w),tier!=x"})
    assert names(r) == ["w2"]
    r = await admin.get(
        "/api/v1/pods", params={"fieldSelector": f"status.phase=Running,spec.nodeName={node}"}
    )
    expected = sorted(p.name for p in cluster.pods(node) if p.phase == "Running")
    assert sorted(names(r)) == expected and "w2" not in names(r)
    r = await admin.get("/api/v1/pods", params={"fieldSelector": "spec.bogus=1"})
    assert r.status_code == 400 and r.json()["message"] == "field label not supported: spec.bogus"
    r = await admin.get("/api/v1/pods", params={"labelSelector": "app in (x"})
    assert r.status_code == 400 and r.json()["reason"] == "BadRequest"
    assert r.json()["message"] == "unable to parse requirement: found '', expected: ',' or ')'"
    r = await admin.get("/api/v1/pods", params={"fieldSelector": "metadata.name=a\\x"})
    assert r.status_code == 400
    assert r.json()["message"] == "invalid field selector: invalid escape sequence: \\x"


async def test_limit_and_continue_give_a_consistent_snapshot(
    cluster: SimCluster, admin: httpx.AsyncClient
) -> None:
    total = len(cluster.pods())
    first = (await admin.get("/api/v1/pods", params={"limit": 4})).json()
    assert len(first["items"]) == 4 and first["metadata"]["remainingItemCount"] == total - 4
    cluster.add_pod(cluster.node_names()[0], "aaa", "late", [ContainerSpec("c", Steady(0))])
    seen = [p["metadata"]["name"] for p in first["items"]]
    token = first["metadata"]["continue"]
    while token:
        page = (await admin.get("/api/v1/pods", params={"limit": 4, "continue": token})).json()
        seen += [p["metadata"]["name"] for p in page["items"]]
        token = page["metadata"].get("continue", "")
    assert len(seen) == total and "late" not in seen
    cluster.compact()
    r = await admin.get("/api/v1/pods", params={"limit": 4, "continue": first["metadata"]["continue"]})
    assert r.status_code == 410 and r.json()["reason"] == "Expired"


async def _read_until_timeout(
    response: httpx.Response, clock: trio.testing.MockClock
) -> list[dict[str, object]]:
    """Let the server's timeoutSeconds (<= 100 s) end the watch, then read every event it sent."""
    await trio.testing.wait_all_tasks_blocked()
    clock.jump(101)
    return [json.loads(line) async for line in response.aiter_lines() if line]


async def test_watch_from_resource_version_and_phase_change(
    cluster: SimCluster, admin: httpx.AsyncClient, mock_clock: trio.testing.MockClock
) -> None:
    node = cluster.node_names()[1]
    listing = (await admin.get("/api/v1/pods", params={"fieldSelector": "status.phase=Running"})).json()
    rv = listing["metadata"]["resourceVersion"]
    params = {
        "watch": "true",
        "resourceVersion": rv,
        "fieldSelector": "status.phase=Running",
        "timeoutSeconds": "100",
    }
    async with admin.stream("GET", "/api/v1/pods", params=params) as r:
        assert r.status_code == 200 and r.headers["content-type"] == "application/json"
        cluster.add_pod(node, "default", "job", [ContainerSpec("c", Steady(0, millicores=10, memory=8 * MI))])
        cluster.set_pod_phase("default", "job", "Succeeded")
        cluster.delete_pod("default", "job")
        events = await _read_until_timeout(r, mock_clock)
    added, deleted = events
    assert added["type"] == "ADDED" and added["object"]["metadata"]["name"] == "job"  # type: ignore[index]
    assert added["object"]["kind"] == "Pod"  # type: ignore[index]
    # Leaving the selector is a DELETED carrying the old content with the new resourceVersion.
    assert deleted["type"] == "DELETED"
    obj = deleted["object"]
    assert obj["status"]["phase"] == "Running"  # type: ignore[index]
    assert int(obj["metadata"]["resourceVersion"]) > int(added["object"]["metadata"]["resourceVersion"])  # type: ignore[index]


async def test_watch_without_resource_version_starts_with_current_state(
    cluster: SimCluster, admin: httpx.AsyncClient, mock_clock: trio.testing.MockClock
) -> None:
    async with admin.stream("GET", "/api/v1/nodes", params={"watch": "1", "timeoutSeconds": "5"}) as r:
        events = await _read_until_timeout(r, mock_clock)
    assert [(e["type"], e["object"]["metadata"]["name"]) for e in events] == [  # type: ignore[index]
        ("ADDED", n) for n in cluster.node_names()
    ]


async def test_watch_expired_resource_version_gets_410(cluster: SimCluster, admin: httpx.AsyncClient) -> None:
    cluster.compact()
    async with admin.stream("GET", "/api/v1/pods", params={"watch": "true", "resourceVersion": "2"}) as r:
        assert r.status_code == 200
        events = [json.loads(line) async for line in r.aiter_lines() if line]
    floor = cluster.model.api_pods.floor_rv
    assert events == [
        {
            "type": "ERROR",
            "object": {
                "kind": "Status",
                "apiVersion": "v1",
                "metadata": {},
                "status": "Failure",
                "message": f"too old resource version: 2 ({floor})",
                "reason": "Expired",
                "code": 410,
            },
        }
    ]


async def test_watch_bookmarks_and_timeout(
    cluster: SimCluster, admin: httpx.AsyncClient, mock_clock: trio.testing.MockClock
) -> None:
    rv = (await admin.get("/api/v1/nodes")).json()["metadata"]["resourceVersion"]
    params = {"watch": "true", "resourceVersion": rv, "allowWatchBookmarks": "true", "timeoutSeconds": "150"}
    async with admin.stream("GET", "/api/v1/nodes", params=params) as r:
        lines = r.aiter_lines()
        await trio.testing.wait_all_tasks_blocked()
        mock_clock.jump(60)
        first = json.loads(await lines.__anext__())
        assert first == {
            "type": "BOOKMARK",
            "object": {
                "kind": "Node",
                "apiVersion": "v1",
                "metadata": {"resourceVersion": rv, "creationTimestamp": None},
            },
        }
        cluster.set_node_ready(cluster.node_names()[0], False)
        modified = json.loads(await lines.__anext__())
        assert modified["type"] == "MODIFIED"
        ready = next(c for c in modified["object"]["status"]["conditions"] if c["type"] == "Ready")
        assert ready["status"] == "Unknown"
        await trio.testing.wait_all_tasks_blocked()
        mock_clock.jump(61)  # a minute without events: another bookmark
        await trio.testing.wait_all_tasks_blocked()
        mock_clock.jump(30)  # past timeoutSeconds: the server ends the response
        rest = [line async for line in lines if line]
    assert [json.loads(line)["type"] for line in rest] == ["BOOKMARK"]


async def test_extension_apiserver_authentication_configmap(cluster: SimCluster) -> None:
    async with cluster_client(cluster, token=cluster.token(METRICS_SERVER_USER)) as sa:
        base = cluster.api_url + "/api/v1/namespaces/kube-system/configmaps"
        cm = (await sa.get(base + "/extension-apiserver-authentication")).json()
        listed = await sa.get(
            base, params={"fieldSelector": "metadata.name=extension-apiserver-authentication"}
        )
        other = await sa.get(base + "/kube-root-ca.crt")
    data = cm["data"]
    assert data["client-ca-file"] == cluster.paths.ca_cert.read_text()
    assert data["requestheader-client-ca-file"] == cluster.paths.front_proxy_ca_cert.read_text()
    assert data["requestheader-allowed-names"] == '["front-proxy-client"]'
    assert data["requestheader-username-headers"] == '["X-Remote-User"]'
    assert data["requestheader-group-headers"] == '["X-Remote-Group"]'
    assert data["requestheader-extra-headers-prefix"] == '["X-Remote-Extra-"]'
    assert [i["metadata"]["name"] for i in listed.json()["items"]] == ["extension-apiserver-authentication"]
    assert other.status_code == 403  # the reader role names only that ConfigMap


async def test_token_review(cluster: SimCluster, admin: httpx.AsyncClient) -> None:
    body = {
        "kind": "TokenReview",
        "apiVersion": "authentication.k8s.io/v1",
        "spec": {"token": cluster.token(LIMITED_USER)},
    }
    r = await admin.post("/apis/authentication.k8s.io/v1/tokenreviews", json=body)
    assert r.status_code == 201
    assert r.json()["status"]["authenticated"] is True
    assert r.json()["status"]["user"] == {
        "username": "jane",
        "groups": ["developers", "system:authenticated"],
    }
    body["spec"] = {"token": "bogus"}
    r = await admin.post("/apis/authentication.k8s.io/v1/tokenreviews", json=body)
    assert r.json()["status"]["authenticated"] is False
    sa = (
        await admin.post(
            "/apis/authentication.k8s.io/v1/tokenreviews",
            json={"spec": {"token": cluster.token(METRICS_SERVER_USER)}},
        )
    ).json()["status"]["user"]
    assert sa["groups"] == [
        "system:serviceaccounts",
        "system:serviceaccounts:kube-system",
        "system:authenticated",
    ]
    async with cluster_client(cluster, token=cluster.token(LIMITED_USER)) as jane:
        r = await jane.post(cluster.api_url + "/apis/authentication.k8s.io/v1/tokenreviews", json=body)
    assert r.status_code == 403
    assert r.json()["message"] == (
        'tokenreviews.authentication.k8s.io is forbidden: User "jane" cannot create resource "tokenreviews" '
        'in API group "authentication.k8s.io" at the cluster scope'
    )


async def _sar(client: httpx.AsyncClient, user: str, groups: list[str], **attrs: str) -> dict[str, object]:
    spec: dict[str, object] = {"user": user, "groups": groups}
    if "path" in attrs:
        spec["nonResourceAttributes"] = attrs
    else:
        spec["resourceAttributes"] = attrs
    r = await client.post("/apis/authorization.k8s.io/v1/subjectaccessreviews", json={"spec": spec})
    assert r.status_code == 201
    return r.json()["status"]  # type: ignore[no-any-return]


async def test_subject_access_review_policy(admin: httpx.AsyncClient) -> None:
    sa = "system:serviceaccount:kube-system:metrics-server"
    sa_groups = ["system:serviceaccounts", "system:serviceaccounts:kube-system", "system:authenticated"]
    assert (
        await _sar(admin, sa, sa_groups, verb="get", resource="nodes", subresource="metrics", name="n1")
    ) == {
        "allowed": True,
        "reason": 'RBAC: allowed by ClusterRoleBinding "system:metrics-server" '
        'of ClusterRole "system:metrics-server" '
        'to ServiceAccount "kube-system/metrics-server"',
    }
    assert (await _sar(admin, sa, sa_groups, verb="list", resource="pods"))["allowed"] is True
    assert (await _sar(admin, sa, sa_groups, verb="delete", resource="pods"))["allowed"] is False
    jane = ["developers", "system:authenticated"]
    metrics = {"group": "metrics.k8s.io", "resource": "pods", "verb": "list"}
    assert (await _sar(admin, "jane", jane, namespace="team-a", **metrics))["allowed"] is True
    assert (await _sar(admin, "jane", jane, namespace="default", **metrics)) == {"allowed": False}
    assert (await _sar(admin, "jane", jane, verb="get", path="/apis/metrics.k8s.io/v1beta1"))[
        "allowed"
    ] is True
    assert (await _sar(admin, "x", ["system:masters"], verb="delete", resource="nodes"))["allowed"] is True


async def test_authentication_modes(cluster: SimCluster) -> None:
    async with cluster_client(
        cluster, cert=True
    ) as c:  # client certificate: CN kubernetes-admin, O system:masters
        assert (await c.get(cluster.api_url + "/api/v1/nodes")).status_code == 200
    async with cluster_client(cluster, token="wrong") as c:
        r = await c.get(cluster.api_url + "/api/v1/nodes")
        assert r.status_code == 401 and r.json()["message"] == "Unauthorized" and "details" not in r.json()
    async with cluster_client(cluster) as c:  # anonymous
        assert (await c.get(cluster.api_url + "/version")).status_code == 200
        r = await c.get(cluster.api_url + "/api/v1/nodes")
        assert r.status_code == 403 and r.json()["message"] == (
            'nodes is forbidden: User "system:anonymous" cannot list resource "nodes" in API group "" '
            "at the cluster scope"
        )


async def test_control_endpoint(cluster: SimCluster, admin: httpx.AsyncClient) -> None:
    node = cluster.node_names()[0]
    r = await admin.post(f"/sim/nodes/{node}/fault", params={"mode": "error"})
    assert r.status_code == 200 and cluster.model.node(node).fault == "error"
    r = await admin.post(f"/sim/nodes/{node}/fault", params={"mode": "bogus"})
    assert r.status_code == 400 and "unknown fault mode 'bogus'" in r.json()["message"]
    r = await admin.post("/sim/nodes/ghost/fault", params={"mode": "ok"})
    assert r.status_code == 404
    async with cluster_client(cluster, token=cluster.token(LIMITED_USER)) as jane:
        r = await jane.post(cluster.api_url + f"/sim/nodes/{node}/fault", params={"mode": "ok"})
    assert r.status_code == 403
    assert r.json()["message"] == f'forbidden: User "jane" cannot post path "/sim/nodes/{node}/fault"'
