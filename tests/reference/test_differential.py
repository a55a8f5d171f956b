"""Our server against metrics-server v0.8.0: the same requests to both, the replies compared.

Needs `../shared/reference/bin/metrics-server-v0.8.0` (see `refharness.reference_or_skip`): a
failure under CI=true when it is missing, a skip with the reason elsewhere. Every comparison is
either identical (after the masks of `compare`) or explained by an entry of `deliberate`, which
`docs/compatibility.md` lists; the summary at the end of the run prints the counts.

The tests run in file order on one cluster: HTTP groups, `/metrics`, kubectl 1.27-1.33 through the
aggregator, then changes to the cluster (a restart, a pod stopping, a pod appearing) and the
resources compared again once both servers have scraped past them.
"""

from __future__ import annotations

import re
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import orjson
import pytest
from cases import (
    API,
    PROTOBUF,
    Case,
    content_cases,
    discovery_cases,
    error_cases,
    health_cases,
    openapi_cases,
    resource_cases,
)
from compare import Tally, compare, mask_json, mask_yaml, unport
from deliberate import BY_ID, DIFFERENCES, classify
from prometheus_client.parser import text_string_to_metric_families
from refharness import PairHarness, Reply

from kubesim.deterministic import DIFF_NAMESPACES

ROOT = Path(__file__).resolve().parents[2]
KUBECTL_VERSIONS = ("1.27", "1.28", "1.29", "1.30", "1.31", "1.32", "1.33")


def check(pair: PairHarness, tally: Tally, group: str, cases: list[Case]) -> None:
    """Send every case to both servers (ours first), classify, and fail on anything unexplained."""
    unexplained: list[str] = []
    ports = pair.servers["ours"].port, pair.servers["reference"].port
    for case in cases:
        ours = pair.get("ours", case.path, case.headers, method=case.method, who=case.who)
        ref = pair.get("reference", case.path, case.headers, method=case.method, who=case.who)
        record(tally, group, case.id, unport(ours, ports[0]), unport(ref, ports[1]), unexplained)
    assert not unexplained, "unexplained differences:\n" + "\n".join(unexplained)


def record(tally: Tally, group: str, case: str, ours: Reply, ref: Reply, unexplained: list[str]) -> None:
    outcome = compare(ours, ref)
    kind, difference = classify(case, ours, ref, outcome.same)
    if kind in ("same", "resolved"):
        tally.identical[group] += 1
        if kind == "resolved" and difference is not None:
            tally.resolved.append(f"{difference.id}: {case}")
    elif kind == "listed" and difference is not None:
        tally.listed[difference.id] += 1
    else:
        line = f"[{group}] {case}: " + "; ".join(outcome.what)
        tally.unexplained.append(line)
        unexplained.append(line)


def test_discovery(pair: PairHarness, tally: Tally) -> None:
    check(pair, tally, "discovery", discovery_cases())


def test_resources_selectors_and_list_options(pair: PairHarness, tally: Tally) -> None:
    assert pair.workload is not None
    check(pair, tally, "resources", resource_cases(pair.workload, pair.call(pair.cluster.node_names)))


def test_content_types(pair: PairHarness, tally: Tally) -> None:
    check(pair, tally, "content types", content_cases(pair.call(pair.cluster.node_names)))


def test_errors_forbidden_and_methods(pair: PairHarness, tally: Tally) -> None:
    check(pair, tally, "errors", error_cases())


def test_health(pair: PairHarness, tally: Tally) -> None:
    check(pair, tally, "health", health_cases())


def test_openapi_and_version(pair: PairHarness, tally: Tally) -> None:
    check(pair, tally, "openapi", openapi_cases())


def _json(pair: PairHarness, name: str, path: str) -> dict[str, object]:
    reply = pair.get(name, path)
    assert reply.status == 200, (name, path, reply.status)
    doc: dict[str, object] = orjson.loads(reply.body)
    return doc


