"""The console in a real browser: OpenID Connect sign-in, search, an account, a recorded
activity on the timeline and in the work queue, refusals, and nothing fetched from elsewhere.

Screenshots of every page, at 1280 and 390 px, go to .test-output/screenshots/.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import Select, WebDriverWait

from infra.wiring import Services
from tests.oidc import OidcProvider

pytestmark = pytest.mark.slow

Shoot = Callable[[str], None]


def open_customer(services: Services, name: str) -> tuple[str, str]:
    """An account opened through the ledger and projected into the directory: (id, ref)."""
    ref = f"CON-{uuid.uuid4().hex[:8]}"
    account = services.ledger.open_account(
        external_ref=ref,
        segment="gold",
        service_plan="standard",
        channel="store",
        customer={"name": name, "email": f"{ref.lower()}@example.com", "phone": "+852 9137 4682"},
        occurred_at=datetime.now(UTC),
        meta={"actor": "seed", "reason": "opened for the console test"},
    )
    services.readmodels.rebuild("directory")
    return str(account.id), ref


def wait_for(browser: Any, css: str, timeout: float = 10) -> Any:
    return WebDriverWait(browser, timeout).until(
        ec.presence_of_element_located((By.CSS_SELECTOR, css))
    )


def flashed(browser: Any, text: str, timeout: float = 10) -> bool:
    """Wait until the page's message says `text`.

    After a form is sent the old page, with its own message, is still there for
    a moment: waiting for any `.flash` would read that one, or lose it mid-read.
    """
    says = ec.text_to_be_present_in_element((By.CSS_SELECTOR, ".flash"), text)
    return bool(WebDriverWait(browser, timeout).until(says))


def signed_out(browser: Any) -> None:
    """Forget every cookie, of every path and site (the console's and the provider's).

    delete_all_cookies() reaches only the cookies the current page sees, and the
    console's cookie is Path=/console: after a test ends on /docs it would stay.
    """
    browser.execute_cdp_cmd("Network.clearBrowserCookies", {})


def sign_in(
    browser: Any, base: str, provider: OidcProvider, sub: str, roles: list[str], **claims: Any
) -> None:
    """Sign in through the provider's real redirect flow (authorization code with PKCE)."""
    provider.add_user(sub, roles=roles, name=f"Staff {sub}", **claims)
    signed_out(browser)
    browser.get(f"{base}/console/accounts")
    wait_for(browser, "#oidc-sign-in").click()
    # The provider's own authorization form: who signs in.
    field = wait_for(browser, "input[name=sub]")
    assert urlsplit(browser.current_url).netloc == urlsplit(provider.issuer).netloc
    field.send_keys(sub)
    field.send_keys(Keys.ENTER)
    WebDriverWait(browser, 10).until(lambda b: b.current_url.startswith(f"{base}/console/"))


def text(browser: Any) -> str:
    return str(browser.find_element(By.TAG_NAME, "body").text)


