"""`application/vnd.kubernetes.protobuf`: the apiserver's protobuf encoding, byte for byte.

A body is the magic `k8s\\x00` and a `runtime.Unknown` message: `typeMeta` (1: apiVersion, kind),
`raw` (2: the object's own message), `contentEncoding` (3) and `contentType` (4), both empty. The
objects are the `k8s.io/metrics` v1beta1 messages and the `meta/v1` ones (Status, discovery), as
their gogo-generated marshallers write them (proto2): fields in number order; every non-pointer
string and integer written even when empty or zero (`Time.nanos` too: the library writes 0,
its protobuf times carry whole seconds); pointers (`StatusDetails`, `remainingItemCount`) and
empty repeated fields left out; map entries sorted by key.

* `NodeMetrics`: 1 metadata (ObjectMeta), 2 timestamp (Time), 3 window (Duration), 4 usage
  (map<string, Quantity>); `PodMetrics`: the same with 4 containers (ContainerMetrics: 1 name,
  2 usage); lists: 1 metadata (ListMeta), 2 items.
* `ObjectMeta`: 1 name, 2 generateName, 3 namespace, 4 selfLink, 5 uid, 6 resourceVersion,
  7 generation, 8 creationTimestamp, 11 labels. `Time`: 1 seconds, 2 nanos. `Duration`:
  1 duration (ns). `Quantity`: 1 string (the canonical text).

An object is encoded once per snapshot around its `creationTimestamp` (`Fragment`: the bytes before
and after the seconds of "now", whose varint is 5 bytes until the year 3058), like the JSON
fragments of `api.render`, so a response is a join. Generic documents (Status, discovery) are
encoded from their JSON form (`document`), which is what the server already builds for them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Any

from k8s_metrics.quantity import cpu_quantity, memory_quantity
from metrics_server.kube.objects import NodeInfo, PodInfo
from metrics_server.storage.snapshot import NodeUsage, PodUsageTuple

MAGIC = b"k8s\x00"
CONTENT_TYPE = "application/vnd.kubernetes.protobuf"
NS_PER_S = 1_000_000_000


def varint(value: int) -> bytes:
    """An unsigned varint (negative int64s are written as their two's complement, 10 bytes)."""
    if value < 0:
        value += 1 << 64
    if value < 0x80:
        return _SMALL[value]
    out = bytearray()
    while value >= 0x80:
        out.append(value & 0x7F | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


_SMALL = [bytes([i]) for i in range(0x80)]


def message(field: int, payload: bytes) -> bytes:
    """A length-delimited field (message, string or bytes)."""
    return varint(field << 3 | 2) + varint(len(payload)) + payload


def string(field: int, text: str) -> bytes:
    return message(field, text.encode())


def integer(field: int, value: int) -> bytes:
    return varint(field << 3) + varint(value)


def boolean(field: int, value: bool) -> bytes:
    return integer(field, 1 if value else 0)


def envelope(api_version: str, kind: str, raw: bytes) -> bytes:
    """The whole body: magic + `runtime.Unknown{typeMeta, raw, contentEncoding "", contentType ""}`."""
    type_meta = string(1, api_version) + string(2, kind)
    return MAGIC + message(1, type_meta) + message(2, raw) + _EMPTY_3_4


_EMPTY_3_4 = string(3, "") + string(4, "")


def envelope_pieces(api_version: str, kind: str, raw: Sequence[bytes]) -> Iterator[bytes]:
    """`envelope` for a raw message given in pieces (a large list), without joining them."""
    size = sum(map(len, raw))
    yield MAGIC + message(1, string(1, api_version) + string(2, kind)) + b"\x12" + varint(size)
    yield from raw
    yield _EMPTY_3_4


def time_message(field: int, seconds: int) -> bytes:
    """A `metav1.Time` (whole seconds, nanos 0)."""
    return message(field, integer(1, seconds) + b"\x10\x00")


def _labels(labels: Mapping[str, str]) -> bytes:
    return b"".join(message(11, string(1, k) + string(2, v)) for k, v in sorted(labels.items()))


def _usage_entries(field: int, usage: Iterable[tuple[str, str]]) -> bytes:
    return b"".join(message(field, string(1, name) + message(2, string(1, q))) for name, q in usage)


def _usage(cpu: int, memory: int, swap: int | None) -> list[tuple[str, str]]:
    out = [("cpu", cpu_quantity(cpu)), ("memory", memory_quantity(memory))]
    if swap is not None:
        out.append(("swap", memory_quantity(swap)))
    return out


# --- metrics objects --------------------------------------------------------------------------

Fragment = tuple[bytes, bytes, bytes]
"""(item prefix, head, tail): the object is `head + varint(now seconds) + tail`; in a list it is
preceded by `item prefix` (field 2, its length). Only valid for a 5-byte seconds varint."""
_NOW_VARINT = 5
_LOW, _HIGH = 1 << 28, 1 << 35


def _fragment(meta_head: bytes, meta_tail: bytes, body: bytes) -> Fragment:
    # metadata: field 1, holding meta_head + (creationTimestamp: field 8, Time{1: now, 2: 0}) + meta_tail
    creation_head = b"\x42" + varint(1 + _NOW_VARINT + 2) + b"\x08"
    meta_size = len(meta_head) + len(creation_head) + _NOW_VARINT + 2 + len(meta_tail)
    head = b"\x0a" + varint(meta_size) + meta_head + creation_head
    tail = b"\x10\x00" + meta_tail + body
    size = len(head) + _NOW_VARINT + len(tail)
    return (b"\x12" + varint(size), head, tail)


def _meta_head(name: str, namespace: str) -> bytes:
    return (
        string(1, name)
        + _EMPTY_STR[2]
        + string(3, namespace)
        + _EMPTY_STR[4]
        + _EMPTY_STR[5]
        + (_EMPTY_STR[6] + b"\x38\x00")
    )


_EMPTY_STR = {f: string(f, "") for f in (2, 4, 5, 6)}


def node_fragment(info: NodeInfo, usage: NodeUsage, serve_swap: bool) -> Fragment:
    ts, window, cpu, memory, swap = usage
    body = (
        time_message(2, ts // NS_PER_S)
        + message(3, integer(1, window))
        + _usage_entries(4, _usage(cpu, memory, swap if serve_swap else None))
    )
    return _fragment(_meta_head(info.name, ""), _labels(info.labels), body)


def pod_fragment(info: PodInfo, usage: PodUsageTuple, serve_swap: bool) -> Fragment:
    ts, window, containers = usage
    body = (
        time_message(2, ts // NS_PER_S)
        + message(3, integer(1, window))
        + b"".join(
            message(4, string(1, name) + _usage_entries(2, _usage(cpu, memory, swap if serve_swap else None)))
            for name, cpu, memory, swap in containers
        )
    )
    return _fragment(_meta_head(info.name, info.namespace), _labels(info.labels), body)


def cached_node_fragment(gen: Any, info: NodeInfo, usage: NodeUsage, serve_swap: bool) -> Fragment:
    """`node_fragment`, kept in the snapshot's `render.Generation` while info and usage are the same."""
    hit = gen.pb.get(info.name)
    if hit is not None and hit[0] is info and hit[1] is usage:
        return hit[2]  # type: ignore[no-any-return]
    fragment = node_fragment(info, usage, serve_swap)
    gen.pb[info.name] = (info, usage, fragment)
    return fragment


def cached_pod_fragment(gen: Any, info: PodInfo, usage: PodUsageTuple, serve_swap: bool) -> Fragment:
    key = (info.namespace, info.name)
    hit = gen.pb.get(key)
    if hit is not None and hit[0] is info and hit[1] is usage:
        return hit[2]  # type: ignore[no-any-return]
    fragment = pod_fragment(info, usage, serve_swap)
    gen.pb[key] = (info, usage, fragment)
    return fragment


def now_varint(now_s: float) -> bytes:
    seconds = int(now_s)
    if not _LOW <= seconds < _HIGH:
        raise ValueError(f"the time {seconds} does not fit the fragments' 5-byte varint")
    return varint(seconds)


API_VERSION = "metrics.k8s.io/v1beta1"
_EMPTY_LIST_META = message(1, string(1, "") + string(2, "") + string(3, ""))


def object_body(kind: str, fragment: Fragment, now: bytes) -> bytes:
    _, head, tail = fragment
    return envelope(API_VERSION, kind, head + now + tail)


def list_pieces(list_kind: str, fragments: Sequence[Fragment], now: bytes, chunk: int) -> Iterator[bytes]:
    """A `<Kind>List` body in pieces of `chunk` objects (join them for the full body)."""
    raw = [_EMPTY_LIST_META]
    for start in range(0, len(fragments), chunk):
        raw.append(b"".join(b"".join((p, h, now, t)) for p, h, t in fragments[start : start + chunk]))
    yield from envelope_pieces(API_VERSION, list_kind, raw)


# --- generic documents (from their JSON form) -------------------------------------------------


def _status(doc: Mapping[str, Any]) -> bytes:
    out = _EMPTY_LIST_META + string(2, doc.get("status", "")) + string(3, doc.get("message", ""))
    out += string(4, doc.get("reason", ""))
    details = doc.get("details")
    if details is not None:
        causes = b"".join(
            message(
                4,
                string(1, c.get("reason", ""))
                + string(2, c.get("message", ""))
                + string(3, c.get("field", "")),
            )
            for c in details.get("causes") or ()
        )
        out += message(
            5,
            string(1, details.get("name", ""))
            + string(2, details.get("group", ""))
            + string(3, details.get("kind", ""))
            + causes
            + integer(5, details.get("retryAfterSeconds", 0))
            + string(6, details.get("uid", "")),
        )
    return out + integer(6, doc.get("code", 0))


def _group_version(field: int, gv: Mapping[str, str]) -> bytes:
    return message(field, string(1, gv["groupVersion"]) + string(2, gv["version"]))


def _group(doc: Mapping[str, Any]) -> bytes:
    out = string(1, doc["name"]) + b"".join(_group_version(2, v) for v in doc.get("versions", ()))
    out += _group_version(3, doc["preferredVersion"])
    for cidr in doc.get("serverAddressByClientCIDRs") or ():
        out += message(4, string(1, cidr["clientCIDR"]) + string(2, cidr["serverAddress"]))
    return out


def _resource(r: Mapping[str, Any]) -> bytes:
    out = string(1, r["name"]) + boolean(2, r["namespaced"]) + string(3, r["kind"])
    out += message(4, b"".join(string(1, v) for v in r.get("verbs", ())))
    out += b"".join(string(5, s) for s in r.get("shortNames") or ())
    out += string(6, r.get("singularName", ""))
    out += b"".join(string(7, c) for c in r.get("categories") or ())
    return (
        out
        + string(8, r.get("group", ""))
        + string(9, r.get("version", ""))
        + string(10, r.get("storageVersionHash", ""))
    )


def document(doc: Mapping[str, Any]) -> bytes | None:
    """The protobuf body of a JSON document this server sends (Status, APIGroupList, APIGroup,
    APIResourceList), or None for a kind that has no protobuf form here."""
    kind = doc.get("kind")
    api_version = doc.get("apiVersion", "")
    if kind == "Status":
        raw = _status(doc)
    elif kind == "APIGroupList":
        raw = b"".join(message(1, _group(g)) for g in doc.get("groups", ()))
    elif kind == "APIGroup":
        raw = _group(doc)
    elif kind == "APIResourceList":
        raw = string(1, doc["groupVersion"]) + b"".join(
            message(2, _resource(r)) for r in doc.get("resources", ())
        )
    else:
        return None
    return envelope(api_version, kind, raw)