def test_openapi_shape(pair: PairHarness) -> None:
    """What the `openapi-text` difference leaves equal: the v3 index, and per document the paths,
    methods, actions and group-version-kinds of the operations, and the metrics schemas' names
    and group-version-kinds. (Operation ids differ: ours name the generated client's functions.)"""
    ours, ref = _json(pair, "ours", "/openapi/v3"), _json(pair, "reference", "/openapi/v3")
    assert sorted(ours["paths"]) == sorted(ref["paths"])  # type: ignore[call-overload]
    for path in sorted(ref["paths"]):  # type: ignore[call-overload]
        a, b = _json(pair, "ours", f"/openapi/v3/{path}"), _json(pair, "reference", f"/openapi/v3/{path}")
        assert _operations(a) == _operations(b), path
        ref_schemas = set(b.get("components", {}).get("schemas", {}))  # type: ignore[attr-defined]
        ours_schemas = set(a.get("components", {}).get("schemas", {}))  # type: ignore[attr-defined]
        metrics = {s for s in ref_schemas if s.startswith("io.k8s.metrics.")}
        assert metrics <= ours_schemas, (path, metrics - ours_schemas)
        for name in metrics:
            gvk = ("x-kubernetes-group-version-kind",)
            assert [a["components"]["schemas"][name].get(k) for k in gvk] == [  # type: ignore[index]
                b["components"]["schemas"][name].get(k)
                for k in gvk  # type: ignore[index]
            ], name


def _operations(doc: dict[str, object]) -> dict[str, list[tuple[str, str, object]]]:
    out: dict[str, list[tuple[str, str, object]]] = {}
    for path, item in doc["paths"].items():  # type: ignore[attr-defined]
        out[path.rstrip("/")] = sorted(
            (method, str(op.get("x-kubernetes-action")), str(sorted(_gvk(op).items())))
            for method, op in item.items()
            if isinstance(op, dict) and "responses" in op
        )
    return out


def _gvk(op: dict[str, object]) -> dict[str, object]:
    gvk = op.get("x-kubernetes-group-version-kind")
    return gvk if isinstance(gvk, dict) else {}


def _families(text: str) -> dict[str, tuple[str, frozenset[str]]]:
    out: dict[str, tuple[str, frozenset[str]]] = {}
    for family in text_string_to_metric_families(text):
        labels = frozenset(k for s in family.samples for k in s.labels if k not in ("le", "quantile"))
        out[family.name] = (family.type, labels)
    return out


REQUEST_FAMILIES = (
    "apiserver_request_total",
    "apiserver_request_duration_seconds",
    "apiserver_response_sizes",
    "authentication_attempts",
    "authentication_duration_seconds",
    "authenticated_user_requests",
    "authorization_attempts_total",
    "authorization_duration_seconds",
    "rest_client_requests_total",
    "rest_client_request_duration_seconds",
)
"""The apiserver library's request metrics that we implement (auth/requestmetrics.py,
kube/restmetrics.py): names, types and label names must equal the reference's."""


def test_metrics_families(pair: PairHarness, tally: Tally) -> None:
    """`metrics_server_*` and the request families: names, types and label names equal (after a
    request of each kind, so every family has samples); the rest reported."""
    for name in pair.servers:
        pair.get(name, "/apis/metrics.k8s.io/v1beta1/nodes")
        pair.get(name, "/readyz")
    ours = _families(pair.get("ours", "/metrics").body.decode())
    ref = _families(pair.get("reference", "/metrics").body.decode())
    own = sorted(n for n in ref if n.startswith("metrics_server_"))
    assert own, "the reference has no metrics_server_* families"
    compared = [*own, *REQUEST_FAMILIES]
    assert {n: ours.get(n) for n in compared} == {n: ref.get(n) for n in compared}
    tally.identical["/metrics metrics_server_* families"] += len(own)
    tally.identical["/metrics request families"] += len(REQUEST_FAMILIES)
    only_ref = sorted(set(ref) - set(ours))
    prefixes = sorted({n.split("_", 1)[0] for n in only_ref})
    tally.notes.append(
        f"/metrics families: reference {len(ref)}, ours {len(ours)}, common {len(set(ref) & set(ours))}; "
        f"reference only {len(only_ref)} ({', '.join(p + '_*' for p in prefixes)}: the Go runtime's, "
        f"and apiserver internals we have no counterpart of), ours only {sorted(set(ours) - set(ref))}"
    )


