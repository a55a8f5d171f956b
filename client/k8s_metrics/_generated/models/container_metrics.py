from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from attrs import define as _attrs_define

if TYPE_CHECKING:
    from ..models.resource_list import ResourceList


T = TypeVar("T", bound="ContainerMetrics")


@_attrs_define
class ContainerMetrics:
    """The usage of one container.

    Example:
        {'name': 'coredns', 'usage': {'cpu': '2460574n', 'memory': '12240Ki'}}

    Attributes:
        name (str):
        usage (ResourceList): Usage per resource name. metrics-server serves exactly the keys `cpu` and `memory`.
            Example: {'cpu': '168064370n', 'memory': '1948212Ki'}.
    """

    name: str
    usage: ResourceList

    def to_dict(self) -> dict[str, Any]:
        name = self.name

        usage = self.usage.to_dict()

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "name": name,
                "usage": usage,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        from ..models.resource_list import ResourceList  # noqa: PLC0415

        d = dict(src_dict)
        name = d.pop("name")

        usage = ResourceList.from_dict(d.pop("usage"))

        container_metrics = cls(
            name=name,
            usage=usage,
        )

        return container_metrics
