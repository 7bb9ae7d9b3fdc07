"""How a report's rows are written out: JSON values, CSV text, and the document around them.

Money stays exact (Decimal as a string, the way pydantic writes it); other
numbers are rounded to 6 decimals, which hides float noise (9.200000000000001)
and is finer than any KPI needs. That is the API's contract. The CSV that the
console and the command line hand to people (`readable_csv`) writes every
figure as report_format shows it instead: money in its currency's minor units,
hours with one decimal, a guideline met or missed in words.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

from projections.report_format import Kind, kind_of, plain
from projections.reports import Report, ReportScope

# A cell starting with one of these is a formula to a spreadsheet (CSV injection).
FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def json_value(value: Any) -> Any:
    """A row value as JSON holds it."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, float):
        return round(value, 6)
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, UUID):
        return str(value)
    return value


def json_rows(columns: Sequence[str], rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Rows as JSON objects with the report's columns, in order."""
    return [{c: json_value(row[c]) for c in columns} for row in rows]


def csv_cell(value: Any) -> str:
    """A row value as a CSV cell: empty for null, true/false for booleans."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        # Text from callers (an external_ref, a store) must not run as a formula.
        return "'" + value if value.startswith(FORMULA_STARTS) else value
    return str(json_value(value))


def csv_text(
    columns: Sequence[str],
    rows: Iterable[Mapping[str, Any]],
    cell: Callable[[str, Mapping[str, Any]], str] | None = None,
) -> str:
    """The rows as CSV: a header row of the columns, then one line per row.

    `cell` writes a row's column (by default `csv_cell` of its value).
    """
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    for row in rows:
        writer.writerow([cell(c, row) if cell else csv_cell(row[c]) for c in columns])
    return out.getvalue()


def readable_cell(column: str, row: Mapping[str, Any]) -> str:
    """A cell of the CSV for people (report_format.plain), never a formula."""
    text = plain(column, row)
    if kind_of(column, row) is Kind.TEXT and text.startswith(FORMULA_STARTS):
        return "'" + text
    return text


def readable_csv(report: Report, scope: ReportScope, rows: Iterable[Mapping[str, Any]]) -> str:
    """The report as CSV for people: its columns as the header, figures as they read."""
    return csv_text(report.columns_for(scope), rows, readable_cell)


def report_document(
    report: Report, scope: ReportScope, rows: Iterable[Mapping[str, Any]]
) -> dict[str, Any]:
    """The JSON answer: the report, its parameters, its columns and its rows."""
    columns = report.columns_for(scope)
    return {
        "report": report.name,
        "title": report.title,
        "from": scope.start.isoformat(),
        "to": scope.end.isoformat(),
        "period": scope.period if report.periodic else None,
        "segment": scope.segment,
        "channel": scope.channel,
        "split": scope.split,
        "days": scope.days if "days" in report.options else None,
        "columns": list(columns),
        "rows": json_rows(columns, rows),
    }
