from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define

T = TypeVar("T", bound="GroupVersionForDiscovery")


@_attrs_define
class GroupVersionForDiscovery:
    """
    Example:
        {'groupVersion': 'metrics.k8s.io/v1beta1', 'version': 'v1beta1'}

    Attributes:
        group_version (str):
        version (str):
    """

    group_version: str
    version: str

    def to_dict(self) -> dict[str, Any]:
        group_version = self.group_version

        version = self.version

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "groupVersion": group_version,
                "version": version,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        group_version = d.pop("groupVersion")

        version = d.pop("version")

        group_version_for_discovery = cls(
            group_version=group_version,
            version=version,
        )

        return group_version_for_discovery
