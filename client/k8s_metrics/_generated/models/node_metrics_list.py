from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from attrs import define as _attrs_define

from ..models.node_metrics_list_api_version import (
    NodeMetricsListApiVersion,
    check_node_metrics_list_api_version,
)
from ..models.node_metrics_list_kind import (
    NodeMetricsListKind,
    check_node_metrics_list_kind,
)

if TYPE_CHECKING:
    from ..models.list_meta import ListMeta
    from ..models.node_metrics import NodeMetrics


T = TypeVar("T", bound="NodeMetricsList")


@_attrs_define
class NodeMetricsList:
    """A list of NodeMetrics, sorted by name.

    Example:
        {'kind': 'NodeMetricsList', 'apiVersion': 'metrics.k8s.io/v1beta1', 'metadata': {}, 'items': [{'metadata':
            {'name': 'node-a', 'creationTimestamp': '2026-04-25T17:20:57Z', 'labels': {'kubernetes.io/hostname': 'node-a',
            'kubernetes.io/os': 'linux'}}, 'timestamp': '2026-04-25T17:20:42Z', 'window': '15.012s', 'usage': {'cpu':
            '168064370n', 'memory': '1948212Ki'}}]}

    Attributes:
        kind (NodeMetricsListKind):
        api_version (NodeMetricsListApiVersion):
        metadata (ListMeta): List metadata. metrics-server serves it empty (`{}`): no resourceVersion, no continue.
            Example: {}.
        items (list[NodeMetrics]):
    """

    kind: NodeMetricsListKind
    api_version: NodeMetricsListApiVersion
    metadata: ListMeta
    items: list[NodeMetrics]

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
        from ..models.node_metrics import NodeMetrics  # noqa: PLC0415

        d = dict(src_dict)
        kind = check_node_metrics_list_kind(d.pop("kind"))

        api_version = check_node_metrics_list_api_version(d.pop("apiVersion"))

        metadata = ListMeta.from_dict(d.pop("metadata"))

        items = []
        _items = d.pop("items")
        for items_item_data in _items:
            items_item = NodeMetrics.from_dict(items_item_data)

            items.append(items_item)

        node_metrics_list = cls(
            kind=kind,
            api_version=api_version,
            metadata=metadata,
            items=items,
        )

        return node_metrics_list
