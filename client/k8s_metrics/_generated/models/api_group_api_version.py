from typing import Literal

APIGroupApiVersion = Literal["v1"]

API_GROUP_API_VERSION_VALUES: set[APIGroupApiVersion] = {
    "v1",
}


def check_api_group_api_version(value: str) -> APIGroupApiVersion:
    if value in API_GROUP_API_VERSION_VALUES:
        return value
    raise TypeError(f"Unexpected value {value!r}. Expected one of {API_GROUP_API_VERSION_VALUES!r}")
