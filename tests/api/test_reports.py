"""Reports and guidelines over HTTP: who may read what, CSV, refusals, figures end to end.

The module has its own ledger with the known history of
tests/projections/history.py, so figures are exact whatever else the session wrote.
"""

from __future__ import annotations

import base64
import csv
import io
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import MATRIX, ROLES, report_permission
from api.views import encode_cursor, encode_page_cursor
from projections.reports import REPORTS
from tests.projections import history
from tests.support import own_ledger

APRIL = {"from": "2026-04-01", "to": "2026-05-01"}
PROBLEM = "application/problem+json"
HK = ZoneInfo("Asia/Hong_Kong")
Auth = Callable[..., dict[str, str]]


@pytest.fixture(scope="module")
def api() -> Iterator[TestClient]:
    with own_ledger() as services:
        history.build(services)
        with TestClient(create_app(services)) as client:
            yield client


def problem(response: Any, status: int) -> dict[str, Any]:
    """The problem+json body of a refusal with `status`."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    return body


# The design's report table; auditors read all.
READERS = {
    "accounts-summary": {"customer_service", "marketing", "management", "auditor"},
    "accounts-due-for-review": {"customer_service", "auditor"},
    "segment-analysis": {"marketing", "management", "auditor"},
    "financial-summary": {"finance", "management", "auditor"},
    "service-kpis": {"customer_service", "management", "auditor"},
    "scheme-review": {"management", "auditor"},
    "staff-performance": {"management", "auditor"},
}


@pytest.mark.parametrize("name", sorted(REPORTS))
@pytest.mark.parametrize("role", ROLES)
def test_each_report_is_read_by_its_departments_and_auditors_only(
    api: TestClient, auth: Auth, name: str, role: str
) -> None:
    response = api.get(f"/v1/reports/{name}", params=APRIL, headers=auth(role))
    if role in READERS[name]:
        assert response.status_code == 200, response.text
        assert response.json()["report"] == name
    else:
        assert "roles" in problem(response, 403)["detail"]


def test_the_roles_matrix_holds_the_report_table_of_the_design() -> None:
    assert {name: set(MATRIX[report_permission(name)]) for name in REPORTS} == READERS


def test_reports_need_a_token(api: TestClient) -> None:
    problem(api.get("/v1/reports/service-kpis", params=APRIL), 401)


def test_an_unknown_report_is_404_even_for_an_auditor(api: TestClient, auth: Auth) -> None:
    body = problem(api.get("/v1/reports/everything", headers=auth("auditor")), 404)
    assert body["title"] == "Unknown report"
    assert "scheme-review" in body["detail"]


def test_a_department_may_not_learn_about_parameters_of_a_report_it_may_not_read(
    api: TestClient, auth: Auth
) -> None:
    response = api.get("/v1/reports/scheme-review", params={"from": "x"}, headers=auth("finance"))
    problem(response, 403)


def test_the_report_list_shows_what_the_caller_may_read(api: TestClient, auth: Auth) -> None:
    response = api.get("/v1/reports", headers=auth("finance"))
    assert response.status_code == 200
    assert [r["name"] for r in response.json()["reports"]] == ["financial-summary"]
    everything = api.get("/v1/reports", headers=auth("auditor")).json()["reports"]
    assert {r["name"] for r in everything} == set(REPORTS)


def test_financial_summary_as_json_keeps_money_exact(api: TestClient, auth: Auth) -> None:
    response = api.get("/v1/reports/financial-summary", params=APRIL, headers=auth("finance"))
    assert response.status_code == 200
    body = response.json()
    assert (body["from"], body["to"], body["period"]) == ("2026-04-01", "2026-05-01", "month")
    assert body["columns"][:3] == ["period_start", "period_end", "segment"]
    assert body["rows"][1] == {
        "period_start": "2026-04-01",
        "period_end": "2026-05-01",
        "segment": "gold",
        "channel": "store",
        "store": "central",
        "currency": "HKD",
        "purchases": 1,
        "refunds": 1,
        "turnover": "90.00",
        "profit": "36.00",
    }


def test_a_report_as_csv_has_a_header_row(api: TestClient, auth: Auth) -> None:
    params = {**APRIL, "format": "csv", "split": "channel"}
    response = api.get("/v1/reports/service-kpis", params=params, headers=auth("management"))
    assert response.status_code == 200
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert "service-kpis_2026-04-01_2026-05-01.csv" in response.headers["content-disposition"]
    header, *rows = list(csv.reader(io.StringIO(response.text)))
    assert header == [
        "period_start",
        "period_end",
        "channel",
        "inquiries",
        "first_response_hours_mean",
        "first_response_hours_p90",
        "complaints",
        "complaint_resolution_hours_mean",
        "complaint_resolution_hours_p90",
        "satisfaction",
    ]
    by_channel = {row[2]: row for row in rows}
    assert by_channel["phone"][3:6] == ["5", "6.0", "9.2"]
    assert by_channel["store"][6:10] == ["2", "15.0", "22.2", "5.0"]
    assert by_channel["online"][4] == ""  # no answer yet: no mean


def test_an_empty_report_as_csv_is_its_header_row(api: TestClient, auth: Auth) -> None:
    params = {"from": "2020-01-01", "to": "2020-02-01", "format": "csv"}
    response = api.get("/v1/reports/staff-performance", params=params, headers=auth("auditor"))
    assert response.status_code == 200
    assert response.text == (
        "actor,inquiries_answered,complaints_resolved,first_response_hours_mean,"
        "complaint_resolution_hours_mean,satisfied_share\r\n"
    )


def test_due_for_review_csv_shows_no_personal_data(api: TestClient, auth: Auth) -> None:
    params = {**APRIL, "format": "csv", "days": "30"}
    response = api.get(
        "/v1/reports/accounts-due-for-review", params=params, headers=auth("customer_service")
    )
    assert response.status_code == 200
    header, *rows = list(csv.reader(io.StringIO(response.text)))
    assert header == ["account_id", "external_ref", "segment", "channel", "details_current_at"]
    assert [row[1] for row in rows] == ["E", "F", "A"]
    assert "@example.com" not in response.text and "Customer" not in response.text


def test_scheme_review_over_http(api: TestClient, auth: Auth) -> None:
    response = api.get("/v1/reports/scheme-review", params=APRIL, headers=auth("management"))
    rows = {r["kpi"]: r for r in response.json()["rows"]}
    assert rows["first_response_hours_p90"] == {
        "kpi": "first_response_hours_p90",
        "value": 9.2,
        "comparison": "at_most",
        "target": 24.0,
        "met": True,
        "deviation": -14.8,
        "previous": 30.0,
        "trend": "down",
    }
    assert rows["satisfaction"]["value"] == 3.666667 and rows["satisfaction"]["met"] is False


def test_without_dates_a_report_covers_the_last_90_days(api: TestClient, auth: Auth) -> None:
    response = api.get("/v1/reports/accounts-summary", headers=auth("marketing"))
    assert response.status_code == 200
    body = response.json()
    # The run may cross midnight: accept either day.
    today = datetime.now(UTC).date()
    ends = {(today + timedelta(days=1 + d)).isoformat() for d in (-1, 0)}
    assert body["to"] in ends
    span = datetime.fromisoformat(body["to"]) - datetime.fromisoformat(body["from"])
    assert span == timedelta(days=90)


@pytest.mark.parametrize(
    ("params", "mentions"),
    [
        ({"from": "yesterday"}, "from"),
        ({"to": "2026-13-01"}, "to"),
        ({"from": "2026-05-01", "to": "2026-04-01"}, "before"),
        ({"from": "2026-04-01", "to": "2026-04-01"}, "before"),
        ({"period": "year"}, "period"),
        ({"segment": "platinum"}, "segment"),
        ({"channel": "fax"}, "channel"),
        ({"split": "store"}, "split"),
        ({"split": "segment", "name": "financial-summary"}, "cannot be split"),
        ({"days": "0", "name": "accounts-due-for-review"}, "days"),
        ({"days": "many", "name": "accounts-due-for-review"}, "days"),
        ({"days": "30"}, "takes no days"),
        ({"format": "xlsx"}, "format"),
        ({"from": "1066-10-14"}, "between"),
        ({"from": "2000-01-01", "period": "day"}, "periods"),
    ],
)
def test_bad_parameters_are_422_problems(
    api: TestClient, auth: Auth, params: dict[str, str], mentions: str
) -> None:
    name = params.pop("name", "service-kpis")
    response = api.get(f"/v1/reports/{name}", params={**APRIL, **params}, headers=auth("auditor"))
    assert mentions in problem(response, 422)["detail"]


# ---- guidelines ---------------------------------------------------------------------


@pytest.mark.parametrize("role", ROLES)
def test_guidelines_are_read_by_report_readers_auditors_and_admins(
    api: TestClient, auth: Auth, role: str
) -> None:
    response = api.get("/v1/guidelines", headers=auth(role))
    if role == "integration":
        problem(response, 403)
        return
    assert response.status_code == 200
    body = response.json()
    assert body["satisfaction"] == {
        "comparison": "at_least",
        "target": 4.0,
        "source": "default",
        "updated_at": None,
        "updated_by": None,
    }
    assert body["first_response_hours_p90"]["target"] == 24.0
    assert body["churn_rate"] == body["churn_rate"] | {"comparison": "at_most", "target": 0.05}


@pytest.mark.parametrize("role", ["customer_service", "marketing", "finance", "auditor"])
def test_only_management_and_admins_set_guidelines(api: TestClient, auth: Auth, role: str) -> None:
    body = {"satisfaction": {"comparison": "at_least", "target": 1.0}}
    problem(api.put("/v1/guidelines", json=body, headers=auth(role)), 403)
    assert api.get("/v1/guidelines", headers=auth(role)).json()["satisfaction"]["target"] == 4.0


@pytest.mark.parametrize(
    "body",
    [
        {"happiness": {"comparison": "at_least", "target": 1}},
        {"turnover": {"comparison": "exactly", "target": 1}},
        {"turnover": {"comparison": "at_least", "target": "a lot"}},
        {"turnover": {"comparison": "at_least"}},
        {"turnover": {"comparison": "at_least", "target": 1, "weight": 2}},
        {},
        [],
    ],
)
def test_bad_guidelines_are_422_problems(api: TestClient, auth: Auth, body: Any) -> None:
    problem(api.put("/v1/guidelines", json=body, headers=auth("management")), 422)
    assert "turnover" not in api.get("/v1/guidelines", headers=auth("management")).json()


def test_management_sets_a_target_and_the_scheme_review_follows(
    api: TestClient, auth: Auth
) -> None:
    body = {
        "turnover": {"comparison": "at_least", "target": 200},
        "visits": {"comparison": "at_most", "target": 3},
    }
    response = api.put("/v1/guidelines", json=body, headers=auth("management", sub="head"))
    try:
        assert response.status_code == 200, response.text
        turnover = response.json()["turnover"]
        assert (turnover["target"], turnover["source"], turnover["updated_by"]) == (
            200.0,
            "set",
            "head",
        )
        review = api.get("/v1/reports/scheme-review", params=APRIL, headers=auth("auditor"))
        rows = {r["kpi"]: r for r in review.json()["rows"]}
        assert (rows["turnover"]["met"], rows["turnover"]["deviation"]) == (False, -39.5)
        assert (rows["visits"]["met"], rows["visits"]["deviation"]) == (True, 0.0)
    finally:
        reset = {"turnover": None, "visits": None}
        assert api.put("/v1/guidelines", json=reset, headers=auth("admin")).status_code == 200
    after = api.get("/v1/guidelines", headers=auth("management")).json()
    assert "turnover" not in after and "visits" not in after


# ---- every period on every report ---------------------------------------------------------

# From mid-February to mid-May: the first and last buckets of every period are cut.
SPAN = {"from": "2026-02-15", "to": "2026-05-20"}
PERIODS = ("day", "week", "month", "quarter")


def _starts_a(period: str, day: date) -> bool:
    """Whether `day` is the first day of a calendar `period`."""
    return {
        "day": True,
        "week": day.weekday() == 0,
        "month": day.day == 1,
        "quarter": day.day == 1 and day.month in (1, 4, 7, 10),
    }[period]


def _totals(name: str, rows: list[dict[str, Any]]) -> dict[str, Any]:
    """What a periodic report adds up to over the range, whatever its period."""
    counted = {
        "segment-analysis": ("new_customers", "lost_customers", "migrations_in"),
        "financial-summary": ("purchases", "refunds", "turnover"),
        "service-kpis": ("inquiries", "complaints"),
    }[name]
    return {c: sum(Decimal(str(r[c])) for r in rows) for c in counted}


@pytest.mark.parametrize("name", sorted(REPORTS))
def test_every_period_works_on_every_report_as_json_and_csv(
    api: TestClient, auth: Auth, name: str
) -> None:
    report, totals = REPORTS[name], {}
    for period in PERIODS:
        params = {**SPAN, "period": period}
        response = api.get(f"/v1/reports/{name}", params=params, headers=auth("auditor"))
        assert response.status_code == 200, (period, response.text)
        body = response.json()
        assert body["period"] == (period if report.periodic else None)
        rows = body["rows"]
        csv_response = api.get(
            f"/v1/reports/{name}", params={**params, "format": "csv"}, headers=auth("auditor")
        )
        assert csv_response.status_code == 200, (period, csv_response.text)
        header, *lines = list(csv.reader(io.StringIO(csv_response.text)))
        assert (header, len(lines)) == (body["columns"], len(rows))
        if not report.periodic:
            continue
        assert rows, (name, period)
        for row in rows:
            start = date.fromisoformat(row["period_start"])
            end = date.fromisoformat(row["period_end"])
            assert SPAN["from"] <= row["period_start"] < row["period_end"] <= SPAN["to"], row
            # A bucket starts at its period's start unless cut by the range, and
            # ends at the next period's start unless cut by it.
            assert _starts_a(period, start) or row["period_start"] == SPAN["from"], row
            assert _starts_a(period, end) or row["period_end"] == SPAN["to"], row
            assert all(
                not _starts_a(period, start + timedelta(days=d))
                for d in range(1, (end - start).days)
            ), row
        totals[period] = _totals(name, rows)
    if report.periodic:
        assert totals["day"] == totals["week"] == totals["month"] == totals["quarter"]
        assert any(totals["quarter"].values()), totals


# ---- the accounts due for review, a page at a time -----------------------------------------

DUE = "/v1/reports/accounts-due-for-review"
DUE_30 = {**APRIL, "days": "30"}  # E, F and A, stalest first
DOCUMENT = {"report", "title", "from", "to", "period", "segment", "channel", "split", "days"}
DOCUMENT |= {"columns", "rows"}


def next_link(response: Any) -> str | None:
    """The address of the Link header's next page, or None without one."""
    link = response.headers.get("link")
    if link is None:
        return None
    address, rel = link.split(";")
    assert rel.strip() == 'rel="next"' and address.startswith("<") and address.endswith(">")
    return address[1:-1]


