"""The Kafka pipeline under faults: a shared consumer group, a burst with bad messages, a broker
restart in mid-stream. Real embedded broker, real PostgreSQL."""

from __future__ import annotations

import random
import threading
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import orjson
import pytest
from kafka import KafkaProducer
from kafka.partitioner.default import murmur2
from prometheus_client import REGISTRY

from consumers.inbound import Ingest
from domain.account import CustomerAccount
from domain.activities import Visit
from infra.broker import embedded_broker, kafka_bootstrap, stop_embedded_broker
from infra.relay import relay_position, start_relay
from infra.topics import ACCOUNT_EVENTS, INTEGRATION_DLQ, INTEGRATION_EVENTS, ensure_topics
from tests.kafka.conftest import (
    SESSION_TIMEOUT_MS,
    Stack,
    cloud_event,
    meta,
    open_account,
    read_topic,
    send,
    wait_until,
)

PARTITIONS = 3  # the stack's topics


def partition_of(key: bytes) -> int:
    """The partition kafka-python's default partitioner gives a key."""
    return int((murmur2(key) & 0x7FFFFFFF) % PARTITIONS)


def accounts_on_every_partition(stack: Stack, per_partition: int) -> list[CustomerAccount]:
    """Open accounts until each partition holds `per_partition` of them (keyed by id)."""
    placed: dict[int, list[CustomerAccount]] = defaultdict(list)
    while min((len(placed[p]) for p in range(PARTITIONS)), default=0) < per_partition:
        account = open_account(stack.services, name=f"Customer {sum(map(len, placed.values()))}")
        placed[partition_of(str(account.id).encode())].append(account)
    return [a for p in range(PARTITIONS) for a in placed[p][:per_partition]]


def purchase(subject: str, amount: str = "10.00", **kw: Any) -> dict[str, Any]:
    data = {"amount": amount, "cost": "4.00", "currency": "HKD", "store": "store-12"}
    return cloud_event("purchase", subject, data, **kw)


@pytest.fixture
def producer(stack: Stack) -> Iterator[KafkaProducer]:
    """A publisher of inbound messages that batches, for bursts."""
    p = KafkaProducer(bootstrap_servers=stack.bootstrap, linger_ms=5, batch_size=256 * 1024)
    yield p
    p.close()


def stored_events(stack: Stack) -> int:
    return stack.services.ledger.recorder.max_notification_id() or 0


# ---- a. two consumers in one group ---------------------------------------------------------


@pytest.mark.slow  # two group joins and a rebalance
def test_two_consumers_in_one_group_split_the_partitions_and_apply_each_message_once(
    stack: Stack, producer: KafkaProducer
) -> None:
    accounts = accounts_on_every_partition(stack, per_partition=4)
    opened = stored_events(stack)
    per_account = 25
    messages = {
        a.id: [purchase(str(a.id), f"{n}.00") for n in range(1, per_account + 1)] for a in accounts
    }
    half = per_account // 2
    consumers = [
        Ingest(stack.services, stack.bootstrap, session_timeout_ms=SESSION_TIMEOUT_MS)
        for _ in range(2)
    ]
    stop = threading.Event()
    # Each consumer polls back to back in its own thread, as `serve` runs it.
    threads = [threading.Thread(target=c.run, args=(stop,), daemon=True) for c in consumers]
    try:
        threads[0].start()
        for account_id, batch in messages.items():
            for m in batch[:half]:
                send(producer, str(account_id).encode(), m)
        producer.flush()
        wait_until(lambda: consumers[0].totals.applied > 0)

        threads[1].start()  # the group rebalances while the first consumer works
        wait_until(lambda: all(c.assignment() for c in consumers), timeout=15)
        for account_id, batch in messages.items():
            for m in batch[half:]:
                send(producer, str(account_id).encode(), m)
        producer.flush()
        total = len(accounts) * per_account
        wait_until(lambda: stored_events(stack) >= opened + total, timeout=15)
        time.sleep(0.5)  # anything applied twice would show now
        # Read once the group has long settled: during the rebalance each
        # consumer's own view of its partitions changes at its own next poll.
        split = [{tp.partition for tp in c.assignment()} for c in consumers]
    finally:
        stop.set()
        for t in threads:
            t.join(10)
        for c in consumers:
            c.close()

    assert all(split), "each consumer got at least one partition"
    assert split[0].isdisjoint(split[1]) and split[0] | split[1] == set(range(PARTITIONS))
    assert all(c.totals.applied > 0 for c in consumers), "both applied messages"
    assert sum(c.totals.applied for c in consumers) == total
    assert sum(c.totals.dead_letters for c in consumers) == 0
    assert stored_events(stack) == opened + total
    ledger = stack.services.ledger
    for account in accounts:
        bought = ledger.history(account.id)[1:]
        # Each message once, in the order published for its account.
        assert [e.metadata["causation_id"] for e in bought] == [  # type: ignore[attr-defined]
            m["id"] for m in messages[account.id]
        ]


