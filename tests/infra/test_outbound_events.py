"""The relay's reading of stored rows gives the decoded event's CloudEvent, byte for byte."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from domain.account import event_type_of
from infra.event_store import EventLog
from infra.outbound_events import encode, event_id_text, stored_message
from infra.wiring import Services
from tests.support import EVERY_ACTIVITY, event_id, outbound_event


def test_the_event_id_text_is_the_uuid5_of_account_and_version() -> None:
    for _ in range(50):
        account = uuid.uuid4()
        for version in (1, 2, 9, 10, 99, 100, 12345):
            assert event_id_text(account.bytes, version) == str(event_id(account, version))


def test_a_stored_rows_message_is_the_decoded_events_cloudevent(services: Services) -> None:
    ledger = services.ledger
    when = datetime.now(UTC) - timedelta(days=2)
    start = ledger.recorder.max_notification_id() or 0
    account = ledger.open_account(
        external_ref=f"OUT-{uuid.uuid4().hex[:8]}",
        segment="gold",
        service_plan="plus",
        channel="app",
        customer={"name": "Ivy Lau", "email": "ivy@example.com", "phone": "+852 1111 2222"},
        occurred_at=when,
        meta={"actor": "clerk-9", "department": "customer_service", "reason": "walk-in"},
    )
    meta = {"actor": "agent-2", "correlation_id": "c-1", "causation_id": "k-1", "reason": None}
    for activity in EVERY_ACTIVITY:
        ledger.record_activity(account.id, activity, when, meta)
    ledger.update_details(account.id, {"phone": "+852 3333 4444"}, when, {})
    ledger.confirm_details(account.id, when, meta)
    ledger.change_segment(account.id, "vip", when, meta)
    ledger.change_plan(account.id, "premium", when, meta)
    ledger.close_account(account.id, "customer_request", "moving", when, meta)
    ledger.erase(account.id, "request", when, meta)

    decode = ledger.mapper.transcoder.decode
    notifications = {
        n.id: n
        for n in ledger.recorder.select_notifications(start + 1, 1000)
        if n.originator_id == account.id
    }
    with services.pool.connection() as conn:
        rows = [r for r in EventLog(ledger).page(conn, start, 1000) if r[1] == str(account.id)]
    assert len(rows) == len(notifications) == 15
    for position, account_text, version, topic, state in rows:
        n = notifications[position]
        expected = encode(outbound_event(n, decode(n.state)))
        assert stored_message(position, account_text, version, event_type_of(topic), state) == (
            expected
        )
