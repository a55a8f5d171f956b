"""The bodies a simulated kubelet serves, rendered from the `ClusterModel`: /metrics/resource
(Prometheus text in the node's kubelet format) and /stats/summary (JSON, as the kubelet indents it).

`KubeletRenderer` renders one node's bodies at its latest housekeeping tick and caches them until
the next tick or until the node's pods change (`Node.generation`), so a scrape costs string
formatting of a pre-rendered template at most once per tick.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import orjson

from .clock import NS_PER_MS
from .entities import Node
from .gofmt import go_float, rfc3339
from .model import ClusterModel

PROM_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_HELP = {
    "container_cpu_usage_seconds_total": (
        "Cumulative cpu time consumed by the container in core-seconds",
        "counter",
    ),
    "container_memory_working_set_bytes": ("Current working set of the container in bytes", "gauge"),
    "container_start_time_seconds": ("Start time of the container since unix epoch in seconds", "gauge"),
    "node_cpu_usage_seconds_total": ("Cumulative cpu time consumed by the node in core-seconds", "counter"),
    "node_memory_working_set_bytes": ("Current working set of the node in bytes", "gauge"),
    "pod_cpu_usage_seconds_total": ("Cumulative cpu time consumed by the pod in core-seconds", "counter"),
    "pod_memory_working_set_bytes": ("Current working set of the pod in bytes", "gauge"),
    "resource_scrape_error": (
        "1 if there was an error while getting container metrics, 0 otherwise",
        "gauge",
    ),
    "scrape_error": ("1 if there was an error while getting container metrics, 0 otherwise", "gauge"),
}


def _header(name: str, fmt: str) -> str:
    text, kind = _HELP[name]
    stability = "STABLE" if fmt == "stable" else "ALPHA"
    return f"# HELP {name} [{stability}] {text}\n# TYPE {name} {kind}\n"


def scrape_error_body(fmt: str, value: int) -> str:
    """The trailing scrape-error family: `resource_scrape_error` from 1.30, `scrape_error` before."""
    name = "resource_scrape_error" if fmt == "stable" else "scrape_error"
    return f"{_header(name, fmt)}{name} {value}\n"


@dataclass(slots=True)
class _Cache:
    key: tuple[int, int, str] = (-1, -1, "")
    metrics: bytes = b""
    containers: list[tuple[Any, Any, str]] = field(default_factory=list)
    pods: list[tuple[Any, str]] = field(default_factory=list)
    template_key: tuple[int, str] = (-1, "")


class KubeletRenderer:
    """Renders one node's bodies from the model; see module docstring for caching."""

    def __init__(self, model: ClusterModel, node: Node) -> None:
        self.model = model
        self.node = node
        self._cache = _Cache()
        self.renders = 0

    def _templates(self) -> None:
        node, cache = self.node, self._cache
        key = (node.generation, node.kubelet_format)
        if cache.template_key == key:
            return
        containers = []
        for pod in node.pods.values():
            for c in pod.containers:
                containers.append(
                    (pod, c, f'{{container="{c.name}",namespace="{pod.namespace}",pod="{pod.name}"}}')
                )
        containers.sort(key=lambda e: (e[1].name, e[0].namespace, e[0].name))
        pods = sorted(
            ((p, f'{{namespace="{p.namespace}",pod="{p.name}"}}') for p in node.pods.values()),
            key=lambda e: (e[0].namespace, e[0].name),
        )
        cache.containers, cache.pods, cache.template_key = containers, pods, key

    def metrics_resource(self, now_ns: int) -> bytes:
        """The /metrics/resource body at `now_ns` in the node's kubelet format."""
        node = self.node
        tick = self.model.sample_tick_ns(node, now_ns)
        fmt = node.kubelet_format
        key = (tick, node.generation, fmt)
        if self._cache.key == key:
            return self._cache.metrics
        self._templates()
        self.renders += 1
        cpu: list[str] = []
        mem: list[str] = []
        start: list[str] = []
        for _pod, c, labels in self._cache.containers:
            t = tick - c.stat_skew_ms * NS_PER_MS
            if t <= c.instance_start_ns:
                continue  # not sampled yet since it (re)started
            ts = t // NS_PER_MS
            cpu.append(f"container_cpu_usage_seconds_total{labels} {go_float(c.counter_ns(t) / 1e9)} {ts}\n")
            memory = go_float(float(c.profile.memory_bytes(t)))
            mem.append(f"container_memory_working_set_bytes{labels} {memory} {ts}\n")
            if fmt == "stable":
                start.append(f"container_start_time_seconds{labels} {go_float(c.instance_start_ns / 1e9)}\n")
            elif fmt == "1.28":
                start.append(
                    f"container_start_time_seconds{labels} {go_float(c.instance_start_ns / 1e9)} "
                    f"{c.instance_start_ns // NS_PER_MS}\n"
                )
        pod_cpu: list[str] = []
        pod_mem: list[str] = []
        for pod, labels in self._cache.pods:
            t = tick - pod.stat_skew_ms * NS_PER_MS
            if t <= pod.started_ns:
                continue
            ts = t // NS_PER_MS
            pod_cpu.append(f"pod_cpu_usage_seconds_total{labels} {go_float(pod.cpu_ns(t) / 1e9)} {ts}\n")
            pod_mem.append(
                f"pod_memory_working_set_bytes{labels} {go_float(float(pod.memory_bytes(t)))} {ts}\n"
            )
        t = tick - node.stat_skew_ms * NS_PER_MS
        ts = t // NS_PER_MS
        parts: list[str] = []
        for name, lines in (
            ("container_cpu_usage_seconds_total", cpu),
            ("container_memory_working_set_bytes", mem),
            ("container_start_time_seconds", start),
        ):
            if lines:
                parts.append(_header(name, fmt))
                parts.extend(lines)
        parts.append(_header("node_cpu_usage_seconds_total", fmt))
        parts.append(f"node_cpu_usage_seconds_total {go_float(node.cpu_ns(t) / 1e9)} {ts}\n")
        parts.append(_header("node_memory_working_set_bytes", fmt))
        parts.append(f"node_memory_working_set_bytes {go_float(float(node.memory_bytes(t)))} {ts}\n")
        for name, lines in (
            ("pod_cpu_usage_seconds_total", pod_cpu),
            ("pod_memory_working_set_bytes", pod_mem),
        ):
            if lines:
                parts.append(_header(name, fmt))
                parts.extend(lines)
        parts.append(scrape_error_body(fmt, 0))
        body = "".join(parts).encode()
        self._cache.key, self._cache.metrics = key, body
        return body

    def summary(self, now_ns: int, only_cpu_and_memory: bool = False) -> bytes:
        """The /stats/summary JSON (pretty-printed with one space, as the kubelet serves it)."""
        node = self.node
        tick = self.model.sample_tick_ns(node, now_ns)
        t_node = tick - node.stat_skew_ms * NS_PER_MS
        node_cpu = node.cpu_ns(t_node)
        node_mem = node.memory_bytes(t_node)
        rate_mc = sum(c.profile.cpu_millicores(t_node) for p in node.pods.values() for c in p.containers)
        rate_mc += node.system.cpu_millicores(t_node)
        node_doc: dict[str, Any] = {
            "nodeName": node.name,
            "systemContainers": [
                _system_container("kubelet", node.boot_ns, t_node, only_cpu_and_memory),
                _system_container("pods", node.boot_ns, t_node, only_cpu_and_memory),
            ],
            "startTime": rfc3339(node.boot_ns),
            "cpu": _cpu(t_node, rate_mc, node_cpu),
            "memory": _memory(t_node, node_mem, node.memory_capacity - node_mem),
        }
        if not only_cpu_and_memory:
            node_doc["network"] = _network(t_node, node.index)
            node_doc["fs"] = _fs(t_node, 35 << 30)
            node_doc["runtime"] = {"imageFs": _fs(t_node, 2 << 30), "containerFs": _fs(t_node, 2 << 30)}
            node_doc["rlimit"] = {
                "time": rfc3339(t_node),
                "maxpid": 4194304,
                "curproc": 300 + 10 * len(node.pods),
            }
        node_doc["swap"] = {"time": rfc3339(t_node), "swapAvailableBytes": 0, "swapUsageBytes": 0}
        pods = []
        for pod in sorted(node.pods.values(), key=lambda p: (p.namespace, p.name)):
            t_pod = tick - pod.stat_skew_ms * NS_PER_MS
            if t_pod <= pod.started_ns:
                continue
            containers = []
            for c in pod.containers:
                t = tick - c.stat_skew_ms * NS_PER_MS
                if t <= c.instance_start_ns:
                    continue
                cdoc: dict[str, Any] = {
                    "name": c.name,
                    "startTime": rfc3339(c.instance_start_ns),
                    "cpu": _cpu(t, c.profile.cpu_millicores(t), c.counter_ns(t)),
                    "memory": _memory(t, c.profile.memory_bytes(t), None),
                }
                if not only_cpu_and_memory:
                    cdoc["rootfs"] = _fs(t, 36864)
                    cdoc["logs"] = _fs(t, 4096)
                cdoc["swap"] = {"time": rfc3339(t), "swapAvailableBytes": 0, "swapUsageBytes": 0}
                containers.append(cdoc)
            pod_rate = sum(c.profile.cpu_millicores(t_pod) for c in pod.containers) + pod.overhead_mc
            pdoc: dict[str, Any] = {
                "podRef": {"name": pod.name, "namespace": pod.namespace, "uid": pod.uid},
                "startTime": rfc3339(pod.created_ns),
                "containers": containers,
                "cpu": _cpu(t_pod, pod_rate, pod.cpu_ns(t_pod)),
                "memory": _memory(t_pod, pod.memory_bytes(t_pod), None),
            }
            if not only_cpu_and_memory:
                pdoc["network"] = _network(t_pod, pod.overhead_memory)
                pdoc["volume"] = [dict(_fs(t_pod, 12288), name="kube-api-access")]
                pdoc["ephemeral-storage"] = _fs(t_pod, 57344)
                pdoc["process_stats"] = {"process_count": len(containers) * 2}
            pdoc["swap"] = {"time": rfc3339(t_pod), "swapUsageBytes": 0}
            pods.append(pdoc)
        raw = orjson.dumps({"node": node_doc, "pods": pods}, option=orjson.OPT_INDENT_2)
        return _ONE_SPACE.sub(lambda m: b"\n" + b" " * (len(m.group(1)) // 2), raw)


_ONE_SPACE = re.compile(rb"\n( +)")


def _cpu(t: int, rate_mc: float, counter: int) -> dict[str, Any]:
    return {"time": rfc3339(t), "usageNanoCores": round(rate_mc * 1e6), "usageCoreNanoSeconds": counter}


def _memory(t: int, working_set: int, available: int | None) -> dict[str, Any]:
    doc: dict[str, Any] = {"time": rfc3339(t)}
    if available is not None:
        doc["availableBytes"] = max(0, available)
    usage = working_set + working_set // 8
    doc.update(
        usageBytes=usage,
        workingSetBytes=working_set,
        rssBytes=working_set * 3 // 4,
        pageFaults=working_set // 4096,
        majorPageFaults=working_set // (1 << 24),
    )
    return doc


def _system_container(name: str, boot_ns: int, t: int, only: bool) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "name": name,
        "startTime": rfc3339(boot_ns),
        "cpu": _cpu(t, 20.0, (t - boot_ns) // 50),
        "memory": _memory(t, 60 << 20, None),
    }
    if not only:
        doc["swap"] = {"time": rfc3339(t), "swapUsageBytes": 0}
    return doc


def _network(t: int, seed: int) -> dict[str, Any]:
    rx, tx = 1_000_000 + seed * 7 % 100_000, 200_000 + seed * 3 % 50_000
    iface = {"name": "eth0", "rxBytes": rx, "rxErrors": 0, "txBytes": tx, "txErrors": 0}
    return {"time": rfc3339(t), **iface, "interfaces": [iface]}


def _fs(t: int, used: int) -> dict[str, Any]:
    return {
        "time": rfc3339(t),
        "availableBytes": 990676500480,
        "capacityBytes": 1081100128256,
        "usedBytes": used,
        "inodesFree": 66786557,
        "inodes": 67108864,
        "inodesUsed": max(1, used // 4096),
    }
