"""The Metrics API's operations (see :mod:`k8s_metrics.api`)."""

from .._generated.api.metrics import (
    list_namespaced_pod_metrics,
    list_node_metrics,
    list_pod_metrics_for_all_namespaces,
    read_namespaced_pod_metrics,
    read_node_metrics,
)

__all__ = [
    "list_namespaced_pod_metrics",
    "list_node_metrics",
    "list_pod_metrics_for_all_namespaces",
    "read_namespaced_pod_metrics",
    "read_node_metrics",
]
