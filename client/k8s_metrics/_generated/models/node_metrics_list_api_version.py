from typing import Literal

NodeMetricsListApiVersion = Literal["metrics.k8s.io/v1beta1"]

NODE_METRICS_LIST_API_VERSION_VALUES: set[NodeMetricsListApiVersion] = {
    "metrics.k8s.io/v1beta1",
}


def check_node_metrics_list_api_version(value: str) -> NodeMetricsListApiVersion:
    if value in NODE_METRICS_LIST_API_VERSION_VALUES:
        return value
    raise TypeError(f"Unexpected value {value!r}. Expected one of {NODE_METRICS_LIST_API_VERSION_VALUES!r}")
