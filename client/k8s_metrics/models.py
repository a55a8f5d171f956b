"""The typed documents of the Metrics API, as generated from the OpenAPI spec (``openapi/``).

These are the public names of the generated attrs models: the resources (``NodeMetrics``,
``PodMetrics`` and their lists, ``ContainerMetrics``), the metadata (``ObjectMeta``, ``ListMeta``),
discovery (``APIGroup``, ``APIResourceList`` ...) and ``Status``. Each has ``from_dict``/``to_dict``;
an optional field that was absent reads as :data:`UNSET` (test with ``isinstance(x, Unset)``). They are
what the operations of :mod:`k8s_metrics.api` return::

    from k8s_metrics import metrics_client
    from k8s_metrics.api.metrics import list_node_metrics
    from k8s_metrics.models import NodeMetricsList

    with metrics_client() as client:
        nodes: NodeMetricsList = list_node_metrics.sync(client=client)

Their module path inside the package (``k8s_metrics._generated``) is an implementation detail that
``./codegen.sh`` rewrites; import them from here. For usage as numbers, see :mod:`k8s_metrics.values`.
"""

from ._generated.models import *  # noqa: F403 - every generated model, by the generated __all__
from ._generated.models import __all__ as _GENERATED
from ._generated.types import UNSET, Unset

__all__ = [*_GENERATED, "UNSET", "Unset"]
