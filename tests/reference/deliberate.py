"""Every difference from metrics-server v0.8.0 that the suite accepts (imported as `deliberate`).

One entry per row of the table in `docs/compatibility.md` (a test checks they agree). An entry
`covers` some comparisons and says what the difference must look like there (`explains`); the
suite then counts it as listed, not unexplained. A deliberate difference that stops differing is
a failure (the table would be stale); a pending one (owned by another change, `owner`) is reported
as resolved instead.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from refharness import Reply

Check = Callable[[str, Reply, Reply], bool]
"""(comparison id, ours, reference) -> whether this entry covers / explains it."""


@dataclass(frozen=True, slots=True)
class Difference:
    id: str
    title: str
    pinned_by: str
    """The test (path::name) that pins our side."""
    covers: Check
    explains: Check
    owner: str = ""
    """Empty for a deliberate difference; else who will remove it (a pending one)."""
    provoked: bool = True
    """False for a difference in the data over time that the comparisons do not provoke (they
    compare once both servers have settled): pinned by its own test, listed for the table."""


def _never(case: str, ours: Reply, ref: Reply) -> bool:
    return False


def _status_message(reply: Reply) -> str:
    import orjson

    try:
        return str(orjson.loads(reply.body).get("message", ""))
    except (orjson.JSONDecodeError, AttributeError):
        return ""


def _node_name_selector(case: str, ours: Reply, ref: Reply) -> bool:
    if ours.status == 200 and ref.status == 400:
        return '"spec.nodeName" is not a known field selector' in _status_message(ref)
    if ours.status == ref.status == 400:  # the list of known fields names it too
        return _status_message(ours) == _status_message(ref).replace(
            '"metadata.namespace"', '"metadata.namespace", "spec.nodeName"'
        )
    return False


DIFFERENCES: tuple[Difference, ...] = (
    Difference(
        "field-selector-spec-nodename",
        "Pods also take the field selector `spec.nodeName` (kubernetes/kubernetes#131896); the "
        "reference answers 400, and its 400 for other fields names two fields where ours names three",
        "tests/server/api/test_resources.py::test_pod_list_selectors",
        covers=lambda case, o, r: "fieldSelector=" in case and "/pods" in case and "nodes" not in case,
        explains=_node_name_selector,
    ),
    Difference(
        "version",
        "`/version` describes this server (its version, Python), not a Kubernetes build",
        "tests/server/api/test_discovery_openapi.py::test_version",
        covers=lambda case, o, r: case.startswith("GET /version"),
        explains=lambda case, o, r: o.status == r.status == 200 and b'"gitVersion"' in o.body,
    ),
    Difference(
        "openapi-text",
        "OpenAPI documents are rendered from `openapi/` (the spec the client is generated from): "
        "same paths, operations, schema names and group-version-kinds, other descriptions and "
        "examples, so other bytes and hashes",
        "tests/reference/test_differential.py::test_openapi_shape",
        covers=lambda case, o, r: " /openapi/" in case,
        explains=lambda case, o, r: o.status == r.status,
    ),
)

DIFFERENCES += tuple(
    Difference(id_, title, pinned, covers=_never, explains=_never, provoked=False)
    for id_, title, pinned in (
        (
            "staleness",
            "A node whose scrape fails keeps its metrics (and its pods') until `--metric-staleness` "
            "(default 2 x resolution), with their true timestamps; the reference drops them at once",
            "tests/server/storage/test_storage_store.py::test_failed_scrape_keeps_node_and_pods_until_stale",
        ),
        (
            "restart",
            "A restarted container that has run >= 10 s at its first sample is measured from its start "
            "time, so its pod is not hidden; one sampled sooner hides the pod for one cycle (the "
            "reference hides it for about two)",
            "tests/server/storage/test_storage_store.py::test_restarted_container_measured_from_its_start_time",
        ),
        (
            "whole-pods",
            "A pod is served with all its containers or not at all; after a CPU counter decrease the "
            "reference serves the pod without that container (which the HPA under-counts)",
            "tests/server/storage/test_storage_store.py::test_counter_decrease_skips_one_cycle_then_pairs_with_the_reset_point",
        ),
        (
            "swap",
            "With `--serve-swap`, usage maps also carry `swap` (off by default, as the reference)",
            "tests/server/api/test_resources.py::test_swap_served_only_when_enabled",
        ),
    )
)

BY_ID = {d.id: d for d in DIFFERENCES}


def classify(case: str, ours: Reply, ref: Reply, same: bool) -> tuple[str, Difference | None]:
    """("same" | "listed" | "unexplained" | "stale" | "resolved", the entry concerned)."""
    covering = [d for d in DIFFERENCES if d.covers(case, ours, ref)]
    if same:
        for d in covering:
            if d.owner:
                return "resolved", d
        return "same", None
    for d in covering:
        if d.explains(case, ours, ref):
            return "listed", d
    return "unexplained", covering[0] if covering else None
