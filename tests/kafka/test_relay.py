"""The relay publishes the event store to crmledger.account-events as CloudEvents."""

from __future__ import annotations

import time
from collections import defaultdict
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid5

import orjson

from domain.activities import Purchase, Visit
from domain.integrity import GENESIS_HASH
from infra.broker import kafka_bootstrap, stop_embedded_broker
from infra.relay import Relay, relay_position, start_relay
from infra.topics import ACCOUNT_EVENTS, ensure_topics
from infra.worker import live_workers
from tests.kafka.conftest import Stack, meta, open_account, read_topic, wait_until


def record_activities(stack: Stack, account_id: UUID, purchases: int) -> None:
    ledger = stack.services.ledger
    for i in range(purchases):
        purchase = Purchase(Decimal(f"{i + 1}.10"), Decimal("0.50"), "HKD", "store-12")
        ledger.record_activity(account_id, purchase, datetime.now(UTC), meta(reason=f"r{i}"))
    ledger.record_activity(account_id, Visit("online", "web"), datetime.now(UTC), meta())


def values(records: list[Any]) -> list[dict[str, Any]]:
    return [orjson.loads(r.value) for r in records]


def test_publishes_every_event_in_account_order_as_cloudevents(stack: Stack) -> None:
    accounts = [open_account(stack.services, name=f"Customer {i}") for i in range(3)]
    for n, account in enumerate(accounts):
        record_activities(stack, account.id, purchases=n + 1)
    total = stack.services.ledger.recorder.max_notification_id()

    published = Relay(stack.services, stack.bootstrap).publish_pending()

    assert published == total == 3 + (2 + 3 + 4)
    records = read_topic(stack.bootstrap, ACCOUNT_EVENTS, total)
    assert len(records) == total
    by_account: dict[str, list[dict[str, Any]]] = defaultdict(list)
    partitions: dict[str, set[int]] = defaultdict(set)
    for record in records:
        event = orjson.loads(record.value)
        assert record.key == event["subject"].encode()
        assert ("content-type", b"application/cloudevents+json") in record.headers
        by_account[event["subject"]].append(event)
        partitions[event["subject"]].add(record.partition)
    assert set(by_account) == {str(a.id) for a in accounts}
    for account_id, events in by_account.items():
        assert len(partitions[account_id]) == 1  # keyed: one partition per account
        assert [e["accountversion"] for e in events] == list(range(1, len(events) + 1))
        positions = [e["position"] for e in events]
        assert positions == sorted(positions)
        previous = GENESIS_HASH
        for e in events:  # the hash chain survives the trip
            assert e["prevhash"] == previous
            previous = e["hash"]
            assert e["id"] == str(uuid5(UUID(account_id), str(e["accountversion"])))


def test_a_published_event_is_a_cloudevent_with_ciphertext_personal_fields(stack: Stack) -> None:
    account = open_account(stack.services, name="Ann Lee")
    record_activities(stack, account.id, purchases=1)

    Relay(stack.services, stack.bootstrap).publish_pending()

    opened, purchase, _visit = sorted(
        values(read_topic(stack.bootstrap, ACCOUNT_EVENTS, 3)), key=lambda e: e["position"]
    )
    assert opened["specversion"] == "1.0"
    assert opened["source"] == "crmledger"
    assert opened["type"] == "crmledger.AccountOpened"
    assert opened["subject"] == str(account.id)
    assert opened["datacontenttype"] == "application/json"
    assert datetime.fromisoformat(opened["time"]) == account.opened_at
    assert datetime.fromisoformat(opened["recordedtime"]).tzinfo is not None
    assert opened["actor"] == "tester"
    assert opened["department"] == "customer_service"
    assert opened["correlationid"] == "corr-1"
    assert "reason" not in opened  # unset attributes are left out, not null
    customer = opened["data"]["customer"]
    assert set(customer) == {"name", "email"}
    assert all(v.startswith("v1:") for v in customer.values())
    assert b"Ann Lee" not in orjson.dumps(opened)
    assert stack.services.ledger.decrypt(account.id, customer) == {
        "name": "Ann Lee",
        "email": "ann.lee@example.com",
    }
    assert opened["data"]["segment"] == "gold"
    assert purchase["type"] == "crmledger.PurchaseRecorded"
    assert purchase["data"] == {
        "amount": "1.10",
        "cost": "0.50",
        "currency": "HKD",
        "store": "store-12",
    }
    assert purchase["reason"] == "r0"


def test_resumes_from_its_stored_position(stack: Stack) -> None:
    first = open_account(stack.services)
    record_activities(stack, first.id, purchases=2)
    assert Relay(stack.services, stack.bootstrap).publish_pending() == 4
    assert relay_position(stack.services) == 4

    second = open_account(stack.services)
    record_activities(stack, second.id, purchases=1)
    relay = Relay(stack.services, stack.bootstrap)
    assert relay.publish_pending() == 3
    assert relay.publish_pending() == 0

    records = values(read_topic(stack.bootstrap, ACCOUNT_EVENTS, 7))
    assert sorted(e["position"] for e in records) == list(range(1, 8))  # none twice


def test_follows_new_events_within_a_second(stack: Stack) -> None:
    worker = start_relay(stack.services, stack.bootstrap)
    try:
        wait_until(lambda: relay_position(stack.services) is not None)
        time.sleep(0.3)  # let it reach its LISTEN wait
        account = open_account(stack.services)
        committed = time.monotonic()
        wait_until(lambda: relay_position(stack.services) == 1, timeout=5, every=0.01)
        assert time.monotonic() - committed < 1.0
        (event,) = values(read_topic(stack.bootstrap, ACCOUNT_EVENTS, 1))
        assert event["subject"] == str(account.id)
    finally:
        worker.stop()
    assert worker not in live_workers()
    assert worker.failures == 0


def test_only_one_of_two_running_relays_publishes(stack: Stack) -> None:
    workers = [start_relay(stack.services, stack.bootstrap) for _ in range(2)]
    try:
        for _ in range(5):
            open_account(stack.services)
        wait_until(lambda: relay_position(stack.services) == 5)
    finally:
        for w in workers:
            w.stop()
    records = values(read_topic(stack.bootstrap, ACCOUNT_EVENTS, 5))
    assert sorted(e["position"] for e in records) == [1, 2, 3, 4, 5]


def test_republishes_everything_to_a_restarted_embedded_broker(stack: Stack) -> None:
    account = open_account(stack.services)
    record_activities(stack, account.id, purchases=3)
    assert Relay(stack.services, stack.bootstrap).publish_pending() == 5

    stop_embedded_broker(stack.home)
    restarted = kafka_bootstrap(stack.settings)
    assert (stack.home / "kafka-bootstrap").read_text().strip() == restarted
    ensure_topics(restarted, stack.settings)
    assert read_topic(restarted, ACCOUNT_EVENTS, 0, timeout=0.5) == []  # memory only

    assert Relay(stack.services, restarted).publish_pending() == 5
    records = values(read_topic(restarted, ACCOUNT_EVENTS, 5))
    assert [e["accountversion"] for e in sorted(records, key=lambda e: e["position"])] == [
        1,
        2,
        3,
        4,
        5,
    ]
    # The same broker again: nothing to republish.
    assert Relay(stack.services, restarted).publish_pending() == 0
