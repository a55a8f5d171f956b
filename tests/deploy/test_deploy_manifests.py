"""The kustomize manifests under deploy/: they render, validate offline against the Kubernetes
schemas of 1.28 to 1.35, agree with the server's own flag parser, and the committed release files
are exactly what kustomize renders.

kubectl (for `kubectl kustomize`) is required: a machine without it fails these tests.
"""

from __future__ import annotations

import functools
import json
import shutil
import subprocess
import tomllib
from collections.abc import Iterator
from decimal import ROUND_CEILING, Decimal
from pathlib import Path
from typing import Any

import kubernetes_validate
import kubernetes_validate.utils
import pydantic
import pytest
import yaml
from cloudcoil.models.prometheus_operator.v1 import ServiceMonitor

import metrics_server
from k8s_metrics.quantity import parse_quantity
from metrics_server.cli import NS_PER_SECOND, Options, parse_options

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"

BASE = "base"
OVERLAYS = ("high-availability", "kubelet-insecure-tls", "autoscale", "monitoring")
KUSTOMIZATIONS = (BASE, *OVERLAYS)
RELEASE_FILES = {"components.yaml": BASE, "high-availability.yaml": "high-availability"}
KUBERNETES_VERSIONS = tuple(f"1.{minor}.0" for minor in range(28, 36))

NAMESPACE = "kube-system"
APP_LABELS = {"k8s-app": "metrics-server"}
IMAGE_USER = 65534
MIB = 2**20

Obj = dict[str, Any]


class Rendered:
    """One kustomization's `kubectl kustomize` output, as text and as objects."""

    def __init__(self, text: str) -> None:
        self.text = text
        self.objects: list[Obj] = [o for o in yaml.safe_load_all(text) if o is not None]

    def get(self, kind: str, name: str) -> Obj:
        found = [o for o in self.objects if o["kind"] == kind and o["metadata"]["name"] == name]
        assert len(found) == 1, f"expected one {kind} {name}, found {len(found)}"
        return found[0]

    def of_kind(self, kind: str) -> list[Obj]:
        return [o for o in self.objects if o["kind"] == kind]

    @property
    def deployment(self) -> Obj:
        return self.get("Deployment", "metrics-server")

    @property
    def server_container(self) -> Obj:
        [container] = [
            c
            for c in self.deployment["spec"]["template"]["spec"]["containers"]
            if c["name"] == "metrics-server"
        ]
        return container

    def options(self) -> Options:
        return parse_options(self.server_container["args"])


def kubectl() -> str:
    path = shutil.which("kubectl")
    if path is None:
        pytest.fail("kubectl is required (for `kubectl kustomize`) and is not on PATH")
    return path


def kustomize_dir(name: str) -> Path:
    return DEPLOY / (BASE if name == BASE else f"overlays/{name}")


def run_kustomize(directory: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [kubectl(), "kustomize", str(directory)], capture_output=True, text=True, check=False, timeout=60
    )


@functools.cache
def rendered(name: str) -> Rendered:
    result = run_kustomize(kustomize_dir(name))
    assert result.returncode == 0, result.stderr
    return Rendered(result.stdout)


def all_unique_objects() -> list[Obj]:
    unique: dict[str, Obj] = {}
    for name in KUSTOMIZATIONS:
        for obj in rendered(name).objects:
            unique.setdefault(json.dumps(obj, sort_keys=True), obj)
    return list(unique.values())


def containers(r: Rendered) -> Iterator[Obj]:
    yield from r.deployment["spec"]["template"]["spec"]["containers"]


# --- rendering and release files


def test_each_component_has_its_overlay_and_all_are_tested() -> None:
    assert sorted(p.name for p in (DEPLOY / "overlays").iterdir()) == sorted(OVERLAYS)
    assert sorted(p.name for p in (DEPLOY / "components").iterdir()) == sorted(OVERLAYS)


@pytest.mark.parametrize("name", KUSTOMIZATIONS)
def test_renders_with_kubectl_kustomize_without_warnings(name: str) -> None:
    result = run_kustomize(kustomize_dir(name))
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    objects = Rendered(result.stdout).objects
    keys = [
        (o["apiVersion"], o["kind"], o["metadata"].get("namespace"), o["metadata"]["name"]) for o in objects
    ]
    assert len(keys) == len(set(keys)), "an object is rendered twice"
    for obj in objects:
        assert obj["metadata"]["labels"]["k8s-app"] == "metrics-server", obj["metadata"]["name"]


