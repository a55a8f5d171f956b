from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define

from ..types import UNSET, Unset

T = TypeVar("T", bound="StatusCause")


@_attrs_define
class StatusCause:
    """One cause of a failure.

    Attributes:
        reason (str | Unset):
        message (str | Unset):
        field (str | Unset):
    """

    reason: str | Unset = UNSET
    message: str | Unset = UNSET
    field: str | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        reason = self.reason

        message = self.message

        field = self.field

        field_dict: dict[str, Any] = {}

        field_dict.update({})
        if reason is not UNSET:
            field_dict["reason"] = reason
        if message is not UNSET:
            field_dict["message"] = message
        if field is not UNSET:
            field_dict["field"] = field

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        reason = d.pop("reason", UNSET)

        message = d.pop("message", UNSET)

        field = d.pop("field", UNSET)

        status_cause = cls(
            reason=reason,
            message=message,
            field=field,
        )

        return status_cause
