"""The audit pages in a real browser, signed in through the OpenID Connect flow: a
verification followed to its result, the digest and its copy button, the event feed and the
access log filtered, and every control labelled and reachable from the keyboard.

Screenshots of every page, at 1280 and 390 px, go to .test-output/screenshots/audit-*.png.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support.ui import Select, WebDriverWait

from infra.wiring import Services
from tests.console.test_audit_pages import open_with_history
from tests.console.test_browser import sign_in, text, wait_for
from tests.oidc import OidcProvider

pytestmark = pytest.mark.slow

Shoot = Callable[[str], None]

UNLABELLED = """
    return [...document.querySelectorAll('input:not([type=hidden]), select, textarea, button')]
      .filter(e => e.tagName === 'BUTTON'
        ? !(e.textContent.trim() || e.getAttribute('aria-label'))
        : !(e.labels && e.labels.length) && !e.getAttribute('aria-label'))
      .map(e => e.outerHTML);
"""


def labelled(browser: Any) -> None:
    """Every control of the page has a label (or a button its words)."""
    assert browser.execute_script(UNLABELLED) == [], browser.current_url


def test_an_auditor_verifies_copies_the_digest_and_filters_the_feed(
    browser: Any, console_url: str, oidc_provider: OidcProvider, services: Services, shoot: Shoot
) -> None:
    account_id = open_with_history(services, "Browser Audit")
    sign_in(browser, console_url, oidc_provider, "aud-ann", ["auditor"])
    browser.find_element(By.LINK_TEXT, "Audit").click()

    # The digest comes in once the page shows (htmx), read-only and selectable.
    digest = wait_for(browser, "#digest-value")
    value = digest.get_attribute("value")
    assert re.fullmatch(r"[0-9a-f]{64}", value)
    assert digest.get_attribute("readonly") is not None
    position = browser.find_element(By.ID, "digest-position").get_attribute("value")
    assert services.ledger.digest(int(position))[1] == value
    labelled(browser)

    # The copy button is there once the script runs, and works from the keyboard.
    browser.execute_cdp_cmd(
        "Browser.grantPermissions",
        {"origin": console_url, "permissions": ["clipboardReadWrite", "clipboardSanitizedWrite"]},
    )
    copy = browser.find_element(By.CSS_SELECTOR, "button[data-copy='digest-value']")
    assert copy.is_displayed() and copy.text == "Copy digest"
    copy.send_keys(Keys.ENTER)
    WebDriverWait(browser, 5).until(
        lambda b: b.find_element(By.ID, "digest-copied").text == "Digest copied."
    )
    pasted = browser.execute_async_script(
        "navigator.clipboard.readText().then(arguments[0], e => arguments[0]('refused: ' + e))"
    )
    assert pasted == value
    shoot("audit-verify-form")

    # Verify the whole ledger: the job's page follows it to the result.
    browser.find_element(By.ID, "verify-account").send_keys(Keys.ENTER)
    WebDriverWait(browser, 10).until(lambda b: "/console/audit/verify/" in b.current_url)
    outcome = wait_for(browser, "#verify-outcome", timeout=30)
    assert outcome.text.startswith("No break found:")
    assert "Verification of the whole ledger up to position" in text(browser)
    shoot("audit-verify-result")

    # One account, with an ID that is not one: the message stands next to the field.
    browser.get(f"{console_url}/console/audit")
    field = wait_for(browser, "#verify-account")
    field.send_keys("not-an-id", Keys.ENTER)
    field = wait_for(browser, "#verify-account[aria-invalid=true]")
    described = field.get_attribute("aria-describedby").split()
    assert browser.find_element(By.ID, described[-1]).text.startswith("an account ID is a UUID")
    shoot("audit-verify-invalid")

    # The event feed, filtered by account and type.
    browser.find_element(By.LINK_TEXT, "Event feed").click()
    wait_for(browser, "#feed-account").send_keys(str(account_id))
    Select(browser.find_element(By.ID, "feed-type")).select_by_value("DetailsUpdated")
    browser.find_element(By.ID, "feed-limit").send_keys("10", Keys.ENTER)
    WebDriverWait(browser, 10).until(lambda b: "type=DetailsUpdated" in b.current_url)
    rows = browser.find_elements(By.CSS_SELECTOR, "table.feed tbody tr")
    assert len(rows) == 1 and "Details updated" in rows[0].text and "+852 5555 0101" in rows[0].text
    labelled(browser)
    shoot("audit-events")

    # Unfiltered with a page of 2: "Next page" moves on.
    browser.get(f"{console_url}/console/audit/events?account_id={account_id}&limit=2")
    assert len(browser.find_elements(By.CSS_SELECTOR, "table.feed tbody tr")) == 2
    browser.find_element(By.LINK_TEXT, "Next page").click()
    rows = WebDriverWait(browser, 10).until(
        lambda b: b.find_elements(By.CSS_SELECTOR, "table.feed tbody tr")
    )
    assert len(rows) == 1 and "Details confirmed" in rows[0].text

    # The access log: the feed pages just read were logged in the auditor's name.
    browser.find_element(By.LINK_TEXT, "Access log").click()
    wait_for(browser, "#log-account").send_keys(str(account_id))
    browser.find_element(By.ID, "log-actor").send_keys("aud-ann", Keys.ENTER)
    WebDriverWait(browser, 10).until(lambda b: "actor=aud-ann" in b.current_url)
    rows = browser.find_elements(By.CSS_SELECTOR, "table tbody tr")
    assert rows and all("audit-feed" in r.text for r in rows)
    labelled(browser)
    shoot("audit-access-log")
    # An auditor may not answer a data access request: no tab, and the address is refused.
    assert not browser.find_elements(By.LINK_TEXT, "Personal data")
    browser.get(f"{console_url}/console/audit/personal-data")
    assert "Refused" in text(browser) and "this needs one of the roles: admin" in text(browser)


def test_an_admin_exports_personal_data_and_others_are_refused_the_audit(
    browser: Any, console_url: str, oidc_provider: OidcProvider, services: Services, shoot: Shoot
) -> None:
    account_id = open_with_history(services, "Export Browser")
    sign_in(browser, console_url, oidc_provider, "adm-eve", ["admin"])
    browser.get(f"{console_url}/console/audit/personal-data")
    field = wait_for(browser, "#export-account")
    labelled(browser)
    shoot("audit-personal-data")
    field.send_keys(str(account_id), Keys.ENTER)  # a download: the page stays
    WebDriverWait(browser, 10).until(
        lambda b: any(
            e.what == "personal-data" and e.actor == "adm-eve"
            for e in services.access_log.query(account_id=account_id)
        )
    )
    assert browser.current_url == f"{console_url}/console/audit/personal-data"

    sign_in(browser, console_url, oidc_provider, "mkt-joe", ["marketing"])
    assert not browser.find_elements(By.LINK_TEXT, "Audit")  # not offered
    browser.get(f"{console_url}/console/audit")
    assert "Refused" in text(browser)
    assert "this needs one of the roles: admin, auditor" in text(browser)
    shoot("audit-refused")
