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

__version__ = "0.2.0"

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .client import MetricsClient, metrics_client
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

# The public names are imported on first use (PEP 562): `import k8s_metrics.kubeconfig`, as the
# metrics server does, then does not load the generated client and attrs (~55 modules, ~1.7 MiB).
_MODULE_OF = {
    **dict.fromkeys(["MetricsClient", "metrics_client"], ".client"),
    **dict.fromkeys(
        [
            "ApiError",
            "BadRequest",
            "Forbidden",
            "MetricsError",
            "NotFound",
            "ResponseError",
            "ServiceUnavailable",
            "TransportError",
            "Unauthorized",
        ],
        ".errors",
    ),
    **dict.fromkeys(
        ["ClusterConnection", "ConfigError", "load_default", "load_incluster", "load_kubeconfig"],
        ".kubeconfig",
    ),
    **dict.fromkeys(
        [
            "AsyncMetrics",
            "ContainerUsage",
            "Metrics",
            "NodeUsage",
            "PodUsage",
            "Selector",
            "open_async_metrics",
            "open_metrics",
            "parse_duration",
        ],
        ".usage",
    ),
}


def __getattr__(name: str) -> object:
    module = _MODULE_OF.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib import import_module

    value = getattr(import_module(module, __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_MODULE_OF])


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
