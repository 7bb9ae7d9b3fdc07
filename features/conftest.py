"""Shared steps of the account features: the real API over the real PostgreSQL.

The fixtures mirror tests/conftest.py (a conftest there is not visible here):
one ledger per test session on its own PostgreSQL schema, the real FastAPI app
behind a TestClient, and real signed tokens. Nothing is mocked.

Steps name who acts by role ("customer service", "an auditor", ...). "Then they
see ..." checks the answer to the last request; "Then the account ..." reads the
account afresh, as customer service, so it checks what the ledger holds.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from pytest_bdd import given, parsers, then, when

from api.app import create_app
from api.auth import issue_token
from infra.wiring import Services
from tests.support import own_ledger

PROBLEM = "application/problem+json"
GENESIS_HASH = "0" * 64

# How the features name who acts, and the role each name stands for. The
# three callers without a good token have no role.
ROLES: dict[str, str | None] = {
    "customer service": "customer_service",
    "marketing": "marketing",
    "finance": "finance",
    "management": "management",
    "an auditor": "auditor",
    "an administrator": "admin",
    "the integration system": "integration",
    "someone without a token": None,
    "someone with a forged token": None,
    "someone with an expired token": None,
}
ROLE = "(?P<role>" + "|".join(ROLES) + ")"

DEFAULT_CUSTOMER = {
    "name": "Alice Chan",
    "email": "alice@example.com",
    "phone": "+852 9123 5678",
    "address": "1 Nathan Road, Kowloon",
    "date_of_birth": "1985-04-12",
    "id_document": "A1234567",
}

# One example of each activity an account takes, by its inbound type name.
ACTIVITIES: dict[str, dict[str, Any]] = {
    "purchase": {
        "type": "purchase",
        "amount": "120.50",
        "cost": "80.00",
        "currency": "HKD",
        "store": "TST-01",
    },
    "refund": {
        "type": "refund",
        "amount": "20.00",
        "cost": "12.00",
        "currency": "HKD",
        "store": "TST-01",
    },
    "visit": {"type": "visit", "channel": "store", "location": "Tsim Sha Tsui"},
    "inquiry_opened": {
        "type": "inquiry_opened",
        "inquiry_id": "Q-1",
        "channel": "phone",
        "topic": "delivery",
    },
    "complaint_lodged": {
        "type": "complaint_lodged",
        "complaint_id": "C-1",
        "category": "late delivery",
        "severity": "medium",
    },
    "feedback": {"type": "feedback", "score": 4, "comment": "quick service"},
}


# ---- fixtures -------------------------------------------------------------------


@pytest.fixture(scope="session")
def services() -> Iterator[Services]:
    """The features' own ledger: their feed and digest checks see only what they wrote."""
    with own_ledger() as built:
        yield built


@pytest.fixture(scope="session")
def client(services: Services) -> Iterator[TestClient]:
    """The real API over the features' ledger (session fixtures of the same name are cached
    once per session, so the features need their own, not the one tests/ built)."""
    with TestClient(create_app(services)) as c:
        yield c


SETUP = "bdd-setup"
CHECK = "bdd-check"


def actor(role: str) -> str:
    """The token subject of the features' caller in `role`: the actor in the metadata."""
    return f"bdd-{role}"


@dataclass
class Api:
    """Calls the API as one of the roles the features name."""

    client: TestClient
    token: Callable[..., str]

    def call(
        self,
        who: str,
        method: str,
        path: str,
        *,
        body: dict[str, Any] | None = None,
        params: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        sub: str | None = None,
    ) -> httpx.Response:
        """Send one request as `who` (a name from ROLES), by default as its feature actor.

        Setting a scene and checking the ledger use their own subjects (SETUP,
        CHECK), so access-log and metadata checks see only what a When step did.
        """
        sent = dict(headers or {})
        role = ROLES[who]
        if role is not None:
            sent["Authorization"] = f"Bearer {self.token(role, sub=sub or actor(role))}"
        elif who == "someone with a forged token":
            forged = issue_token("another-secret-" + "y" * 40, "mallory", ["admin"])
            sent["Authorization"] = f"Bearer {forged}"
        elif who == "someone with an expired token":
            sent["Authorization"] = f"Bearer {self.token('admin', sub='late', ttl=-60)}"
        return self.client.request(method, path, json=body, params=params, headers=sent)


@pytest.fixture
def api(client: TestClient, token: Callable[..., str]) -> Api:
    return Api(client, token)


