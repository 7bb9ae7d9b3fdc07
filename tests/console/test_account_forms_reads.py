"""The account as it stood at a moment (in the ledger's time zone) and the accounts due for
their periodic review in the work queue, over HTTP without a browser."""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient

from infra.wiring import Services
from projections.reports import report_named
from tests.console.test_account_forms import customer_service, error_next_to, page_of, post
from tests.console.test_sessions import csrf_of, dev_signed_in
from tests.support import open_plain


@pytest.fixture
def cs(services: Services) -> TestClient:
    return customer_service(services)


def test_the_account_as_it_stood_at_a_moment_in_the_ledgers_time_zone(
    services: Services,
) -> None:
    zone = "Asia/Hong_Kong"
    client = dev_signed_in(services, timezone=zone)
    account = open_plain(services.ledger, "Time Traveller")
    first = services.ledger.account(account.id)
    services.ledger.change_segment(account.id, "vip", datetime.now(UTC), {"actor": "t"})
    # The moment v1 was recorded, as a datetime-local field writes it: wall clock, no offset.
    local = first.modified_on.astimezone(ZoneInfo(zone)).replace(tzinfo=None).isoformat()
    page = page_of(client, account.id, as_of=local)
    assert "As it stood at" in page and "HKT" in page
    assert "version 1 of 2" in page
    assert re.search(r"<dt>Segment</dt><dd>gold</dd>", page)
    assert "after the state shown" in page  # the change to vip, later than the state shown
    assert 'id="activity-form"' not in page  # no command on a past state
    assert f'value="{first.modified_on.astimezone(ZoneInfo(zone)):%Y-%m-%dT%H:%M:%S}"' in page
    # The same moment with its own offset, as the API takes it, reads the same.
    assert "version 1 of 2" in page_of(client, account.id, as_of=first.modified_on.isoformat())
    soon = datetime.now(ZoneInfo(zone)) + timedelta(minutes=1)  # to the minute, as typed
    now = page_of(client, account.id, as_of=soon.strftime("%Y-%m-%dT%H:%M"))
    assert "version 2 of 2" in now and "It has not changed since." in now

    before = (first.modified_on - timedelta(hours=1)).astimezone(ZoneInfo(zone))
    early = client.get(
        f"/console/accounts/{account.id}", params={"as_of": before.strftime("%Y-%m-%dT%H:%M")}
    )
    assert early.status_code == 404
    assert error_next_to(early.text, "at-moment").startswith("The account did not exist yet at ")
    bad = client.get(f"/console/accounts/{account.id}", params={"as_of": "yesterday"})
    assert bad.status_code == 422
    assert error_next_to(bad.text, "at-moment").startswith("give a date and time such as")
    old = client.get(f"/console/accounts/{account.id}", params={"as_of": "1850-01-01T00:00"})
    assert old.status_code == 422
    assert error_next_to(old.text, "at-moment") == "must lie between 1900-01-01 and 9000-01-01"
    both = client.get(f"/console/accounts/{account.id}", params={"as_of": local, "version": "1"})
    assert both.status_code == 400 and "give version or as_of, not both" in both.text
    marketing = dev_signed_in(services, role="marketing")
    refused = marketing.get(f"/console/accounts/{account.id}", params={"as_of": local})
    assert refused.status_code == 403
    assert "point-in-time reads need one of the roles" in refused.text


def test_the_work_queue_lists_accounts_due_for_review_until_confirmed(
    services: Services, cs: TestClient
) -> None:
    ref = f"DUE-{uuid.uuid4().hex[:8]}"
    account = services.ledger.open_account(
        external_ref=ref,
        segment="gold",
        service_plan="standard",
        channel="store",
        customer={"name": "Long Ago"},
        occurred_at=datetime.now(UTC) - timedelta(days=400),
        meta={"actor": "t"},
    )
    services.readmodels.rebuild("directory")
    queue = cs.get("/console/work-queue").text
    assert "Accounts due for their periodic details review" in queue
    assert f'href="/console/accounts/{account.id}#confirm">{ref}</a>' in queue
    rows = re.findall(r'href="/console/accounts/[^"#]+#confirm">([^<]+)</a>', queue)
    # Oldest first: the report's order (details_current_at), which is the page's.
    _, report = services.readmodels.report(report_named("accounts-due-for-review"))
    assert rows == [r["external_ref"] or str(r["account_id"]) for r in report][: len(rows)]

    page = page_of(cs, account.id)
    assert 'id="confirm"' in page
    answer = post(
        cs, f"/console/accounts/{account.id}/confirm-details", csrf_token=csrf_of(page), version="1"
    )
    assert answer.status_code == 303
    services.readmodels.rebuild("directory")
    assert ref not in cs.get("/console/work-queue").text

    # A role that works the queue but may not read the report sees no such list.
    integration = dev_signed_in(services, role="integration")
    other = integration.get("/console/work-queue")
    assert other.status_code == 200
    assert "periodic details review" not in other.text
