from typing import Literal

NodeMetricsApiVersion = Literal["metrics.k8s.io/v1beta1"]

NODE_METRICS_API_VERSION_VALUES: set[NodeMetricsApiVersion] = {
    "metrics.k8s.io/v1beta1",
}


def check_node_metrics_api_version(value: str) -> NodeMetricsApiVersion:
    if value in NODE_METRICS_API_VERSION_VALUES:
        return value
    raise TypeError(f"Unexpected value {value!r}. Expected one of {NODE_METRICS_API_VERSION_VALUES!r}")
