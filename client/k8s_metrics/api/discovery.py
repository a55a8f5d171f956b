"""The discovery operations of the Metrics API (see :mod:`k8s_metrics.api`)."""

from .._generated.api.discovery import get_api_groups, get_metrics_api_group, get_metrics_api_resources

__all__ = ["get_api_groups", "get_metrics_api_group", "get_metrics_api_resources"]
