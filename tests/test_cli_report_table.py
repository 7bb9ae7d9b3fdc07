"""The command line's report tables (crmledger/cli_report_table.py) on rows made here:
figures as they read, headings never cut, and a block per row when the terminal is narrow."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Any

from rich.console import Console

from crmledger.cli_report_table import report_table
from projections.report_format import label
from projections.reports import REPORTS

COLUMNS = REPORTS["financial-summary"].columns
ROWS: list[dict[str, Any]] = [
    dict(zip(COLUMNS, values, strict=True))
    for values in (
        (date(2026, 6, 1), date(2026, 7, 1), "gold", "store", "tokyo", "JPY", 1, 0,
         Decimal("1234567"), Decimal("600")),
        (date(2026, 6, 1), date(2026, 7, 1), "gold", "store", "manama", "BHD", 1, 0,
         Decimal("12.345"), Decimal("10.34")),
    )
]  # fmt: skip


def printed(width: int, columns: Any = COLUMNS, rows: Any = ROWS) -> str:
    console = Console(width=width, record=True, file=None, force_terminal=False)
    with console.capture() as captured:
        console.print(report_table(console, "Financial summary", columns, rows))
    return captured.get()


def test_a_wide_terminal_gets_a_table_of_figures_as_they_read() -> None:
    out = printed(160)
    jpy = next(line for line in out.splitlines() if "JPY" in line)
    assert [c.strip() for c in jpy.split("│")][5:] == ["JPY", "1", "0", "1,234,567", "600"]
    bhd = next(line for line in out.splitlines() if "BHD" in line)
    assert bhd.rstrip().endswith("12.345 │ 10.340")
    assert all(label(c) in out for c in COLUMNS)  # every heading whole, on one line


def test_a_terminal_a_little_narrow_wraps_headings_between_words_only() -> None:
    out = printed(110)
    lines = out.splitlines()
    assert max(len(line) for line in lines) <= 110 and "│" in out  # still a table
    assert not any("Period to (excluded)" in line for line in lines)  # wrapped...
    words = {w for c in COLUMNS for w in label(c).split()}
    assert all(any(w in line for line in lines) for w in words)  # ...between whole words
    assert "1,234,567" in out and "12.345" in out


def test_a_narrow_terminal_gets_a_block_per_row_with_nothing_cut() -> None:
    out = printed(40)
    assert max(len(line) for line in out.splitlines()) <= 40
    assert "Period to (excluded)  2026-07-01" in out
    assert "Turnover              1,234,567" in out
    assert "row 2" in out


def test_met_and_missed_are_words_in_the_scheme_review() -> None:
    columns = REPORTS["scheme-review"].columns
    row = dict.fromkeys(columns)
    row.update(kpi="satisfaction", value=3.6666, comparison="at_least", target=4.0, met=False)
    out = printed(120, columns, [row])
    line = next(line for line in out.splitlines() if "Satisfaction" in line)
    assert [c.strip() for c in line.split("│")][:5] == [
        "Satisfaction", "3.7", "at least", "4.0", "missed",
    ]  # fmt: skip