def test_due_for_review_pages_oldest_first_and_each_account_once(
    api: TestClient, auth: Auth
) -> None:
    headers = auth("customer_service")
    first = api.get(DUE, params={**DUE_30, "limit": "2"}, headers=headers)
    assert first.status_code == 200, first.text
    body = first.json()
    assert set(body) == DOCUMENT | {"limit", "total", "next_cursor"}
    assert [r["external_ref"] for r in body["rows"]] == ["E", "F"]
    assert (body["limit"], body["total"], body["days"]) == (2, 3, 30)
    # The next page: by the cursor, or at the Link header's address (the same request on).
    address = next_link(first)
    assert address is not None and address.startswith(f"{DUE}?")
    by_cursor = api.get(DUE, params={**DUE_30, "limit": "2", "cursor": body["next_cursor"]},
                        headers=headers)  # fmt: skip
    by_link = api.get(address, headers=headers)
    for second in (by_cursor, by_link):
        assert second.status_code == 200, second.text
        page = second.json()
        assert [r["external_ref"] for r in page["rows"]] == ["A"]
        assert (page["total"], page["next_cursor"]) == (3, None)
        assert "link" not in second.headers
    # A page of one, three times; the default page holds them all.
    seen, cursor = [], None
    for _ in range(3):
        params = {**DUE_30, "limit": "1"} | ({"cursor": cursor} if cursor else {})
        page = api.get(DUE, params=params, headers=headers).json()
        seen += [r["external_ref"] for r in page["rows"]]
        cursor = page["next_cursor"]
    assert (seen, cursor) == (["E", "F", "A"], None)
    whole = api.get(DUE, params=DUE_30, headers=headers)
    assert [r["external_ref"] for r in whole.json()["rows"]] == ["E", "F", "A"]
    assert (whole.json()["limit"], whole.json()["next_cursor"]) == (500, None)
    assert "link" not in whole.headers


