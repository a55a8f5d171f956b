from typing import Literal

APIGroupListKind = Literal["APIGroupList"]

API_GROUP_LIST_KIND_VALUES: set[APIGroupListKind] = {
    "APIGroupList",
}


def check_api_group_list_kind(value: str) -> APIGroupListKind:
    if value in API_GROUP_LIST_KIND_VALUES:
        return value
    raise TypeError(f"Unexpected value {value!r}. Expected one of {API_GROUP_LIST_KIND_VALUES!r}")