# --- kubectl ------------------------------------------------------------------------------------

_WINDOW = re.compile(r"(\s)\d[\dhms.µun]*$", re.M)


def kubectl_commands(nodes: list[str]) -> list[tuple[str, ...]]:
    a, b = DIFF_NAMESPACES
    return [
        ("top", "node"),
        ("top", "node", nodes[0]),
        ("top", "node", "-l", "topology.kubernetes.io/zone=sim-zone-a"),
        ("top", "node", "--sort-by=memory"),
        ("top", "node", "no-such-node"),
        ("top", "pod", "-A"),
        ("top", "pod", "-n", a, "--containers"),
        ("top", "pod", "-n", b, "-l", "env=prod"),
        ("top", "pod", "-n", a, "multi", "--containers"),
        ("top", "pod", "-n", b, "--field-selector", "metadata.name=web-1"),
        ("top", "pod", "-n", "default", "no-such-pod"),
        ("get", "nodemetrics"),
        ("get", "podmetrics", "-A"),
        ("get", "podmetrics", "-n", a, "multi", "-o", "json"),
        ("get", "pods.metrics.k8s.io", "-n", b, "-o", "yaml"),
        ("get", "--raw", f"{API}/namespaces/{b}/pods"),
        ("api-resources", "--api-group=metrics.k8s.io"),
    ]


def _normalise(args: tuple[str, ...], out: str) -> str:
    if "json" in args or "--raw" in args:
        return (
            out
            if not out.strip()
            else orjson.dumps(_sorted_containers(orjson.loads(mask_json(out.encode())))).decode()
        )
    if "yaml" in args:
        import yaml

        return orjson.dumps(_sorted_containers(yaml.safe_load(mask_yaml(out.encode())))).decode()
    if args[0] == "get":
        return _WINDOW.sub(r"\1<window>", out)
    if "--containers" in args:  # container rows follow the API's container order (unspecified)
        lines = out.splitlines()
        return "\n".join(lines[:1] + sorted(lines[1:]))
    return out


def _sorted_containers(doc: object) -> object:
    if isinstance(doc, dict):
        for obj in [doc, *(doc.get("items") or [])]:
            if isinstance(obj, dict) and isinstance(obj.get("containers"), list):
                obj["containers"].sort(key=lambda c: c.get("name", ""))
    return doc


def _kubectl_binary(version: str) -> Path:
    import os
    import shutil

    plain = shutil.which("kubectl")
    assert plain is not None, "kubectl must be on PATH (with kubectl.1.27 ... kubectl.1.33 beside it)"
    path = Path(os.path.realpath(plain)).parent / f"kubectl.{version}"
    assert path.exists(), f"{path} is missing"
    return path


def _run_kubectl(pair: PairHarness, home: Path, version: str, args: tuple[str, ...]) -> Reply:
    import os
    import subprocess

    home.mkdir(parents=True, exist_ok=True)
    cmd = [
        str(_kubectl_binary(version)),
        f"--kubeconfig={pair.cluster.paths.kubeconfig}",
        f"--cache-dir={home / 'cache'}",
        *args,
    ]
    env = {"PATH": os.environ.get("PATH", ""), "HOME": str(home), "LANG": "C"}
    done = subprocess.run(cmd, capture_output=True, env=env, timeout=60, check=False)
    out = _normalise(args, done.stdout.decode())
    return Reply(done.returncode, {}, f"{out}\n--- stderr\n{done.stderr.decode()}".encode())


