from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from attrs import define as _attrs_define

from ..models.api_group_api_version import (
    APIGroupApiVersion,
    check_api_group_api_version,
)
from ..models.api_group_kind import APIGroupKind, check_api_group_kind
from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.group_version_for_discovery import GroupVersionForDiscovery
    from ..models.server_address_by_client_cidr import ServerAddressByClientCIDR


T = TypeVar("T", bound="APIGroup")


@_attrs_define
class APIGroup:
    """An API group and its versions. Groups inside an APIGroupList carry no `kind`/`apiVersion`.

    Example:
        {'kind': 'APIGroup', 'apiVersion': 'v1', 'name': 'metrics.k8s.io', 'versions': [{'groupVersion':
            'metrics.k8s.io/v1beta1', 'version': 'v1beta1'}], 'preferredVersion': {'groupVersion': 'metrics.k8s.io/v1beta1',
            'version': 'v1beta1'}}

    Attributes:
        name (str):
        versions (list[GroupVersionForDiscovery]):
        kind (APIGroupKind | Unset):
        api_version (APIGroupApiVersion | Unset):
        preferred_version (GroupVersionForDiscovery | Unset):  Example: {'groupVersion': 'metrics.k8s.io/v1beta1',
            'version': 'v1beta1'}.
        server_address_by_client_cid_rs (list[ServerAddressByClientCIDR] | Unset):
    """

    name: str
    versions: list[GroupVersionForDiscovery]
    kind: APIGroupKind | Unset = UNSET
    api_version: APIGroupApiVersion | Unset = UNSET
    preferred_version: GroupVersionForDiscovery | Unset = UNSET
    server_address_by_client_cid_rs: list[ServerAddressByClientCIDR] | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        name = self.name

        versions = []
        for versions_item_data in self.versions:
            versions_item = versions_item_data.to_dict()
            versions.append(versions_item)

        kind: str | Unset = UNSET
        if not isinstance(self.kind, Unset):
            kind = self.kind

        api_version: str | Unset = UNSET
        if not isinstance(self.api_version, Unset):
            api_version = self.api_version

        preferred_version: dict[str, Any] | Unset = UNSET
        if not isinstance(self.preferred_version, Unset):
            preferred_version = self.preferred_version.to_dict()

        server_address_by_client_cid_rs: list[dict[str, Any]] | Unset = UNSET
        if not isinstance(self.server_address_by_client_cid_rs, Unset):
            server_address_by_client_cid_rs = []
            for server_address_by_client_cid_rs_item_data in self.server_address_by_client_cid_rs:
                server_address_by_client_cid_rs_item = server_address_by_client_cid_rs_item_data.to_dict()
                server_address_by_client_cid_rs.append(server_address_by_client_cid_rs_item)

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "name": name,
                "versions": versions,
            }
        )
        if kind is not UNSET:
            field_dict["kind"] = kind
        if api_version is not UNSET:
            field_dict["apiVersion"] = api_version
        if preferred_version is not UNSET:
            field_dict["preferredVersion"] = preferred_version
        if server_address_by_client_cid_rs is not UNSET:
            field_dict["serverAddressByClientCIDRs"] = server_address_by_client_cid_rs

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.group_version_for_discovery import GroupVersionForDiscovery  # noqa: PLC0415
        from ..models.server_address_by_client_cidr import ServerAddressByClientCIDR  # noqa: PLC0415

        d = dict(src_dict)
        name = d.pop("name")

        versions = []
        _versions = d.pop("versions")
        for versions_item_data in _versions:
            versions_item = GroupVersionForDiscovery.from_dict(versions_item_data)

            versions.append(versions_item)

        _kind = d.pop("kind", UNSET)
        kind: APIGroupKind | Unset
        if isinstance(_kind, Unset):
            kind = UNSET
        else:
            kind = check_api_group_kind(_kind)

        _api_version = d.pop("apiVersion", UNSET)
        api_version: APIGroupApiVersion | Unset
        if isinstance(_api_version, Unset):
            api_version = UNSET
        else:
            api_version = check_api_group_api_version(_api_version)

        _preferred_version = d.pop("preferredVersion", UNSET)
        preferred_version: GroupVersionForDiscovery | Unset
        if isinstance(_preferred_version, Unset):
            preferred_version = UNSET
        else:
            preferred_version = GroupVersionForDiscovery.from_dict(_preferred_version)

        _server_address_by_client_cid_rs = d.pop("serverAddressByClientCIDRs", UNSET)
        server_address_by_client_cid_rs: list[ServerAddressByClientCIDR] | Unset = UNSET
        if _server_address_by_client_cid_rs is not UNSET:
            server_address_by_client_cid_rs = []
            for server_address_by_client_cid_rs_item_data in _server_address_by_client_cid_rs:
                server_address_by_client_cid_rs_item = ServerAddressByClientCIDR.from_dict(
                    server_address_by_client_cid_rs_item_data
                )

                server_address_by_client_cid_rs.append(server_address_by_client_cid_rs_item)

        api_group = cls(
            name=name,
            versions=versions,
            kind=kind,
            api_version=api_version,
            preferred_version=preferred_version,
            server_address_by_client_cid_rs=server_address_by_client_cid_rs,
        )

        return api_group
