"""The admin pages in a real browser, signed in through the OpenID Connect flow: a read-model
rebuild followed to done, guidelines with their messages, dead letters listed and replayed on
a real embedded broker and the words shown when it is away, and a refused non-admin.

Screenshots of every page, at 1280 and 390 px, go to .test-output/screenshots/admin-*.png.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import psycopg
import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.common.keys import Keys

from infra.broker import stop_embedded_broker
from infra.wiring import Services
from tests.console.conftest import served
from tests.console.test_admin_dead_letters import dead_lettered, stack  # noqa: F401  (a fixture)
from tests.console.test_audit_browser import labelled
from tests.console.test_browser import flashed, sign_in, text, wait_for
from tests.kafka.conftest import Stack
from tests.oidc import OidcProvider
from tests.support import TEST_DATABASE_URL, open_plain

pytestmark = pytest.mark.slow

Shoot = Callable[[str], None]


def test_an_admin_rebuilds_a_read_model_and_follows_it_to_done(
    browser: Any, console_url: str, oidc_provider: OidcProvider, services: Services, shoot: Shoot
) -> None:
    open_plain(services.ledger, "Rebuild Browser")
    services.readmodels.rebuild("kpis")  # its position rows exist, for the lock below
    sign_in(browser, console_url, oidc_provider, "adm-rita", ["admin"])
    browser.find_element(By.LINK_TEXT, "Admin").click()
    wait_for(browser, "#model-kpis")
    labelled(browser)
    shoot("admin-read-models")

    schema = services.settings.readmodel_schema
    with psycopg.connect(TEST_DATABASE_URL) as conn:
        # Holding kpis' position rows (as the projector does for a batch) keeps the
        # rebuild waiting at its start, so the page meets it running.
        lock = f"SELECT 1 FROM {schema}.positions WHERE projection = 'kpis' FOR UPDATE"
        conn.execute(lock.encode())
        button = browser.find_element(By.CSS_SELECTOR, "button[aria-label='Rebuild kpis']")
        button.send_keys(Keys.ENTER)  # from the keyboard
        bar = wait_for(browser, "progress#job-bar")
        assert "/console/admin/rebuilds/" in browser.current_url
        assert bar.get_attribute("value") == "0"
        assert "Rebuild of read model kpis" in text(browser)
        label = browser.find_element(By.CSS_SELECTOR, "label[for=job-bar]")
        assert label.text == "Events replayed"
        shoot("admin-rebuild-progress")
        conn.rollback()  # well within the 5 s statement timeout of the rebuild's wait
    outcome = wait_for(browser, "#rebuild-outcome", timeout=30)
    assert outcome.text.startswith("Done:") and "replayed into kpis" in outcome.text
    # The page learnt it by polling: the done fragment told the live region.
    announced = browser.find_element(By.ID, "job-announce")
    assert announced.get_attribute("aria-live") == "polite"
    assert announced.get_attribute("textContent") == "The rebuild is done."
    shoot("admin-rebuild-done")

    browser.find_element(By.LINK_TEXT, "Back to the read models").click()
    row = wait_for(browser, "#model-kpis")
    assert "events, 0 parked, by adm-rita" in row.text

    # Guidelines: a target that is not a number is refused next to its field.
    browser.find_element(By.LINK_TEXT, "Guidelines").click()
    target = wait_for(browser, "#g-satisfaction-target")
    labelled(browser)
    shoot("admin-guidelines")
    target.clear()
    target.send_keys("plenty", Keys.ENTER)
    target = wait_for(browser, "#g-satisfaction-target[aria-invalid=true]")
    message = browser.find_element(By.ID, target.get_attribute("aria-describedby"))
    assert message.text.startswith("Input should be a valid number")
    shoot("admin-guidelines-invalid")


def test_someone_not_an_admin_is_refused_the_admin_pages(
    browser: Any, console_url: str, oidc_provider: OidcProvider, shoot: Shoot
) -> None:
    sign_in(browser, console_url, oidc_provider, "cs-ivy", ["customer_service"])
    assert not browser.find_elements(By.LINK_TEXT, "Admin")
    browser.get(f"{console_url}/console/admin/dead-letters")
    assert "Refused" in text(browser) and "this needs one of the roles: admin" in text(browser)
    shoot("admin-refused")
    # An auditor reads the read models' status, without a rebuild button or dead letters.
    sign_in(browser, console_url, oidc_provider, "aud-olu", ["auditor"])
    browser.find_element(By.LINK_TEXT, "Admin").click()
    wait_for(browser, "#model-directory")
    assert not browser.find_elements(By.CSS_SELECTOR, "button[aria-label^='Rebuild']")
    assert not browser.find_elements(By.LINK_TEXT, "Dead letters")


def test_dead_letters_are_listed_and_replayed_and_the_broker_away_is_said_in_words(
    browser: Any,
    oidc_provider: OidcProvider,
    stack: Stack,  # noqa: F811
    shoot: Shoot,
) -> None:
    dead_lettered(stack, b"<not json/>", b'{"specversion": "1.0", "id": "x"}')
    with served(stack.services, oidc_provider) as base:
        sign_in(browser, base, oidc_provider, "adm-sam", ["admin"])
        browser.get(f"{base}/console/admin/dead-letters")
        caption = wait_for(browser, "#letters-caption")
        assert caption.text == "2 dead letters, 2 not replayed yet."
        assert "&lt;not json/&gt;" in browser.page_source
        labelled(browser)
        shoot("admin-dead-letters")

        replay = browser.find_element(
            By.CSS_SELECTOR, "button[aria-label='Replay the dead letter at partition 0, offset 0']"
        )
        replay.send_keys(Keys.ENTER)
        assert flashed(browser, "Replayed 1 dead letter to crmledger.integration-events")
        assert "1 not replayed yet" in browser.find_element(By.ID, "letters-caption").text
        shoot("admin-dead-letters-replayed")

        stop_embedded_broker(stack.settings.home)
        browser.refresh()
        alert = wait_for(browser, "#broker-away")
        assert alert.text.startswith("The message broker cannot be reached")
        assert "Try again once it is back." in alert.text
        shoot("admin-dead-letters-away")