def test_customer_service_finds_an_account_records_an_activity_and_sees_it(
    browser: Any, console_url: str, oidc_provider: OidcProvider, services: Services, shoot: Shoot
) -> None:
    account_id, ref = open_customer(services, "Mei Chan")
    sign_in(browser, console_url, oidc_provider, "cs-amy", ["customer_service"])
    assert browser.current_url == f"{console_url}/console/accounts"
    shoot("accounts-empty")

    search = browser.find_element(By.ID, "search-q")
    search.send_keys(ref)
    search.send_keys(Keys.ENTER)
    WebDriverWait(browser, 10).until(ec.presence_of_element_located((By.LINK_TEXT, ref)))
    assert "Mei Chan" in text(browser)  # customer service sees the name in clear
    shoot("accounts-found")
    browser.find_element(By.LINK_TEXT, ref).click()

    wait_for(browser, "#record-title")
    assert browser.current_url == f"{console_url}/console/accounts/{account_id}"
    assert "Mei Chan" in text(browser)
    shoot("account")

    # Choosing the activity swaps in its fields (htmx), then the form is sent.
    Select(browser.find_element(By.ID, "activity-type")).select_by_value("inquiry_opened")
    wait_for(browser, "#activity-inquiry_id").send_keys("Q-77")
    Select(browser.find_element(By.ID, "activity-channel")).select_by_value("phone")
    browser.find_element(By.ID, "activity-topic").send_keys("billing")
    browser.find_element(By.ID, "activity-reason").send_keys("customer called about a bill")
    browser.find_element(By.CSS_SELECTOR, "#activity-form button[type=submit]").click()

    assert flashed(browser, "Inquiry opened recorded (now version 2)")
    entry = browser.find_element(By.CSS_SELECTOR, "ol.timeline li")  # newest first
    assert "Inquiry opened" in entry.text
    assert "Who: cs-amy (customer service)" in entry.text
    assert "Why: customer called about a bill" in entry.text
    assert "Q-77" in entry.text
    shoot("account-recorded")

    services.readmodels.rebuild("kpis")
    browser.find_element(By.LINK_TEXT, "Work queue").click()
    row = WebDriverWait(browser, 10).until(
        ec.presence_of_element_located((By.XPATH, f"//tr[.//a[text()='{ref}']]"))
    )
    assert "inquiry Q-77" in row.text
    assert "within" in row.text
    shoot("work-queue")


def test_validation_messages_stand_next_to_their_fields(
    browser: Any, console_url: str, oidc_provider: OidcProvider, services: Services, shoot: Shoot
) -> None:
    account_id, _ = open_customer(services, "Ho Ka Yan")
    sign_in(browser, console_url, oidc_provider, "cs-ben", ["customer_service"])
    browser.get(f"{console_url}/console/accounts/{account_id}")
    wait_for(browser, "#activity-amount").send_keys("12.345")
    browser.find_element(By.ID, "activity-currency").send_keys("HKD")
    browser.find_element(By.CSS_SELECTOR, "#activity-form button[type=submit]").click()

    amount = wait_for(browser, "#activity-amount[aria-invalid=true]")
    error = browser.find_element(By.ID, amount.get_attribute("aria-describedby"))
    assert error.text == "must have at most 2 decimals in HKD"
    assert browser.find_element(By.ID, "activity-store-error").text == "Field required"
    assert amount.get_attribute("value") == "12.345"  # what was typed stays
    shoot("account-invalid")

    details = browser.find_element(By.ID, "details-email")
    details.send_keys("not-an-email")
    browser.find_element(By.XPATH, "//button[text()='Update details']").click()
    message = wait_for(browser, "#details-email-error").text
    assert message.startswith("String should match pattern")
    assert "not-an-email" not in str(services.ledger.account(uuid.UUID(account_id)).version)


def test_a_role_the_matrix_refuses_sees_a_refusal_in_words(
    browser: Any, console_url: str, oidc_provider: OidcProvider, services: Services, shoot: Shoot
) -> None:
    account_id, _ = open_customer(services, "Lam Siu Ming")
    sign_in(browser, console_url, oidc_provider, "fin-cat", ["finance"])
    # Finance reads accounts but may not search the directory: it opens one by its ID.
    assert "Your roles may not search the directory" in text(browser)
    assert not browser.find_elements(By.ID, "search-q")
    shoot("accounts-no-search")
    browser.find_element(By.ID, "open-id").send_keys(account_id, Keys.ENTER)
    wait_for(browser, "#details-title")
    page = text(browser)
    assert "L*** S*** M***" in page and "Lam Siu Ming" not in page
    assert "masked for your role" in page
    assert not browser.find_elements(By.ID, "activity-form")
    assert "Your roles may not read the account's history" in page
    shoot("account-masked")

    browser.get(f"{console_url}/console/work-queue")
    assert "Refused" in text(browser)
    assert "this needs one of the roles: customer_service, integration" in text(browser)
    assert not browser.find_elements(By.LINK_TEXT, "Work queue")  # not offered either
    shoot("refused")


