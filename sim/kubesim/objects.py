"""The Kubernetes API objects of the simulated cluster, as the apiserver serves them (list form,
carrying their resourceVersion): namespaces, configmaps, nodes and pods, rendered from the model's
state (`kubesim.entities`), plus the field values the apiserver's field selectors match.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

import orjson

from k8s_metrics.quantity import decimal_quantity, memory_quantity

from .entities import Node, Pod
from .gofmt import rfc3339
from .profiles import stable_hash

POD_FIELDS = (
    "metadata.name",
    "metadata.namespace",
    "spec.nodeName",
    "spec.restartPolicy",
    "spec.schedulerName",
    "spec.serviceAccountName",
    "spec.hostNetwork",
    "status.phase",
    "status.podIP",
    "status.nominatedNodeName",
)
NODE_FIELDS = ("metadata.name", "spec.unschedulable")
CONFIGMAP_FIELDS = ("metadata.name", "metadata.namespace")
NAMESPACE_FIELDS = ("metadata.name", "status.phase")
KUBELET_VERSIONS = {"stable": "v1.31.4", "1.28": "v1.28.15", "1.21": "v1.21.14"}
"""The kubeletVersion a node reports for each kubelet format."""


def uid(*parts: object) -> str:
    """A UID derived from `parts`: the same object gets the same UID in every run."""
    return str(uuid.UUID(int=stable_hash("uid", *parts) << 64 | stable_hash("uid2", *parts)))


def namespace_json(name: str, created: int, rv: int) -> bytes:
    return orjson.dumps(
        {
            "metadata": {
                "name": name,
                "uid": uid("ns", name),
                "resourceVersion": str(rv),
                "creationTimestamp": rfc3339(created),
                "labels": {"kubernetes.io/metadata.name": name},
            },
            "spec": {"finalizers": ["kubernetes"]},
            "status": {"phase": "Active"},
        }
    )


def namespace_fields(name: str) -> dict[str, str]:
    return {"metadata.name": name, "status.phase": "Active"}


def configmap_json(namespace: str, name: str, data: Mapping[str, str], created: int, rv: int) -> bytes:
    return orjson.dumps(
        {
            "metadata": {
                "name": name,
                "namespace": namespace,
                "uid": uid("cm", namespace, name),
                "resourceVersion": str(rv),
                "creationTimestamp": rfc3339(created),
            },
            "data": dict(data),
        }
    )


def node_json(node: Node, *, seed: int, kubelet_port: int, now: int, rv: int) -> bytes:
    """The Node; its heartbeats are at `now`, its port the kubelets' (`kubelet_port`)."""
    ready = "True" if node.ready else "Unknown"
    heartbeat = rfc3339(now)
    conditions: list[dict[str, Any]] = [
        {
            "type": t,
            "status": "False",
            "lastHeartbeatTime": heartbeat,
            "lastTransitionTime": rfc3339(node.boot_ns),
            "reason": reason,
            "message": message,
        }
        for t, reason, message in (
            (
                "MemoryPressure",
                "KubeletHasSufficientMemory",
                "kubelet has sufficient memory available",
            ),
            ("DiskPressure", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
            ("PIDPressure", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
        )
    ]
    conditions.append(
        {
            "type": "Ready",
            "status": ready,
            "lastHeartbeatTime": heartbeat,
            "lastTransitionTime": rfc3339(node.boot_ns),
            "reason": "KubeletReady" if node.ready else "NodeStatusUnknown",
            "message": "kubelet is posting ready status"
            if node.ready
            else "Kubelet stopped posting node status.",
        }
    )
    doc = {
        "metadata": {
            "name": node.name,
            "uid": uid("node", seed, node.name),
            "resourceVersion": str(rv),
            "creationTimestamp": rfc3339(node.created_ns),
            "labels": node.labels,
            "annotations": {
                "node.alpha.kubernetes.io/ttl": "0",
                "volumes.kubernetes.io/controller-managed-attach-detach": "true",
            },
        },
        "spec": {"podCIDR": f"10.{(node.index >> 8) & 255}.{node.index & 255}.0/24"},
        # Memory in Ki, as kubelets report it: real machine sizes are rarely whole MiB (these
        # are), so the canonical form would turn them into Mi.
        "status": {
            "capacity": {
                "cpu": decimal_quantity(node.cpu_capacity_mc, -3),
                "ephemeral-storage": "102350Mi",
                "hugepages-1Gi": "0",
                "hugepages-2Mi": "0",
                "memory": f"{node.memory_capacity // 1024}Ki",
                "pods": "110",
            },
            "allocatable": {
                "cpu": decimal_quantity(node.cpu_allocatable_mc, -3),
                "ephemeral-storage": "96589578081",
                "hugepages-1Gi": "0",
                "hugepages-2Mi": "0",
                "memory": f"{node.memory_allocatable // 1024}Ki",
                "pods": "110",
            },
            "conditions": conditions,
            "addresses": [
                {"type": "InternalIP", "address": node.ip},
                {"type": "Hostname", "address": node.name},
            ],
            # The real JSON key is "Port" (DaemonEndpoint has json:"Port").
            "daemonEndpoints": {"kubeletEndpoint": {"Port": kubelet_port}},
            "nodeInfo": {
                "machineID": uid("machine", node.name).replace("-", ""),
                "systemUUID": uid("system", node.name),
                "bootID": uid("boot", node.name, node.boot_ns),
                "kernelVersion": "6.1.0-sim",
                "osImage": "kubesim",
                "containerRuntimeVersion": "containerd://1.7.22",
                "kubeletVersion": KUBELET_VERSIONS[node.kubelet_format],
                "kubeProxyVersion": KUBELET_VERSIONS[node.kubelet_format],
                "operatingSystem": "linux",
                "architecture": "amd64",
            },
        },
    }
    return orjson.dumps(doc)


def node_fields(node: Node) -> dict[str, str]:
    return {"metadata.name": node.name, "spec.unschedulable": "false"}


def pod_json(pod: Pod, node: Node, rv: int) -> bytes:
    """The Pod on `node`: container states follow its phase, restarts show as OOMKilled last states."""
    running = pod.phase == "Running"
    terminated = pod.phase in ("Succeeded", "Failed")
    statuses = []
    for c in pod.containers:
        status: dict[str, Any] = {"name": c.name}
        if running:
            status["state"] = {"running": {"startedAt": rfc3339(c.instance_start_ns)}}
        elif terminated:
            status["state"] = {
                "terminated": {
                    "exitCode": 0 if pod.phase == "Succeeded" else 1,
                    "reason": "Completed" if pod.phase == "Succeeded" else "Error",
                    "startedAt": rfc3339(c.instance_start_ns),
                    "finishedAt": rfc3339(c.last_finished_ns or c.instance_start_ns),
                }
            }
        else:
            status["state"] = {"waiting": {"reason": "ContainerCreating"}}
        status["lastState"] = (
            {
                "terminated": {
                    "exitCode": 137,
                    "reason": "OOMKilled",
                    "finishedAt": rfc3339(c.last_finished_ns),
                }
            }
            if c.restarts
            else {}
        )
        status.update(
            {
                "ready": running,
                "restartCount": c.restarts,
                "image": c.image,
                "imageID": f"{c.image.split(':')[0]}@sha256:{stable_hash(c.image):016x}",
                "containerID": f"containerd://{stable_hash(pod.uid, c.name, c.restarts):016x}",
                "started": running,
            }
        )
        statuses.append(status)
    ready = "True" if running else "False"
    meta: dict[str, Any] = {
        "name": pod.name,
        "namespace": pod.namespace,
        "uid": pod.uid,
        "resourceVersion": str(rv),
        "creationTimestamp": rfc3339(pod.created_ns),
        "labels": pod.labels,
    }
    if pod.owner:
        owner_name = pod.name.rsplit("-", 1)[0]
        meta["ownerReferences"] = [
            {
                "apiVersion": "apps/v1",
                "kind": pod.owner,
                "name": owner_name,
                "uid": uid("owner", pod.namespace, owner_name),
                "controller": True,
                "blockOwnerDeletion": True,
            }
        ]
    doc = {
        "metadata": meta,
        "spec": {
            "containers": [
                {
                    "name": c.name,
                    "image": c.image,
                    "resources": {
                        "requests": {
                            "cpu": decimal_quantity(c.request_mc, -3),
                            "memory": memory_quantity(c.request_memory),
                        }
                    },
                    "terminationMessagePath": "/dev/termination-log",
                    "terminationMessagePolicy": "File",
                    "imagePullPolicy": "IfNotPresent",
                }
                for c in pod.containers
            ],
            **(
                {
                    "initContainers": [
                        {"name": name, "image": f"registry.example/{name}:1.0"}
                        for name in pod.init_containers
                    ]
                }
                if pod.init_containers
                else {}
            ),
            "restartPolicy": "Always",
            "terminationGracePeriodSeconds": 30,
            "dnsPolicy": "ClusterFirst",
            "serviceAccountName": "default",
            "nodeName": pod.node,
            "schedulerName": "default-scheduler",
            "priority": 0,
            "enableServiceLinks": True,
            "preemptionPolicy": "PreemptLowerPriority",
        },
        "status": {
            "phase": pod.phase,
            "conditions": [
                {
                    "type": t,
                    "status": ready if t in ("Ready", "ContainersReady") else "True",
                    "lastProbeTime": None,
                    "lastTransitionTime": rfc3339(pod.started_ns),
                }
                for t in (
                    "PodReadyToStartContainers",
                    "Initialized",
                    "Ready",
                    "ContainersReady",
                    "PodScheduled",
                )
            ],
            "hostIP": node.ip,
            "hostIPs": [{"ip": node.ip}],
            "podIP": pod.ip,
            "podIPs": [{"ip": pod.ip}],
            "startTime": rfc3339(pod.created_ns),
            **(
                {
                    "initContainerStatuses": [
                        {
                            "name": name,
                            "state": {
                                "terminated": {
                                    "exitCode": 0,
                                    "reason": "Completed",
                                    "startedAt": rfc3339(pod.created_ns),
                                    "finishedAt": rfc3339(pod.started_ns),
                                }
                            },
                            "ready": True,
                            "restartCount": 0,
                            "image": f"registry.example/{name}:1.0",
                        }
                        for name in pod.init_containers
                    ]
                }
                if pod.init_containers
                else {}
            ),
            "containerStatuses": statuses,
            "qosClass": "Burstable",
        },
    }
    return orjson.dumps(doc)


def pod_fields(pod: Pod) -> dict[str, str]:
    fields = {
        "metadata.name": pod.name,
        "metadata.namespace": pod.namespace,
        "spec.nodeName": pod.node,
        "spec.restartPolicy": "Always",
        "spec.schedulerName": "default-scheduler",
        "spec.serviceAccountName": "default",
        "spec.hostNetwork": "false",
        "status.phase": pod.phase,
        "status.podIP": pod.ip,
        "status.nominatedNodeName": "",
    }
    return fields
