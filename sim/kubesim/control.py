"""The simulator's control endpoint, `/sim/...` on the apiserver: tests and scripts change the
cluster over HTTP (faults, readiness, kubelet formats, pod phases, restarts, deletions, watch
history, the APIService's backend) through the model's methods.
"""

from __future__ import annotations

from collections.abc import Callable

from .aggregator import Aggregator
from .errors import ConfigError, NotFoundError
from .httpserver import Request, Response
from .model import ClusterModel
from .responses import NO_METHOD, TRUE_VALUES, json_response, status
from .store import Store


def control_handler(
    model: ClusterModel, aggregator: Aggregator, store: Store
) -> Callable[[Request], Response]:
    """The `/sim/...` control endpoint (POST only; authorized like any non-resource path).

    POST /sim/nodes/<node>/fault?mode=hang|refuse|error|scrape_error|ok
    POST /sim/nodes/<node>/ready?ready=true|false
    POST /sim/nodes/<node>/format?format=stable|1.28|1.21
    POST /sim/pods/<ns>/<pod>/phase?phase=Pending|Running|Succeeded|Failed
    POST /sim/pods/<ns>/<pod>/containers/<container>/restart
    POST /sim/pods/<ns>/<pod>/delete
    POST /sim/compact                      (forget watch history: older resourceVersions get 410)
    POST /sim/apiservice?url=<metrics server URL, empty for none>
    """

    def handle(request: Request) -> Response:
        if request.method != "POST":
            return status(405, NO_METHOD, details={})
        parts = request.path.strip("/").split("/")[1:]
        try:
            match parts:
                case ["nodes", node, "fault"]:
                    model.set_fault(node, request.param("mode"))
                case ["nodes", node, "ready"]:
                    model.set_node_ready(node, request.param("ready").lower() in TRUE_VALUES)
                case ["nodes", node, "format"]:
                    model.set_kubelet_format(node, request.param("format"))
                case ["pods", ns, pod, "phase"]:
                    model.set_pod_phase(ns, pod, request.param("phase"))
                case ["pods", ns, pod, "containers", container, "restart"]:
                    model.restart_container(ns, pod, container)
                case ["pods", ns, pod, "delete"]:
                    model.delete_pod(ns, pod)
                case ["compact"]:
                    store.compact()
                case ["apiservice"]:
                    aggregator.set_backend(request.param("url") or None)
                case _:
                    return status(404, "the server could not find the requested resource", details={})
        except NotFoundError as exc:
            return status(404, str(exc))
        except ConfigError as exc:
            return status(400, str(exc))
        return json_response(
            {"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Success", "code": 200}
        )

    return handle
