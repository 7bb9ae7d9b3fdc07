"""The console's audit records over HTTP without a browser, on the real PostgreSQL ledger: the
event feed, the access log, the personal-data export, and every refusal of the audit pages."""

from __future__ import annotations

import re
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from urllib.parse import quote
from zoneinfo import ZoneInfo

from fastapi.testclient import TestClient

from infra.wiring import Services
from tests.console.test_audit_pages import open_with_history
from tests.console.test_sessions import console, csrf_of, dev_signed_in


def test_the_event_feed_filters_pages_and_logs_the_personal_fields_it_shows(
    services: Services,
) -> None:
    account_id = open_with_history(services, "Feed Person")
    client = dev_signed_in(services, role="auditor", name="Feed Reader")
    first = client.get(f"/console/audit/events?account_id={account_id}&limit=2")
    assert first.status_code == 200
    assert first.text.count(f">{account_id}</a> v") == 2
    assert "Feed Person" in first.text  # decrypted for the auditor, as the API's feed is
    next_link = re.search(r'href="/console/audit/events\?([^"]+)" rel="next"', first.text)
    assert next_link, "a full page links to the next one"
    second = client.get("/console/audit/events?" + next_link.group(1).replace("&amp;", "&"))
    assert second.text.count(f">{account_id}</a> v") == 1 and "Details confirmed" in second.text

    only = client.get(f"/console/audit/events?account_id={account_id}&type=DetailsUpdated")
    assert only.text.count(f">{account_id}</a> v") == 1 and "Details updated" in only.text

    logged = services.access_log.query(account_id=account_id, actor="dev:Feed Reader")
    # One row per page that showed personal fields: the second page (a confirmation) showed none.
    assert [(e.what, e.fields) for e in logged] == [
        ("audit-feed", ["email", "name", "phone"]),
        ("audit-feed", ["phone"]),
    ]

    bad = client.get("/console/audit/events?after=-1&account_id=nope&type=Nope&from=yesterday")
    assert bad.status_code == 422
    for field in ("feed-after", "feed-account", "feed-type", "feed-from"):
        assert f'id="{field}-error"' in bad.text
    assert 'value="nope"' in bad.text  # what was typed stays


def test_a_time_filter_reads_the_moment_in_the_ledgers_zone(services: Services) -> None:
    account_id = open_with_history(services, "Zoned Moment")
    client = dev_signed_in(services, role="auditor", timezone="Asia/Hong_Kong")
    # An hour ago on Hong Kong's clocks, as a datetime-local input sends it (no offset).
    hour_ago = (datetime.now(ZoneInfo("Asia/Hong_Kong")) - timedelta(hours=1)).strftime(
        "%Y-%m-%dT%H:%M"
    )
    url = f"/console/audit/events?account_id={account_id}"
    # Read as UTC, that moment would lie hours ahead, and every event would be before it.
    assert client.get(f"{url}&to={hour_ago}").text.count(f">{account_id}</a> v") == 0
    assert client.get(f"{url}&from={hour_ago}").text.count(f">{account_id}</a> v") == 3
    with_offset = (datetime.now(UTC) - timedelta(hours=1)).isoformat(timespec="minutes")
    assert client.get(f"{url}&from={quote(with_offset)}").text.count(f">{account_id}</a>") == 3
    console(services)  # the templates' zone back to the session's (a global of Jinja's)


def test_the_access_log_is_filtered_as_the_api_filters_it(
    services: Services, client: TestClient, auth: Callable[..., dict[str, str]]
) -> None:
    account_id = open_with_history(services, "Logged Read")
    reader = f"reader-{uuid.uuid4().hex[:6]}"
    assert client.get(f"/v1/accounts/{account_id}", headers=auth("auditor", sub=reader)).is_success
    page = dev_signed_in(services, role="auditor").get(
        f"/console/audit/access-log?account_id={account_id}&actor={reader}"
    )
    assert page.status_code == 200
    entries = services.access_log.query(account_id=account_id, actor=reader)
    assert len(entries) == 1
    assert f'<td class="num">{entries[0].id}</td>' in page.text and ">read</td>" in page.text
    assert f"<td>{', '.join(entries[0].fields)}</td>" in page.text
    bad = dev_signed_in(services, role="auditor").get("/console/audit/access-log?limit=5000")
    assert bad.status_code == 422 and "give a whole number from 1 to 1000" in bad.text


def test_the_personal_data_export_is_the_apis_json_logged_as_the_api_logs_it(
    services: Services, client: TestClient, auth: Callable[..., dict[str, str]]
) -> None:
    account_id = open_with_history(services, "Export Me")
    api = client.get(f"/v1/accounts/{account_id}/personal-data", headers=auth("admin"))
    assert api.status_code == 200
    admin = dev_signed_in(services, role="admin", name="Privacy Officer")
    token = csrf_of(admin.get("/console/audit/personal-data").text)
    answer = admin.post(
        "/console/audit/personal-data", data={"csrf_token": token, "account_id": str(account_id)}
    )
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "application/json"
    assert answer.headers["content-disposition"] == (
        f'attachment; filename="personal-data-{account_id}.json"'
    )
    assert answer.content == api.content  # the same bytes
    rows = services.access_log.query(account_id=account_id, since=None)
    by = {e.actor: e for e in rows if e.what == "personal-data"}
    assert set(by) == {"tester", "dev:Privacy Officer"}
    assert by["tester"].fields == by["dev:Privacy Officer"].fields == ["email", "name", "phone"]

    unknown = admin.post(
        "/console/audit/personal-data", data={"csrf_token": token, "account_id": str(uuid.uuid4())}
    )
    assert unknown.status_code == 404 and 'id="export-account-error"' in unknown.text


def test_refusals_are_pages_and_change_nothing(services: Services) -> None:
    account_id = open_with_history(services, "Refused Export")
    for role in ("customer_service", "marketing", "management", "finance"):
        client = dev_signed_in(services, role=role)
        for path in ("/console/audit", "/console/audit/events", "/console/audit/access-log"):
            answer = client.get(path)
            assert answer.status_code == 403, (role, path)
            assert "Your roles may not do this: this needs one of the roles: admin, auditor" in (
                answer.text
            )
    auditor = dev_signed_in(services, role="auditor")
    page = auditor.get("/console/audit")
    assert "Personal data" not in page.text  # the tab shows only to who may export
    assert auditor.get("/console/audit/personal-data").status_code == 403
    token = csrf_of(page.text)
    refused = auditor.post(
        "/console/audit/personal-data", data={"csrf_token": token, "account_id": str(account_id)}
    )
    assert refused.status_code == 403
    # Without the session's token: refused before anything runs.
    for sent in ({}, {"csrf_token": "forged"}):
        answer = auditor.post("/console/audit/verify", data=sent)
        assert answer.status_code == 403 and "did not come from this session" in answer.text
    assert getattr(auditor.app.state, "console_jobs", None) is None  # type: ignore[attr-defined]
    admin = dev_signed_in(services, role="admin")
    answer = admin.post("/console/audit/personal-data", data={"account_id": str(account_id)})
    assert answer.status_code == 403
    assert not [
        e for e in services.access_log.query(account_id=account_id) if e.what == "personal-data"
    ]
    # Signed out: to the sign-in page, never the data.
    anonymous = console(services)
    answer = anonymous.get("/console/audit/events", follow_redirects=False)
    assert answer.status_code == 303 and answer.headers["location"].startswith("/console/sign-in")
