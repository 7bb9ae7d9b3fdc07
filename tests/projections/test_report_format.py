"""How report figures read to people (projections/report_format.py), the CSV for people and
the Excel workbook (projections/report_workbook.py), on rows made here."""

from __future__ import annotations

import csv
import io
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pytest
from openpyxl import load_workbook

from projections.report_format import Kind, kind_of, label, plain, shown
from projections.report_output import csv_text, readable_csv
from projections.report_queries import ReportScope
from projections.report_workbook import report_workbook
from projections.reports import REPORTS

APRIL = ReportScope(start=date(2026, 4, 1), end=date(2026, 5, 1), period="month")


@pytest.mark.parametrize(
    ("currency", "amount", "on_page", "in_csv"),
    [
        ("HKD", Decimal("1234.5"), "1,234.50", "1234.50"),
        ("JPY", Decimal("1500"), "1,500", "1500"),
        ("BHD", Decimal("-12.3456"), "-12.346", "-12.346"),
        ("CLF", Decimal("2"), "2.0000", "2.0000"),
        (None, Decimal("7"), "7.00", "7.00"),  # no currency named: two decimals
    ],
)
def test_money_has_its_currencys_minor_units(
    currency: str | None, amount: Decimal, on_page: str, in_csv: str
) -> None:
    row = {"turnover": amount, "currency": currency}
    assert (shown("turnover", row), plain("turnover", row)) == (on_page, in_csv)


def test_hours_have_one_decimal_counts_none_and_shares_a_percent_sign() -> None:
    row: dict[str, Any] = {
        "first_response_hours_p90": 9.200000000000001,
        "complaint_resolution_hours_mean": Decimal("36"),
        "inquiries": 12345,
        "churn_rate": 1 / 3,
        "satisfaction": 3.6666666666666665,
        "new_to_lost_ratio": 2,
        "satisfied_share": None,
    }
    assert [shown(c, row) for c in row] == ["9.2", "36.0", "12,345", "33.3%", "3.7", "2.00", ""]
    assert [plain(c, row) for c in row] == ["9.2", "36.0", "12345", "0.333", "3.7", "2.00", ""]


def test_the_scheme_reviews_figures_follow_each_rows_kpi() -> None:
    churn = {"kpi": "churn_rate", "value": 0.2, "target": 0.05, "deviation": 0.15, "met": False}
    assert kind_of("value", churn) is Kind.SHARE
    assert [shown(c, churn) for c in churn] == ["Churn", "20.0%", "5.0%", "+15.0%", "missed"]
    assert [plain(c, churn) for c in churn] == ["churn_rate", "0.200", "0.050", "0.150", "missed"]
    visits = {"kpi": "visits", "value": 3.0, "target": 2.5, "deviation": 0.5, "met": True}
    assert [shown(c, visits) for c in visits] == ["Visits", "3", "2.50", "+0.50", "met"]
    turnover = {"kpi": "turnover", "value": 160.5, "deviation": -39.5, "comparison": "at_least"}
    assert [shown(c, turnover) for c in turnover] == ["Turnover", "160.50", "-39.50", "at least"]
    assert shown("met", {"met": None}) == ""
    unset = {"kpi": "visits", "value": 3, "target": None, "met": None}
    assert (shown("met", unset), plain("met", unset)) == ("no target", "no target")
    unknown = {"kpi": "churn_rate", "value": None, "target": 0.05, "met": None}
    assert (shown("met", unknown), plain("met", unknown)) == ("no figure", "no figure")


def test_moments_read_in_the_reporting_time_zone_and_labels_are_words() -> None:
    row = {"details_current_at": datetime(2026, 4, 1, 23, 30, tzinfo=UTC)}
    assert shown("details_current_at", row, "Asia/Hong_Kong") == "2026-04-02 07:30"
    assert plain("details_current_at", row) == "2026-04-01T23:30:00+00:00"
    assert label("first_response_hours_p90") == "First response, p90 (h)"
    assert label("something_new") == "Something new"


def test_the_csv_for_people_keeps_the_columns_and_never_a_formula() -> None:
    report = REPORTS["accounts-due-for-review"]
    rows = [
        {
            "account_id": "0b4e",
            "external_ref": "=HYPERLINK(1)",
            "segment": "gold",
            "channel": "store",
            "details_current_at": datetime(2025, 1, 1, tzinfo=UTC),
        }
    ]
    header, line = list(csv.reader(io.StringIO(readable_csv(report, APRIL, rows))))
    assert header == list(report.columns)
    assert line == ["0b4e", "'=HYPERLINK(1)", "gold", "store", "2025-01-01T00:00:00+00:00"]
    # The API's CSV is written as before.
    assert csv_text(["met"], [{"met": True}]) == "met\r\ntrue\r\n"


def test_the_workbook_has_a_header_row_numeric_cells_and_text_that_stays_text() -> None:
    report = REPORTS["staff-performance"]
    rows = [
        {
            "actor": "=cmd|' /C calc'!A0",
            "inquiries_answered": 3,
            "complaints_resolved": 2,
            "first_response_hours_mean": Decimal("8.04"),
            "complaint_resolution_hours_mean": 36.0,
            "satisfied_share": 0.5,
        },
        {
            "actor": "agent-2",
            "inquiries_answered": 1234567,
            "complaints_resolved": 0,
            "first_response_hours_mean": None,
            "complaint_resolution_hours_mean": None,
            "satisfied_share": None,
        },
    ]
    book = load_workbook(io.BytesIO(report_workbook(report, APRIL, rows)))
    sheet = book["staff-performance"]
    assert [c.value for c in sheet[1]] == [
        "Staff member", "Inquiries answered", "Complaints resolved",
        "First response, mean (h)", "Resolution, mean (h)", "Satisfied",
    ]  # fmt: skip
    assert all(c.font.bold for c in sheet[1]) and sheet.freeze_panes == "A2"
    first, second = list(sheet.iter_rows(min_row=2))
    assert (first[0].value, first[0].data_type) == ("=cmd|' /C calc'!A0", "s")
    assert [(c.value, c.number_format) for c in first[1:]] == [
        (3, "#,##0"), (2, "#,##0"), (8.04, "#,##0.0"), (36, "#,##0.0"), (0.5, "#,##0.0%"),
    ]  # fmt: skip
    assert all(c.data_type == "n" for c in first[1:])
    assert [c.value for c in second] == ["agent-2", 1234567, 0, None, None, None]
    widths = [sheet.column_dimensions[c.column_letter].width for c in sheet[1]]
    assert all(w >= len(str(c.value)) + 1 for w, c in zip(widths, sheet[1], strict=True))
    about = {r[0].value: r[1].value for r in book["About"].iter_rows()}
    assert about["Report"] == report.title and about["To (excluded)"] == datetime(2026, 5, 1)
