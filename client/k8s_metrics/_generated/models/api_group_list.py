from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from attrs import define as _attrs_define

from ..models.api_group_list_api_version import (
    APIGroupListApiVersion,
    check_api_group_list_api_version,
)
from ..models.api_group_list_kind import APIGroupListKind, check_api_group_list_kind
from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.api_group import APIGroup


T = TypeVar("T", bound="APIGroupList")


@_attrs_define
class APIGroupList:
    """The groups this server serves. As the apiserver library writes it, the list has no `apiVersion` and each group names
    this server's port in `serverAddressByClientCIDRs`.

        Example:
            {'kind': 'APIGroupList', 'groups': [{'name': 'metrics.k8s.io', 'versions': [{'groupVersion':
                'metrics.k8s.io/v1beta1', 'version': 'v1beta1'}], 'preferredVersion': {'groupVersion': 'metrics.k8s.io/v1beta1',
                'version': 'v1beta1'}, 'serverAddressByClientCIDRs': [{'clientCIDR': '0.0.0.0/0', 'serverAddress': ':10250'}]}]}

        Attributes:
            kind (APIGroupListKind):
            groups (list[APIGroup]):
            api_version (APIGroupListApiVersion | Unset):
    """

    kind: APIGroupListKind
    groups: list[APIGroup]
    api_version: APIGroupListApiVersion | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        kind: str = self.kind

        groups = []
        for groups_item_data in self.groups:
            groups_item = groups_item_data.to_dict()
            groups.append(groups_item)

        api_version: str | Unset = UNSET
        if not isinstance(self.api_version, Unset):
            api_version = self.api_version

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "kind": kind,
                "groups": groups,
            }
        )
        if api_version is not UNSET:
            field_dict["apiVersion"] = api_version

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.api_group import APIGroup  # noqa: PLC0415

        d = dict(src_dict)
        kind = check_api_group_list_kind(d.pop("kind"))

        groups = []
        _groups = d.pop("groups")
        for groups_item_data in _groups:
            groups_item = APIGroup.from_dict(groups_item_data)

            groups.append(groups_item)

        _api_version = d.pop("apiVersion", UNSET)
        api_version: APIGroupListApiVersion | Unset
        if isinstance(_api_version, Unset):
            api_version = UNSET
        else:
            api_version = check_api_group_list_api_version(_api_version)

        api_group_list = cls(
            kind=kind,
            groups=groups,
            api_version=api_version,
        )

        return api_group_list
