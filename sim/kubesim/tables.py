"""meta.k8s.io/v1 Table rendering for nodes and pods (what `kubectl get` prints)."""

from __future__ import annotations

from typing import Any

import orjson

from .clock import NS_PER_S

_NODE_COLUMNS = [
    ("Name", "string", "name", 0),
    ("Status", "string", "", 0),
    ("Roles", "string", "", 0),
    ("Age", "string", "", 0),
    ("Version", "string", "", 0),
    ("Internal-IP", "string", "", 1),
    ("External-IP", "string", "", 1),
    ("OS-Image", "string", "", 1),
    ("Kernel-Version", "string", "", 1),
    ("Container-Runtime", "string", "", 1),
]
_POD_COLUMNS = [
    ("Name", "string", "name", 0),
    ("Ready", "string", "", 0),
    ("Status", "string", "", 0),
    ("Restarts", "string", "", 0),
    ("Age", "string", "", 0),
    ("IP", "string", "", 1),
    ("Node", "string", "", 1),
    ("Nominated Node", "string", "", 1),
    ("Readiness Gates", "string", "", 1),
]
_GENERIC_COLUMNS = [("Name", "string", "name", 0), ("Age", "string", "", 0)]


def human_duration(seconds: int) -> str:
    """k8s.io/apimachinery duration.HumanDuration."""
    if seconds < -1:
        return "<invalid>"
    if seconds < 0:
        return "0s"
    if seconds < 120:
        return f"{seconds}s"
    minutes = seconds // 60
    if minutes < 10:
        s = seconds % 60
        return f"{minutes}m" if s == 0 else f"{minutes}m{s}s"
    if minutes < 180:
        return f"{minutes}m"
    hours = seconds // 3600
    if hours < 8:
        m = minutes % 60
        return f"{hours}h" if m == 0 else f"{hours}h{m}m"
    if hours < 48:
        return f"{hours}h"
    if hours < 24 * 8:
        h = hours % 24
        return f"{hours // 24}d" if h == 0 else f"{hours // 24}d{h}h"
    if hours < 24 * 365 * 2:
        return f"{hours // 24}d"
    if hours < 24 * 365 * 8:
        dy = hours // 24 % 365
        return f"{hours // 24 // 365}y" if dy == 0 else f"{hours // 24 // 365}y{dy}d"
    return f"{hours // 24 // 365}y"


def _age(meta: dict[str, Any], now_ns: int) -> str:
    import datetime as _dt

    ts = meta.get("creationTimestamp")
    if not ts:
        return "<unknown>"
    created = _dt.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=_dt.UTC).timestamp()
    return human_duration(int(now_ns // NS_PER_S - created))


def _node_cells(doc: dict[str, Any], now_ns: int) -> list[Any]:
    status = doc["status"]
    ready = next((c for c in status["conditions"] if c["type"] == "Ready"), None)
    state = "Ready" if ready and ready["status"] == "True" else "NotReady"
    info = status["nodeInfo"]
    ip = next((a["address"] for a in status["addresses"] if a["type"] == "InternalIP"), "<none>")
    return [
        doc["metadata"]["name"],
        state,
        "<none>",
        _age(doc["metadata"], now_ns),
        info["kubeletVersion"],
        ip,
        "<none>",
        info["osImage"],
        info["kernelVersion"],
        info["containerRuntimeVersion"],
    ]


def _pod_cells(doc: dict[str, Any], now_ns: int) -> list[Any]:
    statuses = doc["status"].get("containerStatuses", [])
    ready = sum(1 for s in statuses if s.get("ready"))
    restarts = sum(s.get("restartCount", 0) for s in statuses)
    phase = doc["status"]["phase"]
    reason = "Completed" if phase == "Succeeded" else "Error" if phase == "Failed" else phase
    return [
        doc["metadata"]["name"],
        f"{ready}/{len(doc['spec']['containers'])}",
        reason,
        restarts,
        _age(doc["metadata"], now_ns),
        doc["status"].get("podIP", "<none>"),
        doc["spec"].get("nodeName", "<none>"),
        "<none>",
        "<none>",
    ]


def wants_table(accept: str | None) -> bool:
    return bool(accept) and "as=Table" in accept.replace(" ", "")  # type: ignore[union-attr]


def table(
    resource: str, bodies: list[bytes], now_ns: int, resource_version: str, continue_token: str
) -> bytes:
    """A Table of the given list-form object bodies, rows carrying PartialObjectMetadata."""
    columns = (
        _NODE_COLUMNS if resource == "nodes" else _POD_COLUMNS if resource == "pods" else _GENERIC_COLUMNS
    )
    rows = []
    for body in bodies:
        doc = orjson.loads(body)
        if resource == "nodes":
            cells = _node_cells(doc, now_ns)
        elif resource == "pods":
            cells = _pod_cells(doc, now_ns)
        else:
            cells = [doc["metadata"]["name"], _age(doc["metadata"], now_ns)]
        rows.append(
            {
                "cells": cells,
                "object": {
                    "kind": "PartialObjectMetadata",
                    "apiVersion": "meta.k8s.io/v1",
                    "metadata": doc["metadata"],
                },
            }
        )
    meta: dict[str, Any] = {"resourceVersion": resource_version}
    if continue_token:
        meta["continue"] = continue_token
    return orjson.dumps(
        {
            "kind": "Table",
            "apiVersion": "meta.k8s.io/v1",
            "metadata": meta,
            "columnDefinitions": [
                {"name": n, "type": t, "format": f, "description": "", "priority": p}
                for n, t, f, p in columns
            ],
            "rows": rows,
        }
    )
