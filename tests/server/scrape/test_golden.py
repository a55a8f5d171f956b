"""Golden tests on real kubelet responses (tests/data/kubelet-samples, see its SOURCES.md).

* Every sample file parses, or raises the documented error; the expected outcome of each file is
  listed here, and a file without an entry fails the test (so a new sample forces a decision).
* For each whole capture, the node point and a few containers are pinned to values copied by hand
  from the file (exact integers; times as written in the file).
* The Summary and the text form of one kubelet state give the same batch: checked on the stored pair
  in tests/data/kubelet-samples-extra and on every Summary capture rendered the kubelet's way.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from metrics_server.scrape.batch import KubeletError, NodeBatch, ParseError, Point
from metrics_server.scrape.prometheus import parse_resource_metrics
from metrics_server.scrape.summary import parse_summary

DATA = Path(__file__).resolve().parents[2] / "data"
SAMPLES = DATA / "kubelet-samples"
EXTRA = DATA / "kubelet-samples-extra"
REQ = 1_800_000_000_000_000_000


def t(text: str) -> int:
    """`2020-04-24T15:54:11Z` -> ns since the epoch (an independent check of the parser's RFC 3339)."""
    return int(datetime.strptime(text, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC).timestamp()) * 10**9


def ms(value: int) -> int:
    return value * 1_000_000


def load(path: Path) -> NodeBatch:
    body = path.read_bytes()
    if path.suffix == ".json":
        return parse_summary(body, node="node-1", request_time_ns=REQ)
    return parse_resource_metrics(body, node="node-1", request_time_ns=REQ)


# file -> (node point present, pods, containers) or the exception it raises.
OUTCOMES: dict[str, tuple[bool, int, int] | type[Exception]] = {
    "resource/ersilia-eks-2025-stable-no-scrape_error.txt": (True, 9, 12),
    "resource/issue-k8s-129382-kind-2024-stable-no-swap-excerpt.txt": (False, 3, 3),
    "resource/issue-k8s-131915-node-swap-only-excerpt.txt": (False, 0, 0),
    "resource/issue-k8s-137093-gke-container-swap-zero-excerpt.txt": (False, 0, 0),  # swap only
    "resource/issue-kata-5391-kubeadm-v1.29-stable-excerpt.txt": (False, 0, 0),  # CPU only (excerpt)
    "resource/issue-kwok-671-kind-v1.27-excerpt.txt": (False, 0, 0),
    "resource/issue-ms-1036-kubeadm-calico-containerd-excerpt.txt": (False, 0, 0),
    "resource/issue-ms-1061-docker-desktop-v1.24-excerpt.txt": (False, 0, 0),
    "resource/issue-ms-1081-eks-multi-container-pod-excerpt.txt": (False, 0, 0),
    "resource/issue-ms-1098-docker-desktop-zero-working-set-excerpt.txt": (False, 0, 0),
    "resource/issue-ms-1680-v1.28-dev-huge-working-set-excerpt.txt": (False, 1, 1),
    "resource/k8s-upstream-expected-containers.txt": (False, 2, 3),
    "resource/k8s-upstream-expected-nil-container-stats.txt": (False, 1, 1),  # pod_a: start time only
    "resource/k8s-upstream-expected-node-windows-commit-and-swap.txt": (True, 0, 0),
    "resource/k8s-upstream-expected-pods.txt": (False, 0, 0),
    "resource/k8s-upstream-expected-scrape-error-1.txt": KubeletError,
    "resource/k8s-upstream-v1alpha1-expected-cpu-as-gauge.txt": (True, 2, 3),
    "resource/metrics-server-kind-v1.21-70pods.txt": (True, 70, 70),
    "resource/ms-fixture-duplicate-series.txt": (False, 1, 1),
    "resource/ms-fixture-negative-start-time.txt": (False, 0, 0),  # start times only
    "resource/ms-fixture-no-timestamps.txt": (True, 1, 1),
    "resource/ms-fixture-normal-kind-v1.21.txt": (True, 1, 1),
    "resource/ms-fixture-swap-container.txt": (False, 1, 1),
    "resource/ms-fixture-swap-node-underflow.txt": (True, 0, 0),
    "resource/ms-fixture-zero-container-memory.txt": (False, 0, 0),
    "resource/ms-fixture-zero-node-cpu.txt": (False, 0, 0),
    "resource/pr-ms-1779-kubelet-v1.30.10-duplicate-series.txt": (False, 1, 1),
    "summary/datadog-windows-eks-2020-docker-initcontainers.json": (True, 2, 4),
    "summary/issue-k8s-112918-docker-desktop-v1.25-zero-workingset-pod-fragment.json": ParseError,
    "summary/issue-k8s-76740-windows-v1.15-node-fragment.json": (True, 0, 0),
    "summary/issue-ms-172-crio-v1.12-container-fragment.json": ParseError,
    "summary/metrics-server-fixture-kind-v1.17-edgecases.json": (True, 1, 1),
    "summary/nri-k8s-1.15-minikube-docker-duplicate-containers.json": (True, 14, 14),
    "summary/nri-k8s-1.16-minikube-docker.json": (True, 15, 15),
    "summary/nri-k8s-1.18-minikube-docker.json": (True, 15, 15),
    "summary/nri-k8s-1.21-minikube-containerd.json": (True, 17, 17),
    "summary/nri-k8s-1.24-minikube-containerd.json": (True, 17, 17),
    "summary/nri-k8s-1.28-minikube-containerd-swap.json": (True, 18, 23),
    "summary/nri-k8s-1.30-minikube-containerd-containerfs.json": (True, 17, 17),
    "summary/nri-k8s-1.34-minikube-containerd-psi.json": (True, 18, 18),
    "summary/nri-k8s-1.35-minikube-containerd2.json": (True, 17, 17),
}


def sample_files() -> list[str]:
    return sorted(
        p.relative_to(SAMPLES).as_posix()
        for p in SAMPLES.rglob("*")
        if p.is_file() and p.suffix in (".txt", ".json")
    )


def test_every_sample_has_an_expected_outcome() -> None:
    assert sample_files() == sorted(OUTCOMES)


@pytest.mark.parametrize("name", sample_files())
def test_every_sample_parses_or_raises_the_documented_error(name: str) -> None:
    expected = OUTCOMES[name]
    if isinstance(expected, tuple):
        batch = load(SAMPLES / name)
        containers = sum(len(c) for c in batch.pods.values())
        assert (batch.node_point is not None, len(batch.pods), containers) == expected
        for pod in batch.pods.values():
            assert pod
            for point in pod.values():
                assert point.cpu_ns > 0 and point.memory_bytes > 0 and point.timestamp_ns > 0
    else:
        with pytest.raises(expected):
            load(SAMPLES / name)


# --- whole captures, pinned by hand ----------------------------------------------------------------


def test_capture_kind_v1_21_70_pods() -> None:
    batch = load(SAMPLES / "resource/metrics-server-kind-v1.21-70pods.txt")
    assert batch.node_point == Point(ms(1633253809720), 357_354_910_000, 1_616_273_408)
    assert batch.pods[("kube-system", "coredns-558bd4d5db-4dpjz")] == {
        "coredns": Point(ms(1633253812125), 4_710_169_000, 12_533_760)
    }


def test_capture_eks_stable() -> None:
    batch = load(SAMPLES / "resource/ersilia-eks-2025-stable-no-scrape_error.txt")
    assert batch.node_point == Point(ms(1750705774670), 6_197_005_020_909, 1_137_475_584)
    # Pod CPU (753.978995701) is below the container's: the container value is what counts.
    assert batch.pods[("ersilia-core", "ersilia-hub-postgresql-0")] == {
        "postgresql": Point(ms(1750705769183), 753_998_393_487, 47_992_832, 1_750_607_876_466_787_072)
    }
    assert batch.pods[("kube-system", "ebs-csi-node-v6cqf")] == {
        "ebs-plugin": Point(ms(1750705778923), 17_420_560_624, 9_015_296, 1_750_607_845_362_458_112),
        "liveness-probe": Point(ms(1750705776426), 23_290_713_446, 7_741_440, 1_750_607_850_305_734_912),
        "node-driver-registrar": Point(
            ms(1750705777295), 18_065_376_218, 3_923_968, 1_750_607_848_673_934_080
        ),
    }


def test_capture_windows_finished_init_containers_are_left_out() -> None:
    batch = load(SAMPLES / "summary/datadog-windows-eks-2020-docker-initcontainers.json")
    assert batch.node_point == Point(t("2020-04-24T15:54:11Z"), 452_800_000_000, 924_364_800)
    assert batch.pods == {
        ("default", "dd-datadog-lbvkl"): {
            # process-agent has no usageNanoCores (first sample): the counter is all we need.
            "process-agent": Point(
                t("2020-04-24T15:54:14Z"), 9_359_375_000, 65_474_560, t("2020-04-24T15:53:40Z")
            ),
            "trace-agent": Point(
                t("2020-04-24T15:54:16Z"), 9_953_125_000, 63_348_736, t("2020-04-24T15:53:38Z")
            ),
            "agent": Point(t("2020-04-24T15:54:18Z"), 13_796_875_000, 136_089_600, t("2020-04-24T15:53:37Z")),
        },
        ("default", "windows-server-iis-6c68545d57-gwtn9"): {
            "windows-server-iis": Point(
                t("2020-04-24T15:54:20Z"), 70_140_625_000, 136_814_592, t("2020-04-24T15:48:22Z")
            )
        },
    }


def test_capture_1_15_duplicate_containers_keep_the_newer_sample() -> None:
    batch = load(SAMPLES / "summary/nri-k8s-1.15-minikube-docker-duplicate-containers.json")
    assert batch.node_point == Point(t("2020-06-03T08:54:29Z"), 424_427_914_128, 1_265_197_056)
    pods = batch.pods
    started = t("2020-06-03T08:27:48Z")
    assert pods[("kube-system", "kube-apiserver-minikube")] == {
        "kube-apiserver": Point(t("2020-06-03T08:54:28Z"), 71_990_499_159, 280_952_832, started)
    }
    assert pods[("kube-system", "etcd-minikube")] == {
        "etcd": Point(t("2020-06-03T08:54:29Z"), 45_522_950_566, 50_814_976, started)
    }
    assert pods[("kube-system", "coredns-5c98db65d4-pgnvj")] == {
        "coredns": Point(t("2020-06-03T08:54:34Z"), 7_450_072_881, 9_175_040, t("2020-06-03T08:28:13Z"))
    }


# (file, node (cpu time, cpu ns, memory, swap), {(namespace, pod, container): (cpu time, cpu, memory, start)})
NRI_PINS: list[
    tuple[str, tuple[str, int, int, int | None], dict[tuple[str, str, str], tuple[str, int, int, str]]]
] = [
    (
        "nri-k8s-1.16-minikube-docker.json",
        ("2021-12-15T13:51:05Z", 216_639_857_637, 1_446_182_912, None),
        {
            ("kube-system", "etcd-minikube", "etcd"): (
                "2021-12-15T13:51:08Z",
                8_123_500_973,
                28_164_096,
                "2021-12-15T13:43:18Z",
            ),
            ("kube-system", "kube-apiserver-minikube", "kube-apiserver"): (
                "2021-12-15T13:51:07Z",
                25_080_146_994,
                240_455_680,
                "2021-12-15T13:43:18Z",
            ),
        },
    ),
    (
        "nri-k8s-1.18-minikube-docker.json",
        ("2021-12-14T17:30:52Z", 281_553_584_690, 1_438_248_960, None),
        {
            ("kube-system", "coredns-66bff467f8-hm847", "coredns"): (
                "2021-12-14T17:30:42Z",
                3_129_944_236,
                6_373_376,
                "2021-12-14T17:10:54Z",
            ),
            ("kube-system", "etcd-minikube", "etcd"): (
                "2021-12-14T17:30:53Z",
                16_106_483_002,
                33_390_592,
                "2021-12-14T17:10:27Z",
            ),
        },
    ),
    (
        "nri-k8s-1.21-minikube-containerd.json",
        ("2023-05-31T02:40:28Z", 253_413_731_000, 984_227_840, None),
        {
            ("kube-system", "kube-apiserver-datagen-1-21", "kube-apiserver"): (
                "2023-05-31T02:40:31Z",
                74_153_680_000,
                313_708_544,
                "2023-05-31T02:31:52Z",
            ),
            ("kube-system", "coredns-558bd4d5db-kq7c7", "coredns"): (
                "2023-05-31T02:40:33Z",
                4_217_452_000,
                11_350_016,
                "2023-05-31T02:32:25Z",
            ),
        },
    ),
    (
        "nri-k8s-1.24-minikube-containerd.json",
        ("2023-09-06T16:15:33Z", 89_211_312_000, 986_136_576, None),
        {
            ("kube-system", "etcd-datagen-1-24", "etcd"): (
                "2023-09-06T16:15:32Z",
                4_686_213_000,
                32_468_992,
                "2023-09-06T16:13:47Z",
            ),
            ("kube-system", "kube-proxy-kjvgg", "kube-proxy"): (
                "2023-09-06T16:15:38Z",
                635_692_000,
                11_333_632,
                "2023-09-06T16:14:06Z",
            ),
        },
    ),
    (
        "nri-k8s-1.28-minikube-containerd-swap.json",
        ("2023-11-10T06:20:52Z", 117_133_655_000, 884_572_160, 0),
        {
            ("kube-system", "kube-apiserver-datagen-1-28", "kube-apiserver"): (
                "2023-11-10T06:20:37Z",
                12_116_018_000,
                262_582_272,
                "2023-11-10T06:18:37Z",
            ),
            ("scraper", "e2e-statefulset-0", "failing-container"): (
                "2023-11-10T06:20:35Z",
                11_739_000,
                536_576,
                "2023-11-10T06:20:19Z",
            ),
            ("scraper", "e2e-statefulset-0", "compute-pi-digits"): (
                "2023-11-10T06:20:43Z",
                2_003_015_000,
                10_407_936,
                "2023-11-10T06:20:19Z",
            ),
        },
    ),
    (
        "nri-k8s-1.30-minikube-containerd-containerfs.json",
        ("2025-11-04T19:18:28Z", 80_051_369_000, 908_845_056, 0),
        {
            ("kube-system", "coredns-7db6d8ff4d-tflps", "coredns"): (
                "2025-11-04T19:18:26Z",
                202_384_000,
                13_238_272,
                "2025-11-04T19:17:05Z",
            ),
            ("kube-system", "etcd-datagen-1-30", "etcd"): (
                "2025-11-04T19:18:34Z",
                3_039_247_000,
                33_308_672,
                "2025-11-04T19:16:33Z",
            ),
        },
    ),
    (
        "nri-k8s-1.34-minikube-containerd-psi.json",
        ("2026-01-13T18:40:14Z", 63_349_226_000, 898_445_312, 0),
        {
            ("kube-system", "kube-apiserver-datagen-1-34", "kube-apiserver"): (
                "2026-01-13T18:40:15Z",
                6_989_823_000,
                229_765_120,
                "2026-01-13T18:38:00Z",
            ),
            ("kube-system", "kube-proxy-nz2nc", "kube-proxy"): (
                "2026-01-13T18:40:06Z",
                267_600_000,
                18_415_616,
                "2026-01-13T18:38:11Z",
            ),
        },
    ),
    (
        "nri-k8s-1.35-minikube-containerd2.json",
        ("2026-06-26T10:14:35Z", 62_148_052_000, 917_110_784, 0),
        {
            ("kube-system", "etcd-datagen-1-35", "etcd"): (
                "2026-06-26T10:14:30Z",
                2_628_368_000,
                44_290_048,
                "2026-06-26T10:12:10Z",
            ),
            ("kube-system", "coredns-7d764666f9-qdcxt", "coredns"): (
                "2026-06-26T10:14:32Z",
                165_531_000,
                16_232_448,
                "2026-06-26T10:12:40Z",
            ),
        },
    ),
]


@pytest.mark.parametrize(("name", "node", "containers"), NRI_PINS, ids=[p[0] for p in NRI_PINS])
def test_capture_nri_summary(
    name: str,
    node: tuple[str, int, int, int | None],
    containers: dict[tuple[str, str, str], tuple[str, int, int, str]],
) -> None:
    batch = load(SAMPLES / "summary" / name)
    node_time, node_cpu, node_memory, node_swap = node
    assert batch.node_point == Point(t(node_time), node_cpu, node_memory, 0, node_swap)
    swap = None if node_swap is None else 0  # every container on the swap-era captures reports 0
    for (namespace, pod, container), (when, cpu, memory, started) in containers.items():
        assert batch.pods[(namespace, pod)][container] == Point(t(when), cpu, memory, t(started), swap)


# --- fragments and hand-made samples ----------------------------------------------------------------


def wrap_pod(pod: dict[str, Any]) -> bytes:
    return json.dumps({"node": None, "pods": [pod]}).encode()


def test_fragment_crio_container_without_usage_nano_cores() -> None:
    container = json.loads((SAMPLES / "summary/issue-ms-172-crio-v1.12-container-fragment.json").read_bytes())
    body = wrap_pod({"podRef": {"namespace": "default", "name": "haproxy"}, "containers": [container]})
    assert parse_summary(body, node="n", request_time_ns=REQ) == NodeBatch(
        "n",
        None,
        {
            ("default", "haproxy"): {
                "haproxy": Point(
                    t("2018-11-06T22:13:20Z"), 662_324_669, 39_690_240, t("2018-11-06T21:41:24Z")
                )
            }
        },
    )


def test_fragment_docker_desktop_zero_working_set_drops_the_pod() -> None:
    pod = json.loads(
        (
            SAMPLES / "summary/issue-k8s-112918-docker-desktop-v1.25-zero-workingset-pod-fragment.json"
        ).read_bytes()
    )
    pod["podRef"] = {"namespace": "kube-system", "name": "coredns"}
    assert parse_summary(wrap_pod(pod), node="n", request_time_ns=REQ) == NodeBatch("n")
    pod["containers"][0]["memory"]["workingSetBytes"] = 15552512
    assert parse_summary(wrap_pod(pod), node="n", request_time_ns=REQ).pods == {
        ("kube-system", "coredns"): {
            "coredns": Point(t("2022-10-07T15:36:20Z"), 1_173_026_600, 15_552_512, t("2022-10-07T15:30:06Z"))
        }
    }


def test_fragment_windows_node_without_usage_nano_cores() -> None:
    batch = load(SAMPLES / "summary/issue-k8s-76740-windows-v1.15-node-fragment.json")
    assert batch == NodeBatch("node-1", Point(t("2019-04-17T22:58:58Z"), 55_040_000_000, 433_328_128))


def test_fixture_edgecases_keeps_only_the_complete_pod() -> None:
    batch = load(SAMPLES / "summary/metrics-server-fixture-kind-v1.17-edgecases.json")
    assert batch == NodeBatch(
        "node-1",
        Point(t("2020-04-16T20:25:28Z"), 519_978_197_128, 1_417_551_872),
        {
            ("default", "all-fields"): {
                "container": Point(
                    t("2020-04-16T20:25:30Z"), 29_328_792, 1_449_984, t("2020-04-16T20:17:46Z")
                )
            }
        },
    )


def test_duplicate_series_captures_keep_the_newest_sample() -> None:
    for name in ("pr-ms-1779-kubelet-v1.30.10-duplicate-series.txt", "ms-fixture-duplicate-series.txt"):
        batch = load(SAMPLES / "resource" / name)
        assert batch.pods == {
            ("monitoring-system", "prometheus-prometheus-k8s-0"): {
                "prometheus": Point(
                    ms(1773934038962), 295_207_606_798_000, 33_157_259_264, 1_769_194_956_599_203_328
                )
            }
        }


def test_handmade_1_18_0_short_names_match_the_1_18_summary() -> None:
    text = load(EXTRA / "k8s-1.18.0-short-cpu-names-handmade.txt")
    summary = load(SAMPLES / "summary/nri-k8s-1.18-minikube-docker.json")
    assert text.node_point == summary.node_point
    assert text.node_point == Point(t("2021-12-14T17:30:52Z"), 281_553_584_690, 1_438_248_960)
    for pod in (("kube-system", "coredns-66bff467f8-hm847"), ("kube-system", "etcd-minikube")):
        # The hand-made text has no start times; everything else matches.
        assert {c: p._replace(start_time_ns=0) for c, p in summary.pods[pod].items()} == text.pods[pod]


# --- the same state through both endpoints ------------------------------------------------------------

ZERO_TIME_MS = -62135596800000  # Go's zero time, as the kubelet stamps a sample whose time is null


def go_float(value: float) -> str:
    """strconv.FormatFloat(value, 'g', -1, 64): how client_golang prints a sample value."""
    if value == 0:
        return "0"
    sign, digits, exponent = Decimal(repr(value)).normalize().as_tuple()
    d = "".join(map(str, digits))
    x = len(d) + int(exponent) - 1
    s = "-" if sign else ""
    if x < -4 or x >= 6:
        return f"{s}{d[0]}{'.' + d[1:] if len(d) > 1 else ''}e{'+' if x >= 0 else '-'}{abs(x):02d}"
    if x < 0:
        return f"{s}0.{'0' * (-x - 1)}{d}"
    if x + 1 >= len(d):
        return s + d + "0" * (x + 1 - len(d))
    return f"{s}{d[: x + 1]}.{d[x + 1 :]}"


def test_go_float() -> None:
    assert [go_float(v) for v in (1.253376e7, 4.710169, 495616.0, 0.012958, 1e-5, 1.0, 0.0, 117.133655)] == [
        "1.253376e+07",
        "4.710169",
        "495616",
        "0.012958",
        "1e-05",
        "1",
        "0",
        "117.133655",
    ]


def time_ms(value: str | None) -> int:
    return ZERO_TIME_MS if value is None else t(value) // 1_000_000


HELP = {
    "container_cpu_usage_seconds_total": (
        "counter",
        "Cumulative cpu time consumed by the container in core-seconds",
    ),
    "container_memory_working_set_bytes": ("gauge", "Current working set of the container in bytes"),
    "container_start_time_seconds": ("gauge", "Start time of the container since unix epoch in seconds"),
    "container_swap_usage_bytes": (
        "gauge",
        "Current amount of the container swap usage in bytes. Reported only on non-windows systems",
    ),
    "node_cpu_usage_seconds_total": ("counter", "Cumulative cpu time consumed by the node in core-seconds"),
    "node_memory_working_set_bytes": ("gauge", "Current working set of the node in bytes"),
    "node_swap_usage_bytes": (
        "gauge",
        "Current swap usage of the node in bytes. Reported only on non-windows systems",
    ),
    "pod_cpu_usage_seconds_total": ("counter", "Cumulative cpu time consumed by the pod in core-seconds"),
    "pod_memory_working_set_bytes": ("gauge", "Current working set of the pod in bytes"),
    "pod_swap_usage_bytes": (
        "gauge",
        "Current amount of the pod swap usage in bytes. Reported only on non-windows systems",
    ),
    "scrape_error": ("gauge", "1 if there was an error while getting container metrics, 0 otherwise"),
}


def render_as_kubelet_1_28(doc: dict[str, Any]) -> str:
    """The `/metrics/resource` body a 1.28 kubelet serves for this Summary (kubelet-formats.md §2)."""
    families: dict[str, list[tuple[tuple[str, ...], str]]] = {name: [] for name in HELP}

    def add(name: str, labels: list[tuple[str, str]], value: float, stamp: int | None) -> None:
        text = ",".join(f'{k}="{v}"' for k, v in labels)
        line = f"{name}{{{text}}} {go_float(value)}" if labels else f"{name} {go_float(value)}"
        families[name].append((tuple(v for _, v in labels), line if stamp is None else f"{line} {stamp}"))

    def stats(
        prefix: str, owner: dict[str, Any], labels: list[tuple[str, str]], swap_time: Any = ...
    ) -> None:
        cpu, memory, swap = owner.get("cpu") or {}, owner.get("memory") or {}, owner.get("swap") or {}
        if cpu.get("usageCoreNanoSeconds") is not None:
            add(
                f"{prefix}_cpu_usage_seconds_total",
                labels,
                cpu["usageCoreNanoSeconds"] / 1e9,
                time_ms(cpu.get("time")),
            )
        if memory.get("workingSetBytes") is not None:
            add(
                f"{prefix}_memory_working_set_bytes",
                labels,
                float(memory["workingSetBytes"]),
                time_ms(memory.get("time")),
            )
        if swap.get("swapUsageBytes") is not None:
            when = swap.get("time") if swap_time is ... else swap_time
            add(f"{prefix}_swap_usage_bytes", labels, float(swap["swapUsageBytes"]), time_ms(when))

    node = doc.get("node") or {}
    stats("node", node, [], swap_time=(node.get("memory") or {}).get("time"))  # node swap: memory's time
    for pod in doc.get("pods") or []:
        pod_labels = [("namespace", pod["podRef"]["namespace"]), ("pod", pod["podRef"]["name"])]
        for container in pod.get("containers") or []:
            labels = [("container", container["name"]), *pod_labels]
            start = time_ms(container.get("startTime"))
            if start > 0:  # 1.22-1.28: stamped with the start time itself
                add("container_start_time_seconds", labels, start / 1000, start)
            stats("container", container, labels)
        stats("pod", pod, pod_labels)
    add("scrape_error", [], 0.0, None)
    lines = []
    for name in sorted(families):
        if families[name]:
            kind, help_text = HELP[name]
            lines += [f"# HELP {name} [ALPHA] {help_text}", f"# TYPE {name} {kind}"]
            lines += [line for _, line in sorted(families[name], key=lambda row: row[0])]
    return "\n".join(lines) + "\n"


def test_stored_pair_is_the_kubelet_rendering_of_the_summary() -> None:
    summary = SAMPLES / "summary/nri-k8s-1.28-minikube-containerd-swap.json"
    text = EXTRA / "nri-k8s-1.28-minikube-containerd-swap.metrics-resource.txt"
    assert render_as_kubelet_1_28(json.loads(summary.read_bytes())) == text.read_text()
    from_text, from_summary = load(text), load(summary)
    assert from_text == from_summary
    assert len(from_text.pods) == 18
    assert from_text.pods[("kube-system", "etcd-datagen-1-28")] == {
        "etcd": Point(t("2023-11-10T06:20:43Z"), 6_035_197_000, 32_030_720, t("2023-11-10T06:18:37Z"), 0)
    }


FULL_SUMMARIES = sorted(
    name for name, outcome in OUTCOMES.items() if name.startswith("summary/") and isinstance(outcome, tuple)
)


@pytest.mark.parametrize("name", FULL_SUMMARIES)
def test_summary_and_text_forms_of_one_state_give_the_same_batch(name: str) -> None:
    body = (SAMPLES / name).read_bytes()
    text = render_as_kubelet_1_28(json.loads(body)).encode()
    from_text = parse_resource_metrics(text, node="n", request_time_ns=REQ)
    assert from_text == parse_summary(body, node="n", request_time_ns=REQ)
