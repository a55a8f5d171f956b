"""Every operation of the Metrics API spec, as generated from ``openapi/``: one module per operation, each
with ``sync``, ``sync_detailed``, ``asyncio`` and ``asyncio_detailed``, taking the client of
:func:`k8s_metrics.metrics_client`.

* :mod:`k8s_metrics.api.metrics`: ``list_node_metrics``, ``read_node_metrics``,
  ``list_pod_metrics_for_all_namespaces``, ``list_namespaced_pod_metrics``, ``read_namespaced_pod_metrics``;
* :mod:`k8s_metrics.api.discovery`: ``get_api_groups``, ``get_metrics_api_group``,
  ``get_metrics_api_resources``.

``sync``/``asyncio`` return the document (:mod:`k8s_metrics.models`); with that client an error answer
raises the :mod:`k8s_metrics.errors` hierarchy. The ``*_detailed`` forms return a :class:`Response`:
the status code, headers and body too. The generated code's own location (``k8s_metrics._generated``)
is rewritten by ``./codegen.sh``; import the operations from here.
"""

from .._generated.types import Response
from . import discovery, metrics

__all__ = ["Response", "discovery", "metrics"]