# ---- b. a burst with one bad message in a hundred ------------------------------------------


def bad_messages(account: CustomerAccount, closed: CustomerAccount) -> list[tuple[Any, str]]:
    """Kinds of bad inbound message, each with the reason it must be parked for."""
    subject = str(account.id)
    return [
        (b"{this is not JSON", "not_json"),
        (purchase(f"ext:nobody-{uuid.uuid4().hex[:8]}"), "unknown_account"),
        (purchase(subject, "-5.00"), "invalid_event"),
        (purchase(subject, "ten"), "invalid_event"),
        (cloud_event("teleport", subject, {}), "invalid_event"),
        (cloud_event("feedback", subject, {"score": 9}), "invalid_event"),
        (purchase(str(closed.id)), "account_closed"),
        (cloud_event("visit", subject, {"channel": "fax", "location": "x"}), "invalid_event"),
        (
            cloud_event(
                "account_opened",
                f"ext:burst-{uuid.uuid4().hex[:8]}",
                {"segment": "platinum", "channel": "store", "customer": {"name": "Pat Doe"}},
            ),
            "invalid",  # the domain's rule: segments are configured
        ),
        (
            cloud_event("inquiry_answered", subject, {"inquiry_id": "never", "channel": "app"}),
            "conflict",
        ),
        (
            cloud_event(
                "details_updated", str(uuid.uuid4()), {"customer": {"phone": "+852 1234 5678"}}
            ),
            "unknown_account",
        ),
    ]


def good_message(account: CustomerAccount, n: int) -> dict[str, Any]:
    subject = str(account.id)
    if n % 3 == 0:
        return cloud_event("visit", subject, {"channel": "store", "location": f"s{n % 7}"})
    if n % 3 == 1:
        return cloud_event("feedback", subject, {"score": 1 + n % 5})
    return purchase(subject, f"{1 + n % 90}.50")


def dead_letter_count(reason: str) -> float:
    return REGISTRY.get_sample_value("crmledger_dead_letters_total", {"reason": reason}) or 0.0


