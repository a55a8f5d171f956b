"""Whole-list bodies kept between requests as their objects' encoded pieces, in response order.

A list without selectors (all pods, one namespace's pods, all nodes) in JSON is the same bytes for
every request of one snapshot and one pod-cache state, except the `creationTimestamp` of each
object, which is the response time. `CachedList` keeps such a body, chunk by chunk, as a tuple of
the pieces of its objects' fragments (`render.Fragment`: the same bytes objects the fragment
cache holds, so a cached list costs 5 pointers per object, not a copy of the body) with an empty
slot where each object's `creationTimestamp` goes. Serving it again is, per chunk, a list of those
pieces, one slice assignment of `now` into the slots and one `b"".join`: C-level work, ~60 ms of
CPU for the 56 MB all-pods list of 150,000 pods, in steps (re-assembling every object's fragment
takes ~0.5 s). A copy of the body's bytes between the timestamps (what was kept before) held ~51 MiB
more per cached all-pods list of 150,000 pods (tracemalloc at 5000 x 30, docs/performance.md).

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

PIECES = 5
"""Pieces per object in a chunk: the comma before it (empty before the list's first object), its
head, the slot for `now`, its metadata tail and its body tail."""
NOW_SLOT = 2
"""Index of the first object's `now` slot in a chunk; the others follow every `PIECES`."""


class CachedList(NamedTuple):
    """One JSON `<Kind>List` body of one snapshot and one lister state (see the module notes)."""

    snapshot: object
    state: Sequence[object]
    """What the lister returned (compared with `==`, identity first)."""
    order: Sequence[Any]
    """The selected infos (selectors do not apply: every listed object) in response order."""
    head: bytes
    chunks: list[tuple[bytes, ...]]
    """Per chunk of objects: its pieces (`chunk_pieces`)."""
    stamps: Stamps
    """The served objects' timestamps, to the millisecond (`count_stamps`); `stamps.size` is how
    many objects the list holds."""

    def pieces(self, now: bytes) -> Iterator[bytes]:
        """The body in pieces (list head, one piece per chunk, list tail), as `render.list_pieces`."""
        yield self.head
        for pieces in self.chunks:
            joined = list(pieces)
            joined[NOW_SLOT::PIECES] = [now] * (len(pieces) // PIECES)
            yield b"".join(joined)
        yield LIST_TAIL


def chunk_pieces(fragments: Sequence[Fragment], first: bool) -> tuple[bytes, ...]:
    """The pieces of one chunk of list items (`PIECES` per object, an empty `now` slot each):
    with `now` in the slots, their concatenation is the chunk's part of the body, with the
    separating comma in front unless it is the `first` chunk. A tuple: the collector untracks it
    at its first young collection (a list of the all-pods list's 750,000 pieces would be walked
    by every young collection until it is old)."""
    pieces: list[bytes] = []
    for f in fragments:
        pieces += (b",", f[HEAD], b"", f[META_TAIL], f[BODY_TAIL])
    if first and pieces:
        pieces[0] = b""
    return tuple(pieces)


def count_stamps(counts: Counter[int], fragments: Iterable[Fragment]) -> None:
    """Counts the fragments' timestamps by millisecond into `counts` (for `stamps_of`)."""
    counts.update([f[TIMESTAMP] // 1_000_000 for f in fragments])


def stamps_of(counts: Counter[int]) -> Stamps:
    """The `Stamps` (seconds) of what `count_stamps` counted: one per distinct millisecond, so
    sorting them is cheap whatever the number of objects."""
    return promtext.count_stamps({ms / 1000: n for ms, n in counts.items()})
