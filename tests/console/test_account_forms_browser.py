"""The account's life in a real browser, as customer service lives it: open an account through
the form, change its segment, confirm its details, see each on the timeline, look at it as it
stood before the change, close it, and work the accounts due for review from the work queue.

Screenshots of each new page and state, at 1280 and 390 px, go to .test-output/screenshots/.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import Select

from domain.rules import account_id_for
from infra.wiring import Services
from tests.console.test_browser import flashed, sign_in, text, wait_for
from tests.oidc import OidcProvider

pytestmark = pytest.mark.slow

Shoot = Callable[[str], None]


def timeline_entries(browser: Any) -> list[str]:
    """The timeline's entries, newest first."""
    return [str(li.text) for li in browser.find_elements(By.CSS_SELECTOR, "ol.timeline li")]


def submit(browser: Any, label: str) -> None:
    browser.find_element(By.XPATH, f"//button[normalize-space()='{label}']").click()


def test_customer_service_opens_changes_confirms_reads_back_and_closes_an_account(
    browser: Any, console_url: str, oidc_provider: OidcProvider, services: Services, shoot: Shoot
) -> None:
    # An account whose details nobody confirmed for 400 days: due for its review.
    due_ref = f"DUE-{uuid.uuid4().hex[:8]}"
    due = services.ledger.open_account(
        external_ref=due_ref,
        segment="silver",
        service_plan="standard",
        channel="phone",
        customer={"name": "Lo Yuk Ling"},
        occurred_at=datetime.now(UTC) - timedelta(days=400),
        meta={"actor": "seed"},
    )
    services.readmodels.rebuild("directory")
    sign_in(browser, console_url, oidc_provider, "cs-gus", ["customer_service"])

    # Open an account: first sent without a name, then right.
    browser.find_element(By.LINK_TEXT, "Open an account").click()
    wait_for(browser, "#open-external_ref")
    shoot("account-new")
    ref = f"NEW-{uuid.uuid4().hex[:8]}"
    browser.find_element(By.ID, "open-external_ref").send_keys(ref)
    Select(browser.find_element(By.ID, "open-segment")).select_by_value("gold")
    Select(browser.find_element(By.ID, "open-channel")).select_by_value("store")
    browser.find_element(By.ID, "open-email").send_keys("chan.tai.man@example.com")
    browser.find_element(By.ID, "open-reason").send_keys("joined at the Central store")
    submit(browser, "Open account")
    name = wait_for(browser, "#open-name[aria-invalid=true]")
    assert browser.find_element(By.ID, "open-name-error").text == "Field required"
    assert browser.find_element(By.ID, "open-external_ref").get_attribute("value") == ref
    shoot("account-new-invalid")
    name.send_keys("Chan Tai Man")
    submit(browser, "Open account")

    account_id = account_id_for(ref)
    assert flashed(browser, "Account opened (version 1).")
    assert browser.current_url == f"{console_url}/console/accounts/{account_id}"
    entries = timeline_entries(browser)
    assert (
        entries[0].startswith("Account opened") and "Who: cs-gus (customer service)" in entries[0]
    )
    assert "Why: joined at the Central store" in entries[0]
    shoot("account-opened")

    # A moment between the opening and the change, to the second as the field takes it.
    time.sleep(1.2)
    opened = services.ledger.account(account_id).modified_on
    before_change = (opened + timedelta(seconds=1)).replace(microsecond=0)

    Select(browser.find_element(By.ID, "segment-segment")).select_by_value("vip")
    browser.find_element(By.ID, "segment-reason").send_keys("spends over the vip line")
    submit(browser, "Change segment")
    assert flashed(browser, "Segment changed to vip (now version 2).")
    assert timeline_entries(browser)[0].startswith("Segment changed")

    submit(browser, "Confirm details")
    assert flashed(browser, "Details confirmed (now version 3).")
    entries = timeline_entries(browser)
    assert [e.split(" version")[0] for e in entries] == [
        "Details confirmed",
        "Segment changed",
        "Account opened",
    ]
    assert "To segment\nvip" in entries[1] or "To segment vip" in entries[1]
    shoot("account-changed")

    # The account as it stood before the change: typed into the moment field.
    zone = services.settings.timezone
    local = before_change.astimezone(ZoneInfo(zone)).strftime("%Y-%m-%dT%H:%M:%S")
    moment = browser.find_element(By.ID, "at-moment")
    browser.execute_script("arguments[0].value = arguments[1]", moment, local)
    moment.find_element(By.XPATH, "ancestor::form//button").click()
    note = wait_for(browser, "#as-of-note")
    assert note.text.startswith("As it stood at ")
    assert "version 1 of 3" in note.text
    facts = browser.find_element(By.CSS_SELECTOR, "dl.facts").text
    assert "Segment\ngold" in facts or "Segment gold" in facts
    later = browser.find_elements(By.CSS_SELECTOR, "ol.timeline .badge.later")
    assert len(later) == 2  # the change and the confirmation came after
    assert not browser.find_elements(By.ID, "segment-segment")  # no command on a past state
    assert browser.find_element(By.ID, "at-moment").get_attribute("value") == local
    shoot("account-as-of")

    # Close it: the reason is chosen on purpose, and the page then offers no command.
    browser.find_element(By.LINK_TEXT, "See it now").click()
    Select(wait_for(browser, "#close-reason")).select_by_value("customer_request")
    browser.find_element(By.ID, "close-note").send_keys("moving abroad")
    submit(browser, "Close account")
    assert flashed(browser, "Account closed (now version 4).")
    assert timeline_entries(browser)[0].startswith("Account closed")
    assert "This account is closed: it takes no more commands." in text(browser)
    for gone in ("activity-form", "segment-segment", "close-reason", "confirm-reason"):
        assert not browser.find_elements(By.ID, gone), gone
    assert services.ledger.account(account_id).status == "closed"
    shoot("account-closed")

    # The work queue: the account due for review, one click from confirming its details.
    browser.find_element(By.LINK_TEXT, "Work queue").click()
    section = wait_for(browser, "#due")
    assert "Accounts due for their periodic details review" in section.text
    assert "400 days" in section.find_element(By.XPATH, f".//tr[.//a[text()='{due_ref}']]").text
    shoot("account-work-queue-due")
    section.find_element(By.LINK_TEXT, due_ref).click()
    wait_for(browser, "#confirm")
    assert browser.current_url.endswith(f"/console/accounts/{due.id}#confirm")
    submit(browser, "Confirm details")
    assert flashed(browser, "Details confirmed (now version 2).")
    services.readmodels.rebuild("directory")
    browser.find_element(By.LINK_TEXT, "Work queue").click()
    wait_for(browser, "#due")
    assert not browser.find_elements(By.LINK_TEXT, due_ref)
    assert services.ledger.account(UUID(str(due.id))).version == 2


