"""/docs and /redoc in a real browser: they render offline, and "Authorize" takes a token.

The pages' every request goes to the service itself; in Swagger UI a bearer
token given to "Authorize" is sent with "Try it out", so a guarded route
answers 200 where it answered 401 before. Uses the console's live server and
headless Chromium (tests/console/conftest.py).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions as ec
from selenium.webdriver.support.ui import WebDriverWait

from api.auth import issue_token
from tests.support import JWT_SECRET

pytestmark = pytest.mark.slow

GUIDELINES = "#operations-guidelines-get_guidelines_v1_guidelines_get"


def wait_for(browser: Any, css: str, timeout: float = 20) -> Any:
    return WebDriverWait(browser, timeout).until(
        ec.presence_of_element_located((By.CSS_SELECTOR, css))
    )


def click(browser: Any, css: str) -> None:
    element = WebDriverWait(browser, 20).until(ec.element_to_be_clickable((By.CSS_SELECTOR, css)))
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", element)
    element.click()


def requests_made(browser: Any) -> tuple[list[str], list[str]]:
    """The URLs the pages asked for, and those the browser refused to send (CSP)."""
    events = [json.loads(entry["message"])["message"] for entry in browser.get_log("performance")]
    urls = {
        e["params"]["requestId"]: e["params"]["request"]["url"]
        for e in events
        if e["method"] == "Network.requestWillBeSent"
    }
    blocked = [
        urls.get(e["params"]["requestId"], "?")
        for e in events
        if e["method"] == "Network.loadingFailed" and e["params"].get("blockedReason") == "csp"
    ]
    return list(urls.values()), blocked


def try_guidelines(browser: Any) -> str:
    """Run GET /v1/guidelines from Swagger UI; the status it shows.

    A response shown before is cleared first, so the status read is this run's.
    """
    for clear in browser.find_elements(By.CSS_SELECTOR, f"{GUIDELINES} .btn-clear"):
        clear.click()
    click(browser, f"{GUIDELINES} .execute")
    # The table's header row is a "Code" cell of the same class; the response row follows it.
    cell = wait_for(browser, f"{GUIDELINES} .live-responses-table tr.response .response-col_status")
    WebDriverWait(browser, 20).until(lambda _: cell.text.strip())
    return str(cell.text.strip().split()[0])


def test_the_docs_pages_render_with_nothing_fetched_from_elsewhere(
    browser: Any, console_url: str
) -> None:
    browser.get_log("performance")  # what earlier tests left
    browser.get(f"{console_url}/docs")
    wait_for(browser, ".swagger-ui .opblock")
    browser.get(f"{console_url}/redoc")
    wait_for(browser, "redoc .api-content h1, .api-content h2")
    requested, blocked = requests_made(browser)
    assert any(u.endswith("/docs-assets/swagger-ui-bundle.js") for u in requested)
    assert any(u.endswith("/docs-assets/redoc.standalone.js") for u in requested)
    assert any(u.endswith("/openapi.json") for u in requested)
    outside = [u for u in requested if not u.startswith((console_url + "/", "data:", "blob:"))]
    # ReDoc's sidebar names its logo on a CDN; the pages' policy keeps it from being sent.
    assert outside == blocked
    assert set(outside) <= {"https://cdn.redoc.ly/redoc/logo-mini.svg"}


def test_authorize_sends_the_bearer_token_with_try_it_out(browser: Any, console_url: str) -> None:
    browser.get(f"{console_url}/docs")
    browser.execute_script("window.localStorage.clear()")  # no token kept from before
    browser.refresh()
    click(browser, f"{GUIDELINES} .opblock-summary")
    click(browser, f"{GUIDELINES} .try-out__btn")
    assert try_guidelines(browser) == "401"
    token = issue_token(JWT_SECRET, "docs-reader", ["auditor"], ttl=600)
    click(browser, ".auth-wrapper .authorize")
    field = wait_for(browser, ".modal-ux input[type=text]")
    field.send_keys(token)
    click(browser, ".modal-ux .auth-btn-wrapper .authorize")
    click(browser, ".modal-ux .btn-done")
    assert try_guidelines(browser) == "200"
    # Kept across a new visit (persistAuthorization); not a refresh, which would keep
    # the operation open through the deep link in the address.
    browser.get(f"{console_url}/docs")
    click(browser, f"{GUIDELINES} .opblock-summary")
    click(browser, f"{GUIDELINES} .try-out__btn")
    assert try_guidelines(browser) == "200"