@pytest.mark.slow  # 10,000 messages
def test_a_burst_of_ten_thousand_with_one_percent_bad_stores_the_good_and_parks_the_bad(
    stack: Stack, producer: KafkaProducer
) -> None:
    ledger = stack.services.ledger
    accounts = [open_account(stack.services, name=f"Burst {i}") for i in range(300)]
    closed = accounts.pop()
    ledger.close_account(closed.id, "customer_request", "", datetime.now(UTC), meta())
    before = stored_events(stack)
    kinds = bad_messages(accounts[0], closed)
    rng = random.Random(3)
    bad_at = set(rng.sample(range(10_000), 100))
    expected: Counter[str] = Counter()
    sent: dict[bytes, list[bytes]] = defaultdict(list)
    for n in range(10_000):
        account = accounts[rng.randrange(len(accounts))]
        message, reason = kinds[n % len(kinds)] if n in bad_at else (good_message(account, n), "")
        if reason:
            expected[reason] += 1
        key = str(account.id).encode()
        send(producer, key, message)
        sent[key].append(message if isinstance(message, bytes) else orjson.dumps(message))
    producer.flush()
    counted = {reason: dead_letter_count(reason) for reason in expected}

    ingest = Ingest(stack.services, stack.bootstrap, session_timeout_ms=SESSION_TIMEOUT_MS)
    try:
        deadline = time.monotonic() + 30
        while ingest.totals.records < 10_000:  # polls back to back, joins included
            assert time.monotonic() < deadline, f"handled {ingest.totals.records} of 10,000"
            ingest.poll_once(200)
    finally:
        ingest.close()

    assert (ingest.totals.applied, ingest.totals.dead_letters) == (9_900, 100)
    assert ingest.totals.duplicates == 0
    assert stored_events(stack) - before == 9_900
    letters = read_topic(stack.bootstrap, INTEGRATION_DLQ, 100)
    assert len(letters) == 100
    assert Counter(dict(r.headers)["error"].decode() for r in letters) == expected
    for letter in letters:
        headers = dict(letter.headers)
        assert headers["error_detail"]
        assert headers["source_topic"] == INTEGRATION_EVENTS.encode()
        assert int(headers["source_partition"]) == partition_of(letter.key)
        assert int(headers["source_offset"]) >= 0
        assert letter.value in sent[letter.key], "parked as received"
    assert {r: dead_letter_count(r) - counted[r] for r in expected} == expected
    assert ledger.verify().ok


# ---- c. the broker restarts while the relay publishes ---------------------------------------


@pytest.mark.slow  # a relay failure and a broker restart
def test_a_broker_restarted_mid_stream_gets_every_event_again_in_account_order(
    stack: Stack,
) -> None:
    ledger = stack.services.ledger
    accounts = [open_account(stack.services, name=f"Stream {i}") for i in range(8)]
    first_broker = embedded_broker(stack.home).bootstrap
    writing = threading.Event()
    writing.set()
    written = [0]

    def write() -> None:
        # Events keep coming, whether or not a broker is there.
        while writing.is_set():
            account = accounts[written[0] % len(accounts)]
            ledger.record_activity(
                account.id, Visit("store", f"s{written[0]}"), datetime.now(UTC), meta()
            )
            written[0] += 1

    writer = threading.Thread(target=write, daemon=True)
    # No address: the relay looks the embedded broker up at each (re)start; a
    # short delivery timeout so it gives the vanished broker up quickly.
    worker = start_relay(stack.services, delivery_timeout_ms=2000)
    try:
        writer.start()
        wait_until(lambda: (relay_position(stack.services) or 0) >= 100)
        stopped_at = written[0]
        stop_embedded_broker(stack.home)
        time.sleep(0.5)
        restarted = kafka_bootstrap(stack.settings)  # started again: empty, new cluster id
        ensure_topics(restarted, stack.settings)
        time.sleep(1.0)
        writing.clear()
        writer.join(10)
        total = stored_events(stack)
        wait_until(
            lambda: worker.failures > 0 and relay_position(stack.services) == total, timeout=20
        )
    finally:
        writing.clear()
        worker.stop()
    assert restarted != first_broker
    assert written[0] > stopped_at, "events were written during the restart"
    assert worker.failures >= 1, "the relay noticed the broker go"

    records = read_topic(restarted, ACCOUNT_EVENTS, total)
    events = [orjson.loads(r.value) for r in records]
    assert sorted(e["position"] for e in events) == list(range(1, total + 1))  # each once
    by_account: dict[UUID, list[int]] = defaultdict(list)
    for record, event in zip(records, events, strict=True):  # partition order as consumed
        assert record.key == event["subject"].encode()
        by_account[UUID(event["subject"])].append(event["accountversion"])
    assert set(by_account) == {a.id for a in accounts}
    for versions in by_account.values():
        assert versions == list(range(1, len(versions) + 1))
