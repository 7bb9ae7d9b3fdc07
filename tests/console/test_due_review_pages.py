"""The accounts due for review a page at a time: the work queue's and the report page's "Next
page", over HTTP and in a real browser, on a ledger of their own (so the pages hold only the
accounts opened here).

The pages are made small (3 rows) so that seven accounts due make three pages.
"""

from __future__ import annotations

import csv
import html
import io
import re
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit
from uuid import UUID

import pytest
from selenium.webdriver.common.by import By

from api.views import encode_cursor, encode_page_cursor
from infra.wiring import Services
from tests.console.conftest import served
from tests.console.test_browser import sign_in, wait_for
from tests.console.test_reports import cells, signed_in
from tests.oidc import OidcProvider
from tests.support import own_ledger

SHOWN = 3
REPORT_PAGE = "/console/reports/accounts-due-for-review"


@pytest.fixture(scope="module")
def due() -> Iterator[tuple[Services, list[str]]]:
    """A ledger of seven accounts due for review (opened 900 to 600 days ago) and one that is
    not; yields it with the due accounts' references, stalest first."""
    with own_ledger() as services:
        now = datetime.now(UTC)
        refs = [f"DUE-{n}" for n in range(7)]
        for n, ref in enumerate([*refs, "RECENT"]):
            services.ledger.open_account(
                external_ref=ref,
                segment="gold" if n % 2 else "silver",
                service_plan="standard",
                channel="store",
                customer={"name": f"Due Customer {n}"},
                occurred_at=now - timedelta(days=900 - 50 * n if ref != "RECENT" else 3),
                meta={"actor": "t"},
            )
        services.readmodels.rebuild("directory")
        yield services, refs


