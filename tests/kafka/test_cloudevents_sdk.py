"""Events written by the official CloudEvents SDK are applied in both content modes."""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from cloudevents.core.bindings import kafka as binding
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent
from kafka import KafkaProducer

from consumers.inbound import Ingest
from domain.account import account_id_for
from infra.topics import INTEGRATION_EVENTS
from tests.kafka.conftest import SESSION_TIMEOUT_MS, Stack


def event(type: str, ref: str, data: dict[str, Any]) -> CloudEvent:
    return CloudEvent(
        attributes={
            "type": type,
            "source": "web-shop",
            "id": uuid.uuid4().hex,
            "subject": f"ext:{ref}",
            "time": datetime.now(UTC),
            "datacontenttype": "application/json",
            "partitionkey": ref,
        },
        data=data,
    )


def test_events_written_by_the_sdk_in_both_modes_are_applied(stack: Stack) -> None:
    ref = f"C-{uuid.uuid4().hex[:8]}"
    opening = {"segment": "gold", "channel": "online", "customer": {"name": "Ann Lee"}}
    purchase = {"amount": "19.99", "cost": "12.00", "currency": "HKD", "store": "web"}
    messages = [
        binding.to_binary(event("crmledger.AccountOpened", ref, opening), JSONFormat()),
        binding.to_structured(event("crmledger.PurchaseRecorded", ref, purchase), JSONFormat()),
        binding.to_binary(event("crmledger.RefundRecorded", ref, purchase), JSONFormat()),
        binding.to_structured(
            event("visit", ref, {"channel": "app", "location": "x"}), JSONFormat()
        ),
    ]
    producer = KafkaProducer(bootstrap_servers=stack.bootstrap, linger_ms=0)
    for m in messages:
        key = m.key.encode() if isinstance(m.key, str) else m.key
        producer.send(INTEGRATION_EVENTS, key=key, value=m.value, headers=list(m.headers.items()))
    producer.flush()
    producer.close()

    ingest = Ingest(stack.services, stack.bootstrap, session_timeout_ms=SESSION_TIMEOUT_MS)
    try:
        deadline = time.monotonic() + 30
        while ingest.totals.records < len(messages):
            assert time.monotonic() < deadline, f"handled {ingest.totals.records}"
            ingest.poll_once(200)
    finally:
        ingest.close()

    assert (ingest.totals.applied, ingest.totals.dead_letters) == (4, 0)
    history = stack.services.ledger.history(account_id_for(ref))
    assert [type(e).__name__ for e in history] == [
        "AccountOpened",
        "PurchaseRecorded",
        "RefundRecorded",
        "VisitRecorded",
    ]
    assert history[1].amount == Decimal("19.99")  # type: ignore[attr-defined]
    assert history[0].metadata["source"] == "kafka:web-shop"
