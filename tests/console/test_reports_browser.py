"""The report pages in a real browser: signed in through OpenID Connect as different
departments, a report read as a table and a chart, a report refused, both downloads
fetched with the browser's session, and nothing requested from outside the service.

The history is February 2024 on the session's ledger (no other test writes there):
two accounts of segment silver opened, one of them closed; sales in Hong Kong dollars
and in yen; two phone inquiries answered after 2 and 30 hours; feedback 5 and 3.
Screenshots of every page, at 1280 and 390 px, go to .test-output/screenshots/.
"""

from __future__ import annotations

import csv
import io
import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import httpx
import pytest
from openpyxl import load_workbook
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select, WebDriverWait

from domain import activities as act
from infra.wiring import Services
from tests.console.test_browser import sign_in, text, wait_for
from tests.oidc import OidcProvider

pytestmark = pytest.mark.slow

Shoot = Callable[[str], None]
FEBRUARY = "from=2024-02-01&to=2024-03-01"


def at(day: int, hours: float = 10) -> datetime:
    return datetime(2024, 2, day, tzinfo=UTC) + timedelta(hours=hours)


@pytest.fixture(scope="module")
def stores(services: Services) -> dict[str, str]:
    """February 2024's history, written through the ledger and projected; its store names."""
    tag = uuid.uuid4().hex[:6]
    store, shop = f"kowloon-{tag}", f"osaka-{tag}"
    meta = {"actor": "seed", "department": "customer_service"}
    ledger = services.ledger

    def open_(day: int) -> uuid.UUID:
        ref = f"RPT-{tag}-{day}"
        customer = {"name": f"Report {day}", "email": f"{ref.lower()}@example.com"}
        return ledger.open_account(
            external_ref=ref, segment="silver", service_plan="standard", channel="store",
            customer=customer, occurred_at=at(day), meta=meta,
        ).id  # fmt: skip

    first, second = open_(1), open_(2)

    def do(account: uuid.UUID, activity: act.Activity, when: datetime, actor: str = "cs") -> None:
        ledger.record_activity(account, activity, when, {**meta, "actor": actor})

    do(first, act.Purchase(Decimal("1234.50"), Decimal("1000.00"), "HKD", store), at(5))
    do(second, act.Purchase(Decimal("1500"), Decimal("900"), "JPY", shop), at(6))
    do(first, act.OpenInquiry("R1", "phone", "billing"), at(12))
    do(first, act.AnswerInquiry("R1", "phone"), at(12, hours=10 + 2), actor="agent-r")
    do(second, act.OpenInquiry("R2", "phone", "billing"), at(13))
    do(second, act.AnswerInquiry("R2", "phone"), at(13, hours=10 + 30), actor="agent-r")
    do(first, act.GiveFeedback(5, ""), at(14))
    do(second, act.GiveFeedback(3, ""), at(15))
    ledger.close_account(second, "customer_request", "", at(20), meta)
    for name in ("directory", "kpis"):
        services.readmodels.rebuild(name)
    return {"HKD": store, "JPY": shop}


def table_rows(browser: Any) -> list[list[str]]:
    rows = browser.find_elements(By.CSS_SELECTOR, "table.report tbody tr")
    return [[td.text for td in row.find_elements(By.TAG_NAME, "td")] for row in rows]


def chart_drawn(browser: Any, key: str) -> bool:
    script = "const c = document.getElementById(arguments[0]); return !!(c && Chart.getChart(c));"
    return bool(browser.execute_script(script, f"chart-{key}"))


def session_client(browser: Any, base: str) -> httpx.Client:
    """An HTTP client holding the browser's session cookie: what its download links fetch."""
    cookies = {c["name"]: c["value"] for c in browser.get_cookies()}
    return httpx.Client(base_url=base, cookies=cookies, timeout=20)


