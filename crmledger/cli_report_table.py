"""`crmledger report --format table`: a report as a terminal table that reads as the console's.

Figures as report_format shows them (money in its currency's minor units,
hours with one decimal, shares in percent, met or missed in words), right
aligned; headings are the columns' labels, which wrap between words, never
inside one. A report too wide for the terminal even so is printed as one
block per row (heading and value on each line), as the console does on a
phone, so nothing is ever cut.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.table import Table
from rich.text import Text

from projections.report_format import is_numeric, label, shown


def report_table(
    console: Console,
    title: str,
    columns: Sequence[str],
    rows: Sequence[Mapping[str, Any]],
    zone: str = "UTC",
) -> RenderableType:
    """The rows as a table that fits `console`'s width, else as a block per row."""
    cells = [[shown(c, row, zone) for c in columns] for row in rows]
    numeric = [any(is_numeric(c, row) for row in rows) for c in columns]
    headings = [label(c) for c in columns]
    natural, narrowest = [], []
    for i, heading in enumerate(headings):
        texts = [heading, *(line[i] for line in cells)]
        natural.append(max(len(t) for t in texts))
        # A figure is never wrapped; a heading or a text only between its words.
        words = [w for t in texts for w in t.split()]
        figures = [len(line[i]) for line in cells] if numeric[i] else []
        narrowest.append(max([len(w) for w in words] + figures + [1]))
    # Each column's padding and the rules between columns (no outer border or padding).
    room = console.width - 3 * len(columns) + 3
    widths = _fitted(natural, narrowest, room)
    if widths is None:
        return _blocks(title, headings, cells)
    table = Table(title=title, title_justify="left", show_edge=False, pad_edge=False)
    for i, heading in enumerate(headings):
        table.add_column(heading, justify="right" if numeric[i] else "left", width=widths[i])
    for line in cells:
        table.add_row(*line)
    return table


def _fitted(natural: list[int], narrowest: list[int], room: int) -> list[int] | None:
    # Rich squeezes a table too wide for the terminal by cutting words and figures;
    # here the column with the most to spare gives up a character at a time instead.
    if sum(narrowest) > room:
        return None
    widths = list(natural)
    while sum(widths) > room:
        spare = [w - n for w, n in zip(widths, narrowest, strict=True)]
        widths[spare.index(max(spare))] -= 1
    return widths


def _blocks(title: str, headings: Sequence[str], cells: Sequence[Sequence[str]]) -> Group:
    parts: list[RenderableType] = [Text(title, style="italic")]
    for n, line in enumerate(cells, start=1):
        block = Table(show_header=False, box=None, padding=(0, 1), title=f"row {n}")
        block.add_column(style="bold", overflow="fold")
        block.add_column(overflow="fold")
        for heading, value in zip(headings, line, strict=True):
            block.add_row(heading, value)
        parts.append(block)
    if not cells:
        parts.append(Text("no rows"))
    return Group(*parts)
