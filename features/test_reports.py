"""Steps of the report features (features/reports/): segments, department access, the review.

Report figures count every account of the ledger, so these scenarios run on
a ledger of their own (its own PostgreSQL schemas), emptied before each one,
not on the session's shared ledger. The scene is set through the API as
customer service, with business times in the past; an administrator then
rebuilds the read models.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any
from urllib.parse import parse_qsl

import httpx
import pytest
from fastapi.testclient import TestClient
from pytest_bdd import given, parsers, scenarios, then, when

from api.app import create_app
from features.conftest import (
    CHECK,
    ROLE,
    SETUP,
    Account,
    Api,
    actor,
    new_customer,
    open_account,
    plain,
    prepare,
)
from infra.wiring import Services
from tests.support import own_ledger

scenarios("reports")

REPORT = r'"(?P<name>[^"]+)" report'
DAY = r"\d{4}-\d{2}-\d{2}"


# ---- fixtures: an empty ledger for each scenario ----------------------------------------


@pytest.fixture(scope="module")
def services() -> Iterator[Services]:
    """A ledger of these features' own, with its own read models."""
    with own_ledger() as built:
        yield built


@pytest.fixture(scope="module")
def client(services: Services) -> Iterator[TestClient]:
    """The real API over these features' ledger."""
    with TestClient(create_app(services)) as c:
        yield c


@pytest.fixture(autouse=True)
def empty_ledger(services: Services) -> None:
    """Empty every table of the ledger and its read models before each scenario.

    Report figures count every account, so a scenario must see only its own
    history; emptying the tables is much faster than a new ledger each time.
    """
    schemas = (services.settings.database_schema, services.settings.readmodel_schema)
    with services.pool.connection() as conn:
        tables = conn.execute(
            "SELECT format('%%I.%%I', schemaname, tablename) FROM pg_tables"
            " WHERE schemaname = ANY(%s)",
            (list(schemas),),
        ).fetchall()
        conn.execute(f"TRUNCATE {', '.join(t for (t,) in tables)} RESTART IDENTITY".encode())


def at(day: str, hours: float = 0) -> str:
    """Business time: 09:00 UTC on `day`, plus `hours`."""
    start = datetime.fromisoformat(day).replace(hour=9, tzinfo=UTC)
    return (start + timedelta(hours=hours)).isoformat()


def records(datatable: list[list[str]]) -> list[dict[str, str]]:
    """A table with a header row as one dict per row."""
    header, *rows = datatable
    return [dict(zip(header, row, strict=True)) for row in rows]


# ---- given: a history written through the API -------------------------------------------


@given("these accounts were opened", target_fixture="named")
def accounts_opened(api: Api, datatable: list[list[str]]) -> dict[str, Account]:
    named = {}
    for row in records(datatable):
        who = row["customer"]
        customer = new_customer(name=f"{who} Example", email=f"{who.lower()}@example.com")
        named[who] = open_account(
            api,
            customer,
            segment=row["segment"],
            channel=row["channel"],
            occurred_at=at(row["opened on"]),
        )
    return named


@given(parsers.re(rf'the account of "(?P<who>\w+)" was closed on (?P<day>{DAY})'))
def closed_on(api: Api, named: dict[str, Account], who: str, day: str) -> None:
    body = {"reason": "customer_request", "occurred_at": at(day)}
    prepare(api, named[who], "POST", "/close", body)


@given(
    parsers.re(
        rf'the account of "(?P<who>\w+)" was moved to segment "(?P<segment>\w+)" on (?P<day>{DAY})'
    )
)
def moved_on(api: Api, named: dict[str, Account], who: str, segment: str, day: str) -> None:
    prepare(api, named[who], "POST", "/segment", {"segment": segment, "occurred_at": at(day)})


@given(parsers.re(rf'the details of "(?P<who>\w+)" were confirmed on (?P<day>{DAY})'))
def confirmed_on(api: Api, named: dict[str, Account], who: str, day: str) -> None:
    prepare(api, named[who], "POST", "/confirm-details", {"occurred_at": at(day)})


def activity(api: Api, account: Account, body: dict[str, Any], by: str = SETUP) -> None:
    """Record an activity as customer service; `by` is the staff member (token subject)."""
    path = f"{account.path}/activities"
    account.remember(api.call("customer service", "POST", path, body=body, sub=by))


@given("these inquiries were answered")
def inquiries_answered(api: Api, named: dict[str, Account], datatable: list[list[str]]) -> None:
    for n, row in enumerate(records(datatable)):
        account, day, hours = named[row["customer"]], row["opened on"], row["answered after hours"]
        opened = {"type": "inquiry_opened", "inquiry_id": f"Q{n}", "channel": "phone"}
        activity(api, account, opened | {"topic": "billing", "occurred_at": at(day)})
        answered = {"type": "inquiry_answered", "inquiry_id": f"Q{n}", "channel": "phone"}
        activity(api, account, answered | {"occurred_at": at(day, float(hours))}, by=row["by"])


