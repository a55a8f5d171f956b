from typing import Literal

PodMetricsKind = Literal["PodMetrics"]

POD_METRICS_KIND_VALUES: set[PodMetricsKind] = {
    "PodMetrics",
}


def check_pod_metrics_kind(value: str) -> PodMetricsKind:
    if value in POD_METRICS_KIND_VALUES:
        return value
    raise TypeError(f"Unexpected value {value!r}. Expected one of {POD_METRICS_KIND_VALUES!r}")