def test_the_new_pages_label_every_control(
    browser: Any, console_url: str, oidc_provider: OidcProvider, services: Services
) -> None:
    sign_in(browser, console_url, oidc_provider, "cs-hal", ["customer_service"])
    account = services.ledger.open_account(
        external_ref=None,
        segment="gold",
        service_plan="standard",
        channel="store",
        customer={"name": "Label Check"},
        occurred_at=datetime.now(UTC),
        meta={"actor": "seed"},
    )
    unlabelled_js = """
        return [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
          .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label'))
          .map(e => e.outerHTML);
    """
    for path in (
        "/console/accounts/new",
        f"/console/accounts/{account.id}",
        f"/console/accounts/{account.id}?version=1",
        "/console/work-queue",
    ):
        browser.get(console_url + path)
        wait_for(browser, "main")
        assert browser.execute_script(unlabelled_js) == [], path


def test_a_stale_page_and_a_closed_account_are_refused_in_words(
    browser: Any, console_url: str, oidc_provider: OidcProvider, services: Services, shoot: Shoot
) -> None:
    account = services.ledger.open_account(
        external_ref=f"OLD-{uuid.uuid4().hex[:8]}",
        segment="gold",
        service_plan="standard",
        channel="store",
        customer={"name": "Stale Page"},
        occurred_at=datetime.now(UTC),
        meta={"actor": "seed"},
    )
    sign_in(browser, console_url, oidc_provider, "cs-ida", ["customer_service"])
    browser.get(f"{console_url}/console/accounts/{account.id}")
    Select(wait_for(browser, "#segment-segment")).select_by_value("vip")
    # Someone else changes the account while this page is open.
    services.ledger.change_plan(account.id, "premium", datetime.now(UTC), {"actor": "other"})
    submit(browser, "Change segment")
    alert = wait_for(browser, "#move .alert")
    assert "Someone changed the account since this page was loaded" in alert.text
    assert services.ledger.account(account.id).segment == "gold"
    shoot("account-stale")

    # The page reloaded offers the forms again; the account closes before one is sent. An
    # activity holds to no version (as in the API), so the refusal is the closed account's.
    browser.get(f"{console_url}/console/accounts/{account.id}")
    Select(wait_for(browser, "#activity-type")).select_by_value("visit")
    Select(wait_for(browser, "#activity-channel")).select_by_value("store")
    browser.find_element(By.ID, "activity-location").send_keys("Central")
    services.ledger.close_account(account.id, "other", "", datetime.now(UTC), {"actor": "other"})
    submit(browser, "Record visit")
    refusal = wait_for(browser, "main > .alert")
    assert refusal.text == f"The activity was not recorded. Account {account.id} is closed."
    assert not browser.find_elements(By.ID, "activity-form")  # and nothing offered now
    assert services.ledger.account(account.id).version == 3
    shoot("account-closed-refused")
