from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from attrs import define as _attrs_define

from ..models.pod_metrics_api_version import (
    PodMetricsApiVersion,
    check_pod_metrics_api_version,
)
from ..models.pod_metrics_kind import PodMetricsKind, check_pod_metrics_kind
from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.container_metrics import ContainerMetrics
    from ..models.object_meta import ObjectMeta


T = TypeVar("T", bound="PodMetrics")


@_attrs_define
class PodMetrics:
    """The usage of one Running pod, per container (in no particular order). `timestamp` and `window` are those of the
    container with the earliest timestamp. `containers` may be empty when every container was skipped (for example after
    a CPU counter reset). Items inside a PodMetricsList carry no `kind`/`apiVersion`.

        Example:
            {'kind': 'PodMetrics', 'apiVersion': 'metrics.k8s.io/v1beta1', 'metadata': {'name': 'coredns-558bd4d5db-4dpjz',
                'namespace': 'kube-system', 'creationTimestamp': '2021-10-03T09:37:01Z', 'labels': {'k8s-app': 'kube-dns', 'pod-
                template-hash': '558bd4d5db'}}, 'timestamp': '2021-10-03T09:36:52Z', 'window': '14.997s', 'containers':
                [{'name': 'coredns', 'usage': {'cpu': '2460574n', 'memory': '12240Ki'}}]}

        Attributes:
            metadata (ObjectMeta): The object metadata metrics-server serves. `labels` are copied from the Node or Pod
                (omitted when empty); `creationTimestamp` is the time of the response, not the object's creation time.
            timestamp (datetime.datetime): An RFC 3339 UTC time with second precision, as Kubernetes serialises metav1.Time.
                Example: 2026-04-25T17:20:42Z.
            window (str): A Go duration string as printed by time.Duration.String(): `15.012s`, `1m0.729s`, `30s`, `500ms`,
                `1µs`, `0s`. Units: ns, us, µs, μs, ms, s, m, h. Example: 15.012s.
            containers (list[ContainerMetrics]):
            kind (PodMetricsKind | Unset):
            api_version (PodMetricsApiVersion | Unset):
    """

    metadata: ObjectMeta
    timestamp: datetime.datetime
    window: str
    containers: list[ContainerMetrics]
    kind: PodMetricsKind | Unset = UNSET
    api_version: PodMetricsApiVersion | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        metadata = self.metadata.to_dict()

        timestamp = self.timestamp.isoformat()

        window = self.window

        containers = []
        for containers_item_data in self.containers:
            containers_item = containers_item_data.to_dict()
            containers.append(containers_item)

        kind: str | Unset = UNSET
        if not isinstance(self.kind, Unset):
            kind = self.kind

        api_version: str | Unset = UNSET
        if not isinstance(self.api_version, Unset):
            api_version = self.api_version

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "metadata": metadata,
                "timestamp": timestamp,
                "window": window,
                "containers": containers,
            }
        )
        if kind is not UNSET:
            field_dict["kind"] = kind
        if api_version is not UNSET:
            field_dict["apiVersion"] = api_version

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.container_metrics import ContainerMetrics  # noqa: PLC0415
        from ..models.object_meta import ObjectMeta  # noqa: PLC0415

        d = dict(src_dict)
        metadata = ObjectMeta.from_dict(d.pop("metadata"))

        timestamp = datetime.datetime.fromisoformat(d.pop("timestamp"))

        window = d.pop("window")

        containers = []
        _containers = d.pop("containers")
        for containers_item_data in _containers:
            containers_item = ContainerMetrics.from_dict(containers_item_data)

            containers.append(containers_item)

        _kind = d.pop("kind", UNSET)
        kind: PodMetricsKind | Unset
        if isinstance(_kind, Unset):
            kind = UNSET
        else:
            kind = check_pod_metrics_kind(_kind)

        _api_version = d.pop("apiVersion", UNSET)
        api_version: PodMetricsApiVersion | Unset
        if isinstance(_api_version, Unset):
            api_version = UNSET
        else:
            api_version = check_pod_metrics_api_version(_api_version)

        pod_metrics = cls(
            metadata=metadata,
            timestamp=timestamp,
            window=window,
            containers=containers,
            kind=kind,
            api_version=api_version,
        )

        return pod_metrics