def test_marketing_reads_the_segment_analysis_as_a_chart_and_a_table(
    browser: Any, console_url: str, oidc_provider: OidcProvider, stores: Any, shoot: Shoot
) -> None:
    sign_in(browser, console_url, oidc_provider, "mkt-mia", ["marketing"])
    browser.find_element(By.LINK_TEXT, "Reports").click()
    wait_for(browser, "ul.report-list")
    listed = [a.text for a in browser.find_elements(By.CSS_SELECTOR, "ul.report-list h2 a")]
    assert listed == [
        "Accounts opened, closed and active by segment, plan and channel",
        "Segment sizes, migrations, churn, new against lost, per period",
    ]
    shoot("report-index")

    browser.get(f"{console_url}/console/reports/segment-analysis?{FEBRUARY}")
    # The form chooses the period: weeks instead of the month.
    Select(browser.find_element(By.ID, "report-period")).select_by_value("week")
    browser.find_element(By.XPATH, "//button[text()='Show report']").click()
    WebDriverWait(browser, 10).until(lambda b: "period=week" in b.current_url)
    canvas = wait_for(browser, "canvas#chart-flows")
    assert canvas.get_attribute("role") == "img"
    assert "New against lost customers per period" in canvas.get_attribute("aria-label")
    assert "The table below holds the same figures" in canvas.get_attribute("aria-label")
    WebDriverWait(browser, 10).until(lambda b: chart_drawn(b, "flows") and chart_drawn(b, "sizes"))
    silver = [row for row in table_rows(browser) if row[2] == "silver"]
    assert silver[0][:7] == ["2024-02-01", "2024-02-05", "silver", "0", "2", "2", "0"]
    assert silver[-1][:7] == ["2024-02-26", "2024-03-01", "silver", "1", "1", "0", "0"]
    assert "Churn" in text(browser)
    shoot("report-segment-analysis")


def test_finance_reads_its_report_downloads_it_and_is_refused_another(
    browser: Any, console_url: str, oidc_provider: OidcProvider, stores: Any, shoot: Shoot
) -> None:
    sign_in(browser, console_url, oidc_provider, "fin-fay", ["finance"])
    browser.get(f"{console_url}/console/reports/financial-summary?{FEBRUARY}")
    wait_for(browser, "table.report")
    WebDriverWait(browser, 10).until(lambda b: chart_drawn(b, "money"))
    mine = {row[4]: row for row in table_rows(browser) if row[4] in stores.values()}
    assert mine[stores["HKD"]][5:] == ["HKD", "1", "0", "1,234.50", "234.50"]
    assert mine[stores["JPY"]][5:] == ["JPY", "1", "0", "1,500", "600"]
    shoot("report-financial-summary")

    links = {
        a.text: a.get_attribute("href")
        for a in browser.find_elements(By.CSS_SELECTOR, ".downloads a")
    }
    with session_client(browser, console_url) as client:
        as_csv = client.get(links["Download CSV"])
        as_xlsx = client.get(links["Download Excel (.xlsx)"])
    assert as_csv.status_code == 200, as_csv.text
    header, *rows = list(csv.reader(io.StringIO(as_csv.text)))
    assert header == [
        "period_start", "period_end", "segment", "channel", "store", "currency",
        "purchases", "refunds", "turnover", "profit",
    ]  # fmt: skip
    by_store = {row[4]: row for row in rows}
    assert by_store[stores["HKD"]][5:] == ["HKD", "1", "0", "1234.50", "234.50"]
    assert by_store[stores["JPY"]][5:] == ["JPY", "1", "0", "1500", "600"]

    assert as_xlsx.status_code == 200
    sheet = load_workbook(io.BytesIO(as_xlsx.content))["financial-summary"]
    assert [c.value for c in sheet[1]][-2:] == ["Turnover", "Profit"]
    cells = {row[4].value: row for row in sheet.iter_rows(min_row=2)}
    hkd, jpy = cells[stores["HKD"]], cells[stores["JPY"]]
    assert (hkd[8].value, hkd[8].number_format, hkd[8].data_type) == (1234.5, "#,##0.00", "n")
    assert (jpy[8].value, jpy[8].number_format) == (1500, "#,##0")
    assert hkd[0].is_date and hkd[0].value == datetime(2024, 2, 1)

    # Finance may not read the scheme review: the console's refusal page, nothing of it.
    browser.get(f"{console_url}/console/reports/scheme-review?{FEBRUARY}")
    wait_for(browser, "#error-title")
    assert browser.find_element(By.ID, "error-title").text == "Refused"
    assert "this needs one of the roles: auditor, management" in text(browser)
    assert not browser.find_elements(By.CSS_SELECTOR, "table.report")
    with session_client(browser, console_url) as client:
        refused = client.get(f"/console/reports/scheme-review/download?{FEBRUARY}&format=csv")
    assert refused.status_code == 403 and "Refused" in refused.text
    shoot("report-refused")