def test_due_for_review_csv_is_the_same_page_with_the_next_in_a_link_header(
    api: TestClient, auth: Auth
) -> None:
    headers = auth("customer_service")
    first = api.get(DUE, params={**DUE_30, "limit": "2", "format": "csv"}, headers=headers)
    assert first.status_code == 200, first.text
    assert first.headers["content-type"] == "text/csv; charset=utf-8"
    assert first.headers["content-disposition"].startswith("attachment; filename=")
    header, *rows = list(csv.reader(io.StringIO(first.text)))
    assert header == ["account_id", "external_ref", "segment", "channel", "details_current_at"]
    assert [row[1] for row in rows] == ["E", "F"]
    address = next_link(first)
    assert address is not None and "format=csv" in address and "limit=2" in address
    last = api.get(address, headers=headers)
    assert [row[1] for row in list(csv.reader(io.StringIO(last.text)))[1:]] == ["A"]
    assert next_link(last) is None


def test_the_other_reports_are_not_paged(api: TestClient, auth: Auth) -> None:
    for name in sorted(set(REPORTS) - {"accounts-due-for-review"}):
        response = api.get(f"/v1/reports/{name}", params=APRIL, headers=auth("auditor"))
        assert set(response.json()) == DOCUMENT, name
        assert "link" not in response.headers
        for extra in ({"limit": "10"}, {"cursor": "abc"}, {"limit": "1", "format": "csv"}):
            refused = api.get(f"/v1/reports/{name}", params={**APRIL, **extra},
                              headers=auth("auditor"))  # fmt: skip
            assert "is not paged: it takes no limit or cursor" in problem(refused, 422)["detail"]
    listed = {
        r["name"]: r for r in api.get("/v1/reports", headers=auth("auditor")).json()["reports"]
    }
    assert listed["accounts-due-for-review"]["options"] == ["cursor", "days", "limit"]
    assert listed["service-kpis"]["options"] == ["split"]


