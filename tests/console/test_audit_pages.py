"""The console's audit pages over HTTP without a browser, on the real PostgreSQL ledger:
verification with progress and the digest (test_audit_records.py: the feed, the access log,
the personal-data export and the refusals)."""

from __future__ import annotations

import re
import threading
import time
import uuid
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient

from console.audit import verification
from console.jobs import Job, jobs_of
from infra.wiring import Services
from tests.console.test_sessions import csrf_of, dev_signed_in
from tests.support import own_ledger

HX = {"HX-Request": "true"}


def started(client: TestClient, **form: str) -> str:
    """Start a verification from the audit page's form; the job's address."""
    token = csrf_of(client.get("/console/audit").text)
    answer = client.post(
        "/console/audit/verify", data={"csrf_token": token, **form}, follow_redirects=False
    )
    assert answer.status_code == 303, answer.text
    location = str(answer.headers["location"])
    assert re.fullmatch(r"/console/audit/verify/[0-9a-f]{32}", location)
    return location


def finished(client: TestClient, location: str, timeout: float = 30) -> str:
    """Poll the job's fragment as htmx does until it says it is done (status 286)."""
    deadline = time.monotonic() + timeout
    while True:
        answer = client.get(location, headers=HX)
        if answer.status_code == 286:
            return str(answer.text)
        assert answer.status_code == 200, answer.text
        assert 'hx-trigger="every 1s"' in answer.text  # still running: it polls again
        assert time.monotonic() < deadline, "the verification did not finish"
        time.sleep(0.05)


def open_with_history(services: Services, name: str) -> uuid.UUID:
    """An account with three events: opened, details updated, details confirmed."""
    ledger = services.ledger
    account = ledger.open_account(
        external_ref=f"AUD-{uuid.uuid4().hex[:8]}",
        segment="gold",
        service_plan="standard",
        channel="store",
        customer={"name": name, "email": "audit.case@example.com"},
        occurred_at=datetime.now(UTC),
        meta={"actor": "seed"},
    )
    ledger.update_details(
        account.id, {"phone": "+852 5555 0101"}, datetime.now(UTC), {"actor": "seed"}, None
    )
    ledger.confirm_details(account.id, datetime.now(UTC), {"actor": "seed"})
    return account.id


def test_an_auditor_verifies_the_whole_ledger_with_progress_to_the_result(
    services: Services,
) -> None:
    open_with_history(services, "Verify Whole")
    client = dev_signed_in(services, role="auditor", name="Ada Audit")
    page = client.get("/console/audit")
    assert page.status_code == 200
    assert 'hx-get="/console/audit/digest"' in page.text  # the digest comes once the page shows
    location = started(client)
    full = client.get(location)  # the job's own page, whatever state it is in
    assert full.status_code == 200
    assert "Verification of the whole ledger up to position" in full.text
    done = finished(client, location)
    found = re.search(r"up to position (\d+)", full.text)
    assert found
    up_to = int(found.group(1))
    report = services.ledger.verify(up_to=up_to)  # what GET /v1/audit/verify computes
    counts = re.search(r"No break found: (\d+) events? of (\d+) accounts? check out", done)
    assert counts and (int(counts[1]), int(counts[2])) == (report.events, report.accounts)
    assert report.digest in done
    # The done fragment tells the page's live region, out of band.
    assert 'id="job-announce" hx-swap-oob="innerHTML"' in done
    assert "The verification is done. No break found." in done


def tamper(services: Services, account_id: uuid.UUID, version: int, change: dict[str, Any]) -> None:
    """Alter one stored event and leave its hash as it was: its chain breaks there."""
    transcoder = services.ledger.mapper.transcoder
    stored = services.ledger.recorder.select_events(account_id, gt=version - 1, lte=version)[0]
    state = transcoder.decode(stored.state) | change
    with services.pool.connection() as conn:
        conn.execute(
            "UPDATE ledger_events SET state = %s"
            " WHERE originator_id = %s AND originator_version = %s",
            (transcoder.encode(state), account_id, version),
        )


def test_every_broken_account_shows_with_where_it_first_breaks() -> None:
    with own_ledger() as services:
        first = open_with_history(services, "Broken One")
        whole = open_with_history(services, "Still Whole")
        second = open_with_history(services, "Broken Two")
        tamper(services, first, 2, {"reason": "altered afterwards"})
        tamper(services, second, 1, {"segment": "premium"})
        client = dev_signed_in(services, role="admin", name="Ada Admin")
        done = finished(client, started(client))
        assert "2 broken accounts: 9 events of 3 accounts checked." in done
        rows = re.findall(
            r'<tr><td class="mono"><a [^>]+>([0-9a-f-]+)</a></td>'
            r'<td class="num">(\d+)</td><td class="num">(\d+)</td>',
            done,
        )
        breaks = [(uuid.UUID(a), int(v), int(p)) for a, v, p in rows]
        assert breaks == [
            (first, 2, services.ledger.position_of(first, 2)),
            (second, 1, services.ledger.position_of(second, 1)),
        ]
        assert str(whole) not in done
        assert "Something does not check out." in done

        # One account alone: its own chain, and no digest (it covers the whole ledger).
        done = finished(client, started(client, account_id=str(whole)))
        assert "No break found: 3 events of 1 account check out." in done
        assert "Digest at position" not in done
        done = finished(client, started(client, account_id=str(second)))
        assert "1 broken account: 3 events of 1 account checked." in done


