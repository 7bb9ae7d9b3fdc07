"""The console's report pages and downloads over HTTP, without a browser.

The module has its own ledger holding the known history of
tests/projections/history.py (April 2026), plus June sales in yen (no minor
unit) and Bahraini dinars (three), so every figure checked is worked out by hand.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import re
from collections.abc import Iterator
from datetime import date, datetime
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook

from api.app import create_app
from domain import activities as act
from infra.wiring import Services
from projections.reports import REPORTS
from tests.projections import history
from tests.support import own_ledger

APRIL = "from=2026-04-01&to=2026-05-01"
JUNE = "from=2026-06-01&to=2026-07-01"


@pytest.fixture(scope="module")
def ledger() -> Iterator[Services]:
    with own_ledger() as services:
        ids = history.build(services)
        meta = {**history.META, "actor": "clerk-2"}
        for sale in (
            act.Purchase(Decimal("1500"), Decimal("900"), "JPY", "tokyo"),
            act.Purchase(Decimal("12.345"), Decimal("2.005"), "BHD", "manama"),
        ):
            services.ledger.record_activity(ids["A"], sale, history.day(6, 3), meta)
        services.readmodels.rebuild("kpis")
        yield services


def signed_in(services: Services, role: str) -> TestClient:
    """A client signed in through the dev sign-in (an embedded-default configuration)."""
    changed = services.settings.model_copy(update={"database_url": None})
    client = TestClient(create_app(dataclasses.replace(services, settings=changed)))
    page = client.get("/console/dev-sign-in").text
    token = re.search(r'name="csrf_token" value="([^"]+)"', page)
    assert token
    answer = client.post(
        "/console/dev-sign-in",
        data={"csrf_token": token.group(1), "name": f"{role} tester", "role": role},
        follow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    return client


def cells(page: str) -> list[list[str]]:
    """The report table's rows as the text of their cells."""
    body = page.split('<table class="report', 1)[1].split("</table>", 1)[0]
    rows = re.findall(r"<tr>(.*?)</tr>", body.split("<tbody>", 1)[1], re.S)
    found = (re.findall(r"<td[^>]*>(.*?)</td>", row, re.S) for row in rows)
    return [[re.sub(r"<[^>]+>", "", c).strip() for c in line] for line in found]


def test_the_index_lists_the_reports_each_department_reads(ledger: Services) -> None:
    finance = signed_in(ledger, "finance").get("/console/reports")
    assert finance.status_code == 200
    assert re.findall(r'href="/console/reports/([a-z-]+)"', finance.text) == ["financial-summary"]
    assert 'href="/console/reports"' in finance.text  # in the navigation
    auditor = signed_in(ledger, "auditor").get("/console/reports").text
    assert set(re.findall(r'href="/console/reports/([a-z-]+)"', auditor)) == set(REPORTS)
    admin = signed_in(ledger, "admin").get("/console/reports").text
    assert "Your roles read no report" in admin
    assert 'href="/console/reports"' not in admin  # not offered in the navigation


def test_a_report_page_shows_the_table_a_chart_and_its_downloads(ledger: Services) -> None:
    page = signed_in(ledger, "finance").get(f"/console/reports/financial-summary?{APRIL}")
    assert page.status_code == 200, page.text
    april = ["2026-04-01", "2026-05-01"]
    assert cells(page.text) == [
        [*april, "gold", "app", "web", "HKD", "1", "0", "50.50", "30.25"],
        [*april, "gold", "store", "central", "HKD", "1", "1", "90.00", "36.00"],
        [*april, "standard", "store", "central", "USD", "1", "0", "20.00", "15.00"],
    ]
    assert '<th scope="col" class="num">Turnover</th>' in page.text
    canvas = re.search(r"<canvas [^>]*>", page.text)
    assert canvas and 'role="img"' in canvas.group(0)
    assert "The table below holds the same figures." in canvas.group(0)
    assert "/console/static/vendor/chart.js-4.6.1/chart.umd.min.js" in page.text
    links = re.findall(r'href="(/console/reports/financial-summary/download\?[^"]+)"', page.text)
    assert [link.replace("&amp;", "&") for link in links] == [
        f"/console/reports/financial-summary/download?{APRIL}&period=month&format={f}"
        for f in ("csv", "xlsx")
    ]
    # The form shows the choices the table is for.
    assert 'id="report-from" name="from" type="date" value="2026-04-01"' in page.text
    assert '<option value="month" selected>' in page.text


