from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from attrs import define as _attrs_define

from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.status_cause import StatusCause


T = TypeVar("T", bound="StatusDetails")


@_attrs_define
class StatusDetails:
    """Extra data about a Status. `kind` holds the resource (for example `podmetrics`, `pods`, `node`), not the Kind.

    Attributes:
        name (str | Unset):
        group (str | Unset):
        kind (str | Unset):
        uid (str | Unset):
        causes (list[StatusCause] | Unset):
        retry_after_seconds (int | Unset):
    """

    name: str | Unset = UNSET
    group: str | Unset = UNSET
    kind: str | Unset = UNSET
    uid: str | Unset = UNSET
    causes: list[StatusCause] | Unset = UNSET
    retry_after_seconds: int | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        name = self.name

        group = self.group

        kind = self.kind

        uid = self.uid

        causes: list[dict[str, Any]] | Unset = UNSET
        if not isinstance(self.causes, Unset):
            causes = []
            for causes_item_data in self.causes:
                causes_item = causes_item_data.to_dict()
                causes.append(causes_item)

        retry_after_seconds = self.retry_after_seconds

        field_dict: dict[str, Any] = {}

        field_dict.update({})
        if name is not UNSET:
            field_dict["name"] = name
        if group is not UNSET:
            field_dict["group"] = group
        if kind is not UNSET:
            field_dict["kind"] = kind
        if uid is not UNSET:
            field_dict["uid"] = uid
        if causes is not UNSET:
            field_dict["causes"] = causes
        if retry_after_seconds is not UNSET:
            field_dict["retryAfterSeconds"] = retry_after_seconds

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.status_cause import StatusCause  # noqa: PLC0415

        d = dict(src_dict)
        name = d.pop("name", UNSET)

        group = d.pop("group", UNSET)

        kind = d.pop("kind", UNSET)

        uid = d.pop("uid", UNSET)

        _causes = d.pop("causes", UNSET)
        causes: list[StatusCause] | Unset = UNSET
        if _causes is not UNSET:
            causes = []
            for causes_item_data in _causes:
                causes_item = StatusCause.from_dict(causes_item_data)

                causes.append(causes_item)

        retry_after_seconds = d.pop("retryAfterSeconds", UNSET)

        status_details = cls(
            name=name,
            group=group,
            kind=kind,
            uid=uid,
            causes=causes,
            retry_after_seconds=retry_after_seconds,
        )

        return status_details
