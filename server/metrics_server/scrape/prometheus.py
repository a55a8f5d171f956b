"""Parse a kubelet `/metrics/resource` body (Prometheus text format 0.0.4) into a `NodeBatch`.

Accepted text: every variant kubelets have served since 1.14: `[ALPHA]`/`[STABLE]` HELP lines (or
none), samples with or without millisecond timestamps, the `_total` names and 1.18.0's short
`node_cpu_usage_seconds`/`container_cpu_usage_seconds`, CPU declared as gauge (`/v1alpha1`), any
label order, extra labels, escaped label values, blank and comment lines, CRLF line ends.

Rules: the ones both kubelet formats share (`assemble.py`: values, timestamps, duplicates, which
node points and pods are dropped, `scrape_error`). A Prometheus client-library error page
(`An error has occurred while serving metrics`) -> `KubeletError`.

Errors: `ParseError` names the line number and quotes an excerpt. Every sample line is checked, not
only the families we read (a malformed line means the body cannot be trusted, e.g. it was cut off);
so are the labels of the container families (`container`, `namespace`, `pod` present, the last two
non-empty). HELP/TYPE/other comment lines are not checked. A body with no samples at all gives an
empty batch. No other exception escapes, for any bytes.

Speed: `canonical.parse_canonical` reads a body in the kubelet's canonical shape a family at a time
(split into columns, converted with C-level map/zip); anything else, and every error, goes through
the exact line parser `lines.parse_lines`, which also serves as the reference (test_parser_fuzz.py
checks they agree). About 0.43 ms for the 70-pod kind 1.21 capture and 0.14 ms for an 8 KB EKS
node body: `python -m bench.micro.parse` (figures and their history in docs/performance.md). Most
of it is inherent: float()/int() of every number and a string per label value.
"""

from __future__ import annotations

from typing import Final

from metrics_server.scrape.assemble import excerpt
from metrics_server.scrape.batch import KubeletError, NodeBatch
from metrics_server.scrape.canonical import parse_canonical
from metrics_server.scrape.lines import parse_lines

_ERROR_PAGE: Final = b"An error has occurred while serving metrics"


def parse_resource_metrics(body: bytes, *, node: str, request_time_ns: int) -> NodeBatch:
    """Parse a `/metrics/resource` (or `/metrics/resource/v1alpha1`) body into a NodeBatch.

    `request_time_ns` (just before the request was sent) stands in for missing timestamps.
    Raises ParseError for malformed input (line number + excerpt), KubeletError for a body that only
    reports a failure. Never raises anything else.
    """
    if body.startswith(_ERROR_PAGE):
        page = " ".join(body[len(_ERROR_PAGE) : len(_ERROR_PAGE) + 400].decode("utf-8", "replace").split())
        raise KubeletError(f"kubelet served a metrics error page: {excerpt(page)}")
    if body.isascii() and b"\\" not in body and b"\t" not in body and b"\r" not in body:
        batch = parse_canonical(body.decode("ascii"), node, request_time_ns)
        if batch is not None:
            return batch
    return parse_lines(body, node=node, request_time_ns=request_time_ns)
