from typing import Literal

APIGroupKind = Literal["APIGroup"]

API_GROUP_KIND_VALUES: set[APIGroupKind] = {
    "APIGroup",
}


def check_api_group_kind(value: str) -> APIGroupKind:
    if value in API_GROUP_KIND_VALUES:
        return value
    raise TypeError(f"Unexpected value {value!r}. Expected one of {API_GROUP_KIND_VALUES!r}")
