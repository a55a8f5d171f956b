from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar, cast

from attrs import define as _attrs_define

from ..types import UNSET, Unset

T = TypeVar("T", bound="APIResource")


@_attrs_define
class APIResource:
    """
    Example:
        {'name': 'pods', 'singularName': '', 'namespaced': True, 'kind': 'PodMetrics', 'verbs': ['get', 'list']}

    Attributes:
        name (str):
        singular_name (str): Empty for the metrics resources, so kubectl derives it from the kind.
        namespaced (bool):
        kind (str):
        verbs (list[str]):
        group (str | Unset):
        version (str | Unset):
        short_names (list[str] | Unset):
        categories (list[str] | Unset):
        storage_version_hash (str | Unset):
    """

    name: str
    singular_name: str
    namespaced: bool
    kind: str
    verbs: list[str]
    group: str | Unset = UNSET
    version: str | Unset = UNSET
    short_names: list[str] | Unset = UNSET
    categories: list[str] | Unset = UNSET
    storage_version_hash: str | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        name = self.name

        singular_name = self.singular_name

        namespaced = self.namespaced

        kind = self.kind

        verbs = self.verbs

        group = self.group

        version = self.version

        short_names: list[str] | Unset = UNSET
        if not isinstance(self.short_names, Unset):
            short_names = self.short_names

        categories: list[str] | Unset = UNSET
        if not isinstance(self.categories, Unset):
            categories = self.categories

        storage_version_hash = self.storage_version_hash

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "name": name,
                "singularName": singular_name,
                "namespaced": namespaced,
                "kind": kind,
                "verbs": verbs,
            }
        )
        if group is not UNSET:
            field_dict["group"] = group
        if version is not UNSET:
            field_dict["version"] = version
        if short_names is not UNSET:
            field_dict["shortNames"] = short_names
        if categories is not UNSET:
            field_dict["categories"] = categories
        if storage_version_hash is not UNSET:
            field_dict["storageVersionHash"] = storage_version_hash

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        name = d.pop("name")

        singular_name = d.pop("singularName")

        namespaced = d.pop("namespaced")

        kind = d.pop("kind")

        verbs = cast(list[str], d.pop("verbs"))

        group = d.pop("group", UNSET)

        version = d.pop("version", UNSET)

        short_names = cast(list[str], d.pop("shortNames", UNSET))

        categories = cast(list[str], d.pop("categories", UNSET))

        storage_version_hash = d.pop("storageVersionHash", UNSET)

        api_resource = cls(
            name=name,
            singular_name=singular_name,
            namespaced=namespaced,
            kind=kind,
            verbs=verbs,
            group=group,
            version=version,
            short_names=short_names,
            categories=categories,
            storage_version_hash=storage_version_hash,
        )

        return api_resource
