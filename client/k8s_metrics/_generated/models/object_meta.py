from __future__ import annotations

import datetime
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from attrs import define as _attrs_define

from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.labels import Labels


T = TypeVar("T", bound="ObjectMeta")


@_attrs_define
class ObjectMeta:
    """The object metadata metrics-server serves. `labels` are copied from the Node or Pod (omitted when empty);
    `creationTimestamp` is the time of the response, not the object's creation time.

        Attributes:
            name (str):
            creation_timestamp (datetime.datetime): An RFC 3339 UTC time with second precision, as Kubernetes serialises
                metav1.Time. Example: 2026-04-25T17:20:42Z.
            namespace (str | Unset): Set for PodMetrics only.
            labels (Labels | Unset): Label keys and values, copied from the Node or Pod. Values are at most 63 characters of
                alphanumerics, `-`, `_` and `.`, beginning and ending with an alphanumeric, or empty. Example: {'k8s-app':
                'kube-dns', 'pod-template-hash': '558bd4d5db'}.
    """

    name: str
    creation_timestamp: datetime.datetime
    namespace: str | Unset = UNSET
    labels: Labels | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        name = self.name

        creation_timestamp = self.creation_timestamp.isoformat()

        namespace = self.namespace

        labels: dict[str, Any] | Unset = UNSET
        if not isinstance(self.labels, Unset):
            labels = self.labels.to_dict()

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "name": name,
                "creationTimestamp": creation_timestamp,
            }
        )
        if namespace is not UNSET:
            field_dict["namespace"] = namespace
        if labels is not UNSET:
            field_dict["labels"] = labels

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.labels import Labels  # noqa: PLC0415

        d = dict(src_dict)
        name = d.pop("name")

        creation_timestamp = datetime.datetime.fromisoformat(d.pop("creationTimestamp"))

        namespace = d.pop("namespace", UNSET)

        _labels = d.pop("labels", UNSET)
        labels: Labels | Unset
        if isinstance(_labels, Unset):
            labels = UNSET
        else:
            labels = Labels.from_dict(_labels)

        object_meta = cls(
            name=name,
            creation_timestamp=creation_timestamp,
            namespace=namespace,
            labels=labels,
        )

        return object_meta
