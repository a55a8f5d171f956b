"""An HPA-style autoscaler for CPU: the desired replica count for the pods of a label selector, computed
with the Horizontal Pod Autoscaler's algorithm (kubernetes/kubernetes pkg/controller/podautoscaler,
``replica_calculator.go``), from the Metrics API. Dry run by default.

    python examples/hpa_autoscaler.py -n shop -l app=web --target-millicores 100
    python examples/hpa_autoscaler.py -n shop --deployment web --target-utilization 60 --apply
    python examples/hpa_autoscaler.py -n shop --statefulset db --target-millicores 300 --apply --watch

Targets (choose one):

* ``--target-millicores M``: a target *average value* per pod (the HPA's ``AverageValue`` target); needs
  only the metrics and the pod list.
* ``--target-utilization P``: a target average *utilization* in percent of the pods' CPU requests (the
  HPA's ``Utilization`` target); every container must request CPU.

What the HPA does, and this script does too:

* A pod's usage is the sum of its containers' millicores, each rounded up (``Quantity.MilliValue()``).
  A pod whose metrics have no containers, or a container without ``cpu``, has no sample.
* Pods matching the selector are grouped: *ignored* (being deleted, or Failed), *unready* (Pending; or,
  for CPU, not Ready or sampled too soon after becoming Ready within the 5-minute CPU initialisation
  period, or never Ready within 30 s of starting), *missing* (Running without a sample), and ready.
  Samples of ignored and unready pods are dropped.
* ratio = current / target; within the tolerance (``|1 - ratio| <= 0.1``) nothing changes, otherwise
  ``ceil(ratio × ready pods)``, when no pod is missing and no unready pod could hide a scale-up.
* Otherwise missing pods count as using the target (on a scale-down: 100% of their request, or the target
  utilisation if above 100%) or nothing (on a scale-up), unready pods as nothing on a scale-up; the ratio
  is recomputed, and the change is dropped if it is within tolerance or would reverse the direction.
* The result is clamped to ``--min-replicas``/``--max-replicas``. (Not modelled: the HPA's stabilisation
  window and scaling policies, which only limit how fast it moves towards this number.)

The current replica count is the workload's ``scale`` status with ``--deployment``, ``--statefulset`` or
``--replicaset`` (whose selector is then used), else ``--current-replicas``, else the number of matching
pods that are not ignored. ``--apply`` (with a workload) sets its ``scale`` (k8s_metrics.ScaleClient).
``--watch`` waits for the Metrics API (``wait_until_available``), then evaluates again each time a pod of
the selector has a new sample (``watch_pods``), until interrupted.
"""

from __future__ import annotations

import argparse
import datetime
import functools
import math
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from k8s_metrics import ConfigError, Metrics, MetricsError, PodUsage, ScaleClient, open_metrics
from k8s_metrics.quantity import cpu_millicores

TOLERANCE = 0.1
CPU_INITIALIZATION_PERIOD = datetime.timedelta(minutes=5)
DELAY_OF_INITIAL_READINESS_STATUS = datetime.timedelta(seconds=30)


class ScaleError(Exception):
    """The HPA would not compute a recommendation (its own error messages)."""


@dataclass(frozen=True)
class Sample:
    """One pod's CPU usage as the HPA sees it."""

    millicores: int
    timestamp: datetime.datetime
    window: datetime.timedelta


@dataclass
class Groups:
    """``groupPods``: how each matching pod takes part in the calculation."""

    ready: int = 0
    unready: set[str] = field(default_factory=set)
    missing: set[str] = field(default_factory=set)
    ignored: set[str] = field(default_factory=set)


def samples_of(pods: Iterable[PodUsage[Decimal]]) -> dict[str, Sample]:
    """The HPA metrics client: a pod's value is the sum of its containers' MilliValue(); pods without
    containers or with a container lacking cpu are left out (they become *missing*)."""
    return {
        p.name: Sample(sum(c.cpu_millicores for c in p.containers), p.timestamp, p.window)
        for p in pods
        if p.has_metrics("cpu")
    }


def _time(text: str | None) -> datetime.datetime | None:
    return datetime.datetime.fromisoformat(text) if text else None


def group_pods(
    pods: Iterable[Mapping[str, Any]], samples: Mapping[str, Sample], now: datetime.datetime
) -> Groups:
    """The HPA's ``groupPods`` for the cpu resource."""
    groups = Groups()
    for pod in pods:
        name, status = pod["metadata"]["name"], pod.get("status", {})
        phase = status.get("phase")
        if pod["metadata"].get("deletionTimestamp") or phase == "Failed":
            groups.ignored.add(name)
            continue
        if phase == "Pending":
            groups.unready.add(name)
            continue
        sample = samples.get(name)
        if sample is None:
            groups.missing.add(name)
            continue
        ready = next((c for c in status.get("conditions") or [] if c.get("type") == "Ready"), None)
        started = _time(status.get("startTime"))
        if ready is None or started is None:
            unready = True
        else:
            transition = _time(ready.get("lastTransitionTime")) or datetime.datetime.min.replace(
                tzinfo=datetime.UTC
            )
            if started + CPU_INITIALIZATION_PERIOD > now:
                # Within the initialisation period: unready, or no full window since becoming Ready.
                unready = ready.get("status") == "False" or sample.timestamp < transition + sample.window
            else:
                # Afterwards: only a pod that has never been Ready.
                unready = (
                    ready.get("status") == "False"
                    and started + DELAY_OF_INITIAL_READINESS_STATUS > transition
                )
        if unready:
            groups.unready.add(name)
        else:
            groups.ready += 1
    return groups