@pytest.mark.parametrize(("filename", "name"), RELEASE_FILES.items())
def test_release_file_equals_kustomize_output(filename: str, name: str) -> None:
    committed = (DEPLOY / "release" / filename).read_text()
    assert committed == rendered(name).text, f"deploy/release/{filename} is stale: run deploy/render.sh"


def test_render_script_regenerates_the_release_files(tmp_path: Path) -> None:
    copy = tmp_path / "deploy"
    shutil.copytree(DEPLOY, copy, ignore=shutil.ignore_patterns("release"))
    (copy / "release").mkdir()
    subprocess.run(["sh", str(copy / "render.sh")], check=True, capture_output=True, timeout=60)
    assert sorted(p.name for p in (copy / "release").iterdir()) == sorted(RELEASE_FILES)
    for filename in RELEASE_FILES:
        assert (copy / "release" / filename).read_text() == (DEPLOY / "release" / filename).read_text()


def test_base_objects_mirror_metrics_server_components() -> None:
    kinds = sorted((o["kind"], o["metadata"]["name"]) for o in rendered(BASE).objects)
    assert kinds == [
        ("APIService", "v1beta1.metrics.k8s.io"),
        ("ClusterRole", "system:aggregated-metrics-reader"),
        ("ClusterRole", "system:metrics-server"),
        ("ClusterRoleBinding", "metrics-server:system:auth-delegator"),
        ("ClusterRoleBinding", "system:metrics-server"),
        ("Deployment", "metrics-server"),
        ("RoleBinding", "metrics-server-auth-reader"),
        ("Service", "metrics-server"),
        ("ServiceAccount", "metrics-server"),
    ]


# --- offline schema validation


def test_kubernetes_validate_ships_every_tested_version() -> None:
    # validate() silently falls back to the newest older schema, so a missing version must fail here.
    shipped = set(kubernetes_validate.utils.all_versions())
    assert set(KUBERNETES_VERSIONS) <= shipped


