"""A report as an Excel workbook (.xlsx), for people who go on working with the figures.

The first sheet is the report: a header row of the columns' labels (bold,
frozen, filterable), then one row per report row. Figures are numeric cells
whose number format shows them as the console does (money in its currency's
minor units, hours with one decimal, shares as percentages); days and moments
are date cells; text is always text, never a formula. A second sheet says
which report and parameters these are.
"""

from __future__ import annotations

import io
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from zoneinfo import ZoneInfo

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font
from openpyxl.utils import get_column_letter
from openpyxl.worksheet.worksheet import Worksheet

from projections.report_format import NUMERIC, Kind, kind_of, label, places, shown
from projections.report_queries import ReportScope
from projections.reports import Report

XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
DAY_FORMAT = "yyyy-mm-dd"
MOMENT_FORMAT = "yyyy-mm-dd hh:mm"
# Wide enough for a header and the widest cell, but a long text wraps instead of a
# column that runs off the screen.
MAX_WIDTH = 60


def number_format(kind: Kind, row: Mapping[str, Any], signed: bool = False) -> str:
    """The Excel number format of a figure of `kind` in `row` (`signed` shows a plus)."""
    decimals = places(kind, row)
    fraction = "." + "0" * decimals if decimals else ""
    shape = f"#,##0{fraction}%" if kind is Kind.SHARE else f"#,##0{fraction}"
    if kind is Kind.SCORE or kind is Kind.RATIO:
        shape = f"0{fraction}"
    # Three sections: positive, negative, zero.
    return f"+{shape};-{shape};{shape}" if signed else shape


def report_workbook(
    report: Report,
    scope: ReportScope,
    rows: Iterable[Mapping[str, Any]],
    zone: str = "UTC",
    written_at: datetime | None = None,
) -> bytes:
    """The report's rows as an .xlsx file: the report sheet, then the sheet about it."""
    book = Workbook()
    sheet = book.active
    assert sheet is not None  # a new workbook has its one sheet
    sheet.title = report.name[:31]  # Excel's limit on a sheet's name
    columns = report.columns_for(scope)
    headers = [_heading(c, zone) for c in columns]
    sheet.append(headers)
    for cell in sheet[1]:
        cell.font = Font(bold=True)
        cell.alignment = Alignment(wrap_text=False, vertical="top")
    widths = [len(h) + 3 for h in headers]  # bold and the filter button take room
    for line, row in enumerate(rows, start=2):
        for col, column in enumerate(columns, start=1):
            _write(sheet, line, col, column, row, zone)
            widths[col - 1] = max(widths[col - 1], len(shown(column, row, zone)) + 2)
    for col, width in enumerate(widths, start=1):
        sheet.column_dimensions[get_column_letter(col)].width = min(width, MAX_WIDTH)
    sheet.freeze_panes = "A2"
    sheet.auto_filter.ref = sheet.dimensions
    _about(book.create_sheet("About"), report, scope, zone, written_at)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def _heading(column: str, zone: str) -> str:
    # Excel holds no time zone: the heading says which one the moments are in.
    if column == "details_current_at":
        return f"{label(column)} ({zone})"
    return label(column)


def _write(
    sheet: Worksheet, line: int, col: int, column: str, row: Mapping[str, Any], zone: str
) -> None:
    value = row.get(column)
    kind = kind_of(column, row)
    cell = sheet.cell(row=line, column=col)
    if kind in NUMERIC:
        if value is None or isinstance(value, bool):
            return
        cell.value = _figure(value, kind, row)
        cell.number_format = number_format(kind, row, signed=column == "deviation")
    elif kind is Kind.MOMENT and isinstance(value, datetime):
        cell.value = value.astimezone(ZoneInfo(zone)).replace(tzinfo=None)
        cell.number_format = MOMENT_FORMAT
    elif kind is Kind.DAY and isinstance(value, date):
        cell.value = value
        cell.number_format = DAY_FORMAT
    elif text := shown(column, row, zone):  # words even for none where there are some
        cell.value = text
        # openpyxl takes a string starting with "=" for a formula: text stays text.
        cell.data_type = "s"


def _figure(value: Any, kind: Kind, row: Mapping[str, Any]) -> Decimal | float | int:
    # Money exact in its minor units; other figures as they are (the format rounds what
    # shows, a sum in the sheet uses the whole value), without float noise.
    if kind is Kind.MONEY:
        exact = Decimal(str(value)) if isinstance(value, float) else Decimal(value)
        return exact.quantize(Decimal(1).scaleb(-places(kind, row)))
    if isinstance(value, int):
        return value
    return round(float(value), 6)


def _about(
    sheet: Worksheet,
    report: Report,
    scope: ReportScope,
    zone: str,
    written_at: datetime | None,
) -> None:
    facts: list[tuple[str, Any]] = [
        ("Report", report.title),
        ("Name", report.name),
        ("From", scope.start),
        ("To (excluded)", scope.end),
    ]
    if report.periodic:
        facts.append(("Period", scope.period))
    facts += [("Segment", scope.segment or "all"), ("Channel", scope.channel or "all")]
    if "split" in report.options:
        facts.append(("Split by", scope.split or "none"))
    if "days" in report.options:
        facts.append(("Days without update", scope.days))
    facts.append(("Time zone", zone))
    if written_at is not None:
        facts.append(("Written at", written_at.astimezone(ZoneInfo(zone)).replace(tzinfo=None)))
    for name, value in facts:
        sheet.append([name, value])
        cell = sheet.cell(row=sheet.max_row, column=2)
        if isinstance(value, datetime):
            cell.number_format = MOMENT_FORMAT
        elif isinstance(value, date):
            cell.number_format = DAY_FORMAT
        elif isinstance(value, str):
            cell.data_type = "s"
        sheet.cell(row=sheet.max_row, column=1).font = Font(bold=True)
    sheet.column_dimensions["A"].width = max(len(name) for name, _ in facts) + 3
    sheet.column_dimensions["B"].width = min(max(len(str(v)) for _, v in facts) + 3, MAX_WIDTH)
