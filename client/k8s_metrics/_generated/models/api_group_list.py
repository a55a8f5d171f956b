from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from attrs import define as _attrs_define

from ..models.api_group_list_api_version import (
    APIGroupListApiVersion,
    check_api_group_list_api_version,
)
from ..models.api_group_list_kind import APIGroupListKind, check_api_group_list_kind

if TYPE_CHECKING:
    from ..models.api_group import APIGroup


T = TypeVar("T", bound="APIGroupList")


@_attrs_define
class APIGroupList:
    """
    Example:
        {'kind': 'APIGroupList', 'apiVersion': 'v1', 'groups': [{'name': 'metrics.k8s.io', 'versions': [{'groupVersion':
            'metrics.k8s.io/v1beta1', 'version': 'v1beta1'}], 'preferredVersion': {'groupVersion': 'metrics.k8s.io/v1beta1',
            'version': 'v1beta1'}}]}

    Attributes:
        kind (APIGroupListKind):
        api_version (APIGroupListApiVersion):
        groups (list[APIGroup]):
    """

    kind: APIGroupListKind
    api_version: APIGroupListApiVersion
    groups: list[APIGroup]

    def to_dict(self) -> dict[str, Any]:
        kind: str = self.kind

        api_version: str = self.api_version

        groups = []
        for groups_item_data in self.groups:
            groups_item = groups_item_data.to_dict()
            groups.append(groups_item)

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "kind": kind,
                "apiVersion": api_version,
                "groups": groups,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.api_group import APIGroup  # noqa: PLC0415

        d = dict(src_dict)
        kind = check_api_group_list_kind(d.pop("kind"))

        api_version = check_api_group_list_api_version(d.pop("apiVersion"))

        groups = []
        _groups = d.pop("groups")
        for groups_item_data in _groups:
            groups_item = APIGroup.from_dict(groups_item_data)

            groups.append(groups_item)

        api_group_list = cls(
            kind=kind,
            api_version=api_version,
            groups=groups,
        )

        return api_group_list
