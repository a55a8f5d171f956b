"""The ``scale`` subresource of the workloads an autoscaler targets: Deployments, StatefulSets, ReplicaSets.

The other half of an autoscaler: read how many replicas a workload has and which pods are its own,
then set a new count, as ``kubectl scale`` and the HPA controller do::

    from k8s_metrics import open_scale

    with open_scale() as scales:                               # kubeconfig or in-cluster, like kubectl
        scale = scales.get("deployment", "shop", "web")        # Scale(replicas=3, selector="app=web", ...)
        scales.set_replicas("deployment", "shop", "web", 5)

* ``kind`` is a resource as kubectl accepts it: ``deployment``/``deployments``/``deploy``,
  ``statefulset``/``statefulsets``/``sts``, ``replicaset``/``replicasets``/``rs``, or the kind
  (``Deployment`` ...); all are in the ``apps/v1`` group.
* :meth:`ScaleClient.set_replicas` sends a JSON merge patch of ``spec.replicas`` (``kubectl scale``);
  with ``resource_version`` it replaces the Scale instead, so that a concurrent change makes it fail with
  :class:`~k8s_metrics.errors.Conflict` (``kubectl scale --resource-version``).
* The connection, authentication and errors are the Metrics client's (:mod:`k8s_metrics.client`): a
  missing workload is :class:`~k8s_metrics.errors.NotFound`, missing RBAC (``get``/``patch``/``update``
  on ``<resource>/scale``) :class:`~k8s_metrics.errors.Forbidden`, a negative count
  :class:`~k8s_metrics.errors.Invalid`, a body that is not a Scale :class:`~k8s_metrics.errors.ResponseError`.

:class:`AsyncScaleClient` has the same methods, for ``await`` under trio or asyncio. Share a connection
with a :class:`~k8s_metrics.usage.Metrics` as ``ScaleClient(metrics.client)``.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from types import TracebackType
from typing import Any, Final, Self
from urllib.parse import quote

import httpx

from .client import DEFAULT_TIMEOUT, MetricsClient, metrics_client
from .errors import ResponseError
from .kubeconfig import ClusterConnection

__all__ = ["RESOURCES", "AsyncScaleClient", "Scale", "ScaleClient", "open_async_scale", "open_scale"]

RESOURCES: Final = {
    "deployments": "Deployment",
    "statefulsets": "StatefulSet",
    "replicasets": "ReplicaSet",
}
"""The ``apps/v1`` resources with a ``scale`` subresource, and their kinds."""

_ALIASES: Final = {
    **{resource: resource for resource in RESOURCES},
    **{resource[:-1]: resource for resource in RESOURCES},
    **{kind.lower(): resource for resource, kind in RESOURCES.items()},
    "deploy": "deployments",
    "sts": "statefulsets",
    "rs": "replicasets",
}
_MERGE_PATCH: Final = {"Content-Type": "application/merge-patch+json"}


@dataclass(frozen=True, slots=True)
class Scale:
    """An ``autoscaling/v1`` Scale: a workload's replica counts and the selector of its pods.

    Attributes:
        kind: the workload's kind (``"Deployment"``, ``"StatefulSet"``, ``"ReplicaSet"``).
        namespace, name: the workload.
        replicas: the desired count (``spec.replicas``).
        current_replicas: the pods the controller has now (``status.replicas``).
        selector: the label selector of its pods (``status.selector``), as Kubernetes writes it; empty
            when the controller has not reported it yet.
        resource_version: of the workload, for :meth:`ScaleClient.set_replicas` with a precondition.
    """

    kind: str
    namespace: str
    name: str
    replicas: int
    current_replicas: int
    selector: str
    resource_version: str

    @classmethod
    def from_document(cls, kind: str, document: Any) -> Scale:
        """Read an ``autoscaling/v1`` Scale document. Raises :class:`ResponseError` if it is not one."""
        try:
            if document.get("kind") != "Scale":
                raise ValueError(f"kind is {document.get('kind')!r}")
            meta, spec, status = document["metadata"], document.get("spec", {}), document.get("status", {})
            replicas, current = spec.get("replicas", 0), status.get("replicas", 0)
            selector = status.get("selector", "")
            if not (isinstance(replicas, int) and isinstance(current, int) and isinstance(selector, str)):
                raise TypeError("replicas must be integers and the selector a string")
            return cls(
                kind=kind,
                namespace=str(meta.get("namespace", "")),
                name=str(meta["name"]),
                replicas=replicas,
                current_replicas=current,
                selector=selector,
                resource_version=str(meta.get("resourceVersion", "")),
            )
        except (AttributeError, KeyError, TypeError, ValueError) as exc:
            raise ResponseError(f"unexpected Scale document: {exc!r}") from exc


def _resource(kind: str) -> str:
    resource = _ALIASES.get(kind.lower())
    if resource is None:
        known = ", ".join(sorted(RESOURCES))
        raise ValueError(f"cannot scale {kind!r}: the scale subresource is served here for {known}")
    return resource


def _path(kind: str, namespace: str, name: str) -> tuple[str, str]:
    """The workload's kind and the path of its scale subresource."""
    resource = _resource(kind)
    if not namespace or not name:
        raise ValueError("a namespace and a name are needed")
    path = f"/apis/apps/v1/namespaces/{quote(namespace, safe='')}/{resource}/{quote(name, safe='')}/scale"
    return RESOURCES[resource], path


