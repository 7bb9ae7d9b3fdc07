"""Every console form and filter, sent NUL bytes and huge values, answers with a page, never a 5xx.

The forms are read off the pages themselves (every <form> on them, with its
fields), so a form added later is attacked too. A refusal is a 4xx page in
words; nothing hostile is stored.
"""

from __future__ import annotations

from html.parser import HTMLParser
from typing import Any
from urllib.parse import urljoin

import pytest
from fastapi.testclient import TestClient

from infra.wiring import Services
from tests.console.test_sessions import dev_signed_in
from tests.support import open_plain

HOSTILE = ("\x00", "a\x00b", "9" * 400, "x" * 100_000, "-1", "9" * 30, "2024-02-30T25:61")


class Forms(HTMLParser):
    """The forms of a page: action, method and the names of their fields."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[dict[str, Any]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = dict(attrs)
        if tag == "form":
            method = (a.get("method") or "get").lower()
            self.forms.append({"action": a.get("action") or "", "method": method, "fields": {}})
        elif tag in ("input", "select", "textarea") and self.forms and a.get("name"):
            self.forms[-1]["fields"][a["name"]] = a.get("value") or ""


def forms_on(client: TestClient, path: str) -> list[dict[str, Any]]:
    page = client.get(path)
    assert page.status_code < 500, (path, page.status_code)
    parser = Forms()
    parser.feed(page.text)
    for form in parser.forms:
        form["action"] = urljoin(path, form["action"] or path)
    return parser.forms


def attack(client: TestClient, path: str) -> int:
    """Send every form of `path` once per hostile value in each field; the forms sent."""
    sent = 0
    for form in forms_on(client, path):
        if form["action"].endswith(("/sign-out", "/dev-sign-in")):
            continue  # signing out would end the attack
        for name in form["fields"]:
            if name == "csrf_token":
                continue
            for value in HOSTILE:
                data = {**form["fields"], name: value}
                if form["method"] == "post":
                    answer = client.post(form["action"], data=data, follow_redirects=False)
                else:  # an address holds some thousands of characters at most
                    data = {k: v[:4000] for k, v in data.items()}
                    answer = client.get(form["action"], params=data, follow_redirects=False)
                where = (form["action"], name, value[:20], answer.text[:300])
                assert answer.status_code < 500, where
                sent += 1
    return sent


@pytest.mark.slow
@pytest.mark.parametrize(
    ("role", "pages"),
    [
        ("customer_service", ["/console/accounts", "/console/accounts/new", "{account}"]),
        ("marketing", ["/console/reports", "/console/reports/segment-analysis"]),
        ("management", ["/console/reports/scheme-review", "/console/admin/guidelines"]),
        ("auditor", ["/console/audit", "/console/audit/events", "/console/audit/access-log"]),
        ("admin", ["/console/audit/personal-data", "/console/admin", "{account}"]),
    ],
)
def test_every_form_refuses_nul_bytes_and_huge_values_in_words(
    services: Services, role: str, pages: list[str]
) -> None:
    client = dev_signed_in(services, role=role)
    account = open_plain(services.ledger, "Hostile Input")
    sent = sum(attack(client, p.format(account=f"/console/accounts/{account.id}")) for p in pages)
    assert sent > 20  # the pages had forms to attack
    # Nothing hostile reached the ledger: the account's name is as it was opened.
    assert "\x00" not in str(services.ledger.account(account.id).__dict__)
