"""Simulated workload controllers: Deployments, StatefulSets and ReplicaSets whose pods follow ``replicas``.

An autoscaler reads and writes the ``scale`` subresource; the apiserver routes ``/apis/apps/v1/**``
here (after authentication and authorization, like every request). What is served:

* ``GET`` of a workload, ``GET`` (list) in a namespace or across all;
* ``GET``/``PUT``/``PATCH`` of ``<resource>/<name>/scale`` (an ``autoscaling/v1`` Scale). ``PATCH``
  takes a JSON merge patch or a strategic merge patch of ``spec.replicas`` (what ``kubectl scale`` and
  the HPA send); ``PUT`` replaces the Scale and honours ``metadata.resourceVersion`` (409 Conflict
  when stale). Errors are the apiserver's: 404 ``deployments.apps "web" not found``, 422 for a negative
  count, 415 for another patch type, 405 for other verbs.

A change of ``replicas`` is reconciled at once, as if the controllers were instantaneous: new pods
(``<deployment>-<hash>-<xxxxx>``, ``<statefulset>-<ordinal>``, ``<replicaset>-<xxxxx>``) start Running
on the node with the fewest pods, with the workload's labels and a Steady usage profile per container;
a scale-down deletes the newest pods (a StatefulSet's highest ordinals). ``status.replicas`` is the
number of pods at once.
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Final

import orjson

from k8s_metrics.quantity import decimal_quantity, memory_quantity

from .clock import NS_PER_S
from .entities import ContainerSpec
from .errors import ConfigError, NotFoundError
from .gofmt import rfc3339
from .httpserver import Request, Response
from .model import ClusterModel
from .policy import Attributes
from .profiles import MI, Steady, stable_hash
from .responses import NO_METHOD, json_response, raw_json, status
from .store import ResourceStore, Store

__all__ = ["APPS_RESOURCES", "KINDS", "ContainerTemplate", "Workload", "Workloads"]

KINDS: Final = {"deployments": "Deployment", "statefulsets": "StatefulSet", "replicasets": "ReplicaSet"}
"""The ``apps/v1`` resources served, and their kinds."""

_SHORT_NAMES: Final = {"deployments": "deploy", "statefulsets": "sts", "replicasets": "rs"}
APPS_RESOURCES: Final = [
    entry
    for resource, kind in KINDS.items()
    for entry in (
        {
            "name": resource,
            "singularName": kind.lower(),
            "namespaced": True,
            "kind": kind,
            "verbs": ["get", "list"],
            "shortNames": {"deployments": ["deploy"], "statefulsets": ["sts"], "replicasets": ["rs"]}[
                resource
            ],
            "categories": ["all"],
        },
        {
            "name": f"{resource}/scale",
            "singularName": "",
            "namespaced": True,
            "group": "autoscaling",
            "version": "v1",
            "kind": "Scale",
            "verbs": ["get", "patch", "update"],
        },
    )
]
"""The ``apps/v1`` APIResourceList entries (discovery)."""

_MIN_REPLICAS: Final = "must be greater than or equal to 0"
_CHARS: Final = "bcdfghjklmnpqrstvwxz2456789"
_FIELDS: Final = ("metadata.name", "metadata.namespace")
_MERGE_PATCHES: Final = ("application/merge-patch+json", "application/strategic-merge-patch+json")


@dataclass(frozen=True, slots=True)
class ContainerTemplate:
    """One container of a workload's pods: constant usage (a Steady profile), which is also its request."""

    name: str
    millicores: int
    memory: int = 64 * MI


@dataclass(slots=True)
class Workload:
    kind: str
    """``Deployment``, ``StatefulSet`` or ``ReplicaSet``."""
    namespace: str
    name: str
    replicas: int
    labels: dict[str, str]
    containers: tuple[ContainerTemplate, ...]
    uid: str
    created_ns: int
    generation: int = 1
    pods: list[str] = field(default_factory=list)
    """Names of its pods, oldest first."""
    serial: int = 0

    @property
    def selector(self) -> str:
        return ",".join(f"{k}={v}" for k, v in sorted(self.labels.items()))


