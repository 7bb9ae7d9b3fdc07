"""One poison record never stops the ingest or the relay: it is set aside, and every good record
behind it arrives. Real embedded broker, real PostgreSQL; the poison is put where it would come
from (a publisher's oversized message, a row altered on disk)."""

from __future__ import annotations

import hashlib
import time
import uuid
from collections.abc import Iterator
from contextlib import suppress
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import orjson
import psycopg
import pytest
from kafka import KafkaProducer
from prometheus_client import REGISTRY

import consumers.commands
import consumers.inbound_batch
from consumers.dead_letters import TRUNCATED_VALUE_BYTES
from consumers.inbound import Ingest
from domain.account import account_id_for
from domain.activities import Purchase, Visit
from infra.database import INFRASTRUCTURE_ERRORS
from infra.outbound_events import UNREADABLE_TYPE
from infra.relay import Relay, relay_position
from infra.topics import ACCOUNT_EVENTS, INTEGRATION_DLQ
from tests.kafka.conftest import (
    SESSION_TIMEOUT_MS,
    Stack,
    cloud_event,
    meta,
    open_account,
    read_topic,
    send,
)

GOOD = 1000
KEY = b"customer-1"  # every message on one partition, behind the poison


@pytest.fixture
def big_producer(stack: Stack) -> Iterator[KafkaProducer]:
    """A publisher that sends messages of several megabytes, as a careless one might."""
    p = KafkaProducer(
        bootstrap_servers=stack.bootstrap,
        max_request_size=8 * 1024 * 1024,
        linger_ms=5,
        batch_size=256 * 1024,
    )
    yield p
    p.close()


