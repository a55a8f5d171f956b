from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from attrs import define as _attrs_define

from ..models.status_api_version import StatusApiVersion, check_status_api_version
from ..models.status_kind import StatusKind, check_status_kind
from ..models.status_status import StatusStatus, check_status_status
from ..types import UNSET, Unset

if TYPE_CHECKING:
    from ..models.list_meta import ListMeta
    from ..models.status_details import StatusDetails


T = TypeVar("T", bound="Status")


@_attrs_define
class Status:
    """The result of a failed request (meta/v1 Status). `reason` is a machine-readable StatusReason such as BadRequest,
    Unauthorized, Forbidden, NotFound, MethodNotAllowed, NotAcceptable, Invalid, TooManyRequests, InternalError,
    ServiceUnavailable, Timeout; `code` repeats the HTTP status.

        Example:
            {'kind': 'Status', 'apiVersion': 'v1', 'metadata': {}, 'status': 'Failure', 'message':
                'podmetrics.metrics.k8s.io "default/nginx" not found', 'reason': 'NotFound', 'details': {'name':
                'default/nginx', 'group': 'metrics.k8s.io', 'kind': 'podmetrics'}, 'code': 404}

        Attributes:
            kind (StatusKind):
            api_version (StatusApiVersion):
            metadata (ListMeta): List metadata. metrics-server serves it empty (`{}`): no resourceVersion, no continue.
                Example: {}.
            status (StatusStatus):
            code (int):
            message (str | Unset):
            reason (str | Unset):
            details (StatusDetails | Unset): Extra data about a Status. `kind` holds the resource (for example `podmetrics`,
                `pods`, `node`), not the Kind.
    """

    kind: StatusKind
    api_version: StatusApiVersion
    metadata: ListMeta
    status: StatusStatus
    code: int
    message: str | Unset = UNSET
    reason: str | Unset = UNSET
    details: StatusDetails | Unset = UNSET

    def to_dict(self) -> dict[str, Any]:
        kind: str = self.kind

        api_version: str = self.api_version

        metadata = self.metadata.to_dict()

        status: str = self.status

        code = self.code

        message = self.message

        reason = self.reason

        details: dict[str, Any] | Unset = UNSET
        if not isinstance(self.details, Unset):
            details = self.details.to_dict()

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "kind": kind,
                "apiVersion": api_version,
                "metadata": metadata,
                "status": status,
                "code": code,
            }
        )
        if message is not UNSET:
            field_dict["message"] = message
        if reason is not UNSET:
            field_dict["reason"] = reason
        if details is not UNSET:
            field_dict["details"] = details

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.list_meta import ListMeta  # noqa: PLC0415
        from ..models.status_details import StatusDetails  # noqa: PLC0415

        d = dict(src_dict)
        kind = check_status_kind(d.pop("kind"))

        api_version = check_status_api_version(d.pop("apiVersion"))

        metadata = ListMeta.from_dict(d.pop("metadata"))

        status = check_status_status(d.pop("status"))

        code = d.pop("code")

        message = d.pop("message", UNSET)

        reason = d.pop("reason", UNSET)

        _details = d.pop("details", UNSET)
        details: StatusDetails | Unset
        if isinstance(_details, Unset):
            details = UNSET
        else:
            details = StatusDetails.from_dict(_details)

        status = cls(
            kind=kind,
            api_version=api_version,
            metadata=metadata,
            status=status,
            code=code,
            message=message,
            reason=reason,
            details=details,
        )

        return status
