"""``python -m k8s_metrics top nodes|pods``: ``kubectl top`` with the same flags, output and errors.

The tables follow kubectl's ``metricsutil.TopCmdPrinter`` (checked line for line against kubectl 1.27 to
1.33): CPU as rounded-up millicores (``138m``), memory as whole MiB rounded down (``1575Mi``), node
percentages ``trunc(usage / allocatable × 100)`` computed in float64 like Go, ``<unknown>`` rows for nodes
without metrics, a ``________`` row and totals for ``--sum``, aligned like Go's tabwriter. Headers are
those of kubectl 1.32+ (``CPU(%)``, ``MEMORY(%)``); ``--legacy-headers`` prints 1.27–1.31's
(``CPU%``, ``MEMORY%``).

Differences from kubectl, by design: label selectors are checked by the server, not parsed locally (a
bad one gives the server's ``BadRequest``); when several nodes lack metrics, their ``<unknown>`` rows follow
the node list's order (kubectl's order is random); ``--sort-by`` ties keep the server's order (kubectl's
sort is only stable for up to 12 rows).
"""

from __future__ import annotations

import argparse
import datetime
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from decimal import Decimal
from typing import Any, Final, TextIO
from urllib.parse import quote

from .durations import format_duration
from .errors import ApiError, MetricsError, TransportError, generic_reason_message
from .kubeconfig import ConfigError
from .quantity import cpu_millicores, parse_quantity
from .tabwriter import tabwrite
from .usage import Metrics, NodeUsage, PodUsage, open_metrics

__all__ = ["TopError", "main", "render_nodes", "render_pods"]

_MI: Final = 1024 * 1024
_UNKNOWN: Final = "<unknown>"
_SUM_RULE: Final = "________"
_METRICS_CREATION_DELAY: Final = datetime.timedelta(minutes=2)
_SORT_KEYS: Final = ("cpu", "memory")
_RESOURCES: Final = ("cpu", "memory")
_MAX_GO_DURATION: Final = "2562047h47m16.854775807s"


class TopError(Exception):
    """A failure kubectl reports as ``error: <message>`` (exit status 1)."""


# --------------------------------------------------------------------------------------------------
# Rendering (pure)
# --------------------------------------------------------------------------------------------------


def _cpu_cell(millicores: int) -> str:
    return f"{millicores}m"


def _memory_cell(nbytes: int) -> str:
    return f"{nbytes // _MI}Mi"


def _percent(usage_milli: int, available: Decimal) -> str:
    # Go: float64(q.MilliValue()) / float64(available.MilliValue()) * 100, truncated to int64.
    available_milli = cpu_millicores(available)
    fraction = 0.0 if available == 0 else float(usage_milli) / float(available_milli) * 100
    return f"{int(fraction)}%"


def render_nodes(
    nodes: Sequence[NodeUsage[Any]],
    available: Mapping[str, Mapping[str, Decimal]],
    *,
    sort_by: str = "",
    no_headers: bool = False,
    legacy_headers: bool = False,
) -> str:
    """The text of ``kubectl top node`` for ``nodes`` (metrics) and ``available`` (node name → resource →
    allocatable or capacity, in the node list's order). A metrics item without an ``available`` entry has
    no % cells; a node in ``available`` without metrics gets an ``<unknown>`` row at the end. Empty
    ``nodes`` give ``""``."""
    if not nodes:
        return ""
    pct = ("CPU%", "MEMORY%") if legacy_headers else ("CPU(%)", "MEMORY(%)")
    text: list[str] = []
    if not no_headers:
        text.append(_row(["NAME", "CPU(cores)", pct[0], "MEMORY(bytes)", pct[1]]))
    remaining = dict(available)
    for node in _sorted_nodes(nodes, sort_by):
        cells = [node.name]
        node_available = remaining.pop(node.name, None) or {}
        for resource, value, usage_milli in (
            ("cpu", _cpu_cell(node.cpu_millicores), node.cpu_millicores),
            ("memory", _memory_cell(node.memory), node.memory * 1000),
        ):
            cells.append(value)
            if resource in node_available:
                cells.append(_percent(usage_milli, node_available[resource]))
        text.append(_row(cells))
    for name in remaining:
        text.append(_row([name, _UNKNOWN, _UNKNOWN, _UNKNOWN, _UNKNOWN]))
    return tabwrite("".join(text))


