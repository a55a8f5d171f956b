from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define

from ..types import UNSET, Unset

T = TypeVar("T", bound="ListMeta")


@_attrs_define
class ListMeta:
    """List metadata. metrics-server serves it empty (`{}`): no resourceVersion, no continue.

    Example:
        {}

    Attributes:
        resource_version (str | Unset):
        continue_ (str | Unset):
        remaining_item_count (int | Unset):
        self_link (str | Unset): Deprecated; only pre-1.20 servers set it.
    """

    resource_version: str | Unset = UNSET
    continue_: str | Unset = UNSET
    remaining_item_count: int | Unset = UNSET
    self_link: str | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        resource_version = self.resource_version

        continue_ = self.continue_

        remaining_item_count = self.remaining_item_count

        self_link = self.self_link

        field_dict: dict[str, Any] = {}

        field_dict.update({})
        if resource_version is not UNSET:
            field_dict["resourceVersion"] = resource_version
        if continue_ is not UNSET:
            field_dict["continue"] = continue_
        if remaining_item_count is not UNSET:
            field_dict["remainingItemCount"] = remaining_item_count
        if self_link is not UNSET:
            field_dict["selfLink"] = self_link

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        resource_version = d.pop("resourceVersion", UNSET)

        continue_ = d.pop("continue", UNSET)

        remaining_item_count = d.pop("remainingItemCount", UNSET)

        self_link = d.pop("selfLink", UNSET)

        list_meta = cls(
            resource_version=resource_version,
            continue_=continue_,
            remaining_item_count=remaining_item_count,
            self_link=self_link,
        )

        return list_meta