@pytest.fixture
def small_pages(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("console.work_queue.DUE_SHOWN", SHOWN)
    monkeypatch.setattr("console.reports.PAGE_ROWS", SHOWN)


def queue_refs(page: str) -> list[str]:
    return re.findall(r'href="/console/accounts/[^"#]+#confirm">([^<]+)</a>', page)


def link(page: str, label: str) -> str | None:
    """The address of the link called `label` on `page`, or None."""
    found = re.search(rf'<a href="([^"]+)"(?: rel="next")?>{label}</a>', page)
    return html.unescape(found.group(1)) if found else None


@pytest.mark.usefixtures("small_pages")
def test_the_work_queue_pages_the_accounts_due_with_next_and_first_links(
    due: tuple[Services, list[str]], auth: Callable[..., dict[str, str]]
) -> None:
    services, refs = due
    client = signed_in(services, "customer_service")
    first = client.get("/console/work-queue")
    assert first.status_code == 200
    assert queue_refs(first.text) == refs[:3]
    assert "7 accounts due; 3 shown here, the oldest" in first.text
    assert link(first.text, "First page") is None
    seen, page = [], first
    for expected in (refs[3:6], refs[6:]):
        address = link(page.text, "Next page")
        assert address is not None and address.startswith("/console/work-queue?due_cursor=")
        assert address.endswith("#due")
        page = client.get(address)
        assert page.status_code == 200
        assert queue_refs(page.text) == expected
        assert link(page.text, "First page") == "/console/work-queue#due"
        seen += expected
    assert link(page.text, "Next page") is None  # the last page
    assert "7 accounts due; 1 shown here, after those of the pages before" in page.text
    assert refs[:3] + seen == refs  # every account due once, stalest first
    # The work queue's cursor is the API's for the report: the same page there.
    (cursor,) = parse_qs(urlsplit(link(first.text, "Next page") or "").query)["due_cursor"]
    api_page = client.get(
        "/v1/reports/accounts-due-for-review",
        params={"cursor": cursor, "limit": "3"},
        headers=auth("customer_service"),
    )
    assert [r["external_ref"] for r in api_page.json()["rows"]] == refs[3:6]


@pytest.mark.usefixtures("small_pages")
def test_the_report_page_pages_the_accounts_due_and_the_downloads_hold_them_all(
    due: tuple[Services, list[str]],
) -> None:
    services, refs = due
    client = signed_in(services, "customer_service")
    page = client.get(f"{REPORT_PAGE}?days=365")
    assert page.status_code == 200
    shown = [row[1] for row in cells(page.text)]
    assert "7 rows, oldest first; 3 on this page, the downloads hold them all." in page.text
    for _ in range(2):
        address = link(page.text, "Next page")
        assert address is not None and address.startswith(f"{REPORT_PAGE}?from=")
        assert "days=365" in address and "&cursor=" in address
        page = client.get(address)
        assert page.status_code == 200
        assert link(page.text, "First page") is not None
        shown += [row[1] for row in cells(page.text)]
    assert link(page.text, "Next page") is None
    assert shown == refs
    download = client.get(f"{REPORT_PAGE}/download?days=365&format=csv")
    assert [row[1] for row in list(csv.reader(io.StringIO(download.text)))[1:]] == refs


@pytest.mark.parametrize(
    "cursor",
    [
        "not a cursor",
        "\x00",
        "a\x00b",
        "A" * 201,
        "9" * 4000,
        encode_cursor(datetime(2024, 1, 1, tzinfo=UTC), UUID(int=1)),  # the directory's
        encode_page_cursor("accounts-summary", (datetime(2024, 1, 1, tzinfo=UTC), UUID(int=1))),
    ],
)
def test_a_cursor_the_console_did_not_give_is_a_400_page_in_words(
    due: tuple[Services, list[str]], cursor: str
) -> None:
    services, _ = due
    client = signed_in(services, "customer_service")
    for path, name in (("/console/work-queue", "due_cursor"), (REPORT_PAGE, "cursor")):
        answer = client.get(path, params={name: cursor})
        assert answer.status_code == 400, (path, answer.text[:300])
        assert answer.headers["content-type"].startswith("text/html")
        assert "This address is not valid" in answer.text or "cursor is not one" in answer.text


@pytest.mark.slow
@pytest.mark.usefixtures("small_pages")
def test_next_page_in_the_browser_walks_every_account_due(
    browser: Any, oidc_provider: OidcProvider, due: tuple[Services, list[str]], shoot: Any
) -> None:
    services, refs = due

    def rows() -> list[str]:
        section = wait_for(browser, "#due")
        return [a.text for a in section.find_elements(By.CSS_SELECTOR, "tbody a")]

    with served(services, oidc_provider) as base:
        sign_in(browser, base, oidc_provider, "cs-paige", ["customer_service"])
        browser.find_element(By.LINK_TEXT, "Work queue").click()
        assert rows() == refs[:3]
        seen = rows()
        for expected in (refs[3:6], refs[6:]):
            browser.find_element(By.LINK_TEXT, "Next page").click()
            wait_for(browser, "#due .pager")
            assert "due_cursor=" in browser.current_url and browser.current_url.endswith("#due")
            assert rows() == expected
            seen += expected
            if expected == refs[3:6]:
                shoot("work-queue-due-next-page")
        assert seen == refs
        assert not browser.find_elements(By.LINK_TEXT, "Next page")
        browser.find_element(By.LINK_TEXT, "First page").click()
        wait_for(browser, "#due")
        assert rows() == refs[:3]
        # The report page pages the same list.
        browser.get(f"{base}{REPORT_PAGE}?days=365")
        wait_for(browser, "#report-table")
        browser.find_element(By.LINK_TEXT, "Next page").click()
        table = wait_for(browser, "#report-table")
        lines = table.find_elements(By.CSS_SELECTOR, "tbody tr")
        assert [tr.find_elements(By.TAG_NAME, "td")[1].text for tr in lines] == refs[3:6]
        assert browser.find_elements(By.LINK_TEXT, "First page")
        shoot("report-due-next-page")