@given("these complaints were resolved")
def complaints_resolved(api: Api, named: dict[str, Account], datatable: list[list[str]]) -> None:
    for n, row in enumerate(records(datatable)):
        account, day, hours = named[row["customer"]], row["lodged on"], row["resolved after hours"]
        lodged = {"type": "complaint_lodged", "complaint_id": f"K{n}", "category": "service"}
        activity(api, account, lodged | {"severity": "medium", "occurred_at": at(day)})
        resolved = {
            "type": "complaint_resolved",
            "complaint_id": f"K{n}",
            "resolution": "settled",
            "satisfied": row["satisfied"] == "yes",
            "occurred_at": at(day, float(hours)),
        }
        activity(api, account, resolved, by=row["by"])


@given("these feedback scores were given")
def feedback_given(api: Api, named: dict[str, Account], datatable: list[list[str]]) -> None:
    for row in records(datatable):
        body = {"type": "feedback", "score": int(row["score"]), "occurred_at": at(row["on"])}
        activity(api, named[row["customer"]], body)


@given("these sales were recorded")
def sales_recorded(api: Api, named: dict[str, Account], datatable: list[list[str]]) -> None:
    for row in records(datatable):
        body = {k: row[k] for k in ("amount", "cost", "currency", "store")}
        activity(
            api, named[row["customer"]], body | {"type": row["kind"], "occurred_at": at(row["on"])}
        )


@given("the read models are up to date")
def read_models_rebuilt(api: Api) -> None:
    for name in ("directory", "kpis"):
        path = f"/v1/admin/projections/{name}/rebuild"
        response = api.call("an administrator", "POST", path, sub=SETUP)
        assert response.status_code == 200, response.text


@given(
    parsers.re(
        r'management has set the guideline "(?P<kpi>\w+)" to (?P<comparison>at least|at most)'
        r" (?P<target>[\d.]+)"
    )
)
def guideline_set(api: Api, kpi: str, comparison: str, target: str) -> None:
    response = set_guideline(api, "management", kpi, comparison, target)
    assert response.status_code == 200, response.text


# ---- when: reading reports and guidelines --------------------------------------------------


def read(api: Api, role: str, name: str, params: dict[str, str]) -> httpx.Response:
    return api.call(role, "GET", f"/v1/reports/{name}", params=params)


@when(parsers.re(ROLE + " reads the " + REPORT), target_fixture="response")
def reads_report(api: Api, role: str, name: str) -> httpx.Response:
    return read(api, role, name, {})


@when(
    parsers.re(
        ROLE + " reads the " + REPORT + rf" from (?P<start>{DAY}) to (?P<end>{DAY})"
        r"(?: by (?P<period>day|week|month|quarter))?"
        r'(?: for segment "(?P<segment>\w+)")?'
    ),
    target_fixture="response",
)
def reads_report_for(
    api: Api, role: str, name: str, start: str, end: str, period: str | None, segment: str | None
) -> httpx.Response:
    params = {"from": start, "to": end}
    params |= {"period": period} if period else {}
    params |= {"segment": segment} if segment else {}
    return read(api, role, name, params)


@when(
    parsers.re(ROLE + " reads the " + REPORT + rf" up to (?P<end>{DAY}) for (?P<days>\d+) days"),
    target_fixture="response",
)
def reads_review_list(api: Api, role: str, name: str, end: str, days: str) -> httpx.Response:
    return read(api, role, name, {"to": end, "days": days})


@when(
    parsers.re(ROLE + " reads the " + REPORT + r" with (?P<query>\S+)"), target_fixture="response"
)
def reads_report_with(api: Api, role: str, name: str, query: str) -> httpx.Response:
    return read(api, role, name, dict(parse_qsl(query)))


@when(parsers.re(ROLE + " reads the next page"), target_fixture="response")
def reads_next_page(api: Api, role: str, response: httpx.Response) -> httpx.Response:
    """The page at the address of the last answer's Link header, as a client follows it."""
    address, rel = response.headers["link"].split(";")
    assert rel.strip() == 'rel="next"'
    return api.call(role, "GET", address.strip().removeprefix("<").removesuffix(">"))


@when(
    parsers.re(
        ROLE + " downloads the " + REPORT + rf" from (?P<start>{DAY}) to (?P<end>{DAY}) as CSV"
    ),
    target_fixture="response",
)
def downloads_report(api: Api, role: str, name: str, start: str, end: str) -> httpx.Response:
    return read(api, role, name, {"from": start, "to": end, "format": "csv"})