def drain(ingest: Ingest, records: int, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while ingest.totals.records < records:
        assert time.monotonic() < deadline, f"handled {ingest.totals.records} of {records}"
        ingest.poll_once(200)


def opened(ref: str) -> dict[str, Any]:
    data = {"segment": "gold", "channel": "store", "customer": {"name": "Ann Lee"}}
    return cloud_event("account_opened", f"ext:{ref}", data)


def purchase(subject: str, n: int, **kw: Any) -> dict[str, Any]:
    data = {"amount": f"{n}.00", "cost": "1.00", "currency": "HKD", "store": "store-12"}
    return cloud_event("purchase", subject, data, **kw)


def letters_by_offset(stack: Stack, count: int) -> list[Any]:
    return sorted(
        read_topic(stack.bootstrap, INTEGRATION_DLQ, count),
        key=lambda r: int(dict(r.headers)["source_offset"]),
    )


def ingest_until(stack: Stack, count: int) -> Ingest:
    """Run one ingest until it has handled `count` messages, then close it."""
    ingest = Ingest(stack.services, stack.bootstrap, session_timeout_ms=SESSION_TIMEOUT_MS)
    try:
        drain(ingest, count)
    finally:
        ingest.close()
    return ingest


@pytest.mark.slow  # a thousand messages behind three poisons, and a restart
def test_poison_messages_are_dead_lettered_and_every_good_message_behind_them_is_applied(
    stack: Stack, big_producer: KafkaProducer, monkeypatch: pytest.MonkeyPatch
) -> None:
    ref = f"C-{uuid.uuid4().hex[:8]}"
    subject = f"ext:{ref}"
    # 1.2 MB: more than the dead-letter producer may send whole.
    huge = orjson.dumps(cloud_event("feedback", subject, {"score": 4, "comment": "x" * 1_200_000}))
    # 900 KB: parked whole, in the same batch.
    large = b"not JSON " + b"y" * 900_000
    real_metadata = consumers.commands.event_metadata

    def metadata_with_a_bug(event: Any) -> dict[str, Any]:
        if event.source == "pos/with-a-bug":
            raise RuntimeError("a bug this message meets")
        return real_metadata(event)

    # Our own code fails on one message, in the batch and one by one alike.
    monkeypatch.setattr(consumers.commands, "event_metadata", metadata_with_a_bug)
    send(big_producer, KEY, opened(ref))
    send(big_producer, KEY, huge)
    send(big_producer, KEY, large)
    send(big_producer, KEY, purchase(subject, 1, source="pos/with-a-bug"))
    for n in range(1, GOOD + 1):
        send(big_producer, KEY, purchase(subject, n))
    big_producer.flush()
    total = 4 + GOOD

    ingest = ingest_until(stack, total)

    assert (ingest.totals.applied, ingest.totals.dead_letters) == (1 + GOOD, 3)
    history = stack.services.ledger.history(account_id_for(ref))
    amounts = [e.amount for e in history[1:]]  # type: ignore[attr-defined]
    assert amounts == [Decimal(f"{n}.00") for n in range(1, GOOD + 1)]  # all, in order

    letters = letters_by_offset(stack, 3)
    assert [int(dict(r.headers)["source_offset"]) for r in letters] == [1, 2, 3]
    too_big, whole, buggy = (dict(r.headers) for r in letters)
    assert too_big["error"] == b"invalid_event"
    assert too_big["truncated"] == b"true"
    assert int(too_big["original_size"]) == len(huge)
    assert too_big["original_sha256"].decode() == hashlib.sha256(huge).hexdigest()
    assert letters[0].value == huge[:TRUNCATED_VALUE_BYTES]
    assert letters[0].key == KEY
    assert whole["error"] == b"not_json" and "truncated" not in whole
    assert letters[1].value == large
    assert buggy["error"] == b"unexpected_error"
    assert buggy["error_detail"] == b"RuntimeError: a bug this message meets"

    # A restarted consumer sends none of them again, and goes on.
    send(big_producer, KEY, purchase(subject, GOOD + 1))
    big_producer.flush()
    restarted = Ingest(stack.services, stack.bootstrap, session_timeout_ms=SESSION_TIMEOUT_MS)
    try:
        drain(restarted, 1)
    finally:
        restarted.close()
    assert (restarted.totals.applied, restarted.totals.dead_letters) == (1, 0)
    assert len(read_topic(stack.bootstrap, INTEGRATION_DLQ, 4, timeout=2)) == 3


# ---- the relay ---------------------------------------------------------------------------------


def corrupt(stack: Stack, account_id: UUID, version: int, expression: str) -> None:
    """Rewrite a stored event's state bytes with an SQL expression of `state`, as a disk or an
    intruder would."""
    with stack.services.pool.connection() as conn:
        changed = conn.execute(
            f"UPDATE ledger_events SET state = {expression}"  # the test's own SQL
            " WHERE originator_id = %s AND originator_version = %s",
            (account_id, version),
        ).rowcount
    assert changed == 1
    # The ledger keeps the accounts it saved in memory; read the damage as a
    # process that never held this one would (another replica, a restart).
    with suppress(KeyError):
        stack.services.ledger.repository.cache.get(account_id, evict=True)


def stored_hash(stack: Stack, account_id: UUID, version: int) -> str:
    (event,) = [
        e for e in stack.services.ledger.history(account_id) if e.originator_version == version
    ]
    return str(event.hash)  # type: ignore[attr-defined]


def unreadable_count() -> float:
    value = REGISTRY.get_sample_value(
        "crmledger_relay_unreadable_events_total", {"topic": ACCOUNT_EVENTS}
    )
    return value or 0.0


@pytest.mark.slow  # a thousand events behind five unreadable ones
def test_the_relay_publishes_a_marker_for_each_unreadable_event_and_every_event_behind_it(
    stack: Stack,
) -> None:
    ledger = stack.services.ledger
    victim = open_account(stack.services)
    for i in range(4):
        ledger.record_activity(victim.id, Visit("store", f"s{i}"), datetime.now(UTC), meta())
    hashes = {v: stored_hash(stack, victim.id, v) for v in (1, 2, 3, 4, 5)}
    # Not JSON, with its hash still in the text; bytes that are no text at all; JSON whose
    # metadata is not an object; JSON without its hash; an event padded past what Kafka takes.
    corrupt(stack, victim.id, 1, "overlay(state placing '#' from 1 for 1)")
    corrupt(stack, victim.id, 2, "'\\xfffe00'::bytea")
    corrupt(
        stack,
        victim.id,
        3,
        "convert_to(jsonb_set(convert_from(state, 'UTF8')::jsonb, '{metadata}', '\"x\"')::text,"
        " 'UTF8')",
    )
    corrupt(
        stack,
        victim.id,
        4,
        "convert_to((convert_from(state, 'UTF8')::jsonb - 'hash')::text, 'UTF8')",
    )
    corrupt(
        stack,
        victim.id,
        5,
        "convert_to(jsonb_set(convert_from(state, 'UTF8')::jsonb, '{padding}',"
        " to_jsonb(repeat('x', 1100000)))::text, 'UTF8')",
    )
    good = open_account(stack.services, name="Bo Chan")
    for n in range(1, GOOD):
        purchase_ = Purchase(Decimal(f"{n}.00"), Decimal("1.00"), "HKD", "s")
        ledger.record_activity(good.id, purchase_, datetime.now(UTC), meta())
    total = 5 + GOOD
    assert ledger.recorder.max_notification_id() == total
    before = unreadable_count()

    published = Relay(stack.services, stack.bootstrap).publish_pending()

    assert published == total
    assert relay_position(stack.services) == total
    assert unreadable_count() - before == 5
    records = read_topic(stack.bootstrap, ACCOUNT_EVENTS, total)
    events = [orjson.loads(r.value) for r in records]
    assert sorted(e["position"] for e in events) == list(range(1, total + 1))  # each once
    markers = sorted(
        (e for e in events if e["subject"] == str(victim.id)), key=lambda e: e["position"]
    )
    assert [m["type"] for m in markers] == [UNREADABLE_TYPE] * 5
    assert [(m["position"], m["accountversion"]) for m in markers] == [(v, v) for v in range(1, 6)]
    for marker in markers:
        assert marker["data"]["account_id"] == str(victim.id)
        assert marker["data"]["position"] == marker["position"]
        assert marker["data"]["version"] == marker["accountversion"]
        assert marker["data"]["error"]
    stored = [m["data"]["stored_hash"] for m in markers]
    assert stored == [hashes[1], None, hashes[3], None, hashes[5]]
    assert [m.get("hash") for m in markers] == stored
    assert "metadata" in markers[2]["data"]["error"]
    assert "hash is missing" in markers[3]["data"]["error"]
    assert markers[4]["data"]["error"].startswith("MessageSizeTooLargeError")
    # Every good event, in its account's order, behind the unreadable ones.
    behind = [e for r, e in zip(records, events, strict=True) if e["subject"] == str(good.id)]
    assert [e["accountversion"] for e in behind] == list(range(1, GOOD + 1))
    assert [e["type"] for e in behind[1:]] == ["crmledger.PurchaseRecorded"] * (GOOD - 1)


def test_a_message_the_database_refuses_is_parked_and_the_ones_behind_it_are_applied(
    stack: Stack, big_producer: KafkaProducer
) -> None:
    ref = f"C-{uuid.uuid4().hex[:8]}"
    subject = f"ext:{ref}"
    # PostgreSQL text cannot hold NUL: the receipt of this source cannot be stored.
    poison = purchase(subject, 7, source="pos/store\u000012")
    send(big_producer, KEY, opened(ref))
    send(big_producer, KEY, poison)
    for n in range(1, 11):
        send(big_producer, KEY, purchase(subject, n))
    big_producer.flush()

    ingest = ingest_until(stack, 12)

    assert (ingest.totals.applied, ingest.totals.dead_letters) == (11, 1)
    (letter,) = read_topic(stack.bootstrap, INTEGRATION_DLQ, 1)
    # Refused at the door once the contract refuses control characters; until then, by
    # PostgreSQL: parked either way, never retried for ever.
    assert dict(letter.headers)["error"] in {b"invalid_event", b"unexpected_error"}
    assert orjson.loads(letter.value)["id"] == poison["id"]
    history = stack.services.ledger.history(account_id_for(ref))
    assert len(history) == 11


def test_messages_for_an_account_whose_history_cannot_be_read_are_parked_and_others_applied(
    stack: Stack, big_producer: KafkaProducer
) -> None:
    ledger = stack.services.ledger
    broken, whole = open_account(stack.services), open_account(stack.services, name="Bo Chan")
    ledger.record_activity(broken.id, Visit("store", "s1"), datetime.now(UTC), meta())
    corrupt(stack, broken.id, 2, "'\\xfffe00'::bytea")
    # One poll batch loads its accounts together: the broken one must not stop the rest.
    for n in range(1, 21):
        account = broken if n % 5 == 0 else whole
        send(big_producer, KEY, purchase(str(account.id), n))
    big_producer.flush()

    ingest = ingest_until(stack, 20)

    assert (ingest.totals.applied, ingest.totals.dead_letters) == (16, 4)
    assert len(ledger.history(whole.id)) == 1 + 16
    letters = read_topic(stack.bootstrap, INTEGRATION_DLQ, 4)
    assert {dict(r.headers)["error"] for r in letters} == {b"ledger_integrity"}


def test_a_message_whose_receipt_lookup_the_database_refuses_is_parked(
    stack: Stack, big_producer: KafkaProducer, monkeypatch: pytest.MonkeyPatch
) -> None:
    ref = f"C-{uuid.uuid4().hex[:8]}"
    real_lookup = consumers.inbound_batch.applied_events

    def lookup(pool: Any, keys: Any) -> set[tuple[str, str]]:
        # A source our own code would hand PostgreSQL unusable (a bug): the real database
        # refuses the lookup of the whole batch.
        keys = [(s.replace("unusable", "un\x00usable"), i) for s, i in keys]
        return real_lookup(pool, keys)

    monkeypatch.setattr(consumers.inbound_batch, "applied_events", lookup)
    send(big_producer, KEY, opened(ref))
    send(big_producer, KEY, purchase(f"ext:{ref}", 1, source="pos/unusable"))
    for n in range(2, 12):
        send(big_producer, KEY, purchase(f"ext:{ref}", n))
    big_producer.flush()

    ingest = ingest_until(stack, 12)

    assert (ingest.totals.applied, ingest.totals.dead_letters) == (11, 1)
    (letter,) = read_topic(stack.bootstrap, INTEGRATION_DLQ, 1)
    assert dict(letter.headers)["error"] == b"unexpected_error"
    assert dict(letter.headers)["error_detail"].startswith(b"DataError")


@pytest.mark.slow  # waits out a statement timeout
def test_while_the_database_cannot_answer_no_good_message_is_dead_lettered(
    stack: Stack, big_producer: KafkaProducer
) -> None:
    ref = f"C-{uuid.uuid4().hex[:8]}"
    send(big_producer, KEY, opened(ref))
    for n in range(1, 6):
        send(big_producer, KEY, purchase(f"ext:{ref}", n))
    big_producer.flush()
    schema = stack.settings.database_schema
    blocker = psycopg.connect(stack.services.database_url)
    ingest = Ingest(stack.services, stack.bootstrap, session_timeout_ms=SESSION_TIMEOUT_MS)
    try:
        # Another session holds the receipts table: every statement on it runs out of time.
        blocker.execute(f"LOCK TABLE {schema}.inbound_applied IN ACCESS EXCLUSIVE MODE")
        with pytest.raises(INFRASTRUCTURE_ERRORS):
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                ingest.poll_once(200)
        assert ingest.totals.records == 0
    finally:
        blocker.rollback()
        blocker.close()
        ingest.close()

    # The worker builds the consumer again: everything is applied, nothing was parked.
    again = Ingest(stack.services, stack.bootstrap, session_timeout_ms=SESSION_TIMEOUT_MS)
    try:
        drain(again, 6)
    finally:
        again.close()
    assert (again.totals.applied, again.totals.dead_letters) == (6, 0)
    assert read_topic(stack.bootstrap, INTEGRATION_DLQ, 1, timeout=1) == []
