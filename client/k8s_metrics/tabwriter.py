"""The tab writer kubectl prints tables with (``printers.GetNewTabWriter``: ``github.com/liggitt/tabwriter``,
a fork of Go's ``text/tabwriter``), so that our tables match kubectl's byte for byte, including its quirks:
trailing padding, and rows with fewer cells ending a column block.

Settings: minimum cell width 6, padding 3, pad character space, flag ``RememberWidths`` (a column block is
never narrower than an earlier block of the same column). The tab width (4) is unused with a space pad.
"""

from __future__ import annotations

from typing import Final

__all__ = ["tabwrite"]

_MIN_WIDTH: Final = 6
_PADDING: Final = 3


def tabwrite(text: str) -> str:
    """Align ``text`` whose cells are terminated by ``\\t`` and lines by ``\\n``, as Go's tabwriter would
    print it on ``Flush``. Widths count code points (Go counts runes)."""
    out: list[str] = []
    pending: list[list[str]] = []
    max_widths: list[int] = []  # RememberWidths: survives flushes
    for line in text.split("\n"):
        cells = line.split("\t")
        pending.append(cells)
        # A line with a single cell cannot affect later columns: Go flushes the block there.
        if len(cells) == 1:
            out.extend(_format(pending, max_widths))
            pending = []
    if pending:
        out.extend(_format(pending, max_widths))
    return "\n".join(out)


def _format(lines: list[list[str]], max_widths: list[int]) -> list[str]:
    """Go's ``Writer.format``: a column block is a run of consecutive lines that have a tab-terminated
    cell in that column; its width is the widest cell plus padding (at least the minimum width, and with
    ``RememberWidths`` at least the widest earlier block of that column)."""
    result = [""] * len(lines)
    widths: list[int] = []

    def write_lines(line0: int, line1: int) -> None:
        for i in range(line0, line1):
            result[i] = "".join(
                cell + " " * (widths[j] - len(cell)) if j < len(widths) else cell
                for j, cell in enumerate(lines[i])
            )

    def format_block(line0: int, line1: int) -> None:
        column = len(widths)
        this = line0
        while this < line1:
            if column >= len(lines[this]) - 1:  # the last cell of a line is not in a column
                this += 1
                continue
            write_lines(line0, this)
            line0 = this
            width = _MIN_WIDTH
            while this < line1 and column < len(lines[this]) - 1:
                width = max(width, len(lines[this][column]) + _PADDING)
                this += 1
            if len(max_widths) < len(widths):
                max_widths.extend(widths[len(max_widths) :])
            if len(max_widths) == column:
                max_widths.append(width)
            else:
                width = max(width, max_widths[column])
                max_widths[column] = width
            widths.append(width)
            format_block(line0, this)
            widths.pop()
            line0 = this
        write_lines(line0, line1)

    format_block(0, len(lines))
    return result
