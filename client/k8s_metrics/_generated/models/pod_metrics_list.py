from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from attrs import define as _attrs_define

from ..models.pod_metrics_list_api_version import (
    PodMetricsListApiVersion,
    check_pod_metrics_list_api_version,
)
from ..models.pod_metrics_list_kind import (
    PodMetricsListKind,
    check_pod_metrics_list_kind,
)

if TYPE_CHECKING:
    from ..models.list_meta import ListMeta
    from ..models.pod_metrics import PodMetrics


T = TypeVar("T", bound="PodMetricsList")


@_attrs_define
class PodMetricsList:
    """A list of PodMetrics, sorted by namespace then name.

    Example:
        {'kind': 'PodMetricsList', 'apiVersion': 'metrics.k8s.io/v1beta1', 'metadata': {}, 'items': [{'metadata':
            {'name': 'coredns-558bd4d5db-4dpjz', 'namespace': 'kube-system', 'creationTimestamp': '2021-10-03T09:37:01Z',
            'labels': {'k8s-app': 'kube-dns', 'pod-template-hash': '558bd4d5db'}}, 'timestamp': '2021-10-03T09:36:52Z',
            'window': '14.997s', 'containers': [{'name': 'coredns', 'usage': {'cpu': '2460574n', 'memory': '12240Ki'}}]}]}

    Attributes:
        kind (PodMetricsListKind):
        api_version (PodMetricsListApiVersion):
        metadata (ListMeta): List metadata. metrics-server serves it empty (`{}`): no resourceVersion, no continue.
            Example: {}.
        items (list[PodMetrics]):
    """

    kind: PodMetricsListKind
    api_version: PodMetricsListApiVersion
    metadata: ListMeta
    items: list[PodMetrics]

    def to_dict(self) -> dict[str, Any]:
        kind: str = self.kind

        api_version: str = self.api_version

        metadata = self.metadata.to_dict()

        items = []
        for items_item_data in self.items:
            items_item = items_item_data.to_dict()
            items.append(items_item)

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "kind": kind,
                "apiVersion": api_version,
                "metadata": metadata,
                "items": items,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.list_meta import ListMeta  # noqa: PLC0415
        from ..models.pod_metrics import PodMetrics  # noqa: PLC0415

        d = dict(src_dict)
        kind = check_pod_metrics_list_kind(d.pop("kind"))

        api_version = check_pod_metrics_list_api_version(d.pop("apiVersion"))

        metadata = ListMeta.from_dict(d.pop("metadata"))

        items = []
        _items = d.pop("items")
        for items_item_data in _items:
            items_item = PodMetrics.from_dict(items_item_data)

            items.append(items_item)

        pod_metrics_list = cls(
            kind=kind,
            api_version=api_version,
            metadata=metadata,
            items=items,
        )

        return pod_metrics_list
