"""Typed client for the Kubernetes Metrics API (metrics.k8s.io/v1beta1).

The typed layer (start here)::

    from k8s_metrics import open_metrics

    with open_metrics() as metrics:
        for node in metrics.nodes():
            print(node.name, node.cpu, node.memory)      # Decimal cores, int bytes

* :func:`open_metrics` / :func:`open_async_metrics` → :class:`Metrics` / :class:`AsyncMetrics`
  (``nodes``, ``node``, ``pods``, ``pod``, ``get_json``, ``wait_until_available``, ``watch_pods``),
  returning :class:`NodeUsage`, :class:`PodUsage` and :class:`ContainerUsage`;
* :func:`open_scale` / :func:`open_async_scale` → :class:`ScaleClient` / :class:`AsyncScaleClient`: read
  and update the ``scale`` of Deployments, StatefulSets and ReplicaSets (:class:`Scale`);
* errors: :class:`MetricsError` and its subclasses, each :class:`ApiError` carrying the ``Status``;
  raised by every request of the client, the generated operations included;
* :mod:`k8s_metrics.models` (the typed API documents) and :mod:`k8s_metrics.api` (every operation of
  the spec), used with :func:`metrics_client`;
* :mod:`k8s_metrics.quantity`, :mod:`k8s_metrics.durations`: Kubernetes quantities and Go durations;
* :mod:`k8s_metrics.selectors`, :mod:`k8s_metrics.gostrings`: label/field selectors and Go's ``%q``
  quoting, with the apiserver's grammar and error texts;
* ``python -m k8s_metrics top nodes|pods``: ``kubectl top`` with the same output.
"""

__version__ = "0.3.0"

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .client import MetricsClient, metrics_client
    from .durations import format_duration, parse_duration
    from .errors import (
        ApiError,
        BadRequest,
        Conflict,
        Forbidden,
        Invalid,
        MetricsError,
        NotFound,
        ResponseError,
        ServiceUnavailable,
        TransportError,
        Unauthorized,
    )
    from .kubeconfig import ClusterConnection, ConfigError, load_default, load_incluster, load_kubeconfig
    from .scale import AsyncScaleClient, Scale, ScaleClient, open_async_scale, open_scale
    from .usage import AsyncMetrics, Metrics, Selector, open_async_metrics, open_metrics
    from .values import ContainerUsage, NodeUsage, PodUsage

# The public names are imported on first use (PEP 562): `import k8s_metrics.kubeconfig`, as the
# metrics server does, then does not load the generated client and attrs (~55 modules, ~1.7 MiB).
_MODULE_OF = {
    **dict.fromkeys(["MetricsClient", "metrics_client"], ".client"),
    **dict.fromkeys(["format_duration", "parse_duration"], ".durations"),
    **dict.fromkeys(
        [
            "ApiError",
            "BadRequest",
            "Conflict",
            "Forbidden",
            "Invalid",
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
    **dict.fromkeys(["AsyncScaleClient", "Scale", "ScaleClient", "open_async_scale", "open_scale"], ".scale"),
    **dict.fromkeys(["AsyncMetrics", "Metrics", "Selector", "open_async_metrics", "open_metrics"], ".usage"),
    **dict.fromkeys(["ContainerUsage", "NodeUsage", "PodUsage"], ".values"),
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
    "AsyncScaleClient",
    "BadRequest",
    "ClusterConnection",
    "ConfigError",
    "Conflict",
    "ContainerUsage",
    "Forbidden",
    "Invalid",
    "Metrics",
    "MetricsClient",
    "MetricsError",
    "NodeUsage",
    "NotFound",
    "PodUsage",
    "ResponseError",
    "Scale",
    "ScaleClient",
    "Selector",
    "ServiceUnavailable",
    "TransportError",
    "Unauthorized",
    "__version__",
    "format_duration",
    "load_default",
    "load_incluster",
    "load_kubeconfig",
    "metrics_client",
    "open_async_metrics",
    "open_async_scale",
    "open_metrics",
    "open_scale",
    "parse_duration",
]