@dataclass
class Customer:
    """A customer of a source system: their customer number and personal details."""

    external_ref: str
    details: dict[str, str]


@dataclass
class Account:
    """An account a scenario opened, and the body each of its versions was answered with."""

    id: str
    customer: Customer
    versions: dict[int, dict[str, Any]] = field(default_factory=dict)

    @property
    def path(self) -> str:
        return f"/v1/accounts/{self.id}"

    def remember(self, response: httpx.Response) -> dict[str, Any]:
        """Keep the account body a successful command answered with."""
        assert response.status_code in (200, 201), response.text
        body: dict[str, Any] = response.json()
        assert body["id"] == self.id
        self.versions[body["version"]] = body
        return body


def new_customer(**details: str) -> Customer:
    """A customer no scenario has used before (the database is shared by the session)."""
    return Customer(f"CUST-{uuid.uuid4().hex[:16]}", {**DEFAULT_CUSTOMER, **details})


def opening(
    customer: Customer,
    segment: str = "standard",
    channel: str = "store",
    occurred_at: str | None = None,
) -> dict[str, Any]:
    """The body that opens an account for `customer`."""
    body: dict[str, Any] = {
        "external_ref": customer.external_ref,
        "segment": segment,
        "channel": channel,
        "customer": customer.details,
    }
    if occurred_at is not None:
        body["occurred_at"] = occurred_at
    return body


def open_account(api: Api, customer: Customer, **kw: Any) -> Account:
    """Open an account as customer service; the step fails unless it opened."""
    body = opening(customer, **kw)
    response = api.call("customer service", "POST", "/v1/accounts", body=body, sub=SETUP)
    assert response.status_code == 201, response.text
    account = Account(response.json()["id"], customer)
    account.remember(response)
    return account


def prepare(api: Api, account: Account, method: str, suffix: str, body: dict[str, Any]) -> None:
    """Set the scene with a command of customer service; the step fails unless it succeeds."""
    path = account.path + suffix
    account.remember(api.call("customer service", method, path, body=body, sub=SETUP))


def current(api: Api, account: Account) -> dict[str, Any]:
    """The account as the ledger holds it now, read by customer service."""
    response = api.call("customer service", "GET", account.path, sub=CHECK)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def history(api: Api, account: Account) -> list[dict[str, Any]]:
    """Every event of the account, read by an auditor."""
    response = api.call("an auditor", "GET", f"{account.path}/history", sub=CHECK)
    assert response.status_code == 200, response.text
    events: list[dict[str, Any]] = response.json()["events"]
    return events


def moment(text: str) -> datetime:
    """A timestamp of the API (ISO-8601, possibly ending in Z)."""
    return datetime.fromisoformat(text)


