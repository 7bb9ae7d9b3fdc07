"""The account services, feature by feature (features/accounts/*.feature).

Steps shared by several features live in features/conftest.py; the commands
and checks of one capability each live here, in the order of the features.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from pytest_bdd import given, parsers, scenarios, then, when

from domain.account import account_id_for
from features.conftest import (
    ACTIVITIES,
    ROLE,
    Account,
    Api,
    Customer,
    current,
    history,
    moment,
    opening,
    shows_nothing_personal,
)

scenarios("accounts")


# ---- opening -----------------------------------------------------------------------


@when(
    parsers.re(
        ROLE + r' opens an account for the customer in segment "(?P<segment>[^"]+)"'
        r' through the "(?P<channel>[^"]+)" channel'
    ),
    target_fixture="response",
)
def opens(api: Api, customer: Customer, role: str, segment: str, channel: str) -> httpx.Response:
    body = opening(customer, segment=segment, channel=channel)
    return api.call(role, "POST", "/v1/accounts", body=body)


@when(
    parsers.re(ROLE + r" opens an account for the customer dated an hour from now"),
    target_fixture="response",
)
def opens_in_future(api: Api, customer: Customer, role: str) -> httpx.Response:
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    return api.call(role, "POST", "/v1/accounts", body=opening(customer, occurred_at=later))


@when(
    parsers.re(ROLE + r" opens another account with the same external reference"),
    target_fixture="response",
)
def opens_again(api: Api, customer: Customer, account: Account, role: str) -> httpx.Response:
    body = opening(customer, segment="vip", channel="online")
    return api.call(role, "POST", "/v1/accounts", body=body)


@when(
    parsers.re(ROLE + r' opens an account for the customer with Idempotency-Key "(?P<key>[^"]+)"'),
    target_fixture="response",
)
def opens_with_key(api: Api, customer: Customer, role: str, key: str) -> httpx.Response:
    # Keys are kept per caller for the whole session: make this one the customer's own.
    headers = {"Idempotency-Key": f"{key}-{customer.external_ref}"}
    return api.call(role, "POST", "/v1/accounts", body=opening(customer), headers=headers)


@when(
    parsers.re(ROLE + r" repeats the opening with the same Idempotency-Key"),
    target_fixture="replay",
)
def repeats_opening(
    api: Api, customer: Customer, response: httpx.Response, role: str
) -> httpx.Response:
    headers = {"Idempotency-Key": response.request.headers["Idempotency-Key"]}
    return api.call(role, "POST", "/v1/accounts", body=opening(customer), headers=headers)


@then("the repeated opening is answered with the first response", target_fixture="account")
def replayed(response: httpx.Response, replay: httpx.Response, customer: Customer) -> Account:
    assert response.status_code == 201, response.text
    assert replay.status_code == 201, replay.text
    assert replay.headers.get("idempotent-replayed") == "true"
    assert replay.json() == response.json()
    return Account(response.json()["id"], customer)


@then("the account is opened", target_fixture="account")
def is_opened(response: httpx.Response, customer: Customer) -> Account:
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["id"] == str(account_id_for(customer.external_ref))
    assert body["external_ref"] == customer.external_ref
    assert body["version"] == 1
    assert body["status"] == "open"
    assert response.headers["location"] == f"/v1/accounts/{body['id']}"
    assert response.headers["etag"] == '"1"'
    account = Account(body["id"], customer)
    account.remember(response)
    return account


@then(parsers.re(r'the account was opened through the "(?P<channel>[^"]+)" channel'))
def opened_through(api: Api, account: Account, channel: str) -> None:
    assert current(api, account)["channel"] == channel


@then("no account was opened for the customer")
def none_opened(api: Api, customer: Customer) -> None:
    path = f"/v1/accounts/{account_id_for(customer.external_ref)}"
    response = api.call("customer service", "GET", path)
    assert response.status_code == 404, response.text
    assert response.headers["content-type"].startswith("application/problem+json")


# ---- details -----------------------------------------------------------------------


@when(
    parsers.re(
        ROLE + r' updates the customer\'s (?P<name>\w+) to "(?P<value>[^"]*)"'
        r'(?: with If-Match "(?P<etag>[^"]*)")?'
    ),
    target_fixture="response",
)
def updates(
    api: Api, account: Account, role: str, name: str, value: str, etag: str | None
) -> httpx.Response:
    headers = {"If-Match": f'"{etag}"' if etag.isdigit() else etag} if etag else None
    body = {"customer": {name: value}}
    return api.call(role, "PATCH", account.path, body=body, headers=headers)


@then(parsers.re(r"the last event in the account's history records only a new (?P<name>\w+)"))
def records_only(api: Api, account: Account, response: httpx.Response, name: str) -> None:
    event = history(api, account)[-1]
    assert event["type"] == "DetailsUpdated"
    assert event["data"]["customer"] == {name: response.json()["customer"][name]}


@when(
    parsers.re(
        ROLE + r" confirms the customer's details are unchanged"
        r"(?: on (?P<day>\d{4}-\d{2}-\d{2}))?"
        r'(?: with If-Match "(?P<etag>\d+)")?'
    ),
    target_fixture="response",
)
def confirms(
    api: Api, account: Account, role: str, day: str | None, etag: str | None
) -> httpx.Response:
    body = {"occurred_at": f"{day}T10:00:00+00:00"} if day else None
    headers = {"If-Match": f'"{etag}"'} if etag else None
    path = f"{account.path}/confirm-details"
    return api.call(role, "POST", path, body=body, headers=headers)


# ---- segments and plans ----------------------------------------------------------------


@when(
    parsers.re(ROLE + r' moves the account to segment "(?P<segment>[^"]+)"'),
    target_fixture="response",
)
def moves_segment(api: Api, account: Account, role: str, segment: str) -> httpx.Response:
    return api.call(role, "POST", f"{account.path}/segment", body={"segment": segment})


@when(
    parsers.re(ROLE + r' moves the account to service plan "(?P<plan>[^"]+)"'),
    target_fixture="response",
)
def moves_plan(api: Api, account: Account, role: str, plan: str) -> httpx.Response:
    return api.call(role, "POST", f"{account.path}/plan", body={"service_plan": plan})


# ---- closing ---------------------------------------------------------------------------


@when(
    parsers.re(ROLE + r' closes the account for "(?P<reason>[^"]+)"(?: noting "(?P<note>[^"]*)")?'),
    target_fixture="response",
)
def closes(api: Api, account: Account, role: str, reason: str, note: str | None) -> httpx.Response:
    body = {"reason": reason, "note": note or ""}
    return api.call(role, "POST", f"{account.path}/close", body=body)


@then(parsers.re(r'the account was closed for "(?P<reason>[^"]+)"'))
def closed_for(api: Api, account: Account, reason: str) -> None:
    now = current(api, account)
    assert now["close_reason"] == reason
    assert now["closed_at"] is not None
    assert moment(now["closed_at"]) >= moment(now["opened_at"])


# ---- activities --------------------------------------------------------------------------


def record(api: Api, account: Account, role: str, body: dict[str, Any]) -> httpx.Response:
    return api.call(role, "POST", f"{account.path}/activities", body=body)


@when(
    parsers.re(ROLE + r' records a "(?P<kind>\w+)" activity'),
    target_fixture="response",
)
def records_activity(api: Api, account: Account, role: str, kind: str) -> httpx.Response:
    return record(api, account, role, ACTIVITIES[kind])


@when(
    parsers.re(
        ROLE + r" records an? (?P<kind>purchase|refund) of (?P<amount>\S+)"
        r' (?P<currency>[A-Z]{3}) costing (?P<cost>\S+) at store "(?P<store>[^"]+)"'
    ),
    target_fixture="response",
)
def records_money(
    api: Api,
    account: Account,
    role: str,
    kind: str,
    amount: str,
    currency: str,
    cost: str,
    store: str,
) -> httpx.Response:
    body = {"type": kind, "amount": amount, "cost": cost, "currency": currency, "store": store}
    return record(api, account, role, body)


@when(
    parsers.re(
        ROLE + r' records a visit through the "(?P<channel>[^"]+)" channel'
        r' at "(?P<location>[^"]+)"'
    ),
    target_fixture="response",
)
def records_visit(
    api: Api, account: Account, role: str, channel: str, location: str
) -> httpx.Response:
    return record(api, account, role, {"type": "visit", "channel": channel, "location": location})


@when(
    parsers.re(
        ROLE + r' records an inquiry "(?P<inquiry_id>[^"]+)" about "(?P<topic>[^"]+)"'
        r' through the "(?P<channel>[^"]+)" channel'
    ),
    target_fixture="response",
)
def records_inquiry(
    api: Api, account: Account, role: str, inquiry_id: str, topic: str, channel: str
) -> httpx.Response:
    body = {"type": "inquiry_opened", "inquiry_id": inquiry_id, "channel": channel, "topic": topic}
    return record(api, account, role, body)


@when(
    parsers.re(
        ROLE + r' records the answer to inquiry "(?P<inquiry_id>[^"]+)"'
        r' through the "(?P<channel>[^"]+)" channel'
    ),
    target_fixture="response",
)
def records_answer(
    api: Api, account: Account, role: str, inquiry_id: str, channel: str
) -> httpx.Response:
    body = {"type": "inquiry_answered", "inquiry_id": inquiry_id, "channel": channel}
    return record(api, account, role, body)


@when(
    parsers.re(
        ROLE + r' records a complaint "(?P<complaint_id>[^"]+)" about "(?P<category>[^"]+)"'
        r' of "(?P<severity>[^"]+)" severity'
    ),
    target_fixture="response",
)
def records_complaint(
    api: Api, account: Account, role: str, complaint_id: str, category: str, severity: str
) -> httpx.Response:
    body = {
        "type": "complaint_lodged",
        "complaint_id": complaint_id,
        "category": category,
        "severity": severity,
    }
    return record(api, account, role, body)


@when(
    parsers.re(
        ROLE + r' records the resolution of complaint "(?P<complaint_id>[^"]+)"'
        r' as "(?P<resolution>[^"]+)" with the customer (?P<mood>satisfied|not satisfied)'
    ),
    target_fixture="response",
)
def records_resolution(
    api: Api, account: Account, role: str, complaint_id: str, resolution: str, mood: str
) -> httpx.Response:
    body = {
        "type": "complaint_resolved",
        "complaint_id": complaint_id,
        "resolution": resolution,
        "satisfied": mood == "satisfied",
    }
    return record(api, account, role, body)


@when(
    parsers.re(ROLE + r' records feedback of (?P<score>\d+) saying "(?P<comment>[^"]*)"'),
    target_fixture="response",
)
def records_feedback(
    api: Api, account: Account, role: str, score: str, comment: str
) -> httpx.Response:
    body = {"type": "feedback", "score": int(score), "comment": comment}
    return record(api, account, role, body)


# ---- erasure -----------------------------------------------------------------------------


@given("an auditor has noted the account's history", target_fixture="noted")
def noted_history(api: Api, account: Account) -> list[dict[str, Any]]:
    return history(api, account)


@when(parsers.re(ROLE + r" erases the customer's personal data"), target_fixture="response")
def erases(api: Api, account: Account, role: str) -> httpx.Response:
    return api.call(role, "POST", f"{account.path}/erase", body={"reason": "request"})


@then(parsers.re(r"the erasure answers erased (?P<flag>true|false)"))
def erasure_answer(response: httpx.Response, account: Account, flag: str) -> None:
    assert response.status_code == 200, response.text
    answer = response.json()
    assert answer["account_id"] == account.id
    assert answer["erased"] is (flag == "true")


@then("the account's personal data is erased")
def personal_data_erased(api: Api, account: Account) -> None:
    now = current(api, account)
    assert now["personal_data_erased"] is True
    assert now["customer"] is None
    assert now["customer_masked"] is False


def clear_values(account: Account) -> list[str]:
    """Every clear personal value the scenario has seen for the account."""
    seen = list(account.customer.details.values())
    for body in account.versions.values():
        seen.extend((body.get("customer") or {}).values())
    return seen


@then(
    parsers.re(
        ROLE + r" sees no personal data when reading the account"
        r"(?: at version (?P<version>\d+))?"
    )
)
def sees_nothing_personal(api: Api, account: Account, role: str, version: str | None) -> None:
    params = {"version": version} if version else None
    response = api.call(role, "GET", account.path, params=params)
    assert response.status_code == 200, response.text
    assert response.json()["customer"] is None
    assert response.json()["customer_masked"] is False
    shows_nothing_personal(response.text, account, *clear_values(account))


@then("an auditor sees no personal data in the account's history")
def history_shows_nothing(api: Api, account: Account) -> None:
    response = api.call("an auditor", "GET", f"{account.path}/history")
    assert response.status_code == 200, response.text
    events = response.json()["events"]
    with_customer = [e for e in events if "customer" in e["data"]]
    assert [e["type"] for e in with_customer] == ["AccountOpened", "DetailsUpdated"]
    assert all(e["data"]["customer"] is None for e in with_customer)
    shows_nothing_personal(response.text, account, *clear_values(account))


@then("the account's history still holds every noted event with the same hashes")
def history_kept(api: Api, account: Account, noted: list[dict[str, Any]]) -> None:
    events = history(api, account)
    assert len(events) == len(noted) + 1
    for before, after in zip(noted, events, strict=False):
        keep = ("version", "type", "occurred_at", "recorded_at", "metadata", "prev_hash", "hash")
        assert {k: after[k] for k in keep} == {k: before[k] for k in keep}
    assert events[-1]["type"] == "PersonalDataErased"
    assert events[-1]["prev_hash"] == noted[-1]["hash"]


# ---- reading the past ------------------------------------------------------------------------


def as_of(api: Api, account: Account, role: str, when: str) -> httpx.Response:
    return api.call(role, "GET", account.path, params={"as_of": when})


@when(
    parsers.re(ROLE + r" reads the account as of the moment version (?P<version>\d+) was recorded"),
    target_fixture="response",
)
def reads_as_recorded(api: Api, account: Account, role: str, version: str) -> httpx.Response:
    return as_of(api, account, role, account.versions[int(version)]["recorded_at"])


@when(parsers.re(ROLE + r" reads the account as of now"), target_fixture="response")
def reads_now(api: Api, account: Account, role: str) -> httpx.Response:
    return as_of(api, account, role, datetime.now(UTC).isoformat())


@when(
    parsers.re(ROLE + r" reads the account as of a minute before it was opened"),
    target_fixture="response",
)
def reads_before(api: Api, account: Account, role: str) -> httpx.Response:
    opened = moment(account.versions[1]["recorded_at"])
    return as_of(api, account, role, (opened - timedelta(minutes=1)).isoformat())


@when(parsers.re(ROLE + r' reads the account as of "(?P<when>[^"]+)"'), target_fixture="response")
def reads_as_of(api: Api, account: Account, role: str, when: str) -> httpx.Response:
    return as_of(api, account, role, when)


@when(
    parsers.re(ROLE + r" reads the account at version (?P<version>\d+) and as of now"),
    target_fixture="response",
)
def reads_both(api: Api, account: Account, role: str, version: str) -> httpx.Response:
    params = {"version": version, "as_of": datetime.now(UTC).isoformat()}
    return api.call(role, "GET", account.path, params=params)


@then("they see the events")
def sees_events(response: httpx.Response, datatable: list[list[str]]) -> None:
    header, *rows = datatable
    assert header == ["version", "event"], header
    events = response.json()["events"]
    assert [[str(e["version"]), e["type"]] for e in events] == rows


@then("every event they see names its actor, department and source")
def sees_metadata(response: httpx.Response) -> None:
    for event in response.json()["events"]:
        meta = event["metadata"]
        assert meta["actor"], meta
        assert meta["department"] == "customer_service"
        assert meta["source"] == "api"
        assert meta["correlation_id"]
        assert moment(event["recorded_at"]) >= moment(event["occurred_at"]) - timedelta(minutes=1)


@then("they see the customer's details in clear in the opening event")
def sees_opening_details(response: httpx.Response, account: Account) -> None:
    opened = response.json()["events"][0]
    assert opened["type"] == "AccountOpened"
    assert opened["data"]["customer"] == account.customer.details
