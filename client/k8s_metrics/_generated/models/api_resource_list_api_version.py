from typing import Literal

APIResourceListApiVersion = Literal["v1"]

API_RESOURCE_LIST_API_VERSION_VALUES: set[APIResourceListApiVersion] = {
    "v1",
}


def check_api_resource_list_api_version(value: str) -> APIResourceListApiVersion:
    if value in API_RESOURCE_LIST_API_VERSION_VALUES:
        return value
    raise TypeError(f"Unexpected value {value!r}. Expected one of {API_RESOURCE_LIST_API_VERSION_VALUES!r}")
