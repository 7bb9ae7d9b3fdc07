"""Opening an account from the console over HTTP: the form, its refusals, and the key that
keeps a form sent twice from opening two accounts."""

from __future__ import annotations

import re
import threading
import uuid

import pytest
from fastapi.testclient import TestClient
from starlette.datastructures import FormData

from console.account_open import form_digest
from domain.errors import AccountNotFound
from domain.rules import account_id_for
from infra.idempotency import Outcome
from infra.wiring import Services
from tests.console.test_account_forms import customer_service, error_next_to, metadata_of_last, post
from tests.console.test_sessions import csrf_of, dev_signed_in
from tests.support import open_plain


@pytest.fixture
def cs(services: Services) -> TestClient:
    return customer_service(services)


def form_key_of(page: str) -> str:
    found = re.search(r'name="form_key" value="([^"]+)"', page)
    assert found, "the form has no key"
    return found.group(1)


def test_customer_service_opens_an_account_and_lands_on_its_page(
    services: Services, cs: TestClient
) -> None:
    page = cs.get("/console/accounts/new")
    assert page.status_code == 200
    ref = f"NEW-{uuid.uuid4().hex[:8]}"
    form = {
        "csrf_token": csrf_of(page.text),
        "form_key": form_key_of(page.text),
        "external_ref": ref,
        "segment": "silver",
        "service_plan": "",
        "channel": "online",
        "name": "Yip Wing Sze",
        "email": "yip@example.com",
        "reason": "walked in to join",
    }
    answer = post(cs, "/console/accounts/new", **form)
    assert answer.status_code == 303
    account_id = account_id_for(ref)
    assert answer.headers["location"] == f"/console/accounts/{account_id}"
    account = services.ledger.account(account_id)
    assert (account.segment, account.service_plan, account.channel) == (
        "silver",
        "standard",
        "online",
    )
    kind, meta = metadata_of_last(services, account_id)
    assert kind == "AccountOpened"
    sub = meta["actor"]
    assert sub.startswith("dev:Cass ") and meta["department"] == "customer_service"
    assert (meta["reason"], meta["source"]) == ("walked in to join", "api")
    shown = cs.get(answer.headers["location"]).text
    assert "Account opened (version 1)." in shown and "Yip Wing Sze" in shown
    # The account shown back is logged as the API's open is.
    with services.pool.connection() as conn:
        whats = {
            r[0]
            for r in conn.execute(
                "SELECT what FROM access_log WHERE actor = %s AND account_id = %s",
                (sub, account_id),
            )
        }
    assert "open" in whats

    # The same form sent again (a double click) opens nothing more: it goes to the account.
    again = post(cs, "/console/accounts/new", **form)
    assert again.status_code == 303 and again.headers["location"] == answer.headers["location"]
    assert services.ledger.account(account_id).version == 1

    # A new form with the same customer number is refused next to that field.
    key = form_key_of(cs.get("/console/accounts/new").text)
    duplicate = post(cs, "/console/accounts/new", **{**form, "form_key": key})
    assert duplicate.status_code == 409
    message = error_next_to(duplicate.text, "open-external_ref")
    assert message == "An account with this customer number exists already."
    assert f'href="/console/accounts/{account_id}"' in duplicate.text
    assert form_key_of(duplicate.text) == key  # nothing was opened with it: it stays

    # The first form's key sent with other values opened an account before: refused.
    other = post(cs, "/console/accounts/new", **{**form, "external_ref": f"{ref}-2"})
    assert other.status_code == 422
    assert "This form opened an account before, with other values." in other.text
    assert form_key_of(other.text) != form["form_key"]
    with pytest.raises(AccountNotFound):
        services.ledger.account(account_id_for(f"{ref}-2"))


def test_a_second_sending_while_the_first_runs_waits_for_its_account(
    services: Services,
) -> None:
    name = f"Dee {uuid.uuid4().hex[:6]}"
    client = dev_signed_in(services, name=name)
    page = client.get("/console/accounts/new").text
    form = {
        "csrf_token": csrf_of(page),
        "form_key": form_key_of(page),
        "segment": "gold",
        "channel": "app",
        "name": "Double Click",
    }
    # The first sending holds the key and is still opening the account...
    first = open_plain(services.ledger, "Double Click")
    sub, key = f"dev:{name}", form["form_key"]
    assert services.idempotency.claim(sub, key, form_digest(FormData(list(form.items())))) is None
    outcome = Outcome(201, first.id, first.version, {})
    finish = threading.Timer(0.5, services.idempotency.complete, (sub, key, outcome))
    finish.start()
    # ...so the second waits for it and goes to that account, opening none of its own.
    second = post(client, "/console/accounts/new", **form)
    finish.join()
    assert second.status_code == 303
    assert second.headers["location"] == f"/console/accounts/{first.id}"


def test_the_open_form_shows_the_apis_messages_next_to_its_fields_and_opens_nothing(
    services: Services, cs: TestClient
) -> None:
    page = cs.get("/console/accounts/new").text
    ref = f"BAD-{uuid.uuid4().hex[:8]}"
    answer = post(
        cs,
        "/console/accounts/new",
        csrf_token=csrf_of(page),
        external_ref=ref,
        segment="",
        channel="online",
        email="not-an-email",
        date_of_birth="2999-01-01",
    )
    assert answer.status_code == 422
    assert error_next_to(answer.text, "open-segment") == "Field required"
    assert error_next_to(answer.text, "open-name") == "Field required"
    assert error_next_to(answer.text, "open-email").startswith("String should match pattern")
    assert error_next_to(answer.text, "open-date_of_birth") == "date_of_birth is in the future"
    assert 'value="not-an-email"' in answer.text  # what was typed stays
    with pytest.raises(AccountNotFound):
        services.ledger.account(account_id_for(ref))
    # A segment the settings do not hold is the ledger's refusal, in words.
    wrong = post(
        cs,
        "/console/accounts/new",
        csrf_token=csrf_of(page),
        external_ref=ref,
        segment="platinum",
        channel="online",
        name="Nobody",
    )
    assert wrong.status_code == 422
    assert "segment" in wrong.text and "platinum" in wrong.text
    with pytest.raises(AccountNotFound):
        services.ledger.account(account_id_for(ref))


def test_opening_needs_a_role_that_manages_accounts(services: Services) -> None:
    auditor = dev_signed_in(services, role="auditor")
    assert auditor.get("/console/accounts/new").status_code == 403
    assert 'href="/console/accounts/new"' not in auditor.get("/console/accounts").text
    token = csrf_of(auditor.get("/console/accounts").text)
    ref = f"AUD-{uuid.uuid4().hex[:8]}"
    answer = post(
        auditor,
        "/console/accounts/new",
        csrf_token=token,
        external_ref=ref,
        segment="gold",
        channel="store",
        name="X",
    )
    assert answer.status_code == 403
    with pytest.raises(AccountNotFound):
        services.ledger.account(account_id_for(ref))
