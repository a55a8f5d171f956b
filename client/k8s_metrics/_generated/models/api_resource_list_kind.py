from typing import Literal

APIResourceListKind = Literal["APIResourceList"]

API_RESOURCE_LIST_KIND_VALUES: set[APIResourceListKind] = {
    "APIResourceList",
}


def check_api_resource_list_kind(value: str) -> APIResourceListKind:
    if value in API_RESOURCE_LIST_KIND_VALUES:
        return value
    raise TypeError(f"Unexpected value {value!r}. Expected one of {API_RESOURCE_LIST_KIND_VALUES!r}")