def render_pods(
    pods: Sequence[PodUsage[Any]],
    *,
    containers: bool = False,
    all_namespaces: bool = False,
    sort_by: str = "",
    no_headers: bool = False,
    show_sum: bool = False,
) -> str:
    """The text of ``kubectl top pod`` for ``pods``. Empty ``pods`` give ``""``."""
    if not pods:
        return ""
    text: list[str] = []
    column_count = 3
    if not no_headers:
        header = []
        # kubectl widens the --sum row only when it prints headers; with --no-headers it is misaligned.
        if all_namespaces:
            header.append("NAMESPACE")
            column_count += 1
        if containers:
            header.append("POD")
            column_count += 1
        text.append(_row([*header, "NAME", "CPU(cores)", "MEMORY(bytes)"]))
    for pod in _sorted_pods(pods, sort_by, all_namespaces):
        prefix = [pod.namespace] if all_namespaces else []
        if containers:
            for c in _sorted_by(pod.containers, sort_by, lambda c: c.name):
                text.append(
                    _row([*prefix, pod.name, c.name, _cpu_cell(c.cpu_millicores), _memory_cell(c.memory)])
                )
        else:
            text.append(_row([*prefix, pod.name, _cpu_cell(pod.cpu_millicores), _memory_cell(pod.memory)]))
    if show_sum:
        total_nanocores = sum(p.cpu_nanocores for p in pods)
        total_memory = sum(p.memory for p in pods)
        total_milli = cpu_millicores(Decimal(total_nanocores).scaleb(-9))
        text.append(_row([""] * (column_count - 2) + [_SUM_RULE, _SUM_RULE]))
        text.append(
            _row([""] * (column_count - 3) + ["", _cpu_cell(total_milli), _memory_cell(total_memory)])
        )
    return tabwrite("".join(text))


def _row(cells: Iterable[str]) -> str:
    return "".join(f"{cell}\t" for cell in cells) + "\n"


def _sorted_nodes(nodes: Sequence[NodeUsage[Any]], sort_by: str) -> list[NodeUsage[Any]]:
    return _sorted_by(nodes, sort_by, lambda n: n.name)


def _sorted_pods(pods: Sequence[PodUsage[Any]], sort_by: str, all_namespaces: bool) -> list[PodUsage[Any]]:
    if sort_by:
        return _sorted_by(pods, sort_by, lambda p: p.name)
    if all_namespaces:
        return sorted(pods, key=lambda p: (p.namespace, p.name))
    return sorted(pods, key=lambda p: p.name)


def _sorted_by(items: Iterable[Any], sort_by: str, name: Callable[[Any], str]) -> list[Any]:
    """kubectl's sorters: descending millicores or bytes, else ascending name (Python's sort is stable)."""
    if sort_by == "cpu":
        return sorted(items, key=lambda i: -i.cpu_millicores)
    if sort_by == "memory":
        return sorted(items, key=lambda i: -i.memory)
    return sorted(items, key=name)


# --------------------------------------------------------------------------------------------------
# Fetching (what kubectl asks the server, in the same order)
# --------------------------------------------------------------------------------------------------


_AGGREGATED_DISCOVERY = (
    "application/json;g=apidiscovery.k8s.io;v=v2;as=APIGroupDiscoveryList,application/json"
)


def _require_metrics_api(metrics: Metrics[Any]) -> None:
    """kubectl's check: `/apis` (aggregated discovery first, where kube-aggregator publishes an
    unavailable APIService as `Stale`, which kubectl ignores), then the legacy group list."""
    try:
        groups = metrics.get_json("/apis", headers={"Accept": _AGGREGATED_DISCOVERY})
    except ApiError as exc:
        raise _discovery_error(exc) from exc
    if isinstance(groups, dict) and groups.get("kind") == "APIGroupDiscoveryList":
        for item in groups.get("items") or []:
            if (item.get("metadata") or {}).get("name") != "metrics.k8s.io":
                continue
            for version in item.get("versions") or []:
                if version.get("version") == "v1beta1" and version.get("freshness") != "Stale":
                    return
        raise TopError("Metrics API not available")
    for group in groups.get("groups", []) if isinstance(groups, dict) else []:
        if group.get("name") == "metrics.k8s.io" and any(
            v.get("version") == "v1beta1" for v in group.get("versions", [])
        ):
            return
    raise TopError("Metrics API not available")


