"""The projector's reading of a Kafka message and a rebuild's reading of the store agree."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal

import orjson

from domain import activities as act
from infra.event_store import plain_state
from infra.outbound_events import encode
from infra.wiring import Services
from tests.support import outbound_event


def test_a_message_and_its_stored_event_project_the_same(services: Services) -> None:
    ledger = services.ledger
    when = datetime.now(UTC) - timedelta(days=3, hours=5)
    account = ledger.open_account(
        external_ref=None,
        segment="gold",
        service_plan="plus",
        channel="app",
        customer={"name": "Ivy Lau", "email": "ivy@example.com", "address": "not projected"},
        occurred_at=when,
        meta={"actor": "clerk-9"},
    )
    start = (ledger.recorder.max_notification_id() or 1) - 1
    meta = {"actor": "agent-2"}
    ledger.record_activity(
        account.id, act.Purchase(Decimal("19.90"), Decimal("7.5"), "HKD", "web"), when, meta
    )
    ledger.record_activity(account.id, act.OpenInquiry("Q1", "phone", "billing"), when, meta)
    ledger.update_details(account.id, {"phone": "+852 3333 4444"}, when, meta)

    decode = ledger.mapper.transcoder.decode
    readmodels = services.readmodels
    from_kafka = []
    for n in ledger.recorder.select_notifications(start + 1, 100):
        if n.originator_id == account.id:
            message_bytes = encode(outbound_event(n, decode(n.state)))
            # The relay builds messages from the plain stored JSON: the same bytes.
            assert encode(outbound_event(n, plain_state(n.state))) == message_bytes
            message = orjson.loads(message_bytes)
            from_kafka.append(readmodels.projected(message))
    from_store = [e for e in readmodels.replay(after=start) if e.account_id == account.id]

    assert len(from_kafka) == 4
    assert from_store == from_kafka
    # Personal fields stay ciphertext; the events carry the blind-index tokens of the contact ones.
    opened = from_store[0]
    assert ledger.decrypt(account.id, opened.data["customer"]) == {
        "name": "Ivy Lau",
        "email": "ivy@example.com",
        "address": "not projected",
    }
    assert "Ivy" not in str(opened.data)
    index = readmodels.index
    assert opened.tokens == {
        "name": index.tokens("name", "ivy LAU"),
        "email": index.tokens("email", " IVY@example.com"),
    }
    assert len(opened.tokens["name"]) == 2
    assert from_store[3].tokens == {"phone": index.tokens("phone", "85233334444")}
    assert from_store[1].decimal("amount") == Decimal("19.90") and from_store[1].actor == "agent-2"