def test_a_kept_digest_is_checked_against_the_ledger(services: Services) -> None:
    open_with_history(services, "Kept Digest")
    position, digest = services.ledger.digest()
    client = dev_signed_in(services, role="auditor")
    done = finished(client, started(client, position=str(position), digest=digest))
    assert "No break found" in done and f"{digest}</span> <strong>matches" in done
    wrong = "0" * 64
    done = finished(client, started(client, position=str(position), digest=wrong))
    assert "No chain is broken and the kept digest does not match" in done
    assert "does not match</strong>" in done


@pytest.mark.parametrize(
    ("form", "status", "field", "message"),
    [
        ({"account_id": "not-a-uuid"}, 422, "account_id", "an account ID is a UUID"),
        ({"account_id": str(uuid.uuid4())}, 404, "account_id", "no account"),
        ({"digest": "ab" * 32}, 422, "position", "give the position the kept digest"),
        ({"position": "3"}, 422, "digest", "give the digest kept at that position"),
        ({"position": "x", "digest": "zz"}, 422, "digest", "64 hexadecimal characters"),
        ({"position": "999999999", "digest": "ab" * 32}, 404, "position", "no event is stored"),
        (
            {"account_id": str(uuid.uuid4()), "position": "1", "digest": "ab" * 32},
            422,
            "account_id",
            "a digest covers the whole ledger",
        ),
    ],
)
def test_a_verify_form_that_cannot_run_says_why_next_to_its_field(
    services: Services, form: dict[str, str], status: int, field: str, message: str
) -> None:
    open_with_history(services, "Form Errors")
    client = dev_signed_in(services, role="auditor")
    token = csrf_of(client.get("/console/audit").text)
    answer = client.post("/console/audit/verify", data={"csrf_token": token, **form})
    assert answer.status_code == status
    ids = {"account_id": "verify-account", "position": "verify-position", "digest": "verify-digest"}
    error = re.search(rf'<p class="error" id="{ids[field]}-error">([^<]+)</p>', answer.text)
    assert error and message in error.group(1), answer.text
    assert f'aria-describedby="{ids[field]}-error"' in answer.text or (
        f'aria-describedby="{ids[field]}-hint {ids[field]}-error"' in answer.text
    )
    assert getattr(client.app.state, "console_jobs", None) is None  # type: ignore[attr-defined]


def test_the_digest_is_shown_read_only_with_its_position(services: Services) -> None:
    open_with_history(services, "Digest Shown")
    client = dev_signed_in(services, role="auditor")
    fragment = client.get("/console/audit/digest", headers=HX)
    assert fragment.status_code == 200 and "<html" not in fragment.text
    found = re.search(r'id="digest-position"[^>]*value="(\d+)"', fragment.text)
    assert found
    position = int(found.group(1))
    value = re.search(r'id="digest-value"[^>]*>([0-9a-f]{64})</textarea>', fragment.text)
    assert value and value.group(1) == services.ledger.digest(position)[1]
    assert "readonly" in fragment.text and 'data-copy="digest-value"' in fragment.text
    # Without htmx the same address is the audit page with the digest in it.
    page = client.get("/console/audit/digest")
    assert "<html" in page.text and 'id="digest-value"' in page.text


def test_an_unknown_job_says_so_and_stops_the_polling(services: Services) -> None:
    client = dev_signed_in(services, role="auditor")
    page = client.get(f"/console/audit/verify/{uuid.uuid4().hex}")
    assert page.status_code == 404 and "not known to this API process" in page.text
    poll = client.get(f"/console/audit/verify/{uuid.uuid4().hex}", headers=HX)
    assert poll.status_code == 286 and "every 1s" not in poll.text


def test_a_running_verification_shows_its_progress_and_the_page_polls_it(
    services: Services,
) -> None:
    open_with_history(services, "Slow Verify")
    client = dev_signed_in(services, role="auditor")
    at = services.ledger.recorder.max_notification_id() or 0
    checked = verification(services, None, at, None)
    gate = threading.Event()

    def held(job: Job) -> object:
        # The real verification, held at its start so the page meets it running.
        assert gate.wait(20)
        return checked(job)

    runner = jobs_of(client.app)  # type: ignore[arg-type]
    job = runner.start("verify", "held", "dev:x", at, held, f"the whole ledger up to {at}")
    location = f"/console/audit/verify/{job.id}"
    page = client.get(location)
    assert page.status_code == 200
    assert '<progress id="job-bar" max="100" value="0"' in page.text
    assert f'hx-get="{location}" hx-trigger="every 1s" hx-swap="outerHTML"' in page.text
    assert f"0%: position 0 of {at}" in page.text
    assert '<div id="job-announce" class="sr-only" aria-live="polite"></div>' in page.text
    poll = client.get(location, headers=HX)
    assert poll.status_code == 200 and "<html" not in poll.text and "every 1s" in poll.text
    # Asked again while it runs, the same verification is joined, not run twice.
    assert runner.start("verify", "held", "dev:y", at, held).id == job.id
    gate.set()
    assert "No break found" in finished(client, location)