@pytest.mark.parametrize(
    "limit", ["0", "-1", "5001", "99999999999999999999999999", "many", "1.5", "1e3", ""]
)
def test_a_limit_not_from_1_to_5000_is_a_422(api: TestClient, auth: Auth, limit: str) -> None:
    response = api.get(DUE, params={**DUE_30, "limit": limit}, headers=auth("customer_service"))
    body = problem(response, 422)
    assert body["type"] == "urn:crmledger:problem:invalid-request"
    assert "limit" in body["detail"]


def test_the_largest_page_is_5000(api: TestClient, auth: Auth) -> None:
    response = api.get(DUE, params={**DUE_30, "limit": "5000"}, headers=auth("customer_service"))
    assert response.status_code == 200 and response.json()["limit"] == 5000


def _raw_cursor(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode()


def tampered(cursor: str) -> dict[str, str]:
    """Cursors this API never gave for the due report, each made from a real one."""
    name, moment, account_id = base64.urlsafe_b64decode(cursor).decode().split("|")
    at = datetime.fromisoformat(moment)
    return {
        "not base64": "not a cursor!",
        "one character more": cursor[:10] + "!" + cursor[10:],
        "padded": cursor + "==",
        "truncated": cursor[:-4],
        "non-ascii": cursor[:-1] + "é",
        "the directory's": encode_cursor(at, UUID(account_id)),
        "another report's": encode_page_cursor("accounts-summary", (at, UUID(account_id))),
        "no report": _raw_cursor(f"{moment}|{account_id}"),
        "a fourth part": _raw_cursor(f"{name}|{moment}|{account_id}|x"),
        "a naive moment": _raw_cursor(f"{name}|{at.replace(tzinfo=None).isoformat()}|{account_id}"),
        "another offset": _raw_cursor(f"{name}|{at.astimezone(HK).isoformat()}|{account_id}"),
        "not a moment": _raw_cursor(f"{name}|yesterday|{account_id}"),
        "year 0": _raw_cursor(f"{name}|0000-12-31T00:00:00+00:00|{account_id}"),
        "overflowing UTC": _raw_cursor(f"{name}|0001-01-01T00:00:00+05:00|{account_id}"),
        "not an id": _raw_cursor(f"{name}|{moment}|{account_id[:-1]}"),
        "an id in braces": _raw_cursor(f"{name}|{moment}|{{{account_id}}}"),
        "bytes not UTF-8": base64.urlsafe_b64encode(b"\xff\xfe|\x00").decode(),
        "empty parts": _raw_cursor("||"),
    }


def test_a_cursor_this_api_did_not_give_is_a_400_problem(api: TestClient, auth: Auth) -> None:
    headers = auth("customer_service")
    real = api.get(DUE, params={**DUE_30, "limit": "1"}, headers=headers).json()["next_cursor"]
    for why, cursor in tampered(real).items():
        response = api.get(DUE, params={**DUE_30, "cursor": cursor}, headers=headers)
        body = problem(response, 400)
        assert body["type"] == "urn:crmledger:problem:bad-request", why
        assert "cursor is not one this API gave" in body["detail"], why
        csv_too = api.get(DUE, params={**DUE_30, "cursor": cursor, "format": "csv"},
                          headers=headers)  # fmt: skip
        problem(csv_too, 400)


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"cursor": "\x00"}, 422),
        ({"cursor": "abc\x00def"}, 422),
        ({"limit": "\x00"}, 422),
        ({"limit": "1\x00"}, 422),
        ({"cursor": "A" * 201}, 422),
        ({"cursor": "A" * 60_000}, 422),  # about as long as an address may be
        ({"limit": "9" * 10_000}, 422),
    ],
)
def test_nul_bytes_and_huge_values_in_the_paging_parameters_are_refused(
    api: TestClient, auth: Auth, params: dict[str, str], status: int
) -> None:
    response = api.get(DUE, params={**DUE_30, **params}, headers=auth("customer_service"))
    problem(response, status)


