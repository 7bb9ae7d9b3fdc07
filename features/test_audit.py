"""Steps of the auditor's and the privacy officer's features (features/audit/)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import httpx
import pytest
from pytest_bdd import given, parsers, scenarios, then, when

from features.conftest import (
    CHECK,
    ROLE,
    SETUP,
    Account,
    Api,
    actor,
    new_customer,
    open_account,
    prepare,
)
from features.proof_steps import *  # noqa: F403  (the steps of audit/proofs.feature)
from infra.wiring import Services
from tests.support import forge

scenarios("audit")


def restore_afterwards(
    request: pytest.FixtureRequest, services: Services, account: Account
) -> Callable[[], None]:
    """Keep the account's stored rows and put them back when the scenario ends.

    Tampering scenarios share the session's ledger with every other feature.
    """
    with services.pool.connection() as conn:
        rows = conn.execute(
            "SELECT originator_version, state FROM ledger_events WHERE originator_id = %s",
            (UUID(account.id),),
        ).fetchall()

    def restore() -> None:
        with services.pool.connection() as conn:
            for version, state in rows:
                conn.execute(
                    "UPDATE ledger_events SET state = %s"
                    " WHERE originator_id = %s AND originator_version = %s",
                    (state, UUID(account.id), version),
                )

    request.addfinalizer(restore)
    return restore


# ---- the auditor ---------------------------------------------------------------------


@given("another open account with a recorded visit", target_fixture="other")
def another_account(api: Api) -> Account:
    other = open_account(api, new_customer())
    visit = {"type": "visit", "channel": "app", "location": "home"}
    prepare(api, other, "POST", "/activities", visit)
    return other


@when("an auditor replays the event feed three events at a time", target_fixture="replayed")
def replay_all(api: Api) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    after = 0
    while True:
        params = {"after": str(after), "limit": "3"}
        page = api.call("an auditor", "GET", "/v1/audit/events", params=params).json()
        events += page["events"]
        if page["next_after"] == after:
            return events
        after = page["next_after"]


@then("every stored event appears once, in store order")
def once_in_order(replayed: list[dict[str, Any]], services: Services) -> None:
    stored = [n.id for n in services.ledger.recorder.select_notifications(1, 1_000_000)]
    assert [e["position"] for e in replayed] == stored


@then("every replayed event carries its metadata and its hashes")
def metadata_and_hashes(replayed: list[dict[str, Any]]) -> None:
    for event in replayed:
        assert event["metadata"]["actor"] and event["metadata"]["source"] == "api"
        assert len(event["hash"]) == len(event["prev_hash"]) == 64


@when("an auditor replays the event feed of the account", target_fixture="response")
def replay_account(api: Api, account: Account) -> httpx.Response:
    return api.call("an auditor", "GET", "/v1/audit/events", params={"account_id": account.id})


@then(parsers.re(r'the feed lists "(?P<types>[^"]+)" for the account'))
def feed_lists(response: httpx.Response, account: Account, types: str) -> None:
    events = response.json()["events"]
    assert {e["account_id"] for e in events} == {account.id}
    assert [e["type"] for e in events] == [t.strip() for t in types.split(",")]


@given(parsers.re(r"someone has altered the account's stored event at version (?P<v>\d+)"))
def altered(request: pytest.FixtureRequest, services: Services, account: Account, v: str) -> None:
    restore_afterwards(request, services, account)
    with services.pool.connection() as conn:
        changed = conn.execute(
            "UPDATE ledger_events SET state = convert_to(replace("
            'convert_from(state, \'UTF8\'), \'"to_segment":"gold"\', \'"to_segment":"vip"\'),'
            " 'UTF8') WHERE originator_id = %s AND originator_version = %s",
            (UUID(account.id), int(v)),
        ).rowcount
    assert changed == 1


@given(
    parsers.re(
        r"someone has rewritten the account's event at version (?P<v>\d+)"
        r" and recomputed its hashes"
    )
)
def forged(request: pytest.FixtureRequest, services: Services, account: Account, v: str) -> None:
    restore_afterwards(request, services, account)
    forge(services, UUID(account.id), int(v), {"to_segment": "corporate"})


@when("an auditor verifies the ledger", target_fixture="response")
def verify_ledger(api: Api) -> httpx.Response:
    return api.call("an auditor", "GET", "/v1/audit/verify")


@when("an auditor verifies the account alone", target_fixture="response")
def verify_account(api: Api, account: Account) -> httpx.Response:
    return api.call("an auditor", "GET", "/v1/audit/verify", params={"account_id": account.id})


@then(parsers.re(r"verification fails naming the account at version (?P<v>\d+)"))
def fails_naming(response: httpx.Response, account: Account, v: str) -> None:
    body = response.json()
    assert body["ok"] is False
    assert (body["broken_account_id"], body["broken_version"]) == (account.id, int(v))


@then("verification passes")
def passes(response: httpx.Response) -> None:
    assert response.status_code == 200 and response.json()["ok"] is True


@given("an auditor has kept the ledger digest", target_fixture="kept")
def kept_digest(api: Api) -> dict[str, Any]:
    response = api.call("an auditor", "GET", "/v1/audit/digest", sub=CHECK)
    assert response.status_code == 200
    kept: dict[str, Any] = response.json()
    return kept


@when("the auditor checks the kept digest", target_fixture="response")
def check_digest(api: Api, kept: dict[str, Any]) -> httpx.Response:
    params = {"digest": kept["digest"], "position": str(kept["position"])}
    return api.call("an auditor", "GET", "/v1/audit/verify", params=params)


@then("the kept digest holds")
def digest_holds(response: httpx.Response) -> None:
    body = response.json()
    assert body["ok"] is True and body["digest_matches"] is True


@then("the kept digest no longer holds")
def digest_broken(response: httpx.Response) -> None:
    body = response.json()
    assert body["ok"] is False and body["digest_matches"] is False


@when(
    parsers.re(r"an auditor asks for the ledger digest at position (?P<position>\d+)"),
    target_fixture="response",
)
def digest_at(api: Api, position: str) -> httpx.Response:
    return api.call("an auditor", "GET", "/v1/audit/digest", params={"position": position})


# ---- the privacy officer ---------------------------------------------------------------


@when(parsers.re(ROLE + " requests everything held on the customer"), target_fixture="response")
def data_access_request(api: Api, account: Account, role: str) -> httpx.Response:
    return api.call(role, "GET", f"{account.path}/personal-data")


@then(parsers.re(r'the answer holds the current email "(?P<email>[^"]+)"'))
def current_email(response: httpx.Response, email: str) -> None:
    assert response.json()["current"]["email"] == email


@then(parsers.re(r'the answer holds the email "(?P<email>[^"]+)" from the "(?P<kind>\w+)" event'))
def email_from(response: httpx.Response, email: str, kind: str) -> None:
    records = response.json()["records"]
    assert any(r["type"] == kind and (r["fields"] or {}).get("email") == email for r in records)


@then("the answer holds no personal data")
def nothing_held(response: httpx.Response) -> None:
    body = response.json()
    assert body["personal_data_erased"] is True and body["current"] is None
    assert body["records"] and all(r["fields"] is None for r in body["records"])


def access_log(api: Api, account: Account) -> list[dict[str, Any]]:
    response = api.call(
        "an auditor", "GET", "/v1/audit/access-log", params={"account_id": account.id}, sub=CHECK
    )
    assert response.status_code == 200
    entries: list[dict[str, Any]] = response.json()["entries"]
    return entries


@then(
    parsers.re(
        r'the access log of the account shows the administrator\'s "(?P<what>[^"]+)" request'
    )
)
def logged_admin(api: Api, account: Account, what: str) -> None:
    entries = [e for e in access_log(api, account) if e["actor"] == actor("admin")]
    assert [e["what"] for e in entries] == [what]


@then(parsers.re(r'the access log of the account shows a "(?P<what>[^"]+)" by ' + ROLE))
def logged_by(api: Api, account: Account, what: str, role: str) -> None:
    from features.conftest import ROLES

    subject = actor(str(ROLES[role]))
    assert any(e["actor"] == subject and e["what"] == what for e in access_log(api, account))


@then(parsers.re(r"the access log of the account shows nothing by " + ROLE))
def nothing_logged_by(api: Api, account: Account, role: str) -> None:
    from features.conftest import ROLES

    subject = actor(str(ROLES[role]))
    assert all(e["actor"] != subject for e in access_log(api, account))


def closed_account(api: Api, days_ago: int) -> Account:
    closed_at = datetime.now(UTC) - timedelta(days=days_ago)
    account = open_account(
        api, new_customer(), occurred_at=(closed_at - timedelta(days=30)).isoformat()
    )
    body = {"reason": "customer_request", "occurred_at": closed_at.isoformat()}
    prepare(api, account, "POST", "/close", body)
    return account


@given(parsers.re(r"an account closed (?P<days>\d+) days ago"), target_fixture="old")
def closed_long_ago(api: Api, days: str) -> Account:
    return closed_account(api, int(days))


@given("an account closed today", target_fixture="recent")
def closed_today(api: Api) -> Account:
    return closed_account(api, 0)


@when(
    parsers.re(r"an administrator runs the retention job(?P<dry> as a dry run)?"),
    target_fixture="response",
)
def run_retention(api: Api, dry: str | None) -> httpx.Response:
    params = {"dry_run": "true"} if dry else None
    response = api.call("an administrator", "POST", "/v1/admin/retention/run", params=params)
    assert response.status_code == 200, response.text
    return response


def personal_data(api: Api, account: Account) -> dict[str, Any] | None:
    response = api.call("customer service", "GET", account.path, sub=SETUP)
    customer: dict[str, Any] | None = response.json()["customer"]
    return customer


@then(parsers.re(r'the account closed long ago has its personal data erased for "(?P<reason>\w+)"'))
def old_erased(api: Api, old: Account, response: httpx.Response, reason: str) -> None:
    assert old.id in response.json()["erased"]
    assert personal_data(api, old) is None
    events = api.call("an auditor", "GET", f"{old.path}/history", sub=CHECK).json()["events"]
    assert events[-1]["type"] == "PersonalDataErased"
    assert events[-1]["data"] == {"reason": reason}


@then("the account closed today keeps its personal data")
def recent_kept(api: Api, recent: Account, response: httpx.Response) -> None:
    assert recent.id not in response.json()["erased"]
    assert personal_data(api, recent) == recent.customer.details


@then("the account closed long ago is not erased again")
def not_again(response: httpx.Response, old: Account) -> None:
    assert old.id not in response.json()["erased"]


@then("the dry run lists the account closed long ago")
def dry_lists(response: httpx.Response, old: Account) -> None:
    body = response.json()
    assert body["dry_run"] is True and old.id in body["erased"]


@then("the account closed long ago keeps its personal data")
def old_kept(api: Api, old: Account) -> None:
    assert personal_data(api, old) == old.customer.details
