"""Comparing two servers' replies (imported as `compare`): masks, protobuf walking, the tally.

What is compared: the status code, the headers in `COMPARED_HEADERS`, and the body byte for byte
after masking what legitimately differs between two servers scraping at their own times:
`timestamp`, `window` and `creationTimestamp` (JSON, YAML and protobuf), and the Window cell of a
Table row. Order is normalised only where the reference's is unspecified: the containers of a
pod (Go map order), also inside Table rows and YAML. Each server's own port, which `/apis` names
in `serverAddressByClientCIDRs`, is masked too (`unport`). Everything else must be equal, or be a
listed difference (`deliberate`).
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field

import orjson
import yaml
from refharness import Reply

COMPARED_HEADERS = (
    "content-type",
    "cache-control",
    "vary",
    "etag",
    "x-content-type-options",
    "allow",
    "location",
    "content-encoding",
)
"""Headers compared by value. `audit-id` is compared by presence (its value is a fresh UUID)."""

MASK = b"<masked>"
_JSON_TIMES = re.compile(rb'"(timestamp|creationTimestamp|window)":(\s*)"[^"]*"')
_YAML_TIMES = re.compile(rb"^(\s*-?\s*)(timestamp|creationTimestamp|window): .*$", re.M)
_TABLE_CELLS = re.compile(rb'"cells":(\s*)\[(.*?)\]', re.S)
_LAST_CELL = re.compile(rb'"[^"]*"(\s*)$')


def mask_json(body: bytes) -> bytes:
    body = _JSON_TIMES.sub(lambda m: b'"' + m[1] + b'":' + m[2] + b'"' + MASK + b'"', body)
    if b'"kind":"Table"' in body or b'"kind": "Table"' in body:
        body = _TABLE_CELLS.sub(
            lambda m: b'"cells":' + m[1] + b"[" + _LAST_CELL.sub(b'"' + MASK + b'"' + rb"\1", m[2]) + b"]",
            body,
        )
    return body


def mask_yaml(body: bytes) -> bytes:
    return _YAML_TIMES.sub(lambda m: m[1] + m[2] + b": " + MASK, body)


# --- protobuf ---------------------------------------------------------------------------------

PROTOBUF_MAGIC = b"k8s\x00"
Field = tuple[int, int, "int | bytes"]


def _varint(data: bytes, i: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[i]
        i += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, i


def fields(data: bytes) -> list[Field]:
    """The top-level fields of a protobuf message: (number, wire type, varint or bytes)."""
    out: list[Field] = []
    i = 0
    while i < len(data):
        key, i = _varint(data, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(data, i)
            out.append((number, wire, value))
        elif wire == 2:
            size, i = _varint(data, i)
            out.append((number, wire, data[i : i + size]))
            i += size
        else:
            raise ValueError(f"unexpected wire type {wire} in field {number}")
    if i != len(data):
        raise ValueError("truncated protobuf message")
    return out


def _enc_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def encode(message: list[Field]) -> bytes:
    out = bytearray()
    for number, wire, value in message:
        out += _enc_varint(number << 3 | wire)
        if wire == 0:
            assert isinstance(value, int)
            out += _enc_varint(value)
        else:
            assert isinstance(value, bytes)
            out += _enc_varint(len(value)) + value
    return bytes(out)


def _mask_metrics_object(raw: bytes, sort_containers: bool) -> bytes:
    """NodeMetrics/PodMetrics: metadata(1).creationTimestamp(8), timestamp(2), window(3) masked."""
    out: list[Field] = []
    containers: list[Field] = []
    for number, wire, value in fields(raw):
        if number == 1 and isinstance(value, bytes):
            meta = [(n, w, MASK if n == 8 else v) for n, w, v in fields(value)]
            out.append((number, wire, encode(meta)))
        elif number in (2, 3):
            out.append((number, wire, MASK))
        elif number == 4 and sort_containers:
            containers.append((number, wire, value))
        else:
            out.append((number, wire, value))
    out += sorted(containers, key=lambda f: f[2])  # type: ignore[arg-type, return-value]
    return encode(out)


def mask_protobuf(body: bytes, *, normalise_order: bool = False) -> bytes:
    """A `runtime.Unknown` envelope with NodeMetrics/PodMetrics (lists) inside, masked."""
    if not body.startswith(PROTOBUF_MAGIC):
        return body
    envelope = fields(body[len(PROTOBUF_MAGIC) :])
    kind = b""
    for number, _, value in envelope:
        if number == 1 and isinstance(value, bytes):
            kind = next((v for n, _, v in fields(value) if n == 2 and isinstance(v, bytes)), b"")
    if kind not in (b"NodeMetrics", b"PodMetrics", b"NodeMetricsList", b"PodMetricsList"):
        return body
    pods = kind.startswith(b"Pod")
    out: list[Field] = []
    for number, wire, value in envelope:
        if number == 2 and isinstance(value, bytes):
            if kind.endswith(b"List"):
                items = [
                    (n, w, _mask_metrics_object(v, normalise_order and pods) if n == 2 else v)
                    for n, w, v in fields(value)
                    if isinstance(v, bytes) or n != 2
                ]
                value = encode(items)  # type: ignore[arg-type]
            else:
                value = _mask_metrics_object(value, normalise_order and pods)
        out.append((number, wire, value))
    return PROTOBUF_MAGIC + encode(out)


# --- bodies -----------------------------------------------------------------------------------


def masked_body(reply: Reply) -> bytes:
    media = reply.headers.get("content-type", "").split(";")[0].strip()
    if media == "application/json":
        return mask_json(reply.body)
    if media == "application/yaml":
        return mask_yaml(reply.body)
    if media == "application/vnd.kubernetes.protobuf":
        return mask_protobuf(reply.body)
    return reply.body


def _containers_sorted(body: bytes, media: str) -> bytes | None:
    """The masked body with every pod's containers sorted by name (None when not applicable)."""
    if media == "application/vnd.kubernetes.protobuf":
        return mask_protobuf(body, normalise_order=True)
    try:
        if media == "application/json":
            doc = orjson.loads(mask_json(body))
        elif media == "application/yaml":
            doc = yaml.safe_load(mask_yaml(body))
        else:
            return None
    except (orjson.JSONDecodeError, yaml.YAMLError):
        return None
    if not isinstance(doc, dict):
        return None
    objects = [doc, *(doc.get("items") or []), *(r.get("object") for r in doc.get("rows") or [])]
    for obj in objects:
        if isinstance(obj, dict) and isinstance(obj.get("containers"), list):
            obj["containers"].sort(key=lambda c: c.get("name", "") if isinstance(c, dict) else "")
    return orjson.dumps(doc)