@pytest.fixture(scope="module")
def cached_schemas() -> Iterator[None]:
    """kubernetes_validate re-reads its 1.4 MB definitions file for every object; reading each
    schema file once keeps the eight versions to about a second instead of several."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(
            kubernetes_validate.utils,
            "schema_contents",
            functools.cache(kubernetes_validate.utils.schema_contents),
        )
        yield


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.usefixtures("cached_schemas")
def test_every_rendered_object_validates_strictly(version: str) -> None:
    objects = [o for o in all_unique_objects() if o["apiVersion"] not in CUSTOM_RESOURCES]
    assert len(objects) >= len(rendered(BASE).objects)
    for obj in objects:
        try:
            validated = kubernetes_validate.validate(obj, version, strict=True)
        except kubernetes_validate.ValidationError as exc:
            pytest.fail(f"{obj['kind']} {obj['metadata']['name']} is invalid for {version}: {exc.message}")
        assert validated == version.rsplit(".", 1)[0]


CUSTOM_RESOURCES = {"monitoring.coreos.com/v1": {"ServiceMonitor": ServiceMonitor}}
"""Kinds the Kubernetes schemas do not have: checked against the Prometheus Operator's CRD schema
(the generated models of cloudcoil-models-prometheus-operator)."""


def validate_custom_resource(obj: Obj) -> None:
    """Strict: the model must accept the object and give back exactly what it was given (the
    models ignore unknown fields, so a misspelt field shows up as a difference)."""
    model = CUSTOM_RESOURCES[obj["apiVersion"]][obj["kind"]]
    parsed = model.model_validate(obj)
    assert parsed.model_dump(by_alias=True, exclude_none=True, mode="json") == obj


def test_every_custom_resource_validates_strictly() -> None:
    custom = [o for o in all_unique_objects() if o["apiVersion"] in CUSTOM_RESOURCES]
    assert [o["kind"] for o in custom] == ["ServiceMonitor"]
    for obj in custom:
        validate_custom_resource(obj)


def test_custom_resource_validation_rejects_an_unknown_field_and_a_bad_value() -> None:
    monitor = json.loads(json.dumps(rendered("monitoring").get("ServiceMonitor", "metrics-server")))
    monitor["spec"]["endpoints"][0]["sheme"] = "https"
    with pytest.raises(AssertionError):
        validate_custom_resource(monitor)
    del monitor["spec"]["endpoints"][0]["sheme"]
    monitor["spec"]["endpoints"][0]["scheme"] = "gopher"
    with pytest.raises(pydantic.ValidationError):
        validate_custom_resource(monitor)


def test_strict_validation_rejects_an_unknown_field() -> None:
    deployment = json.loads(json.dumps(rendered(BASE).deployment))
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessProbe"]["httpGet"]["sheme"] = "HTTPS"
    with pytest.raises(kubernetes_validate.ValidationError, match="'sheme' was unexpected"):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSIONS[0], strict=True)


# --- the Deployment agrees with the server


@pytest.mark.parametrize("name", KUSTOMIZATIONS)
def test_deployment_args_parse_with_the_servers_parser(name: str) -> None:
    options = rendered(name).options()
    assert options.serving.cert_dir == "/tmp"
    assert options.serving.secure_port == 10250
    assert options.kubelet.preferred_address_types == ("InternalIP", "ExternalIP", "Hostname")
    assert options.kubelet.use_node_status_port is True
    assert options.server.metric_resolution_ns == 15 * NS_PER_SECOND
    assert options.kubelet.insecure_tls is (name == "kubelet-insecure-tls")
    assert options.ignored_flags == ()


@pytest.mark.parametrize("name", KUSTOMIZATIONS)
def test_ports_and_probes_match_the_server(name: str) -> None:
    r = rendered(name)
    options = r.options()
    container = r.server_container
    assert container["ports"] == [
        {"name": "https", "containerPort": options.serving.secure_port, "protocol": "TCP"}
    ]
    for probe, path in (("readinessProbe", "/readyz"), ("livenessProbe", "/livez")):
        assert container[probe]["httpGet"] == {"path": path, "port": "https", "scheme": "HTTPS"}
        # Probes carry no credentials: the path must be served without authorization.
        assert path in options.authorization.always_allow_paths
    # A cert dir the container can write: the emptyDir mount.
    volumes = {v["name"]: v for v in r.deployment["spec"]["template"]["spec"]["volumes"]}
    [mount] = [m for m in container["volumeMounts"] if m["mountPath"] == options.serving.cert_dir]
    assert volumes[mount["name"]] == {"name": mount["name"], "emptyDir": {}}


@pytest.mark.parametrize("name", KUSTOMIZATIONS)
def test_service_and_apiservice_reach_the_container(name: str) -> None:
    r = rendered(name)
    service = r.get("Service", "metrics-server")
    assert service["metadata"]["namespace"] == r.deployment["metadata"]["namespace"] == NAMESPACE
    assert service["spec"]["ports"] == [
        {"name": "https", "port": 443, "protocol": "TCP", "targetPort": "https", "appProtocol": "https"}
    ]
    pod_labels = r.deployment["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()
    assert r.deployment["spec"]["selector"] == {"matchLabels": APP_LABELS}
    assert APP_LABELS.items() <= pod_labels.items()
    apiservice = r.get("APIService", "v1beta1.metrics.k8s.io")
    assert apiservice["spec"] == {
        "group": "metrics.k8s.io",
        "groupPriorityMinimum": 100,
        "insecureSkipTLSVerify": True,
        "service": {"name": "metrics-server", "namespace": NAMESPACE},
        "version": "v1beta1",
        "versionPriority": 100,
    }


@pytest.mark.parametrize("name", KUSTOMIZATIONS)
def test_every_container_is_locked_down(name: str) -> None:
    r = rendered(name)
    pod = r.deployment["spec"]["template"]["spec"]
    assert pod["priorityClassName"] == "system-cluster-critical"
    assert pod["serviceAccountName"] == "metrics-server"
    assert pod["nodeSelector"] == {"kubernetes.io/os": "linux"}
    for container in containers(r):
        assert container["securityContext"] == {
            "allowPrivilegeEscalation": False,
            "capabilities": {"drop": ["ALL"]},
            "readOnlyRootFilesystem": True,
            "runAsNonRoot": True,
            "runAsUser": IMAGE_USER,
            "runAsGroup": IMAGE_USER,
            "seccompProfile": {"type": "RuntimeDefault"},
        }, container["name"]


def test_image_user_matches_the_dockerfile() -> None:
    users = [
        line.split()[1] for line in (REPO / "Dockerfile").read_text().splitlines() if line.startswith("USER ")
    ]
    assert users == [f"{IMAGE_USER}:{IMAGE_USER}"]


def test_image_tag_is_the_package_version() -> None:
    pyproject = tomllib.loads((REPO / "pyproject.toml").read_text())
    version = pyproject["project"]["version"]
    assert metrics_server.__version__ == version
    for name in KUSTOMIZATIONS:
        assert (
            rendered(name).server_container["image"]
            == f"ghcr.io/k8s-metrics-server/metrics-server:v{version}"
        )


def test_base_requests_are_sized_for_100_nodes_and_set_no_limits() -> None:
    container = rendered(BASE).server_container
    assert container["resources"] == {"requests": {"cpu": "160m", "memory": "200Mi"}}
    assert rendered(BASE).deployment["spec"]["strategy"] == {"rollingUpdate": {"maxUnavailable": 0}}
    assert "replicas" not in rendered(BASE).deployment["spec"]


# --- RBAC


def subjects_are_the_service_account(binding: Obj) -> bool:
    return binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "metrics-server", "namespace": NAMESPACE}
    ]


@pytest.mark.parametrize("name", KUSTOMIZATIONS)
def test_rbac_grants_what_the_server_uses(name: str) -> None:
    r = rendered(name)
    r.get("ServiceAccount", "metrics-server")
    for kind in ("ClusterRoleBinding", "RoleBinding"):
        for binding in r.of_kind(kind):
            if binding["metadata"]["name"] != PROMETHEUS_BINDING:
                assert subjects_are_the_service_account(binding), binding["metadata"]["name"]
    role_refs = {(b["roleRef"]["kind"], b["roleRef"]["name"]) for b in r.of_kind("ClusterRoleBinding")}
    assert {("ClusterRole", "system:auth-delegator"), ("ClusterRole", "system:metrics-server")} <= role_refs
    auth_reader = r.get("RoleBinding", "metrics-server-auth-reader")
    assert auth_reader["metadata"]["namespace"] == NAMESPACE
    assert auth_reader["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "Role",
        "name": "extension-apiserver-authentication-reader",
    }
    assert r.get("ClusterRole", "system:metrics-server")["rules"] == [
        {"apiGroups": [""], "resources": ["nodes/metrics", "nodes/stats"], "verbs": ["get"]},
        {"apiGroups": [""], "resources": ["pods", "nodes"], "verbs": ["get", "list", "watch"]},
    ]
    reader = r.get("ClusterRole", "system:aggregated-metrics-reader")
    assert {k: v for k, v in reader["metadata"]["labels"].items() if k.startswith("rbac.")} == {
        f"rbac.authorization.k8s.io/aggregate-to-{role}": "true" for role in ("admin", "edit", "view")
    }
    assert reader["rules"] == [
        {"apiGroups": ["metrics.k8s.io"], "resources": ["pods", "nodes"], "verbs": ["get", "list", "watch"]}
    ]


# --- overlays


def test_high_availability_overlay() -> None:
    r = rendered("high-availability")
    spec = r.deployment["spec"]
    assert spec["replicas"] == 2
    assert spec["strategy"] == {"rollingUpdate": {"maxUnavailable": 1}}
    assert spec["template"]["spec"]["affinity"] == {
        "podAntiAffinity": {
            "requiredDuringSchedulingIgnoredDuringExecution": [
                {
                    "labelSelector": {"matchLabels": APP_LABELS},
                    "namespaces": [NAMESPACE],
                    "topologyKey": "kubernetes.io/hostname",
                }
            ]
        }
    }
    pdb = r.get("PodDisruptionBudget", "metrics-server")
    assert pdb["apiVersion"] == "policy/v1"
    assert pdb["metadata"]["namespace"] == NAMESPACE
    assert pdb["spec"] == {"maxUnavailable": 1, "selector": {"matchLabels": APP_LABELS}}
    # Everything else is the base, unchanged.
    others = [o for o in r.objects if o["kind"] not in ("Deployment", "PodDisruptionBudget")]
    assert others == [o for o in rendered(BASE).objects if o["kind"] != "Deployment"]


def test_kubelet_insecure_tls_overlay_only_adds_the_flag() -> None:
    base_args = rendered(BASE).server_container["args"]
    assert rendered("kubelet-insecure-tls").server_container["args"] == [*base_args, "--kubelet-insecure-tls"]
    # Deep copies (json round trip): the cached renders stay untouched.
    base = json.loads(json.dumps(rendered(BASE).objects))
    overlay = json.loads(json.dumps(rendered("kubelet-insecure-tls").objects))
    for objs in (base, overlay):
        [deployment] = [o for o in objs if o["kind"] == "Deployment"]
        deployment["spec"]["template"]["spec"]["containers"][0].pop("args")
    assert overlay == base


PROMETHEUS_BINDING = "metrics-server:prometheus-metrics-reader"


def test_monitoring_overlay_lets_prometheus_scrape_the_service() -> None:
    r = rendered("monitoring")
    monitor = r.get("ServiceMonitor", "metrics-server")
    service = r.get("Service", "metrics-server")
    assert monitor["metadata"]["namespace"] == service["metadata"]["namespace"] == NAMESPACE
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": [NAMESPACE]}
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    [endpoint] = monitor["spec"]["endpoints"]
    [port] = service["spec"]["ports"]
    assert (endpoint["port"], endpoint["scheme"]) == (port["name"], port["appProtocol"])
    assert endpoint["path"] == "/metrics"
    # /metrics needs authorization (it is not an always-allowed path), so Prometheus's
    # ServiceAccount is granted `get` on it, and sends its token.
    assert "/metrics" not in r.options().authorization.always_allow_paths
    assert endpoint["bearerTokenFile"] == "/var/run/secrets/kubernetes.io/serviceaccount/token"
    role = r.get("ClusterRole", "system:metrics-server-metrics-reader")
    assert role["rules"] == [{"nonResourceURLs": ["/metrics"], "verbs": ["get"]}]
    binding = r.get("ClusterRoleBinding", PROMETHEUS_BINDING)
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": "system:metrics-server-metrics-reader",
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": "prometheus-k8s", "namespace": "monitoring"}
    ]
    # Everything else is the base, unchanged.
    added = {("ServiceMonitor", "metrics-server"), ("ClusterRole", "system:metrics-server-metrics-reader"),
             ("ClusterRoleBinding", PROMETHEUS_BINDING)}  # fmt: skip
    others = [o for o in r.objects if (o["kind"], o["metadata"]["name"]) not in added]
    assert others == rendered(BASE).objects


def nanny_flags(nanny: Obj) -> dict[str, str]:
    assert nanny["command"][0] == "/pod_nanny"
    return dict(arg.removeprefix("--").split("=", 1) for arg in nanny["command"][1:])


def test_autoscale_overlay_nanny_targets_the_server() -> None:
    r = rendered("autoscale")
    [nanny] = [c for c in containers(r) if c["name"] == "metrics-server-nanny"]
    assert nanny["image"].startswith("registry.k8s.io/autoscaling/addon-resizer:")
    flags = nanny_flags(nanny)
    assert flags["deployment"] == r.deployment["metadata"]["name"]
    assert flags["container"] == r.server_container["name"]
    assert "resources" not in r.server_container  # the nanny owns them
    env = {e["name"]: e["valueFrom"]["fieldRef"]["fieldPath"] for e in nanny["env"]}
    assert env == {"MY_POD_NAME": "metadata.name", "MY_POD_NAMESPACE": "metadata.namespace"}
    role = r.get("Role", "metrics-server-nanny")
    assert role["metadata"]["namespace"] == r.deployment["metadata"]["namespace"]
    assert {"apiGroups": ["apps"], "resources": ["deployments"], "resourceNames": [flags["deployment"]],
            "verbs": ["get", "patch"]} in role["rules"]  # fmt: skip
    assert r.get("RoleBinding", "metrics-server-nanny")["roleRef"]["name"] == "metrics-server-nanny"
    assert r.get("ClusterRoleBinding", "system:metrics-server-nanny")["roleRef"]["name"] == (
        "system:metrics-server-nanny"
    )


NANNY_SIZING = {
    "cpu": "110m",
    "extra-cpu": "0.5m",
    "memory": "150Mi",
    "extra-memory": "0.5Mi",
    "minClusterSize": "100",
    "estimator": "exponential",
}


def autoscale_nanny_flags() -> dict[str, str]:
    [nanny] = [c for c in containers(rendered("autoscale")) if c["name"] == "metrics-server-nanny"]
    return nanny_flags(nanny)


def test_autoscale_sizing_flags_are_pinned() -> None:
    flags = autoscale_nanny_flags()
    assert {key: flags[key] for key in NANNY_SIZING} == NANNY_SIZING


def nanny_estimate(flags: dict[str, str], resource: str, nodes: int) -> Decimal:
    """addon-resizer 1.8's exponential estimator: size for the first step n = minClusterSize,
    then n = floor(n * 1.5 + 0.01), that is at least the node count; base + increment * n."""
    step = int(flags["minClusterSize"])
    while step < nodes:
        step = int(step * 1.5 + 0.01)
    return parse_quantity(flags[resource]) + step * parse_quantity(flags[f"extra-{resource}"])


@pytest.mark.parametrize("nodes", [1, 16, 100])
def test_autoscale_at_or_below_min_cluster_size_requests_exactly_the_base(nodes: int) -> None:
    flags = autoscale_nanny_flags()
    requests = rendered(BASE).server_container["resources"]["requests"]
    for resource in ("cpu", "memory"):
        assert nanny_estimate(flags, resource, nodes) == parse_quantity(requests[resource]), resource
    # One node more is the next step (150 nodes): the overlay only ever grows from the base.
    assert nanny_estimate(flags, "cpu", 101) == Decimal("0.185")
    assert nanny_estimate(flags, "memory", 101) == 225 * MIB


@pytest.mark.parametrize(
    ("nodes", "step", "millicores", "memory_mib"),
    [(1000, 1135, "677.5", "717.5"), (5000, 5743, "2981.5", "3021.5")],
)
def test_autoscale_estimates_quoted_in_the_operations_doc(
    nodes: int, step: int, millicores: str, memory_mib: str
) -> None:
    flags = autoscale_nanny_flags()
    assert nanny_estimate(flags, "cpu", nodes) == Decimal(millicores) / 1000
    assert nanny_estimate(flags, "memory", nodes) == Decimal(memory_mib) * MIB
    doc = (REPO / "docs" / "operations.md").read_text()
    assert f"| {nodes} | {step} | {millicores}m / {memory_mib}Mi |" in doc


# --- sizing derived from bench/results (the rule stated in docs/operations.md, "Resource requests")

BENCH_RESULTS = REPO / "bench" / "results"
CPU_HEADROOM = Decimal("1.5")  # on the average cores
MEMORY_HEADROOM = Decimal("1.25")  # on the maximum RSS


def bench_point(name: str) -> tuple[int, Decimal, Decimal]:
    """(nodes, average server cores, max server RSS MiB) of one committed benchmark result."""
    result = json.loads((BENCH_RESULTS / name).read_text())
    summary = result["summary"]
    return (
        result["scenario"]["nodes"],
        Decimal(str(summary["server_cores_avg"])),
        Decimal(str(summary["server_rss_mib_max"])),
    )


def round_up(value: Decimal, step: Decimal) -> Decimal:
    return (value / step).to_integral_value(rounding=ROUND_CEILING) * step


def test_base_requests_are_derived_from_the_100x70_measurement() -> None:
    nodes, cores, rss_mib = bench_point("result-100x70.json")
    assert (nodes, cores, rss_mib) == (100, Decimal("0.1019"), Decimal("159.1"))
    requests = rendered(BASE).server_container["resources"]["requests"]
    assert parse_quantity(requests["cpu"]) == round_up(cores * CPU_HEADROOM, Decimal("0.01"))
    assert parse_quantity(requests["memory"]) == round_up(rss_mib * MEMORY_HEADROOM, Decimal(10)) * MIB
    # The base is sized at the nanny's minimum cluster size.
    assert int(autoscale_nanny_flags()["minClusterSize"]) == nodes


def test_autoscale_increments_are_the_slope_between_100x70_and_1000x30() -> None:
    small_nodes, small_cores, small_rss = bench_point("result-100x70.json")
    large_nodes, large_cores, large_rss = bench_point("result-1000x30.json")
    assert (large_nodes, large_cores, large_rss) == (1000, Decimal("0.4014"), Decimal("465.2"))
    span = large_nodes - small_nodes
    cpu_per_node = (large_cores - small_cores) / span * CPU_HEADROOM
    mib_per_node = (large_rss - small_rss) / span * MEMORY_HEADROOM
    flags = autoscale_nanny_flags()
    assert parse_quantity(flags["extra-cpu"]) == round_up(cpu_per_node, Decimal("0.0001"))
    assert parse_quantity(flags["extra-memory"]) == round_up(mib_per_node, Decimal("0.1")) * MIB