class Workloads:
    """The workloads of the simulated cluster and their pods (see the module docstring)."""

    def __init__(self, model: ClusterModel, store: Store) -> None:
        self.model = model
        self._stores: dict[str, ResourceStore] = {
            resource: store.add_resource(
                f"{resource}.apps", kind=kind, api_version="apps/v1", namespaced=True, field_names=_FIELDS
            )
            for resource, kind in KINDS.items()
        }
        self._workloads: dict[tuple[str, str, str], Workload] = {}

    # --- the Python API (tests, demos) -----------------------------------------------------------

    def add(
        self,
        kind: str,
        namespace: str,
        name: str,
        *,
        replicas: int,
        containers: Sequence[ContainerTemplate],
        labels: Mapping[str, str] | None = None,
        start_ns: int | None = None,
    ) -> Workload:
        """Create a workload (``kind`` is a resource, e.g. ``deployments``) and its pods, started at
        ``start_ns`` (default: now). Raises ``ConfigError`` for a bad kind, count or duplicate."""
        resource = _resource(kind)
        if (resource, namespace, name) in self._workloads:
            raise ConfigError(f"{resource}.apps {namespace}/{name} already exists")
        if replicas < 0 or not containers:
            raise ConfigError("a workload needs replicas >= 0 and at least one container")
        now = self.model.clock.now_ns()
        workload = Workload(
            KINDS[resource],
            namespace,
            name,
            replicas,
            dict(labels or {"app": name}),
            tuple(containers),
            str(stable_hash("workload", resource, namespace, name)),
            (now if start_ns is None else start_ns) - 60 * NS_PER_S,
        )
        self._workloads[(resource, namespace, name)] = workload
        self._reconcile(resource, workload, start_ns)
        return workload

    def get(self, kind: str, namespace: str, name: str) -> Workload:
        try:
            return self._workloads[(_resource(kind), namespace, name)]
        except KeyError:
            raise NotFoundError(f"{_resource(kind)}.apps {namespace}/{name} not found") from None

    def scale(self, kind: str, namespace: str, name: str, replicas: int) -> Workload:
        """Set ``replicas`` and reconcile the pods at once."""
        if replicas < 0:
            raise ConfigError("replicas must be >= 0")
        workload = self.get(kind, namespace, name)
        if replicas != workload.replicas:
            workload.replicas = replicas
            workload.generation += 1
        self._reconcile(_resource(kind), workload, None)
        return workload

    # --- the controllers ------------------------------------------------------------------------

    def _reconcile(self, resource: str, w: Workload, start_ns: int | None) -> None:
        w.pods = [p for p in w.pods if (w.namespace, p) in self.model.pods]  # deleted by hand meanwhile
        while len(w.pods) < w.replicas:
            pod_name = self._pod_name(w)
            node = min(self.model.nodes.values(), key=lambda n: (len(n.pods), n.index))
            specs = [
                ContainerSpec(c.name, Steady(0, millicores=c.millicores, memory=c.memory))
                for c in w.containers
            ]
            labels = dict(w.labels)
            owner = w.kind
            if w.kind == "Deployment":
                labels["pod-template-hash"] = _template_hash(w)
                owner = "ReplicaSet"
            self.model.add_pod(
                node.name, w.namespace, pod_name, specs, labels=labels, start_ns=start_ns, owner=owner
            )
            w.pods.append(pod_name)
        while len(w.pods) > w.replicas:
            victim = max(w.pods, key=_ordinal) if w.kind == "StatefulSet" else w.pods[-1]
            w.pods.remove(victim)
            self.model.delete_pod(w.namespace, victim)
        self._put(resource, w)

    def _pod_name(self, w: Workload) -> str:
        if w.kind == "StatefulSet":
            taken = {_ordinal(p) for p in w.pods}
            return f"{w.name}-{min(i for i in range(len(w.pods) + 1) if i not in taken)}"
        while True:
            w.serial += 1
            rng = random.Random(stable_hash("pod", w.namespace, w.name, w.serial))
            suffix = "".join(rng.choice(_CHARS) for _ in range(5))
            prefix = f"{w.name}-{_template_hash(w)}" if w.kind == "Deployment" else w.name
            if (w.namespace, f"{prefix}-{suffix}") not in self.model.pods:
                return f"{prefix}-{suffix}"

    def _put(self, resource: str, w: Workload) -> None:
        def render(rv: int) -> bytes:
            return orjson.dumps(_workload_doc(w, rv))

        self._stores[resource].put(
            w.namespace,
            w.name,
            w.labels,
            {"metadata.name": w.name, "metadata.namespace": w.namespace},
            render,
        )

    # --- HTTP --------------------------------------------------------------------------------------

    def handle(self, request: Request, a: Attributes) -> Response:
        """Serve an authorized ``apps/v1`` request (see the module docstring)."""
        if a.resource not in KINDS or a.subresource not in ("", "scale"):
            return status(404, "the server could not find the requested resource", details={})
        rs = self._stores[a.resource]
        if not a.subresource:
            if a.verb == "get":
                obj = rs.get(a.namespace, a.name)
                if obj is None:
                    return _not_found(a.resource, a.name)
                return raw_json(rs.full_json(obj.body))
            if a.verb == "list":
                items = [o for o in rs.objects() if not a.namespace or o.namespace == a.namespace]
                items.sort(key=lambda o: (o.namespace, o.name))
                head = (
                    b'{"kind":"%sList","apiVersion":"apps/v1","metadata":{"resourceVersion":"%d"},"items":['
                )
                rv = max((o.rv for o in items), default=0)
                return raw_json(head % (rs.kind.encode(), rv) + b",".join(o.body for o in items) + b"]}")
            return status(405, NO_METHOD, details={})
        workload = self._workloads.get((a.resource, a.namespace, a.name))
        if workload is None or not a.name:
            return _not_found(a.resource, a.name)
        if a.verb == "get":
            return json_response(self._scale_doc(a.resource, workload))
        if a.verb in ("patch", "update"):
            return self._update_scale(request, a, workload)
        return status(405, NO_METHOD, details={})

    def _update_scale(self, request: Request, a: Attributes, w: Workload) -> Response:
        content_type = (request.header("content-type") or "").split(";")[0].strip()
        try:
            doc = orjson.loads(request.body)
        except orjson.JSONDecodeError as exc:
            return status(400, f"the body of the request was in an unknown format: {exc}")
        if a.verb == "patch" and content_type not in _MERGE_PATCHES:
            return status(
                415,
                "the body of the request was in an unknown format - accepted media types include: "
                + ", ".join(_MERGE_PATCHES),
                "UnsupportedMediaType",
            )
        if not isinstance(doc, dict):
            return status(400, "the body of the request is not a JSON object")
        if a.verb == "update":
            wanted_rv = (doc.get("metadata") or {}).get("resourceVersion")
            current = self._stores[a.resource].get(w.namespace, w.name)
            if wanted_rv and current is not None and str(wanted_rv) != str(current.rv):
                return status(
                    409,
                    f'Operation cannot be fulfilled on {a.resource}.apps "{w.name}": the object has been '
                    "modified; please apply your changes to the latest version and try again",
                    "Conflict",
                    details={"name": w.name, "group": "apps", "kind": a.resource},
                )
        replicas = (doc.get("spec") or {}).get("replicas", w.replicas if a.verb == "patch" else 0)
        if isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < 0:
            return status(
                422,
                f'Scale.autoscaling "{w.name}" is invalid: spec.replicas: Invalid value: '
                f"{orjson.dumps(replicas).decode()}: {_MIN_REPLICAS}",
                "Invalid",
                details={
                    "name": w.name,
                    "group": "autoscaling",
                    "kind": "Scale",
                    "causes": [
                        {
                            "reason": "FieldValueInvalid",
                            "message": f"Invalid value: {_MIN_REPLICAS}",
                            "field": "spec.replicas",
                        }
                    ],
                },
            )
        self.scale(a.resource, w.namespace, w.name, replicas)
        return json_response(self._scale_doc(a.resource, w))

    def _scale_doc(self, resource: str, w: Workload) -> dict[str, Any]:
        obj = self._stores[resource].get(w.namespace, w.name)
        return {
            "kind": "Scale",
            "apiVersion": "autoscaling/v1",
            "metadata": {
                "name": w.name,
                "namespace": w.namespace,
                "uid": w.uid,
                "resourceVersion": str(obj.rv if obj is not None else 0),
                "creationTimestamp": rfc3339(w.created_ns),
            },
            "spec": {"replicas": w.replicas},
            "status": {"replicas": len(w.pods), "selector": w.selector},
        }