def pod_requests(pods: Iterable[Mapping[str, Any]]) -> dict[str, int]:
    """``calculatePodRequests``: each pod's summed container CPU requests in millicores."""
    requests = {}
    for pod in pods:
        total = 0
        for container in pod.get("spec", {}).get("containers", []):
            request = (container.get("resources", {}).get("requests") or {}).get("cpu")
            if request is None:
                name = pod["metadata"]["name"]
                raise ScaleError(f"missing request for cpu in container {container['name']} of Pod {name}")
            total += cpu_millicores(request)
        requests[pod["metadata"]["name"]] = total
    return requests


def average_value_ratio(values: Mapping[str, int], target: int) -> float:
    """``GetMetricUsageRatio``: integer average over the pods, then a float ratio."""
    return float(sum(values.values()) // len(values)) / float(target)


def utilization_ratio(values: Mapping[str, int], requests: Mapping[str, int], target: int) -> float:
    """``GetResourceUtilizationRatio``: integer percent of the summed requests, then a float ratio."""
    used = sum(v for name, v in values.items() if name in requests)
    requested = sum(requests[name] for name in values if name in requests)
    if requested == 0:
        raise ScaleError("no metrics returned matched known pods")
    return float(used * 100 // requested) / float(target)


def desired_replicas(
    current: int,
    pods: list[Mapping[str, Any]],
    samples: Mapping[str, Sample],
    *,
    now: datetime.datetime,
    target_millicores: int | None = None,
    target_utilization: int | None = None,
    tolerance: float = TOLERANCE,
) -> tuple[int, float, Groups]:
    """The HPA's replica calculation for one CPU target; returns (replicas, first usage ratio, groups)."""
    if (target_millicores is None) == (target_utilization is None):
        raise ValueError("exactly one of target_millicores and target_utilization")
    if not pods:
        raise ScaleError("no pods returned by selector while calculating replica count")
    groups = group_pods(pods, samples, now)
    values = {n: s.millicores for n, s in samples.items() if n not in groups.ignored | groups.unready}
    if not values:
        raise ScaleError("did not receive metrics for targeted pods (pods might be unready)")

    if target_utilization is not None:
        requests = pod_requests(pods)

        def ratio_of(v: Mapping[str, int]) -> float:
            return utilization_ratio(v, requests, target_utilization)

        # On a scale-down a missing pod counts as using all its request (or the target, if above 100%).
        def fallback(name: str) -> int:
            return requests[name] * max(100, target_utilization) // 100
    else:
        assert target_millicores is not None

        def ratio_of(v: Mapping[str, int]) -> float:
            return average_value_ratio(v, target_millicores)

        def fallback(name: str) -> int:
            return target_millicores

    ratio = ratio_of(values)
    scale_up_with_unready = bool(groups.unready) and ratio > 1.0
    if not scale_up_with_unready and not groups.missing:
        if abs(1.0 - ratio) <= tolerance:
            return current, ratio, groups
        return math.ceil(ratio * groups.ready), ratio, groups

    if ratio < 1.0:
        values |= {name: fallback(name) for name in groups.missing}
    elif ratio > 1.0 or target_millicores is not None:  # (at exactly 1.0 only AverageValue fills in zeros)
        values |= dict.fromkeys(groups.missing, 0)
    if scale_up_with_unready:
        values |= dict.fromkeys(groups.unready, 0)
    new_ratio = ratio_of(values)
    if abs(1.0 - new_ratio) <= tolerance or (ratio < 1.0 < new_ratio) or (new_ratio < 1.0 < ratio):
        return current, ratio, groups
    replicas = math.ceil(new_ratio * len(values))
    if (new_ratio < 1.0 and replicas > current) or (new_ratio > 1.0 and replicas < current):
        return current, ratio, groups
    return replicas, ratio, groups


# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """What to scale: a workload (kind and name) or only a label selector (dry run)."""

    kind: str
    name: str


def evaluate(
    metrics: Metrics[Decimal], scales: ScaleClient, args: argparse.Namespace, namespace: str
) -> tuple[int, int, str]:
    """One pass of the HPA: read the scale and the pods, print the report; (desired, current, selector)."""
    selector, current = args.selector, args.current_replicas
    target: Target | None = args.target
    if target is not None:
        scale = scales.get(target.kind, namespace, target.name)
        selector = selector or scale.selector
        current = scale.current_replicas if current is None else current
    if not selector:
        raise ScaleError("a label selector is needed: pass -l or a workload")
    usage = metrics.pods(namespace, label_selector=selector)
    if not usage:
        raise ScaleError("no metrics returned from resource metrics API")
    pods = metrics.get_json(f"/api/v1/namespaces/{namespace}/pods", {"labelSelector": selector})["items"]
    samples = samples_of(usage)
    now = datetime.datetime.now(datetime.UTC)
    groups = group_pods(pods, samples, now)
    if current is None:
        current = len(pods) - len(groups.ignored)
    replicas, ratio, groups = desired_replicas(
        current,
        pods,
        samples,
        now=now,
        target_millicores=args.target_millicores,
        target_utilization=args.target_utilization,
        tolerance=args.tolerance,
    )
    desired = min(max(replicas, args.min_replicas), args.max_replicas)
    goal = (
        f"{args.target_millicores}m per pod"
        if args.target_millicores is not None
        else f"{args.target_utilization}% of requests"
    )
    print(f"pods matching {selector} in {namespace}: {len(pods)}")
    print(f"  with metrics and ready: {groups.ready}")
    for label, names in (
        ("missing metrics", groups.missing),
        ("unready", groups.unready),
        ("ignored", groups.ignored),
    ):
        print(f"  {label}: {len(names)}" + (f" ({', '.join(sorted(names))})" if names else ""))
    print(f"target: {goal}; usage ratio {ratio:.2f} (tolerance {args.tolerance})")
    print(f"desired replicas: {desired} (current: {current})", flush=True)
    return desired, current, selector


def run(args: argparse.Namespace) -> int:
    with open_metrics(kubeconfig=args.kubeconfig, context=args.context) as metrics:
        scales = ScaleClient(metrics.client)  # the same connection; closed with it
        namespace = args.namespace or metrics.default_namespace
        if args.watch:
            metrics.wait_until_available(timeout=args.wait_timeout)
        desired, current, selector = evaluate(metrics, scales, args, namespace)
        act(scales, args, namespace, desired, current)
        if not args.watch:
            return 0
        # Again for every new sample of the target's pods, until interrupted.
        for _batch in metrics.watch_pods(namespace, label_selector=selector):
            desired, current, selector = evaluate(metrics, scales, args, namespace)
            act(scales, args, namespace, desired, current)
    return 0


def act(scales: ScaleClient, args: argparse.Namespace, namespace: str, desired: int, current: int) -> None:
    target: Target | None = args.target
    if not args.apply or target is None:
        print("dry run: nothing changed (use --apply with a workload to scale)", flush=True)
    elif desired == current:
        print("nothing to change", flush=True)
    else:
        scales.set_replicas(target.kind, namespace, target.name, desired)
        print(f"scaled {target.kind} {namespace}/{target.name} to {desired}", flush=True)


DESCRIPTION = (
    "An HPA-style autoscaler for CPU: the desired replica count of a workload (or of the pods of a label "
    "selector), computed with the Horizontal Pod Autoscaler's algorithm from the Metrics API, and applied "
    "to the workload's scale subresource with --apply. Once, or on every new sample with --watch."
)


def main() -> int:
    parser = argparse.ArgumentParser(description=DESCRIPTION)
    parser.add_argument(
        "-n", "--namespace", default="", help="namespace (default: the context's, else default)"
    )
    parser.add_argument("-l", "--selector", default="", help="label selector of the pods")
    workload = parser.add_mutually_exclusive_group()
    for kind in ("deployment", "statefulset", "replicaset"):
        workload.add_argument(
            f"--{kind}",
            metavar="NAME",
            type=functools.partial(Target, kind),
            dest="target",
            help=f"the {kind} to read the replicas and selector of (and to scale)",
        )
    target = parser.add_mutually_exclusive_group(required=True)
    target.add_argument("--target-millicores", type=int, help="target average CPU per pod, in millicores")
    target.add_argument("--target-utilization", type=int, help="target average CPU, in percent of requests")
    parser.add_argument("--tolerance", type=float, default=TOLERANCE, help="no change within this (0.1)")
    parser.add_argument("--current-replicas", type=int, help="override the current replica count")
    parser.add_argument("--min-replicas", type=int, default=1)
    parser.add_argument("--max-replicas", type=int, default=sys.maxsize)
    parser.add_argument("--apply", action="store_true", help="scale the workload (default: dry run)")
    parser.add_argument(
        "--watch", action="store_true", help="wait for the Metrics API, then repeat on every new sample"
    )
    parser.add_argument(
        "--wait-timeout", type=float, default=300.0, help="with --watch: seconds to wait for the API (300)"
    )
    parser.add_argument(
        "--kubeconfig", help="kubeconfig file (default: $KUBECONFIG, ~/.kube/config, in-cluster)"
    )
    parser.add_argument("--context", help="kubeconfig context (default: the current one)")
    args = parser.parse_args()
    if args.apply and args.target is None:
        parser.error("--apply needs a workload (--deployment, --statefulset or --replicaset)")
    for name in ("target_millicores", "target_utilization"):
        if getattr(args, name) is not None and getattr(args, name) <= 0:
            parser.error(f"--{name.replace('_', '-')} must be positive")
    try:
        return run(args)
    except (ScaleError, MetricsError, ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