def unport(reply: Reply, port: int) -> Reply:
    """`reply` with the server's own port (`:<port>` in `/apis`) masked, keeping its length (protobuf)."""
    if b"0.0.0.0/0" not in reply.body:
        return reply
    digits = str(port).encode()
    return Reply(reply.status, reply.headers, reply.body.replace(b":" + digits, b":" + b"P" * len(digits)))


@dataclass(frozen=True, slots=True)
class Outcome:
    """How two replies compare: `same` (after masks and the allowed order normalisation) or not,
    and, when not, what differs (for the report)."""

    same: bool
    what: tuple[str, ...] = ()


def compare(ours: Reply, ref: Reply) -> Outcome:
    what: list[str] = []
    if ours.status != ref.status:
        what.append(f"status {ours.status} vs {ref.status}")
    for name in COMPARED_HEADERS:
        a, b = ours.headers.get(name), ref.headers.get(name)
        if a != b:
            what.append(f"{name}: {a!r} vs {b!r}")
    if ("audit-id" in ours.headers) != ("audit-id" in ref.headers):
        what.append(f"audit-id present: {'audit-id' in ours.headers} vs {'audit-id' in ref.headers}")
    a_body, b_body = masked_body(ours), masked_body(ref)
    if a_body != b_body:
        media = ref.headers.get("content-type", "").split(";")[0].strip()
        a_sorted = _containers_sorted(ours.body, media)
        if a_sorted is None or a_sorted != _containers_sorted(ref.body, media):
            what.append(f"body: {_excerpt(a_body)!r} vs {_excerpt(b_body)!r}")
    return Outcome(not what, tuple(what))


def _excerpt(body: bytes, width: int = 300) -> bytes:
    return body if len(body) <= width else body[:width] + b"..."


# --- the tally --------------------------------------------------------------------------------


@dataclass
class Tally:
    """Every comparison of the session, for the summary the suite prints."""

    identical: Counter[str] = field(default_factory=Counter)
    """Per group (`discovery`, `kubectl 1.27`, ...): comparisons that came out equal."""
    listed: Counter[str] = field(default_factory=Counter)
    """Per difference id (`deliberate`): comparisons that differ exactly as listed."""
    unexplained: list[str] = field(default_factory=list)
    resolved: list[str] = field(default_factory=list)
    """Pending differences (owned by another change) that no longer differ."""
    notes: list[str] = field(default_factory=list)
    """Facts measured on the way (family sets, how long a restarted pod stays hidden)."""

    @property
    def total(self) -> int:
        return sum(self.identical.values()) + sum(self.listed.values()) + len(self.unexplained)