def test_kubectl_matrix(pair: PairHarness, tally: Tally, tmp_path: Path) -> None:
    """kubectl top / get / get --raw / api-resources, 1.27 ... 1.33, through the aggregator."""
    commands = kubectl_commands(pair.call(pair.cluster.node_names))
    results: dict[str, dict[tuple[str, tuple[str, ...]], Reply]] = {}
    for server in ("ours", "reference"):
        pair.use_backend(server)
        jobs = [(v, args) for v in KUBECTL_VERSIONS for args in commands]
        homes = [tmp_path / server / version for version, _ in jobs]
        with ThreadPoolExecutor(max_workers=4) as pool:
            replies = pool.map(lambda home, job: _run_kubectl(pair, home, *job), homes, jobs)
            results[server] = dict(zip(jobs, replies, strict=True))
    unexplained: list[str] = []
    for (version, args), ours in results["ours"].items():
        ref = results["reference"][(version, args)]
        record(tally, f"kubectl {version}", f"kubectl.{version} {' '.join(args)}", ours, ref, unexplained)
    assert not unexplained, "unexplained differences:\n" + "\n".join(unexplained)
    assert all(r.status == 0 for (v, a), r in results["ours"].items() if "no-such" not in " ".join(a))


# --- after changes to the cluster ------------------------------------------------------------


def test_after_restart_stop_and_new_pod(pair: PairHarness, tally: Tally) -> None:
    """A container restarts, a pod stops running, a pod appears: once both servers have scraped
    past the changes, they agree again; how long the restarted pod was hidden is reported."""
    from kubesim import ContainerSpec
    from kubesim.deterministic import Linear

    a, b = DIFF_NAMESPACES
    nodes = pair.call(pair.cluster.node_names)
    before = {name: pair.ticks(name) for name in ("ours", "reference")}

    def change() -> None:
        pair.cluster.restart_container(a, "solo", "app")
        pair.cluster.set_pod_phase(b, "web-2", "Succeeded")
        pair.cluster.add_pod(
            nodes[1], a, "newcomer", [ContainerSpec("app", Linear(0, units=40, memory=30 << 20))]
        )

    pair.call(change)
    changed = time.monotonic()
    hidden: dict[str, list[float]] = {"ours": [], "reference": []}
    deadline = changed + 90
    while time.monotonic() < deadline:
        for name in hidden:
            reply = pair.get(name, f"{API}/namespaces/{a}/pods/solo")
            if reply.status == 404:
                hidden[name].append(time.monotonic() - changed)
        if all(pair.ticks(n) >= before[n] + 3 for n in before):
            break
        time.sleep(0.5)
    else:
        pytest.fail(f"the servers did not scrape three times within 90s: {before}")
    tally.notes.append(
        "restarted container (new instance sampled < 10 s after its start): pod hidden for "
        + ", ".join(f"{n} {(max(v) - min(v) + 0.5 if v else 0):.1f}s" for n, v in hidden.items())
        + " (polled every 0.5 s; resolution 10s)"
    )
    after = [
        Case("after changes", f"{API}/nodes"),
        Case("after changes", f"{API}/pods"),
        *(Case("after changes", f"{API}/namespaces/{ns}/pods") for ns in DIFF_NAMESPACES),
        Case("after changes", f"{API}/namespaces/{a}/pods/solo"),
        Case("after changes", f"{API}/namespaces/{a}/pods/newcomer"),
        Case("after changes", f"{API}/namespaces/{b}/pods/web-2"),
        Case("after changes", f"{API}/pods", {"Accept": PROTOBUF}),
        Case("after changes", f"{API}/nodes", {"Accept": PROTOBUF}),
    ]
    check(pair, tally, "after changes", after)


def test_every_deliberate_difference_was_seen(tally: Tally) -> None:
    """A deliberate difference that no comparison showed is stale: remove it (and its table row)."""
    if tally.total == 0:
        pytest.skip("no comparison ran")
    stale = [d.id for d in DIFFERENCES if d.provoked and not d.owner and tally.listed[d.id] == 0]
    assert not stale, f"listed differences that no longer show: {stale}"


def test_compatibility_table_lists_exactly_the_differences() -> None:
    text = (ROOT / "docs" / "compatibility.md").read_text()
    rows = re.findall(r"^\| `([a-z0-9-]+)` \|", text, re.M)
    assert sorted(rows) == sorted(BY_ID), "docs/compatibility.md and tests/reference/deliberate.py disagree"
    for d in DIFFERENCES:
        assert d.pinned_by.split("::")[0] in text, d.id
