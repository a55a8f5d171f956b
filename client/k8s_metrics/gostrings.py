"""Go's string quoting: ``strconv.Quote``, the ``%q`` verb of ``fmt``.

Kubernetes error texts quote names and values with ``%q`` (``pods "web-0" not found``,
``"x" is not a known field selector``); :func:`go_quote` writes the same bytes, so messages built here
match the ones the apiserver and metrics-server send.
"""

from __future__ import annotations

from typing import Final

__all__ = ["go_quote"]

_GO_SHORT_ESCAPES: Final = {
    "\a": "\\a",
    "\b": "\\b",
    "\f": "\\f",
    "\n": "\\n",
    "\r": "\\r",
    "\t": "\\t",
    "\v": "\\v",
}


def go_quote(s: str) -> str:
    """Go's ``strconv.Quote``: double quotes, backslash escapes, printable UTF-8 kept.

    ``go_quote('a"b\\n')`` is ``'"a\\"b\\n"'``; other unprintable characters become ``\\xNN`` (ASCII),
    ``\\uNNNN`` or ``\\UNNNNNNNN``.
    """
    out = ['"']
    for ch in s:
        if ch == '"':
            out.append('\\"')
        elif ch == "\\":
            out.append("\\\\")
        elif ch.isprintable() or ch == " ":
            out.append(ch)
        elif ch in _GO_SHORT_ESCAPES:
            out.append(_GO_SHORT_ESCAPES[ch])
        else:
            cp = ord(ch)
            if cp < 0x80:
                out.append(f"\\x{cp:02x}")
            elif cp <= 0xFFFF:
                out.append(f"\\u{cp:04x}")
            else:
                out.append(f"\\U{cp:08x}")
    out.append('"')
    return "".join(out)
