"""Typed client for the Kubernetes Metrics API (metrics.k8s.io/v1beta1).

The typed layer (start here)::

    from k8s_metrics import open_metrics

    with open_metrics() as metrics:
        for node in metrics.nodes():
            print(node.name, node.cpu, node.memory)      # Decimal cores, int bytes

* :func:`open_metrics` / :func:`open_async_metrics` → :class:`Metrics` / :class:`AsyncMetrics`
  (``nodes``, ``node``, ``pods``, ``pod``, ``get_json``), returning :class:`NodeUsage`, :class:`PodUsage`
  and :class:`ContainerUsage`;
* errors: :class:`MetricsError` and its subclasses, each :class:`ApiError` carrying the ``Status``;
* :func:`metrics_client`: the generated operations' client, for everything else;
* ``python -m k8s_metrics top nodes|pods``: ``kubectl top`` with the same output.
"""

__version__ = "0.1.0"

from .client import MetricsClient, metrics_client  # after __version__: client.py reads it
from .errors import (
    ApiError,
    BadRequest,
    Forbidden,
    MetricsError,
    NotFound,
    ResponseError,
    ServiceUnavailable,
    TransportError,
    Unauthorized,
)
from .kubeconfig import ClusterConnection, ConfigError, load_default, load_incluster, load_kubeconfig
from .usage import (
    AsyncMetrics,
    ContainerUsage,
    Metrics,
    NodeUsage,
    PodUsage,
    Selector,
    open_async_metrics,
    open_metrics,
    parse_duration,
)

__all__ = [
    "ApiError",
    "AsyncMetrics",
    "BadRequest",
    "ClusterConnection",
    "ConfigError",
    "ContainerUsage",
    "Forbidden",
    "Metrics",
    "MetricsClient",
    "MetricsError",
    "NodeUsage",
    "NotFound",
    "PodUsage",
    "ResponseError",
    "Selector",
    "ServiceUnavailable",
    "TransportError",
    "Unauthorized",
    "__version__",
    "load_default",
    "load_incluster",
    "load_kubeconfig",
    "metrics_client",
    "open_async_metrics",
    "open_metrics",
    "parse_duration",
]
