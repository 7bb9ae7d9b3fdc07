"""The whole Kafka path, as `crmledger serve` runs it: inbound, ledger, outbound."""

from __future__ import annotations

import uuid

import orjson

from consumers.inbound import start_ingest
from domain.account import account_id_for
from infra.relay import relay_position, start_relay
from infra.topics import ACCOUNT_EVENTS
from tests.kafka.conftest import (
    SESSION_TIMEOUT_MS,
    Publish,
    Stack,
    cloud_event,
    read_topic,
    wait_until,
)


def test_an_inbound_purchase_comes_out_as_a_ledger_event(stack: Stack, publish: Publish) -> None:
    ref = f"C-{uuid.uuid4().hex[:8]}"
    opened = cloud_event(
        "account_opened",
        f"ext:{ref}",
        {"segment": "vip", "channel": "online", "customer": {"name": "Bo Chan"}},
    )
    bought = cloud_event(
        "purchase",
        f"ext:{ref}",
        {"amount": "250.00", "cost": "180.00", "currency": "HKD", "store": "web"},
    )
    # No bootstrap given: both find the embedded broker of the settings' home.
    workers = [
        start_relay(stack.services),
        start_ingest(stack.services, session_timeout_ms=SESSION_TIMEOUT_MS),
    ]
    try:
        publish(opened, bought)
        wait_until(lambda: relay_position(stack.services) == 2)
    finally:
        for worker in workers:
            worker.stop()

    events = sorted(
        (orjson.loads(r.value) for r in read_topic(stack.bootstrap, ACCOUNT_EVENTS, 2)),
        key=lambda e: e["position"],
    )
    assert [e["type"] for e in events] == ["crmledger.AccountOpened", "crmledger.PurchaseRecorded"]
    assert {e["subject"] for e in events} == {str(account_id_for(ref))}
    assert events[1]["causationid"] == bought["id"]
    assert events[1]["actor"] == "pos/store-12"
    assert events[1]["data"]["amount"] == "250.00"
    assert events[0]["data"]["customer"]["name"].startswith("v1:")
    assert all(w.failures == 0 for w in workers)