def _discovery_error(exc: ApiError) -> ApiError:
    """kubectl reports a failed discovery request by its status code alone, never with the body: client-go's
    generic reason and message, ``unknown`` standing in for the body text."""
    reason, message = generic_reason_message(exc.code, "unknown")
    error = type(exc)(exc.status, message)
    error.reason = reason
    return error


def _available(nodes: Iterable[Mapping[str, Any]], key: str) -> dict[str, dict[str, Decimal]]:
    result: dict[str, dict[str, Decimal]] = {}
    for node in nodes:
        values = node.get("status", {}).get(key, {}) or {}
        result[node["metadata"]["name"]] = {r: parse_quantity(values[r]) for r in _RESOURCES if r in values}
    return result


def top_nodes(metrics: Metrics[Any], args: argparse.Namespace) -> str:
    """Fetch and render ``top node``; raises ``TopError`` or ``MetricsError``."""
    _validate_sort(args.sort_by)
    if args.name and args.selector:
        raise TopError("only one of NAME or --selector can be provided")
    _require_metrics_api(metrics)
    nodes = [metrics.node(args.name)] if args.name else metrics.nodes(label_selector=args.selector)
    if not nodes:
        raise TopError("metrics not available yet")
    if args.name:
        objects = [metrics.get_json(f"/api/v1/nodes/{quote(args.name, safe='')}")]
    else:
        params = {"labelSelector": args.selector} if args.selector else None
        objects = metrics.get_json("/api/v1/nodes", params)["items"]
    available = _available(objects, "capacity" if args.show_capacity else "allocatable")
    return render_nodes(
        nodes, available, sort_by=args.sort_by, no_headers=args.no_headers, legacy_headers=args.legacy_headers
    )


def top_pods(metrics: Metrics[Any], args: argparse.Namespace, err: TextIO) -> str:
    """Fetch and render ``top pod``; raises ``TopError`` or ``MetricsError``."""
    _validate_sort(args.sort_by)
    if args.name and (args.selector or args.field_selector):
        raise TopError("only one of NAME or selector can be provided")
    if args.field_selector:
        _check_field_selector(args.field_selector)
    namespace = args.namespace or metrics.default_namespace
    _require_metrics_api(metrics)
    if args.name:
        pods = [metrics.pod(namespace, args.name)]
    else:
        pods = metrics.pods(
            None if args.all_namespaces else namespace,
            label_selector=args.selector,
            field_selector=args.field_selector,
        )
    if not pods:
        _explain_empty(metrics, namespace, args)  # raises when kubectl fails
        err.write(
            "No resources found\n"
            if args.all_namespaces
            else f"No resources found in {namespace} namespace.\n"
        )
        return ""
    return render_pods(
        pods,
        containers=args.containers,
        all_namespaces=args.all_namespaces,
        sort_by=args.sort_by,
        no_headers=args.no_headers,
        show_sum=args.sum,
    )


def _explain_empty(metrics: Metrics[Any], namespace: str, args: argparse.Namespace) -> None:
    """kubectl's verifyEmptyMetrics: look at the pods themselves (in the context's namespace, even
    with -A)."""
    params = {}
    if args.selector:
        params["labelSelector"] = args.selector
    if args.field_selector:
        params["fieldSelector"] = args.field_selector
    path = f"/api/v1/namespaces/{quote(namespace, safe='')}/pods"
    items = metrics.get_json(path, params or None).get("items") or []
    if not items:
        return
    now = datetime.datetime.now(datetime.UTC)
    for pod in items:
        meta = pod.get("metadata", {})
        name = f"{meta.get('namespace', '')}/{meta.get('name', '')}"
        created = meta.get("creationTimestamp")
        if not created:  # Go's time.Since(zero time) saturates at the largest Duration
            raise TopError(f"Metrics not available for pod {name}, age: {_MAX_GO_DURATION}")
        age = now - datetime.datetime.fromisoformat(created)
        if age > _METRICS_CREATION_DELAY:
            raise TopError(f"Metrics not available for pod {name}, age: {format_duration(age)}")
    raise TopError("metrics not available yet")