def test_a_person_without_any_role_of_the_service_is_refused_at_sign_in(
    browser: Any, console_url: str, oidc_provider: OidcProvider
) -> None:
    oidc_provider.add_user("visitor", roles=["guest"])
    signed_out(browser)
    browser.get(f"{console_url}/console/sign-in")
    wait_for(browser, "#oidc-sign-in").click()
    field = wait_for(browser, "input[name=sub]")
    field.send_keys("visitor")
    field.send_keys(Keys.ENTER)
    WebDriverWait(browser, 10).until(lambda b: b.current_url.startswith(console_url))
    assert "holds none of this service's roles" in text(browser)
    browser.get(f"{console_url}/console/accounts")
    assert browser.current_url.startswith(f"{console_url}/console/sign-in")


def test_sign_out_ends_the_session(
    browser: Any, console_url: str, oidc_provider: OidcProvider, shoot: Shoot
) -> None:
    sign_in(browser, console_url, oidc_provider, "cs-dan", ["customer_service"])
    browser.find_element(By.XPATH, "//button[text()='Sign out']").click()
    assert "You are signed out." in wait_for(browser, ".flash").text
    shoot("sign-in")
    browser.get(f"{console_url}/console/accounts")
    assert browser.current_url == f"{console_url}/console/sign-in?next=/console/accounts"


def test_no_page_fetches_anything_from_outside_the_service(
    browser: Any, console_url: str, oidc_provider: OidcProvider, services: Services
) -> None:
    account_id, ref = open_customer(services, "Wong Tai Sin")
    sign_in(browser, console_url, oidc_provider, "cs-eve", ["customer_service"])
    browser.get_log("performance")  # the sign-in's own visit to the provider is not a page's
    for path in (
        "/console/accounts",
        f"/console/accounts?q={ref}",
        f"/console/accounts/{account_id}",
        f"/console/accounts/{account_id}?activity=feedback",
        "/console/work-queue",
        "/console/nowhere",
    ):
        browser.get(console_url + path)
        wait_for(browser, "main")
    requested = [
        json.loads(entry["message"])["message"]["params"]["request"]["url"]
        for entry in browser.get_log("performance")
        if json.loads(entry["message"])["message"]["method"] == "Network.requestWillBeSent"
    ]
    assert any(u.endswith("/console/static/vendor/htmx-2.0.11/htmx.min.js") for u in requested)
    # data: URLs are the browser's own (a date input's calendar icon): nothing leaves the page.
    outside = [u for u in requested if not u.startswith((console_url + "/", "data:"))]
    assert outside == []


def test_every_control_has_a_label_and_the_keyboard_reaches_the_content(
    browser: Any, console_url: str, oidc_provider: OidcProvider, services: Services
) -> None:
    account_id, _ = open_customer(services, "Chow Yee")
    sign_in(browser, console_url, oidc_provider, "cs-fay", ["customer_service"])
    unlabelled_js = """
        return [...document.querySelectorAll('input:not([type=hidden]), select, textarea')]
          .filter(e => !(e.labels && e.labels.length) && !e.getAttribute('aria-label'))
          .map(e => e.outerHTML);
    """
    for path in ("/console/accounts", f"/console/accounts/{account_id}", "/console/work-queue"):
        browser.get(console_url + path)
        wait_for(browser, "main")
        assert browser.execute_script(unlabelled_js) == [], path
    # The first Tab reaches the skip link, which moves focus to the page's content.
    browser.find_element(By.TAG_NAME, "body").send_keys(Keys.TAB)
    focused = browser.switch_to.active_element
    assert focused.text == "Skip to content"
    focused.send_keys(Keys.ENTER)
    assert browser.switch_to.active_element.get_attribute("id") == "main"
