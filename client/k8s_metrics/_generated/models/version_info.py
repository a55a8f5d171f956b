from __future__ import annotations

from collections.abc import Mapping
from typing import Any, TypeVar

from attrs import define as _attrs_define
from attrs import field as _attrs_field

from ..types import UNSET, Unset

T = TypeVar("T", bound="VersionInfo")


@_attrs_define
class VersionInfo:
    """Versioning information of the server (`version.Info`).

    Attributes:
        major (str):
        minor (str):
        git_version (str):
        git_commit (str | Unset):
        git_tree_state (str | Unset):
        build_date (str | Unset):
        go_version (str | Unset):
        compiler (str | Unset):
        platform (str | Unset):
    """

    major: str
    minor: str
    git_version: str
    git_commit: str | Unset = UNSET
    git_tree_state: str | Unset = UNSET
    build_date: str | Unset = UNSET
    go_version: str | Unset = UNSET
    compiler: str | Unset = UNSET
    platform: str | Unset = UNSET
    additional_properties: dict[str, Any] = _attrs_field(init=False, factory=dict)

    def to_dict(self) -> dict[str, Any]:
        major = self.major

        minor = self.minor

        git_version = self.git_version

        git_commit = self.git_commit

        git_tree_state = self.git_tree_state

        build_date = self.build_date

        go_version = self.go_version

        compiler = self.compiler

        platform = self.platform

        field_dict: dict[str, Any] = {}
        field_dict.update(self.additional_properties)
        field_dict.update(
            {
                "major": major,
                "minor": minor,
                "gitVersion": git_version,
            }
        )
        if git_commit is not UNSET:
            field_dict["gitCommit"] = git_commit
        if git_tree_state is not UNSET:
            field_dict["gitTreeState"] = git_tree_state
        if build_date is not UNSET:
            field_dict["buildDate"] = build_date
        if go_version is not UNSET:
            field_dict["goVersion"] = go_version
        if compiler is not UNSET:
            field_dict["compiler"] = compiler
        if platform is not UNSET:
            field_dict["platform"] = platform

        return field_dict

    @classmethod
    def from_dict(cls: type[T], src_dict: Mapping[str, Any]) -> T:
        d = dict(src_dict)
        major = d.pop("major")

        minor = d.pop("minor")

        git_version = d.pop("gitVersion")

        git_commit = d.pop("gitCommit", UNSET)

        git_tree_state = d.pop("gitTreeState", UNSET)

        build_date = d.pop("buildDate", UNSET)

        go_version = d.pop("goVersion", UNSET)

        compiler = d.pop("compiler", UNSET)

        platform = d.pop("platform", UNSET)

        version_info = cls(
            major=major,
            minor=minor,
            git_version=git_version,
            git_commit=git_commit,
            git_tree_state=git_tree_state,
            build_date=build_date,
            go_version=go_version,
            compiler=compiler,
            platform=platform,
        )

        version_info.additional_properties = d
        return version_info

    @property
    def additional_keys(self) -> list[str]:
        return list(self.additional_properties.keys())

    def __getitem__(self, key: str) -> Any:
        return self.additional_properties[key]

    def __setitem__(self, key: str, value: Any) -> None:
        self.additional_properties[key] = value

    def __delitem__(self, key: str) -> None:
        del self.additional_properties[key]

    def __contains__(self, key: str) -> bool:
        return key in self.additional_properties