@when(parsers.re(ROLE + " reads the guidelines"), target_fixture="response")
def reads_guidelines(api: Api, role: str) -> httpx.Response:
    return api.call(role, "GET", "/v1/guidelines")


def set_guideline(api: Api, role: str, kpi: str, comparison: str, target: str) -> httpx.Response:
    body = {kpi: {"comparison": comparison.replace(" ", "_"), "target": float(target)}}
    return api.call(role, "PUT", "/v1/guidelines", body=body)


@when(
    parsers.re(
        ROLE + r' sets the guideline "(?P<kpi>\w+)" to (?P<comparison>at least|at most)'
        r" (?P<target>[\d.]+)"
    ),
    target_fixture="response",
)
def sets_guideline(api: Api, role: str, kpi: str, comparison: str, target: str) -> httpx.Response:
    return set_guideline(api, role, kpi, comparison, target)


# ---- then: what the report says -------------------------------------------------------------


def rows_of(response: httpx.Response) -> list[dict[str, Any]]:
    assert response.status_code == 200, response.text
    rows: list[dict[str, Any]] = response.json()["rows"]
    return rows


@then(parsers.re(r'they see the "(?P<name>[^"]+)" report of the last 90 days'))
def sees_report(response: httpx.Response, name: str) -> None:
    body = response.json()
    assert body["report"] == name
    assert body["columns"] and all(set(row) == set(body["columns"]) for row in body["rows"])
    span = date.fromisoformat(body["to"]) - date.fromisoformat(body["from"])
    assert span == timedelta(days=90)
    assert date.fromisoformat(body["to"]) > datetime.now(UTC).date() - timedelta(days=1)


@then("the report has these rows")
def has_rows(response: httpx.Response, datatable: list[list[str]]) -> None:
    expected = records(datatable)
    columns = list(expected[0]) if expected else []
    got = [{c: plain(row[c]) for c in columns} for row in rows_of(response)]
    assert got == expected


@then("the review shows")
def review_shows(response: httpx.Response, datatable: list[list[str]]) -> None:
    rows = {row["kpi"]: row for row in rows_of(response)}
    for expected in records(datatable):
        row = rows[expected["kpi"]]
        assert {c: plain(row[c]) for c in expected} == expected


@then(parsers.re(r'the report lists the accounts of "(?P<names>[^"]+)"'))
def lists_accounts(response: httpx.Response, named: dict[str, Account], names: str) -> None:
    wanted = [named[n] for n in names.split(", ")]
    got = [(row["account_id"], row["external_ref"]) for row in rows_of(response)]
    assert got == [(a.id, a.customer.external_ref) for a in wanted]


@then(parsers.re(r"the page says (?P<total>\d+) accounts? (?:is|are) due in all"))
def page_total(response: httpx.Response, total: str) -> None:
    assert rows_of(response) is not None and response.json()["total"] == int(total)


@then("it is the last page")
def last_page(response: httpx.Response) -> None:
    assert response.json()["next_cursor"] is None
    assert "link" not in response.headers


@then("the report shows no personal data of the customers")
def no_personal_data(response: httpx.Response, named: dict[str, Account]) -> None:
    for account in named.values():
        for value in account.customer.details.values():
            assert value not in response.text, f"{value!r} is in the report"


@then(parsers.re(r'the download is CSV with the header "(?P<header>[^"]+)"'))
def csv_download(response: httpx.Response, header: str) -> None:
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"].startswith("attachment; filename=")
    assert response.text.splitlines()[0] == header


@then("the download has these lines")
def csv_lines(response: httpx.Response, datatable: list[list[str]]) -> None:
    header, *lines = response.text.splitlines()
    assert lines == [row["line"] for row in records(datatable)]
    assert all(len(row) == len(header.split(",")) for row in csv.reader(io.StringIO(response.text)))


@then(
    parsers.re(
        r'the guideline "(?P<kpi>\w+)" is (?P<comparison>at least|at most) (?P<target>[\d.]+)'
        r" (?P<source>by default|as set by management)"
    )
)
def guideline_is(api: Api, kpi: str, comparison: str, target: str, source: str) -> None:
    response = api.call("an auditor", "GET", "/v1/guidelines", sub=CHECK)
    assert response.status_code == 200, response.text
    guideline = response.json()[kpi]
    assert guideline["comparison"] == comparison.replace(" ", "_")
    assert guideline["target"] == float(target)
    if source == "by default":
        assert (guideline["source"], guideline["updated_by"]) == ("default", None)
    else:
        assert (guideline["source"], guideline["updated_by"]) == ("set", actor("management"))
