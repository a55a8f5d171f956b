from typing import Literal

ResourceVersionMatch = Literal["", "Exact", "NotOlderThan"]

RESOURCE_VERSION_MATCH_VALUES: set[ResourceVersionMatch] = {
    "",
    "Exact",
    "NotOlderThan",
}


def check_resource_version_match(value: str) -> ResourceVersionMatch:
    if value in RESOURCE_VERSION_MATCH_VALUES:
        return value
    raise TypeError(f"Unexpected value {value!r}. Expected one of {RESOURCE_VERSION_MATCH_VALUES!r}")