def test_a_cursor_at_the_ends_of_time_reads_a_page(api: TestClient, auth: Auth) -> None:
    headers = auth("customer_service")
    name, anyone = "accounts-due-for-review", UUID(int=0)
    earliest = encode_page_cursor(name, (datetime(1, 1, 1, tzinfo=UTC), anyone))
    latest = encode_page_cursor(name, (datetime(9999, 12, 31, 23, 59, 59, 999999, UTC), anyone))
    before = api.get(DUE, params={**DUE_30, "cursor": earliest}, headers=headers)
    assert [r["external_ref"] for r in before.json()["rows"]] == ["E", "F", "A"]
    after = api.get(DUE, params={**DUE_30, "cursor": latest}, headers=headers).json()
    assert (after["rows"], after["total"], after["next_cursor"]) == ([], 3, None)


def test_the_openapi_document_names_the_paging_parameters_and_the_400(api: TestClient) -> None:
    operation = api.get("/openapi.json").json()["paths"]["/v1/reports/{name}"]["get"]
    params = {p["name"]: p for p in operation["parameters"]}
    limit = params["limit"]["schema"]["anyOf"][0]
    assert (limit["minimum"], limit["maximum"]) == (1, 5000)
    assert params["cursor"]["schema"]["anyOf"][0]["maxLength"] == 200
    assert "400" in operation["responses"] and "422" in operation["responses"]
    assert 'rel="next"' in operation["description"]