def _validate_sort(sort_by: str) -> None:
    if sort_by and sort_by not in _SORT_KEYS:
        raise TopError("--sort-by accepts only cpu or memory")


def _check_field_selector(selector: str) -> None:
    # fields.ParseSelector: every non-empty term needs an operator (=, == or !=).
    for term in selector.split(","):
        if term and "=" not in term:
            raise TopError(f"invalid selector: '{selector}'; can't understand '{term}'")


# --------------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------------


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--kubeconfig", help="path to the kubeconfig file (default: $KUBECONFIG, ~/.kube/config)"
    )
    common.add_argument("--context", help="the kubeconfig context to use")
    common.add_argument("--no-headers", action="store_true", help="print output without headers")
    common.add_argument("--sort-by", default="", help="sort by 'cpu' or 'memory' (descending)")
    common.add_argument("-l", "--selector", default="", help="label selector, e.g. app=web,tier!=db")

    parser = argparse.ArgumentParser(prog="python -m k8s_metrics", description="Metrics API tools.")
    commands = parser.add_subparsers(dest="command", required=True)
    top = commands.add_parser("top", help="display CPU and memory usage, like kubectl top")
    kinds = top.add_subparsers(dest="kind", required=True)

    nodes = kinds.add_parser("nodes", aliases=["node", "no"], parents=[common], help="usage of nodes")
    nodes.add_argument("name", nargs="?", default="", metavar="NAME")
    nodes.add_argument(
        "--show-capacity", action="store_true", help="percentages of capacity, not allocatable"
    )
    nodes.add_argument(
        "--legacy-headers", action="store_true", help="CPU%% / MEMORY%% headers of kubectl 1.27-1.31"
    )
    nodes.set_defaults(kind="nodes")

    pods = kinds.add_parser("pods", aliases=["pod", "po"], parents=[common], help="usage of pods")
    pods.add_argument("name", nargs="?", default="", metavar="NAME")
    pods.add_argument(
        "-n", "--namespace", default="", help="namespace (default: the context's, else default)"
    )
    pods.add_argument("-A", "--all-namespaces", action="store_true", help="pods of all namespaces")
    pods.add_argument(
        "--field-selector", default="", help="field selector (metadata.name, metadata.namespace)"
    )
    pods.add_argument("--containers", action="store_true", help="one row per container")
    pods.add_argument("--sum", action="store_true", help="print the sum of the usage")
    pods.set_defaults(kind="pods")
    return parser


def kubectl_message(exc: ApiError) -> str:
    """How kubectl (``cmdutil.StandardErrorMessage``) prints an API error."""
    if exc.reason == "Unauthorized":
        return f"error: You must be logged in to the server ({exc.message})"
    if exc.reason:
        return f"Error from server ({exc.reason}): {exc.message}"
    return f"Error from server: {exc.message}"


def main(argv: Sequence[str] | None = None, *, out: TextIO | None = None, err: TextIO | None = None) -> int:
    """Run ``top`` with ``argv`` (default ``sys.argv[1:]``); return the exit status (0, 1, or 2 for usage).

    Output goes to ``out``, messages to ``err`` (default stdout/stderr), in kubectl's words.
    """
    out = sys.stdout if out is None else out
    err = sys.stderr if err is None else err
    args = _parser().parse_args(argv)
    try:
        with open_metrics(kubeconfig=args.kubeconfig, context=args.context) as metrics:
            text = top_nodes(metrics, args) if args.kind == "nodes" else top_pods(metrics, args, err)
    except TopError as exc:
        err.write(f"error: {exc}\n")
        return 1
    except ApiError as exc:
        err.write(kubectl_message(exc) + "\n")
        return 1
    except TransportError as exc:
        err.write(f"Unable to connect to the server: {exc}\n")
        return 1
    except (MetricsError, ConfigError) as exc:
        err.write(f"error: {exc}\n")
        return 1
    except (KeyError, TypeError, ValueError, AttributeError) as exc:  # a core object not shaped as promised
        err.write(f"error: unexpected response from the server: {exc!r}\n")
        return 1
    out.write(text)
    return 0