def _resource(kind: str) -> str:
    lowered = kind.lower()
    for resource, k in KINDS.items():
        if lowered in (resource, resource[:-1], k.lower()):
            return resource
    raise ConfigError(f"no scalable workload kind {kind!r}: one of {', '.join(KINDS)}")


def _ordinal(pod: str) -> int:
    return int(pod.rsplit("-", 1)[1])


def _template_hash(w: Workload) -> str:
    rng = random.Random(stable_hash("template", w.namespace, w.name))
    return "".join(rng.choice(_CHARS) for _ in range(10))


def _not_found(resource: str, name: str) -> Response:
    return status(
        404, f'{resource}.apps "{name}" not found', details={"name": name, "group": "apps", "kind": resource}
    )


def _workload_doc(w: Workload, rv: int) -> dict[str, Any]:
    ready = len(w.pods)
    spec: dict[str, Any] = {
        "replicas": w.replicas,
        "selector": {"matchLabels": w.labels},
        "template": {
            "metadata": {"labels": w.labels},
            "spec": {
                "containers": [
                    {
                        "name": c.name,
                        "image": f"registry.example/{c.name}:1",
                        "resources": {
                            "requests": {
                                "cpu": decimal_quantity(c.millicores, -3),
                                "memory": memory_quantity(c.memory),
                            }
                        },
                    }
                    for c in w.containers
                ]
            },
        },
    }
    if w.kind == "StatefulSet":
        spec["serviceName"] = w.name
    return {
        "metadata": {
            "name": w.name,
            "namespace": w.namespace,
            "uid": w.uid,
            "resourceVersion": str(rv),
            "generation": w.generation,
            "creationTimestamp": rfc3339(w.created_ns),
            "labels": w.labels,
        },
        "spec": spec,
        "status": {
            "observedGeneration": w.generation,
            "replicas": ready,
            "readyReplicas": ready,
            "availableReplicas": ready,
            "updatedReplicas": ready,
        },
    }
