from typing import Literal

PodMetricsListApiVersion = Literal["metrics.k8s.io/v1beta1"]

POD_METRICS_LIST_API_VERSION_VALUES: set[PodMetricsListApiVersion] = {
    "metrics.k8s.io/v1beta1",
}


def check_pod_metrics_list_api_version(value: str) -> PodMetricsListApiVersion:
    if value in POD_METRICS_LIST_API_VERSION_VALUES:
        return value
    raise TypeError(f"Unexpected value {value!r}. Expected one of {POD_METRICS_LIST_API_VERSION_VALUES!r}")
