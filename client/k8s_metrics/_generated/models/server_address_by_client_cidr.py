from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define

T = TypeVar("T", bound="ServerAddressByClientCIDR")


@_attrs_define
class ServerAddressByClientCIDR:
    """
    Example:
        {'clientCIDR': '0.0.0.0/0', 'serverAddress': '10.96.0.1:443'}

    Attributes:
        client_cidr (str):
        server_address (str):
    """

    client_cidr: str
    server_address: str

    def to_dict(self) -> dict[str, Any]:
        client_cidr = self.client_cidr

        server_address = self.server_address

        field_dict: dict[str, Any] = {}

        field_dict.update(
            {
                "clientCIDR": client_cidr,
                "serverAddress": server_address,
            }
        )

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        client_cidr = d.pop("clientCIDR")

        server_address = d.pop("serverAddress")

        server_address_by_client_cidr = cls(
            client_cidr=client_cidr,
            server_address=server_address,
        )

        return server_address_by_client_cidr