def test_management_reads_the_scheme_review_in_words_and_the_service_trend(
    browser: Any, console_url: str, oidc_provider: OidcProvider, stores: Any, shoot: Shoot
) -> None:
    sign_in(browser, console_url, oidc_provider, "mgmt-max", ["management"])
    browser.get(f"{console_url}/console/reports/scheme-review?{FEBRUARY}")
    wait_for(browser, "table.report")
    rows = {row[0]: row for row in table_rows(browser)}
    assert rows["First response, p90 (h)"][1:6] == ["27.2", "at most", "24.0", "missed", "+3.2"]
    assert rows["Satisfaction"][1:5] == ["4.0", "at least", "4.0", "met"]
    assert rows["New to lost"][1:5] == ["2.00", "at least", "1.00", "met"]
    assert [rows["Inquiries"][i] for i in (1, 6, 7)] == ["2", "0", "up"]  # against January
    marks = browser.find_elements(By.CSS_SELECTOR, "table.report .mark")
    assert {m.text for m in marks} == {"met", "missed"}
    assert not browser.find_elements(By.TAG_NAME, "canvas")
    shoot("report-scheme-review")

    browser.get(
        f"{console_url}/console/reports/service-kpis?from=2024-02-01&to=2024-02-19&period=week"
    )
    WebDriverWait(browser, 10).until(lambda b: chart_drawn(b, "times") and chart_drawn(b, "cases"))
    weeks = {row[0]: row for row in table_rows(browser)}
    assert weeks["2024-02-12"][2:5] == ["2", "16.0", "27.2"]
    shoot("report-service-kpis")

    browser.get(f"{console_url}/console/reports/service-kpis?from=2024-03-01&to=2024-02-01")
    assert "must be before to" in wait_for(browser, ".alert").text
    shoot("report-invalid")


def test_report_pages_fetch_nothing_from_outside_and_label_every_control(
    browser: Any, console_url: str, oidc_provider: OidcProvider, stores: Any
) -> None:
    sign_in(browser, console_url, oidc_provider, "aud-ann", ["auditor"])
    browser.get_log("performance")  # the sign-in's own visit to the provider is not a page's
    unlabelled_js = """
        return [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
          .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label'))
          .map(e => e.outerHTML);
    """
    for path in (
        "/console/reports",
        f"/console/reports/accounts-summary?{FEBRUARY}",
        f"/console/reports/accounts-due-for-review?{FEBRUARY}&days=30",
        f"/console/reports/segment-analysis?{FEBRUARY}",
        f"/console/reports/financial-summary?{FEBRUARY}",
        f"/console/reports/service-kpis?{FEBRUARY}&split=channel",
        f"/console/reports/scheme-review?{FEBRUARY}",
        f"/console/reports/staff-performance?{FEBRUARY}",
    ):
        browser.get(console_url + path)
        wait_for(browser, "main")
        assert browser.execute_script(unlabelled_js) == [], path
        assert "Internal error" not in text(browser), path
    requested = [
        json.loads(entry["message"])["message"]["params"]["request"]["url"]
        for entry in browser.get_log("performance")
        if json.loads(entry["message"])["message"]["method"] == "Network.requestWillBeSent"
    ]
    assert any(
        u.endswith("/console/static/vendor/chart.js-4.6.1/chart.umd.min.js") for u in requested
    )
    assert any(u.endswith("/console/static/report-charts.js") for u in requested)
    outside = [u for u in requested if not u.startswith((console_url + "/", "data:"))]
    assert outside == []


def test_the_keyboard_reaches_the_form_the_downloads_and_the_table(
    browser: Any, console_url: str, oidc_provider: OidcProvider, stores: Any
) -> None:
    sign_in(browser, console_url, oidc_provider, "cs-kit", ["customer_service"])
    browser.get(f"{console_url}/console/reports/service-kpis?{FEBRUARY}")
    wait_for(browser, "table.report")
    reached = []
    body = browser.find_element(By.TAG_NAME, "body")
    body.send_keys(Keys.TAB)
    for _ in range(40):
        focused = browser.switch_to.active_element
        reached.append(
            focused.get_attribute("id") or focused.text or focused.get_attribute("class")
        )
        focused.send_keys(Keys.TAB)
    assert reached[0] == "Skip to content"
    for wanted in ("report-from", "report-to", "report-period", "report-split", "Show report",
                   "Download CSV", "Download Excel (.xlsx)", "report-table"):  # fmt: skip
        assert wanted in reached, (wanted, reached)
    # Enter in a field sends the form.
    field = browser.find_element(By.ID, "report-to")
    field.send_keys(Keys.ENTER)
    WebDriverWait(browser, 10).until(lambda b: "period=month" in b.current_url)