def _update(namespace: str, name: str, replicas: int, resource_version: str | None) -> dict[str, Any]:
    """``kwargs`` for httpx: a merge patch, or a whole Scale with the precondition."""
    if isinstance(replicas, bool) or not isinstance(replicas, int) or replicas < 0:
        raise ValueError(f"replicas must be a non-negative integer, not {replicas!r}")
    if resource_version is None:
        body: Mapping[str, Any] = {"spec": {"replicas": replicas}}
        return {
            "method": "PATCH",
            "content": json.dumps(body, separators=(",", ":")),
            "headers": _MERGE_PATCH,
        }
    scale = {
        "kind": "Scale",
        "apiVersion": "autoscaling/v1",
        "metadata": {"name": name, "namespace": namespace, "resourceVersion": resource_version},
        "spec": {"replicas": replicas},
    }
    return {"method": "PUT", "json": scale}


def _json(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError as exc:
        raise ResponseError(
            f"{response.request.method} {response.request.url.path}: not JSON: {exc}"
        ) from exc


class ScaleClient:
    """Blocking access to the scale subresource (see the module docstring). A context manager that
    closes its connection; one built on an existing ``MetricsClient`` shares (and closes) that one."""

    def __init__(self, client: MetricsClient) -> None:
        self.client = client

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def close(self) -> None:
        """Close the connection pool."""
        self.client.get_httpx_client().close()

    def get(self, kind: str, namespace: str, name: str) -> Scale:
        """The workload's Scale (``GET .../<resource>/<name>/scale``). Raises ``ValueError`` for a kind
        without a scale subresource, :class:`~k8s_metrics.errors.MetricsError` for the request."""
        workload_kind, path = _path(kind, namespace, name)
        return Scale.from_document(workload_kind, _json(self.client.get_httpx_client().get(path)))

    def set_replicas(
        self, kind: str, namespace: str, name: str, replicas: int, *, resource_version: str | None = None
    ) -> Scale:
        """Set ``spec.replicas``; returns the Scale as the server stored it. With ``resource_version``
        (from :meth:`get`), fails with :class:`~k8s_metrics.errors.Conflict` if the workload changed since.
        Raises ``ValueError`` for a negative count or a kind without a scale subresource."""
        workload_kind, path = _path(kind, namespace, name)
        kwargs = _update(namespace, name, replicas, resource_version)
        response = self.client.get_httpx_client().request(url=path, **kwargs)
        return Scale.from_document(workload_kind, _json(response))


class AsyncScaleClient:
    """:class:`ScaleClient` for ``await``, under trio or asyncio. Use one per event loop."""

    def __init__(self, client: MetricsClient) -> None:
        self.client = client

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Close the connection pool."""
        await self.client.get_async_httpx_client().aclose()

    async def get(self, kind: str, namespace: str, name: str) -> Scale:
        """See :meth:`ScaleClient.get`."""
        workload_kind, path = _path(kind, namespace, name)
        return Scale.from_document(workload_kind, _json(await self.client.get_async_httpx_client().get(path)))

    async def set_replicas(
        self, kind: str, namespace: str, name: str, replicas: int, *, resource_version: str | None = None
    ) -> Scale:
        """See :meth:`ScaleClient.set_replicas`."""
        workload_kind, path = _path(kind, namespace, name)
        kwargs = _update(namespace, name, replicas, resource_version)
        response = await self.client.get_async_httpx_client().request(url=path, **kwargs)
        return Scale.from_document(workload_kind, _json(response))


def open_scale(
    connection: ClusterConnection | None = None,
    *,
    kubeconfig: str | os.PathLike[str] | None = None,
    context: str | None = None,
    timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
) -> ScaleClient:
    """Open blocking access to the cluster's scale subresources; the cluster is found as by
    :func:`k8s_metrics.open_metrics`. Raises :class:`~k8s_metrics.kubeconfig.ConfigError` (the
    configuration cannot be loaded) or ``ValueError`` (``connection`` with ``kubeconfig``/``context``)."""
    return ScaleClient(metrics_client(connection, kubeconfig=kubeconfig, context=context, timeout=timeout))


def open_async_scale(
    connection: ClusterConnection | None = None,
    *,
    kubeconfig: str | os.PathLike[str] | None = None,
    context: str | None = None,
    timeout: float | httpx.Timeout = DEFAULT_TIMEOUT,
) -> AsyncScaleClient:
    """Like :func:`open_scale`, for ``async with`` under trio or asyncio."""
    return AsyncScaleClient(
        metrics_client(connection, kubeconfig=kubeconfig, context=context, timeout=timeout)
    )
