"""Whole-list bodies kept between requests as the bytes between their `creationTimestamp`s.

A list without selectors (all pods, one namespace's pods, all nodes) in JSON is the same bytes for
every request of one snapshot and one pod-cache state, except the `creationTimestamp` of each
object, which is the response time. `CachedList` keeps such a body as segments, chunk by chunk,
so that serving it again is `now.join(segments)` per chunk: C-level copies, ~10 ms of CPU for
the 56 MB all-pods list of 150,000 pods (re-assembling every object's fragment takes ~0.5 s).

Validity: an entry belongs to one snapshot (identity: a published snapshot is immutable) and to
the tuple the lister returned when it was built (`state`). A request compares the lister's
current tuple with it (C-level, identity first: ~1 ms for 150,000 pods); any difference (a pod
added, removed or replaced by an informer event) rebuilds the entry from the fragment cache. The
selected objects in response order are kept too (`order`), so that a new snapshot with the same
pod-cache state skips filtering and sorting.

Freshness: the objects' timestamps are kept counted by millisecond (`stamps`), so that a request
observes one age per served object in a few bisections (`promtext.Histogram.observe_ages`)
instead of 150,000 calls.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from typing import Any, NamedTuple

from metrics_server import promtext
from metrics_server.api.render import BODY_TAIL, HEAD, LIST_TAIL, META_TAIL, TIMESTAMP, Fragment
from metrics_server.promtext import Stamps

SEPARATOR = b"\x00"
"""Marks where `now` goes while a chunk is joined, before it is split into segments. Never part of
an encoded object: orjson writes a NUL inside a string as `\\u0000`, and nothing else holds one."""


class CachedList(NamedTuple):
    """One JSON `<Kind>List` body of one snapshot and one lister state (see the module notes)."""

    snapshot: object
    state: Sequence[object]
    """What the lister returned (compared with `==`, identity first)."""
    order: Sequence[Any]
    """The selected infos (selectors do not apply: every listed object) in response order."""
    head: bytes
    chunks: list[list[bytes]]
    """Per chunk of objects: the segments to join with `now`."""
    stamps: Stamps
    """The served objects' timestamps, to the millisecond (`count_stamps`); `stamps.size` is how
    many objects the list holds."""

    def pieces(self, now: bytes) -> Iterator[bytes]:
        """The body in pieces (list head, one piece per chunk, list tail), as `render.list_pieces`."""
        yield self.head
        for segments in self.chunks:
            yield now.join(segments)
        yield LIST_TAIL


def chunk_segments(fragments: Sequence[Fragment], first: bool) -> list[bytes]:
    """The segments of one chunk of list items: `now.join(result)` is the chunk's piece of the body,
    with the separating comma in front unless it is the `first` chunk."""
    parts: list[bytes] = [] if first else [b","]
    for f in fragments:
        parts += (f[HEAD], SEPARATOR, f[META_TAIL], f[BODY_TAIL], b",")
    if fragments:
        parts.pop()
    return b"".join(parts).split(SEPARATOR)


def count_stamps(counts: Counter[int], fragments: Iterable[Fragment]) -> None:
    """Counts the fragments' timestamps by millisecond into `counts` (for `stamps_of`)."""
    counts.update([f[TIMESTAMP] // 1_000_000 for f in fragments])


def stamps_of(counts: Counter[int]) -> Stamps:
    """The `Stamps` (seconds) of what `count_stamps` counted: one per distinct millisecond, so
    sorting them is cheap whatever the number of objects."""
    return promtext.count_stamps({ms / 1000: n for ms, n in counts.items()})
