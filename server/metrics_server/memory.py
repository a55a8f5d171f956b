"""Giving freed heap memory back to the system (glibc), once per scrape cycle.

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
import logging
from collections.abc import Callable

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
