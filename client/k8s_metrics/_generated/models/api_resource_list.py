from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from attrs import define as _attrs_define

from ..models.api_resource_list_api_version import (
    APIResourceListApiVersion,
    check_api_resource_list_api_version,
)
from ..models.api_resource_list_kind import (
    APIResourceListKind,
    check_api_resource_list_kind,
)

if TYPE_CHECKING:
    from ..models.api_resource import APIResource


T = TypeVar("T", bound="APIResourceList")


@_attrs_define
class APIResourceList:
    """
    Example:
        {'kind': 'APIResourceList', 'apiVersion': 'v1', 'groupVersion': 'metrics.k8s.io/v1beta1', 'resources': [{'name':
            'nodes', 'singularName': '', 'namespaced': False, 'kind': 'NodeMetrics', 'verbs': ['get', 'list']}, {'name':
            'pods', 'singularName': '', 'namespaced': True, 'kind': 'PodMetrics', 'verbs': ['get', 'list']}]}

    Attributes:
        kind (APIResourceListKind):
        api_version (APIResourceListApiVersion):
        group_version (str):
        resources (list[APIResource]):
    """

    kind: APIResourceListKind
    api_version: APIResourceListApiVersion
    group_version: str
    resources: list[APIResource]

    def to_dict(self) -> dict[str, Any]:
        kind: str = self.kind

        api_version: str = self.api_version

        group_version = self.group_version

        resources = []
        for resources_item_data in self.resources:
            resources_item = resources_item_data.to_dict()
            resources.append(resources_item)

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "kind": kind,
                "apiVersion": api_version,
                "groupVersion": group_version,
                "resources": resources,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.api_resource import APIResource  # noqa: PLC0415

        d = dict(src_dict)
        kind = check_api_resource_list_kind(d.pop("kind"))

        api_version = check_api_resource_list_api_version(d.pop("apiVersion"))

        group_version = d.pop("groupVersion")

        resources = []
        _resources = d.pop("resources")
        for resources_item_data in _resources:
            resources_item = APIResource.from_dict(resources_item_data)

            resources.append(resources_item)

        api_resource_list = cls(
            kind=kind,
            api_version=api_version,
            group_version=group_version,
            resources=resources,
        )

        return api_resource_list
