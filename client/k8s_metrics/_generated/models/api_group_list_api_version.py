from typing import Literal

APIGroupListApiVersion = Literal["v1"]

API_GROUP_LIST_API_VERSION_VALUES: set[APIGroupListApiVersion] = {
    "v1",
}


def check_api_group_list_api_version(value: str) -> APIGroupListApiVersion:
    if value in API_GROUP_LIST_API_VERSION_VALUES:
        return value
    raise TypeError(f"Unexpected value {value!r}. Expected one of {API_GROUP_LIST_API_VERSION_VALUES!r}")