def test_money_has_its_currencys_minor_units_on_the_page(ledger: Services) -> None:
    page = signed_in(ledger, "management").get(f"/console/reports/financial-summary?{JUNE}")
    money = {row[5]: row[8:] for row in cells(page.text)}
    assert money == {"BHD": ["12.345", "10.340"], "JPY": ["1,500", "600"]}


def test_a_department_that_may_not_read_a_report_gets_the_refusal_page(ledger: Services) -> None:
    client = signed_in(ledger, "finance")
    for path in ("/console/reports/scheme-review", "/console/reports/scheme-review/download"):
        refused = client.get(f"{path}?from=nonsense")  # refused before its choices are read
        assert refused.status_code == 403
        assert "Refused" in refused.text and "management" in refused.text
        assert "<table" not in refused.text
    missing = client.get("/console/reports/everything")
    assert missing.status_code == 404 and "no report is named" in missing.text


@pytest.mark.parametrize(
    ("query", "says", "field"),
    [
        ("from=2026-13-01", "from must be a day as YYYY-MM-DD", "from"),
        ("from=2026-05-01&to=2026-04-01", "must be before to", "from"),
        ("to=1800-01-01", "to must lie between", "to"),
        ("period=year", "period must be one of", "period"),
        ("segment=platinum", "segment must be one of", "segment"),
        ("split=store", "split must be one of", "split"),
        ("from=2000-01-01&to=2026-01-01&period=day", "choose a longer period", "period"),
    ],
)
def test_choices_the_report_refuses_are_said_in_words_beside_the_form(
    ledger: Services, query: str, says: str, field: str
) -> None:
    page = signed_in(ledger, "management").get(f"/console/reports/service-kpis?{query}")
    assert page.status_code == 422
    assert says in page.text
    assert 'role="alert" id="report-problem"' in page.text
    marked = re.findall(r'id="report-([a-z]+)"[^>]*aria-invalid="true"', page.text)
    assert marked == [field]
    assert "<table" not in page.text and "Download" not in page.text


def test_days_are_checked_on_the_report_that_takes_them(ledger: Services) -> None:
    client = signed_in(ledger, "customer_service")
    page = client.get("/console/reports/accounts-due-for-review?days=many")
    assert page.status_code == 422 and "days must be a whole number" in page.text
    assert re.search(r'id="report-days"[^>]*aria-invalid="true"', page.text)
    page = client.get("/console/reports/service-kpis?days=3")
    assert page.status_code == 422 and "takes no days" in page.text


def test_the_scheme_review_says_met_or_missed_against_target_and_previous_period(
    ledger: Services,
) -> None:
    page = signed_in(ledger, "management").get(f"/console/reports/scheme-review?{APRIL}")
    assert page.status_code == 200
    rows = {row[0]: row for row in cells(page.text)}
    header = ["KPI", "Value", "Guideline", "Target", "Met", "Against target", "Previous period"]
    assert all(f">{h}</th>" in page.text for h in header)
    assert rows["First response, p90 (h)"] == [
        "First response, p90 (h)", "9.2", "at most", "24.0", "met", "-14.8", "30.0", "down",
    ]  # fmt: skip
    assert rows["Churn"][1:6] == ["20.0%", "at most", "5.0%", "missed", "+15.0%"]
    assert rows["Satisfaction"][4] == "missed"
    assert rows["Turnover"][4] == "no target"
    assert rows["Turnover"][3] == "\N{EN DASH}none"  # a dash to see, "none" to screen readers
    assert "<strong>3 met</strong> and <strong>2 missed</strong>" in page.text
    assert '<span class="mark missed">missed</span>' in page.text
    assert "<canvas" not in page.text  # a list to read, not a shape to see


