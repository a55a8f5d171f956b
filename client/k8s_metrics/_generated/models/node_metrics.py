from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from attrs import define as _attrs_define

from ..models.node_metrics_api_version import (
    NodeMetricsApiVersion,
    check_node_metrics_api_version,
)
from ..models.node_metrics_kind import NodeMetricsKind, check_node_metrics_kind
from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.object_meta import ObjectMeta
    from ..models.resource_list import ResourceList


T = TypeVar("T", bound="NodeMetrics")


@_attrs_define
class NodeMetrics:
    """The usage of one node. `usage.cpu` is the rate over `window` ending at `timestamp`; `usage.memory` is the working
    set at `timestamp`. Items inside a NodeMetricsList carry no `kind`/`apiVersion`.

        Example:
            {'kind': 'NodeMetrics', 'apiVersion': 'metrics.k8s.io/v1beta1', 'metadata': {'name': 'node-a',
                'creationTimestamp': '2026-04-25T17:20:57Z', 'labels': {'kubernetes.io/hostname': 'node-a', 'kubernetes.io/os':
                'linux'}}, 'timestamp': '2026-04-25T17:20:42Z', 'window': '15.012s', 'usage': {'cpu': '168064370n', 'memory':
                '1948212Ki'}}

        Attributes:
            metadata (ObjectMeta): The object metadata metrics-server serves. `labels` are copied from the Node or Pod
                (omitted when empty); `creationTimestamp` is the time of the response, not the object's creation time.
            timestamp (datetime.datetime): An RFC 3339 UTC time with second precision, as Kubernetes serialises metav1.Time.
                Example: 2026-04-25T17:20:42Z.
            window (str): A Go duration string as printed by time.Duration.String(): `15.012s`, `1m0.729s`, `30s`, `500ms`,
                `1µs`, `0s`. Units: ns, us, µs, μs, ms, s, m, h. Example: 15.012s.
            usage (ResourceList): Usage per resource name. metrics-server serves exactly the keys `cpu` and `memory`.
                Example: {'cpu': '168064370n', 'memory': '1948212Ki'}.
            kind (NodeMetricsKind | Unset):
            api_version (NodeMetricsApiVersion | Unset):
    """

    metadata: ObjectMeta
    timestamp: datetime.datetime
    window: str
    usage: ResourceList
    kind: NodeMetricsKind | Unset = UNSET
    api_version: NodeMetricsApiVersion | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        metadata = self.metadata.to_dict()

        timestamp = self.timestamp.isoformat()

        window = self.window

        usage = self.usage.to_dict()

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
                "usage": usage,
            }
        )
        if kind is not UNSET:
            field_dict["kind"] = kind
        if api_version is not UNSET:
            field_dict["apiVersion"] = api_version

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.object_meta import ObjectMeta  # noqa: PLC0415
        from ..models.resource_list import ResourceList  # noqa: PLC0415

        d = dict(src_dict)
        metadata = ObjectMeta.from_dict(d.pop("metadata"))

        timestamp = datetime.datetime.fromisoformat(d.pop("timestamp"))

        window = d.pop("window")

        usage = ResourceList.from_dict(d.pop("usage"))

        _kind = d.pop("kind", UNSET)
        kind: NodeMetricsKind | Unset
        if isinstance(_kind, Unset):
            kind = UNSET
        else:
            kind = check_node_metrics_kind(_kind)

        _api_version = d.pop("apiVersion", UNSET)
        api_version: NodeMetricsApiVersion | Unset
        if isinstance(_api_version, Unset):
            api_version = UNSET
        else:
            api_version = check_node_metrics_api_version(_api_version)

        node_metrics = cls(
            metadata=metadata,
            timestamp=timestamp,
            window=window,
            usage=usage,
            kind=kind,
            api_version=api_version,
        )

        return node_metrics
