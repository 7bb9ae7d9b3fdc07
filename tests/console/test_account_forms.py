"""The account page's command forms over HTTP without a browser: each form's success, and
every way it is refused (role, CSRF, stale page, closed account, a field the API's model
refuses), with nothing saved on a refusal. The helpers here serve the other
test_account_forms_* modules too."""

from __future__ import annotations

import html
import re
import uuid
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import pytest
from fastapi.testclient import TestClient

from domain.errors import AccountNotFound
from domain.rules import account_id_for
from infra.wiring import Services
from tests.console.test_sessions import csrf_of, dev_signed_in
from tests.support import open_plain

COMMANDS = ("confirm-details", "segment", "plan", "close")


def page_of(client: TestClient, account_id: UUID, **query: str) -> str:
    answer = client.get(f"/console/accounts/{account_id}", params=query)
    assert answer.status_code == 200, answer.text
    return str(answer.text)


def post(client: TestClient, path: str, **form: str) -> Any:
    return client.post(path, data=form, follow_redirects=False)


def error_next_to(page: str, field_id: str) -> str:
    """The message a field names through aria-describedby (the field marked invalid)."""
    field = re.search(rf'<(?:input|select|textarea) id="{field_id}"[^>]*>', page)
    assert field, f"no field {field_id}"
    assert 'aria-invalid="true"' in field.group(0), field.group(0)
    described = re.search(r'aria-describedby="([^"]+)"', field.group(0))
    assert described and f"{field_id}-error" in described.group(1).split()
    message = re.search(rf'<p class="error" id="{field_id}-error">([^<]*)</p>', page)
    assert message, f"no message for {field_id}"
    return html.unescape(message.group(1))


def metadata_of_last(services: Services, account_id: UUID) -> tuple[str, dict[str, Any]]:
    event = services.ledger.history(account_id)[-1]
    return type(event).__name__, dict(vars(event)["metadata"])


def customer_service(services: Services) -> TestClient:
    """A client signed in (dev sign-in) as a customer service member of their own name."""
    return dev_signed_in(services, name=f"Cass {uuid.uuid4().hex[:6]}")


@pytest.fixture
def cs(services: Services) -> TestClient:
    return customer_service(services)


def test_each_command_form_runs_the_apis_command_with_its_metadata(
    services: Services, cs: TestClient
) -> None:
    account = open_plain(services.ledger, "Form Runner")
    steps = [
        ("confirm-details", {"reason": "called to check"}, "DetailsConfirmed", "Details confirmed"),
        (
            "segment",
            {"segment": "vip", "reason": "spends a lot"},
            "SegmentChanged",
            "Segment changed to vip",
        ),
        (
            "plan",
            {"service_plan": "premium"},
            "ServicePlanChanged",
            "Service plan changed to premium",
        ),
        (
            "close",
            {"reason": "customer_request", "note": "moving abroad"},
            "AccountClosed",
            "Account closed",
        ),
    ]
    for version, (verb, fields, event, said) in enumerate(steps, start=1):
        token = csrf_of(page_of(cs, account.id))
        answer = post(
            cs,
            f"/console/accounts/{account.id}/{verb}",
            csrf_token=token,
            version=str(version),
            **fields,
        )
        assert answer.status_code == 303, answer.text
        assert f"{said} (now version {version + 1})." in cs.get(answer.headers["location"]).text
        kind, meta = metadata_of_last(services, account.id)
        assert kind == event
        assert meta["actor"].startswith("dev:Cass ") and meta["source"] == "api"
        assert meta["reason"] == fields.get("reason")
    closed = services.ledger.account(account.id)
    assert (closed.status, closed.close_reason, closed.segment, closed.service_plan) == (
        "closed",
        "customer_request",
        "vip",
        "premium",
    )


@pytest.mark.parametrize("verb", COMMANDS)
def test_a_role_the_matrix_refuses_gets_403_and_nothing_happens(
    services: Services, verb: str
) -> None:
    account = open_plain(services.ledger, "Not Yours")
    marketing = dev_signed_in(services, role="marketing")
    page = page_of(marketing, account.id)
    assert "/confirm-details" not in page and "Close account" not in page  # nothing offered
    fields = {"segment": "vip", "service_plan": "x", "reason": "other"}
    answer = post(
        marketing,
        f"/console/accounts/{account.id}/{verb}",
        csrf_token=csrf_of(page),
        version="1",
        **fields,
    )
    assert answer.status_code == 403
    assert "this needs one of the roles: admin, customer_service, integration" in answer.text
    assert services.ledger.account(account.id).version == 1


