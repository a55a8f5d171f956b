"""Giving freed heap memory back to the system (glibc), once per scrape cycle; mappings that grow
over a cycle kept out of the cyclic collector's frequent walks (`old_dicts`).

Why: a cycle allocates and frees the same large objects again and again (at 1000 nodes, ~20
frames of ~100 KB from the scrape worker, the per-node usage dicts of 1-2 KB, the snapshot's
dict of 30,000 entries, its ownership map, the publish lists). CPython serves objects above 512
bytes from glibc's malloc, whose main heap only shrinks from its top; freed chunks in the middle
stay resident and, as the mix of sizes shifts, new requests extend the heap instead of reusing
them. Measured on the serving process with a scrape worker at 1000 x 30 without API load:
`[heap]` grew 40 -> 64 MiB in 75 s (~5 MiB per cycle) while tracemalloc's total of live Python
allocations stayed flat (`python -m bench.tracediff`): fragmentation, not live data.
`malloc_trim(0)` returns every free page of every arena (glibc >= 2.8 also releases free pages
in the middle of the heap, with madvise), so what stays resident is what is in use.

`trim()` is a no-op where there is no glibc (musl, macOS): the symbol is looked up once.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import gc
import logging
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)


def _malloc_trim() -> Callable[[int], int] | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
        function = libc.malloc_trim
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_size_t]
    function.restype = ctypes.c_int
    return function


_TRIM = _malloc_trim()


def trim() -> bool:
    """Release free heap pages to the system; whether anything was released (False without glibc).

    Blocking: at ~1 GiB of heap it walks the free lists in a few ms (ctypes releases the GIL, but
    the arena lock is held, so call it between units of work, not in a thread)."""
    if _TRIM is None:
        return False
    return bool(_TRIM(0))


def old_dicts(count: int) -> tuple[dict[Any, Any], ...]:
    """`count` empty dicts in the cyclic collector's oldest generation, for mappings that grow over
    a cycle to one entry per pod. Runs a middle collection (`gc.collect(1)`: ~4 ms at 5000 x 30).

    Why: CPython tracks a dict when the first tracked key or value goes in (a new pod's key, a
    tuple made this cycle) and puts it in the young generation then; a young collection moves it
    to the middle one, which the explicit young collections (`gc.collect(0)`, storage and API
    steps) keep from being collected until late in the cycle. That middle collection then walked
    each such mapping full: 28-37 ms with the storage's two mappings of every pod and the fragment
    cache's two (150,000 entries each at 5000 x 30), once or twice per cycle in the serving
    process, in the slow-step log of a bench run (docs/performance.md, round 8). Tracked while
    still empty, the dicts are moved to the oldest generation by this collection, where only the
    full collections walk them. A full collection untracks a dict in which nothing is tracked, and
    one tracked again afterwards starts young: rare (a full collection every ~15 cycles at 5000 x
    30), and such a dict is walked full by one middle collection at most."""
    made: list[dict[Any, Any]] = []
    for _ in range(count):
        mapping: dict[Any, Any] = {None: []}  # a list in a display: the dict is tracked
        del mapping[None]
        made.append(mapping)
    gc.collect(1)
    return tuple(made)