def plain(value: object) -> str:
    """A value of an answer as a feature writes it."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return "null" if value is None else str(value)


def table(datatable: list[list[str]]) -> dict[str, str]:
    """A two-column `| field | value |` table, header row first, as a dict."""
    header, *rows = datatable
    assert [h.strip() for h in header] == ["field", "value"], header
    return {name: value for name, value in rows}


# ---- commands anyone may try: the roles matrix and the closed account -------------


@dataclass(frozen=True)
class Call:
    """One request of an action: method, path, body and query."""

    method: str
    path: str
    body: dict[str, Any] | None = None
    params: dict[str, str] | None = None


def _activity(kind: str) -> Callable[[Account], Call]:
    return lambda a: Call("POST", f"{a.path}/activities", ACTIVITIES[kind])


# What a caller may try with an account, as the features name it.
ACTIONS: dict[str, Callable[[Account], Call]] = {
    "open an account": lambda a: Call("POST", "/v1/accounts", opening(new_customer())),
    "update the customer's details": lambda a: Call(
        "PATCH", a.path, {"customer": {"email": "new@example.com"}}
    ),
    "confirm the customer's details": lambda a: Call("POST", f"{a.path}/confirm-details"),
    "change the segment": lambda a: Call("POST", f"{a.path}/segment", {"segment": "gold"}),
    "change the service plan": lambda a: Call(
        "POST", f"{a.path}/plan", {"service_plan": "premium"}
    ),
    "close the account": lambda a: Call("POST", f"{a.path}/close", {"reason": "customer_request"}),
    "record a purchase": _activity("purchase"),
    "record a refund": _activity("refund"),
    "record a visit": _activity("visit"),
    "record an inquiry": _activity("inquiry_opened"),
    "record the answer to an inquiry": lambda a: Call(
        "POST",
        f"{a.path}/activities",
        {"type": "inquiry_answered", "inquiry_id": "Q-1", "channel": "app"},
    ),
    "record a complaint": _activity("complaint_lodged"),
    "record feedback": _activity("feedback"),
    "read the account": lambda a: Call("GET", a.path),
    "read the account at version 1": lambda a: Call("GET", a.path, params={"version": "1"}),
    "read the account as of now": lambda a: Call(
        "GET", a.path, params={"as_of": datetime.now(UTC).isoformat()}
    ),
    "read the account's history": lambda a: Call("GET", f"{a.path}/history"),
    "erase the personal data": lambda a: Call("POST", f"{a.path}/erase", {"reason": "request"}),
    "verify the ledger": lambda a: Call("GET", "/v1/audit/verify"),
}


@when(parsers.re(ROLE + r" (?:tries|asks) to (?P<action>.+)"), target_fixture="response")
def try_action(api: Api, account: Account, role: str, action: str) -> httpx.Response:
    assert action in ACTIONS, f"no such action in the features: {action!r}"
    call = ACTIONS[action](account)
    return api.call(role, call.method, call.path, body=call.body, params=call.params)


# ---- given: customers and their accounts ---------------------------------------------


@given(
    parsers.re(
        r'a new customer "(?P<name>[^"]+)" with email "(?P<email>[^"]+)"'
        r'(?: and phone "(?P<phone>[^"]+)")?'
    ),
    target_fixture="customer",
)
def a_new_customer(name: str, email: str, phone: str | None) -> Customer:
    details = {"name": name, "email": email}
    if phone is not None:
        details["phone"] = phone
    return new_customer(**details)


@given(
    parsers.re(
        r"an open account(?P<theirs> for the customer)?"
        r'(?: in segment "(?P<segment>[^"]+)")?'
        r"(?: opened on (?P<opened_on>\d{4}-\d{2}-\d{2}))?"
    ),
    target_fixture="account",
)
def an_open_account(
    api: Api,
    request: pytest.FixtureRequest,
    theirs: str | None,
    segment: str | None,
    opened_on: str | None,
) -> Account:
    customer = request.getfixturevalue("customer") if theirs else new_customer()
    occurred_at = f"{opened_on}T09:00:00+00:00" if opened_on else None
    return open_account(api, customer, segment=segment or "standard", occurred_at=occurred_at)


@given(parsers.re(r'customer service has changed the customer\'s email to "(?P<email>[^"]+)"'))
def email_changed(api: Api, account: Account, email: str) -> None:
    body = {"customer": {"email": email}}
    prepare(api, account, "PATCH", "", body)


@given(parsers.re(r'customer service has moved the account to segment "(?P<segment>[^"]+)"'))
def segment_changed(api: Api, account: Account, segment: str) -> None:
    body = {"segment": segment}
    prepare(api, account, "POST", "/segment", body)


@given(parsers.re(r'the account is closed for "(?P<reason>[^"]+)"'))
def account_closed(api: Api, account: Account, reason: str) -> None:
    body = {"reason": reason, "note": "closed by the feature's setup"}
    prepare(api, account, "POST", "/close", body)


@given(
    parsers.re(
        r'an inquiry "(?P<inquiry_id>[^"]+)" about "(?P<topic>[^"]+)" is open on the account'
    )
)
def inquiry_open(api: Api, account: Account, inquiry_id: str, topic: str) -> None:
    body = {"type": "inquiry_opened", "inquiry_id": inquiry_id, "channel": "phone", "topic": topic}
    prepare(api, account, "POST", "/activities", body)


@given(
    parsers.re(
        r'a complaint "(?P<complaint_id>[^"]+)" about "(?P<category>[^"]+)" is open on the account'
    )
)
def complaint_open(api: Api, account: Account, complaint_id: str, category: str) -> None:
    body = {
        "type": "complaint_lodged",
        "complaint_id": complaint_id,
        "category": category,
        "severity": "high",
    }
    prepare(api, account, "POST", "/activities", body)


@given("an administrator has erased the customer's personal data")
def erased(api: Api, account: Account) -> None:
    response = api.call("an administrator", "POST", f"{account.path}/erase", sub=SETUP)
    assert response.status_code == 200, response.text
    assert response.json()["erased"] is True


# ---- when: reads -------------------------------------------------------------------


@when(parsers.re(ROLE + r" reads the account"), target_fixture="response")
def reads(api: Api, account: Account, role: str) -> httpx.Response:
    return api.call(role, "GET", account.path)


@when(
    parsers.re(ROLE + r" reads the account at version (?P<version>\d+)"),
    target_fixture="response",
)
def reads_at_version(api: Api, account: Account, role: str, version: str) -> httpx.Response:
    return api.call(role, "GET", account.path, params={"version": version})


@when(parsers.re(ROLE + r" reads the account's history"), target_fixture="response")
def reads_history(api: Api, account: Account, role: str) -> httpx.Response:
    return api.call(role, "GET", f"{account.path}/history")


# ---- then: the answer to the last request --------------------------------------------


@then(parsers.re(r"the request succeeds with status (?P<status>\d+)"))
def succeeds(response: httpx.Response, status: str) -> None:
    assert response.status_code == int(status), response.text
    assert response.headers["content-type"].startswith("application/json")


@then(parsers.re(r"the request is refused with status (?P<status>\d+)"))
def refused(response: httpx.Response, status: str) -> None:
    assert response.status_code == int(status), response.text
    assert response.headers["content-type"].startswith(PROBLEM), response.headers
    problem = response.json()
    assert problem["status"] == int(status)
    assert problem["title"]
    assert problem["detail"]
    assert problem["type"].startswith("urn:crmledger:problem:")
    assert problem["instance"] == response.request.url.path


@then(parsers.re(r'the problem is titled "(?P<title>[^"]+)"'))
def problem_title(response: httpx.Response, title: str) -> None:
    assert response.headers["content-type"].startswith(PROBLEM)
    assert response.json()["title"] == title


@then(parsers.re(r'the problem detail mentions "(?P<text>[^"]+)"'))
def problem_detail(response: httpx.Response, text: str) -> None:
    assert response.headers["content-type"].startswith(PROBLEM)
    detail = response.json()["detail"]
    assert text.lower() in detail.lower(), detail


@then("the refusal asks for a bearer token")
def asks_for_bearer(response: httpx.Response) -> None:
    assert response.status_code == 401
    assert response.headers.get("www-authenticate") == "Bearer"


@then(parsers.re(r"they see the account at version (?P<version>\d+)"))
def sees_version(response: httpx.Response, version: str) -> None:
    assert response.json()["version"] == int(version)
    assert response.headers["etag"] == f'"{version}"'


@then(parsers.re(r'they see the account in segment "(?P<segment>[^"]+)"'))
def sees_segment(response: httpx.Response, segment: str) -> None:
    assert response.json()["segment"] == segment


@then(parsers.re(r'they see the customer\'s (?P<name>\w+) as "(?P<value>[^"]*)"'))
def sees_field(response: httpx.Response, name: str, value: str) -> None:
    assert response.status_code == 200, response.text
    customer = response.json()["customer"]
    assert customer is not None, "no personal data was shown"
    assert customer[name] == value


@then("they see the customer's personal data masked")
def sees_masked(response: httpx.Response, account: Account) -> None:
    body = response.json()
    assert body["customer_masked"] is True
    for name, clear in account.customer.details.items():
        assert body["customer"][name] != clear, f"{name} is shown in clear"
        assert clear not in response.text


@then("they see the customer's personal data unmasked")
def sees_unmasked(response: httpx.Response, account: Account) -> None:
    body = response.json()
    assert body["customer_masked"] is False
    assert body["customer"] == account.customer.details


# ---- then: the account as the ledger holds it ------------------------------------------


@then(parsers.re(r"the account is at version (?P<version>\d+)"))
def at_version(api: Api, account: Account, version: str) -> None:
    response = api.call("customer service", "GET", account.path, sub=CHECK)
    assert response.status_code == 200, response.text
    assert response.json()["version"] == int(version)
    assert response.headers["etag"] == f'"{version}"'


@then(parsers.re(r"the account is (?P<status>open|closed)"))
def has_status(api: Api, account: Account, status: str) -> None:
    assert current(api, account)["status"] == status


@then(parsers.re(r'the account is in segment "(?P<segment>[^"]+)"'))
def in_segment(api: Api, account: Account, segment: str) -> None:
    assert current(api, account)["segment"] == segment


@then(parsers.re(r'the account is on service plan "(?P<plan>[^"]+)"'))
def on_plan(api: Api, account: Account, plan: str) -> None:
    assert current(api, account)["service_plan"] == plan


@then(parsers.re(r'the customer\'s (?P<name>\w+) is "(?P<value>[^"]*)"'))
def customer_field(api: Api, account: Account, name: str, value: str) -> None:
    customer = current(api, account)["customer"]
    assert customer is not None
    assert customer[name] == value


@then("the customer's details are as when the account was opened")
def details_unchanged(api: Api, account: Account) -> None:
    assert current(api, account)["customer"] == account.customer.details


@then(parsers.re(r"the account's details are current as of (?P<day>today|\d{4}-\d{2}-\d{2})"))
def details_current(api: Api, account: Account, day: str) -> None:
    current_at = moment(current(api, account)["details_current_at"])
    expected = datetime.now(UTC).date().isoformat() if day == "today" else day
    assert current_at.astimezone(UTC).date().isoformat() == expected
    assert current_at > moment(account.versions[1]["opened_at"])


@then(parsers.re(r'the open inquiries of the account are "(?P<ids>[^"]*)"'))
def open_inquiries(api: Api, account: Account, ids: str) -> None:
    assert current(api, account)["open_inquiries"] == [i for i in ids.split(", ") if i]


@then(parsers.re(r'the open complaints of the account are "(?P<ids>[^"]*)"'))
def open_complaints(api: Api, account: Account, ids: str) -> None:
    assert current(api, account)["open_complaints"] == [i for i in ids.split(", ") if i]


# ---- then: history and integrity -------------------------------------------------------


@then(parsers.re(r'the last event in the account\'s history is "(?P<kind>\w+)"'))
def last_event(api: Api, account: Account, kind: str) -> None:
    assert history(api, account)[-1]["type"] == kind


@then(parsers.re(r'the last event in the account\'s history is "(?P<kind>\w+)" with'))
def last_event_with(api: Api, account: Account, kind: str, datatable: list[list[str]]) -> None:
    event = history(api, account)[-1]
    assert event["type"] == kind
    for name, value in table(datatable).items():
        assert plain(event["data"][name]) == value, (name, event["data"])


@then("the account's history lists")
def history_lists(api: Api, account: Account, datatable: list[list[str]]) -> None:
    header, *rows = datatable
    assert header == ["version", "event"], header
    events = history(api, account)
    assert [[str(e["version"]), e["type"]] for e in events] == rows


@then(parsers.re(r"the last event in the account's history was recorded by " + ROLE))
def recorded_by(api: Api, account: Account, role: str) -> None:
    name = ROLES[role]
    assert name is not None
    meta = history(api, account)[-1]["metadata"]
    assert meta["actor"] == actor(name), meta
    assert meta["department"] == name
    assert meta["source"] == "api"
    assert meta["correlation_id"]


@then("the account's history is an unbroken hash chain")
def unbroken_chain(api: Api, account: Account) -> None:
    events = history(api, account)
    previous = GENESIS_HASH
    for number, event in enumerate(events, start=1):
        assert event["version"] == number
        assert event["prev_hash"] == previous
        assert len(event["hash"]) == 64 and event["hash"] != previous
        previous = event["hash"]


@then("the ledger's hash chains verify")
def ledger_verifies(api: Api, account: Account) -> None:
    whole = api.call("an auditor", "GET", "/v1/audit/verify", sub=CHECK)
    assert whole.status_code == 200, whole.text
    assert whole.json()["ok"] is True, whole.json()
    assert whole.json()["broken_account_id"] is None
    one = api.call(
        "an auditor", "GET", "/v1/audit/verify", params={"account_id": account.id}, sub=CHECK
    )
    assert one.status_code == 200, one.text
    report = one.json()
    assert report["ok"] is True, report
    assert report["accounts"] == 1
    assert report["events"] == len(history(api, account))


@then(
    parsers.re(
        r"the unmasked read by " + ROLE + r' is written to the access log as "(?P<what>[^"]+)"'
    )
)
def access_logged(services: Services, account: Account, role: str, what: str) -> None:
    entries = services.access_log.query(
        account_id=uuid.UUID(account.id), actor=actor(ROLES[role] or "")
    )
    assert [e.what for e in entries] == [what]
    assert sorted(entries[0].fields) == sorted(account.customer.details)


@then(parsers.re(r"no read by " + ROLE + " is written to the access log"))
def not_access_logged(services: Services, account: Account, role: str) -> None:
    entries = services.access_log.query(
        account_id=uuid.UUID(account.id), actor=actor(ROLES[role] or "")
    )
    assert entries == []


def shows_nothing_personal(text: str, account: Account, *also: str) -> None:
    """No clear personal value of the customer appears anywhere in `text`."""
    for value in (*account.customer.details.values(), *also):
        assert value not in text, f"{value!r} is still readable"