@pytest.mark.parametrize("verb", (*COMMANDS, "new"))
def test_a_form_without_the_sessions_csrf_token_is_refused(
    services: Services, cs: TestClient, verb: str
) -> None:
    account = open_plain(services.ledger, "No Token")
    path = "/console/accounts/new" if verb == "new" else f"/console/accounts/{account.id}/{verb}"
    ref = f"CSRF-{uuid.uuid4().hex[:8]}"
    fields = {"segment": "vip", "service_plan": "x", "reason": "other", "version": "1"}
    fields |= {"external_ref": ref, "channel": "store", "name": "Forged"}
    for sent in ({}, {"csrf_token": "forged"}):
        answer = post(cs, path, **fields, **sent)
        assert answer.status_code == 403
        assert "The form did not come from this session" in answer.text
    assert services.ledger.account(account.id).version == 1
    with pytest.raises(AccountNotFound):
        services.ledger.account(account_id_for(ref))


@pytest.mark.parametrize("verb", COMMANDS)
def test_a_page_gone_stale_is_refused_in_words(
    services: Services, cs: TestClient, verb: str
) -> None:
    account = open_plain(services.ledger, "Stale Form")
    token = csrf_of(page_of(cs, account.id))
    services.ledger.change_plan(account.id, "gold-plus", datetime.now(UTC), {"actor": "t"}, None)
    fields = {"segment": "vip", "service_plan": "basic", "reason": "other"}
    answer = post(
        cs, f"/console/accounts/{account.id}/{verb}", csrf_token=token, version="1", **fields
    )
    assert answer.status_code == 412
    assert "Someone changed the account since this page was loaded: it shows the" in answer.text
    assert 'name="version" value="2"' in answer.text  # the form now holds the version shown
    assert services.ledger.account(account.id).version == 2


def test_an_invalid_field_is_named_next_to_it_and_nothing_is_saved(
    services: Services, cs: TestClient
) -> None:
    account = open_plain(services.ledger, "Bad Input")
    token = csrf_of(page_of(cs, account.id))
    url = f"/console/accounts/{account.id}"
    blank = post(cs, f"{url}/segment", csrf_token=token, version="1", segment="")
    assert blank.status_code == 422
    assert error_next_to(blank.text, "segment-segment") == "Field required"
    plan = post(cs, f"{url}/plan", csrf_token=token, version="1", service_plan="x" * 101)
    assert plan.status_code == 422
    assert (
        error_next_to(plan.text, "plan-service_plan") == "String should have at most 100 characters"
    )
    close = post(cs, f"{url}/close", csrf_token=token, version="1", reason="bored", note="n")
    assert close.status_code == 422
    assert error_next_to(close.text, "close-reason").startswith(
        "Input should be 'customer_request'"
    )
    assert 'name="note" rows="2"' in close.text and ">n</textarea>" in close.text
    confirm = post(cs, f"{url}/confirm-details", csrf_token=token, version="1", reason="a\x00b")
    assert confirm.status_code == 422
    assert "control character U+0000" in error_next_to(confirm.text, "confirm-reason")
    # The ledger's own refusal (already in that segment) stands at the form.
    same = post(cs, f"{url}/segment", csrf_token=token, version="1", segment="gold")
    assert same.status_code == 409
    assert "The account is already in segment gold." in same.text
    assert services.ledger.account(account.id).version == 1


def test_a_closed_account_offers_no_command_and_refuses_one_posted_anyway(
    services: Services, cs: TestClient
) -> None:
    account = open_plain(services.ledger, "Closed Door")
    services.ledger.close_account(account.id, "inactivity", "", datetime.now(UTC), {"actor": "t"})
    page = page_of(cs, account.id)
    assert "This account is closed: it takes no more commands." in page
    for gone in (
        'id="activity-form"',
        "/details",
        "/confirm-details",
        "/segment",
        "/plan",
        "/close",
    ):
        assert gone not in page, gone
    assert 'id="at-moment"' in page  # what still applies: the account as it stood
    token = csrf_of(page)
    sent = {
        "confirm-details": ({}, "The details were not confirmed"),
        "segment": ({"segment": "vip"}, "The segment was not changed"),
        "plan": ({"service_plan": "basic"}, "The service plan was not changed"),
        "close": ({"reason": "other"}, "The account was not closed"),
        "details": ({"email": "late@example.com"}, "The details were not updated"),
        "activities": (
            {"type": "visit", "channel": "store", "location": "Central"},
            "The activity was not recorded",
        ),
    }
    for verb, (fields, not_done) in sent.items():
        answer = post(
            cs, f"/console/accounts/{account.id}/{verb}", csrf_token=token, version="2", **fields
        )
        assert answer.status_code == 409, verb
        refusal = f'<p class="alert" role="alert">{not_done}. Account {account.id} is closed.</p>'
        assert refusal in answer.text, verb
    assert services.ledger.account(account.id).version == 2