def test_the_csv_download_writes_figures_as_they_read(ledger: Services) -> None:
    client = signed_in(ledger, "management")
    answer = client.get(f"/console/reports/financial-summary/download?{JUNE}&format=csv")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "text/csv; charset=utf-8"
    assert (
        'filename="financial-summary_2026-06-01_2026-07-01.csv"'
        in (answer.headers["content-disposition"])
    )
    header, *rows = list(csv.reader(io.StringIO(answer.text)))
    assert header == list(REPORTS["financial-summary"].columns)
    assert [row[5:] for row in rows] == [
        ["BHD", "1", "0", "12.345", "10.340"],
        ["JPY", "1", "0", "1500", "600"],
    ]
    review = client.get(f"/console/reports/scheme-review/download?{APRIL}&format=csv").text
    churn = next(row for row in csv.reader(io.StringIO(review)) if row[0] == "churn_rate")
    assert churn == ["churn_rate", "0.200", "at most", "0.050", "missed", "0.150", "0.333", "down"]


def test_the_excel_download_holds_numbers_dates_and_formats(ledger: Services) -> None:
    client = signed_in(ledger, "management")
    answer = client.get(f"/console/reports/financial-summary/download?{JUNE}&format=xlsx")
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("application/vnd.openxmlformats")
    sheet = load_workbook(io.BytesIO(answer.content))["financial-summary"]
    header = [c.value for c in sheet[1]]
    assert header[:2] == ["Period from", "Period to (excluded)"]
    assert header[-2:] == ["Turnover", "Profit"]
    for col, name in enumerate(header, start=1):
        width = sheet.column_dimensions[sheet.cell(1, col).column_letter].width
        assert width >= len(name) + 1, name  # the header is not cut
    bhd, jpy = list(sheet.iter_rows(min_row=2))
    assert bhd[0].value == datetime(2026, 6, 1) and bhd[0].is_date
    assert bhd[0].number_format == "yyyy-mm-dd"
    assert (bhd[8].value, bhd[8].number_format) == (12.345, "#,##0.000")
    assert (jpy[8].value, jpy[8].number_format) == (1500, "#,##0")
    assert (jpy[6].value, jpy[6].data_type) == (1, "n")
    about = {
        row[0].value: row[1].value
        for row in load_workbook(io.BytesIO(answer.content))["About"].iter_rows()
    }
    assert about["From"] == datetime(2026, 6, 1) and about["Period"] == "month"


def test_the_excel_scheme_review_has_hours_shares_and_words(ledger: Services) -> None:
    client = signed_in(ledger, "auditor")
    answer = client.get(f"/console/reports/scheme-review/download?{APRIL}&format=xlsx")
    sheet = load_workbook(io.BytesIO(answer.content)).active
    assert sheet is not None
    rows = {row[0].value: row for row in sheet.iter_rows(min_row=2)}
    p90 = rows["First response, p90 (h)"]
    assert [c.value for c in p90] == [
        "First response, p90 (h)", 9.2, "at most", 24, "met", -14.8, 30, "down",
    ]  # fmt: skip
    assert p90[1].number_format == "#,##0.0"
    assert p90[5].number_format == "+#,##0.0;-#,##0.0;#,##0.0"
    churn = rows["Churn"]
    assert (churn[1].value, churn[1].number_format, churn[4].value) == (0.2, "#,##0.0%", "missed")
    assert [c.value for c in rows["Visits"]][3:6] == [None, "no target", None]


def test_the_period_and_split_choices_reach_the_report(ledger: Services) -> None:
    client = signed_in(ledger, "customer_service")
    page = client.get(f"/console/reports/service-kpis?{APRIL}&period=week&split=channel")
    assert page.status_code == 200
    lines = cells(page.text)
    assert {row[0] for row in lines} == {
        "2026-04-01",
        "2026-04-06",
        "2026-04-13",
        "2026-04-20",
        "2026-04-27",
    }
    assert {row[2] for row in lines} == {"app", "online", "phone", "store"}
    assert "First response p90 per period, by channel" in page.text
    due = client.get(f"/console/reports/accounts-due-for-review?{APRIL}&days=30")
    refs = [row[1] for row in cells(due.text)]
    assert refs == ["E", "F", "A"]
    assert 'id="report-days"' in due.text and 'value="30"' in due.text
    assert re.search(r'<a class="mono" href="/console/accounts/[0-9a-f-]{36}">', due.text)
    assert date(2026, 4, 1).isoformat() in due.text
