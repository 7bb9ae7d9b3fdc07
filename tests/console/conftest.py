"""The console served for real: the API's app (console included) under uvicorn on a loopback
port, signing in against the session's in-process OpenID Connect provider (tests/oidc.py),
and a headless Chromium (Debian's chromium and chromedriver, installed by `make test`)."""

from __future__ import annotations

import base64
import dataclasses
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from pydantic import SecretStr

from api.app import create_app
from infra.wiring import Services
from tests.oidc import CLIENT_ID, CLIENT_SECRET, OidcProvider
from tests.serving import free_port

SCREENSHOTS = Path(__file__).resolve().parents[2] / ".test-output" / "screenshots"
CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
WIDTHS = {"desktop": 1280, "phone": 390}


def with_provider(services: Services, provider: OidcProvider, **settings: object) -> Services:
    """The session's services, their settings naming `provider` as the staff's sign-in."""
    changed = services.settings.model_copy(
        update={
            "oidc_issuer": provider.issuer,
            "oidc_client_id": CLIENT_ID,
            "oidc_client_secret": SecretStr(CLIENT_SECRET),
            **settings,
        }
    )
    return dataclasses.replace(services, settings=changed)


@contextmanager
def served(services: Services, provider: OidcProvider) -> Iterator[str]:
    """The API and console over `services` under uvicorn in a thread; yields the base URL."""
    app = create_app(with_provider(services, provider))
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not server.started:
        assert time.monotonic() < deadline, "the console did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(10)


@pytest.fixture(scope="session")
def console_url(services: Services, oidc_provider: OidcProvider) -> Iterator[str]:
    """The base URL of the API and console over the session's services."""
    with served(services, oidc_provider) as url:
        yield url


@pytest.fixture(scope="session")
def browser() -> Iterator[Any]:
    """Headless Chromium through chromedriver, logging every network request it makes."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    missing = [p for p in (CHROMIUM, CHROMEDRIVER) if not Path(p).exists()]
    assert not missing, f"{missing} missing: `make browser` installs chromium and chromium-driver"
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu"):
        options.add_argument(arg)
    options.add_argument(f"--window-size={WIDTHS['desktop']},900")
    options.set_capability("goog:loggingPrefs", {"performance": "ALL"})
    driver = webdriver.Chrome(options=options, service=Service(CHROMEDRIVER))
    driver.implicitly_wait(0)
    try:
        yield driver
    finally:
        driver.quit()


@pytest.fixture
def shoot(browser: Any) -> Callable[[str], None]:
    """Screenshot the current page, whole, at the desktop and the phone width.

    Each width must show the page without sideways scrolling.
    """

    def take(name: str) -> None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        for label, width in WIDTHS.items():
            _emulate(browser, width, 900)
            height = int(browser.execute_script("return document.documentElement.scrollHeight"))
            _emulate(browser, width, min(max(height, 600), 8000))
            wide = int(browser.execute_script("return document.documentElement.scrollWidth"))
            assert wide <= width, f"{name} is {wide} px wide at {width} px"
            shot = browser.execute_cdp_cmd("Page.captureScreenshot", {"format": "png"})
            (SCREENSHOTS / f"{name}-{label}.png").write_bytes(base64.b64decode(shot["data"]))
        browser.execute_cdp_cmd("Emulation.clearDeviceMetricsOverride", {})

    return take


def _emulate(browser: Any, width: int, height: int) -> None:
    browser.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": width < 600},
    )
