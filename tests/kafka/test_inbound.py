"""The ingest consumer applies integration events exactly once and parks bad ones."""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
from kafka import KafkaConsumer, TopicPartition

from consumers.commands import ActivityBatch
from consumers.inbound import GROUP, Ingest, start_ingest
from domain.account import account_id_for
from domain.activities import Visit
from infra.inbound_receipts import stored_offsets
from infra.topics import INTEGRATION_DLQ, INTEGRATION_EVENTS
from infra.worker import live_workers
from tests.kafka.conftest import (
    SESSION_TIMEOUT_MS,
    Publish,
    Stack,
    cloud_event,
    read_topic,
    wait_until,
)


@pytest.fixture
def make_ingest(stack: Stack) -> Iterator[Callable[..., Ingest]]:
    """Build ingest consumers on the test's broker; closes whatever is left open."""
    made: list[Ingest] = []

    def make(**options: Any) -> Ingest:
        options.setdefault("session_timeout_ms", SESSION_TIMEOUT_MS)
        ingest = Ingest(stack.services, stack.bootstrap, **options)
        made.append(ingest)
        return ingest

    yield make
    for ingest in made:
        ingest.close()


def drain(ingest: Ingest, records: int, timeout: float = 20.0) -> None:
    """Poll until the consumer has handled `records` records in all."""
    deadline = time.monotonic() + timeout
    while ingest.totals.records < records:
        assert time.monotonic() < deadline, f"handled {ingest.totals.records} of {records}"
        ingest.poll_once(200)


def fetch_at_least(ingest: Ingest, count: int, timeout: float = 20.0) -> list[Any]:
    """Fetch records without applying them, until `count` arrived."""
    deadline = time.monotonic() + timeout
    records: list[Any] = []
    while len(records) < count:
        assert time.monotonic() < deadline, f"fetched {len(records)} of {count}"
        records.extend(ingest.fetch(200))
    return records


def opened(ref: str, **data: Any) -> dict[str, Any]:
    return cloud_event(
        "account_opened",
        f"ext:{ref}",
        {
            "segment": "gold",
            "channel": "store",
            "customer": {"name": "Ann Lee", "email": "ann@example.com"},
            **data,
        },
    )


def purchase(subject: str, amount: str = "19.99", **kw: Any) -> dict[str, Any]:
    data = {"amount": amount, "cost": "12.00", "currency": "HKD", "store": "store-12"}
    return cloud_event("purchase", subject, data, **kw)


def event_types(stack: Stack, ref: str) -> list[str]:
    history = stack.services.ledger.history(account_id_for(ref))
    return [type(e).__name__ for e in history]


def dead_letters(stack: Stack, count: int) -> list[Any]:
    return sorted(
        read_topic(stack.bootstrap, INTEGRATION_DLQ, count),
        key=lambda r: int(dict(r.headers)["source_offset"]),
    )


def test_applies_every_inbound_type_to_the_ledger(
    stack: Stack, publish: Publish, make_ingest: Callable[..., Ingest]
) -> None:
    ref = f"C-{uuid.uuid4().hex[:8]}"
    subject = f"ext:{ref}"
    messages = [
        opened(ref, service_plan="plus"),
        cloud_event("details_updated", subject, {"customer": {"phone": "+852 5555 0000"}}),
        purchase(subject, "19.99", correlationid="basket-7"),
        cloud_event("refund", subject, {"amount": 5, "cost": 3, "currency": "HKD", "store": "s"}),
        cloud_event("visit", subject, {"channel": "online", "location": "web"}),
        cloud_event(
            "inquiry_opened", subject, {"inquiry_id": "q1", "channel": "phone", "topic": "billing"}
        ),
        cloud_event("inquiry_answered", subject, {"inquiry_id": "q1", "channel": "phone"}),
        cloud_event(
            "complaint_lodged",
            subject,
            {"complaint_id": "k1", "category": "delivery", "severity": "high"},
        ),
        cloud_event(
            "complaint_resolved",
            subject,
            {"complaint_id": "k1", "resolution": "refunded", "satisfied": True},
        ),
        cloud_event("feedback", str(account_id_for(ref)), {"score": 4, "comment": "ok"}),
        cloud_event("account_closed", subject, {"reason": "customer_request"}),
    ]
    publish(*messages)

    ingest = make_ingest()
    drain(ingest, len(messages))

    assert (ingest.totals.applied, ingest.totals.dead_letters) == (len(messages), 0)
    assert event_types(stack, ref) == [
        "AccountOpened",
        "DetailsUpdated",
        "PurchaseRecorded",
        "RefundRecorded",
        "VisitRecorded",
        "InquiryOpened",
        "InquiryAnswered",
        "ComplaintLodged",
        "ComplaintResolved",
        "FeedbackGiven",
        "AccountClosed",
    ]
    ledger = stack.services.ledger
    account = ledger.account(account_id_for(ref))
    assert account.status == "closed"
    assert account.service_plan == "plus"
    assert ledger.personal_data(account) == {
        "name": "Ann Lee",
        "email": "ann@example.com",
        "phone": "+852 5555 0000",
    }
    history = ledger.history(account.id)
    bought = history[2]
    assert bought.amount == Decimal("19.99")  # type: ignore[attr-defined]
    assert bought.metadata == {  # type: ignore[attr-defined]
        "actor": "pos/store-12",
        "department": None,
        "reason": None,
        "correlation_id": "basket-7",
        "causation_id": messages[2]["id"],
        "source": "kafka:pos/store-12",
    }
    assert ledger.verify(account.id).ok
    # Offsets are in PostgreSQL, and committed to Kafka after them.
    (partition,) = stored_offsets(
        stack.services.pool, ingest.cluster_id, GROUP, INTEGRATION_EVENTS
    ).items()
    assert partition[1] == len(messages)


def test_a_repeated_cloudevent_id_is_applied_once(
    stack: Stack, publish: Publish, make_ingest: Callable[..., Ingest]
) -> None:
    ref = f"C-{uuid.uuid4().hex[:8]}"
    buy = purchase(f"ext:{ref}")
    publish(opened(ref), buy, buy)  # twice in one batch

    ingest = make_ingest()
    drain(ingest, 3)
    publish(buy)  # and once more, later
    drain(ingest, 4)

    assert event_types(stack, ref) == ["AccountOpened", "PurchaseRecorded"]
    assert (ingest.totals.applied, ingest.totals.duplicates) == (2, 2)


def test_bad_messages_go_to_the_dead_letter_topic_and_the_consumer_keeps_going(
    stack: Stack, publish: Publish, make_ingest: Callable[..., Ingest]
) -> None:
    ref, closed_ref = f"C-{uuid.uuid4().hex[:8]}", f"C-{uuid.uuid4().hex[:8]}"
    subject = f"ext:{ref}"
    not_json = b"\x00 this is not JSON"
    bad = [
        (not_json, "not_json"),
        (cloud_event("teleport", subject, {}), "invalid_event"),
        (purchase(subject, "-3"), "invalid_event"),
        (purchase(f"ext:nobody-{uuid.uuid4().hex[:6]}"), "unknown_account"),
        (purchase(f"ext:{closed_ref}"), "account_closed"),
        (cloud_event("visit", subject, {"channel": "fax", "location": "x"}), "invalid_event"),
        (opened(f"C-{uuid.uuid4().hex[:8]}", segment="platinum"), "invalid"),  # the domain's rule
        (
            cloud_event("inquiry_answered", subject, {"inquiry_id": "never", "channel": "app"}),
            "conflict",
        ),
        (opened(ref), "duplicate"),
    ]
    publish(
        opened(ref),
        opened(closed_ref),
        cloud_event("account_closed", f"ext:{closed_ref}", {"reason": "fraud"}),
    )
    for message, _reason in bad:
        publish(message)
        publish(purchase(subject))  # a good message after every bad one
    total = 3 + 2 * len(bad)

    ingest = make_ingest()
    drain(ingest, total)

    assert ingest.totals.dead_letters == len(bad)
    assert ingest.totals.applied == 3 + len(bad)
    assert event_types(stack, ref).count("PurchaseRecorded") == len(bad)
    letters = dead_letters(stack, len(bad))
    assert [dict(r.headers)["error"].decode() for r in letters] == [r for _, r in bad]
    originals = {
        (r.partition, r.offset): r for r in read_topic(stack.bootstrap, INTEGRATION_EVENTS, total)
    }
    for letter in letters:
        headers = dict(letter.headers)
        assert headers["source_topic"] == INTEGRATION_EVENTS.encode()
        assert headers["error_detail"]
        original = originals[int(headers["source_partition"]), int(headers["source_offset"])]
        assert (letter.key, letter.value) == (original.key, original.value)  # as received
        assert headers["content-type"] == b"application/cloudevents+json"  # its headers kept
    assert letters[0].value == not_json
    assert dict(letters[0].headers)["source_offset"] == b"3"
    amount = dict(letters[2].headers)["error_detail"].decode()
    assert "amount" in amount and "greater than 0" in amount


@pytest.mark.slow  # two group joins
def test_a_crash_between_database_commit_and_offset_commit_does_not_double_apply(
    stack: Stack, publish: Publish, make_ingest: Callable[..., Ingest]
) -> None:
    ref = f"C-{uuid.uuid4().hex[:8]}"
    publish(opened(ref), purchase(f"ext:{ref}"), purchase(f"ext:{ref}"), b"not json")

    crashing = make_ingest()
    crashing.apply(fetch_at_least(crashing, 4))  # events and receipts committed in PostgreSQL ...
    crashing.close(commit=False)  # ... then the process dies before any offset commit
    assert _kafka_committed(stack) is None

    restarted = make_ingest()
    publish(purchase(f"ext:{ref}"))
    drain(restarted, 1)

    assert event_types(stack, ref) == ["AccountOpened"] + ["PurchaseRecorded"] * 3
    # It started after the applied messages; the dead letter, read again, was
    # acknowledged and recorded when the crashing consumer closed: not sent twice.
    assert restarted.totals.duplicates == 1
    assert restarted.totals.dead_letters == 0
    assert restarted.totals.applied == 1
    assert _kafka_committed(stack) == 5
    assert len(read_topic(stack.bootstrap, INTEGRATION_DLQ, 1)) == 1


@pytest.mark.slow  # two group joins
def test_a_consumer_that_reads_everything_again_applies_nothing_twice(
    stack: Stack, publish: Publish, make_ingest: Callable[..., Ingest]
) -> None:
    ref = f"C-{uuid.uuid4().hex[:8]}"
    publish(opened(ref), purchase(f"ext:{ref}"), purchase(f"ext:{ref}"))
    first = make_ingest()
    drain(first, 3)
    first.close()

    # Another group has no stored offsets: it reads from the start, and the
    # CloudEvent ids recorded with the events refuse every message.
    again = make_ingest(group="crmledger-ingest-replay")
    drain(again, 3)

    assert (again.totals.applied, again.totals.duplicates) == (0, 3)
    assert event_types(stack, ref) == ["AccountOpened", "PurchaseRecorded", "PurchaseRecorded"]


def test_runs_in_a_background_worker_until_stopped(stack: Stack, publish: Publish) -> None:
    ref = f"C-{uuid.uuid4().hex[:8]}"
    worker = start_ingest(stack.services, stack.bootstrap, session_timeout_ms=SESSION_TIMEOUT_MS)
    try:
        publish(opened(ref), purchase(f"ext:{ref}"))
        wait_until(lambda: _has_account(stack, ref) and len(event_types(stack, ref)) == 2)
    finally:
        worker.stop()
    assert worker not in live_workers()
    assert worker.failures == 0


def _has_account(stack: Stack, ref: str) -> bool:
    return bool(stack.services.ledger.recorder.select_events(account_id_for(ref), limit=1))


def _kafka_committed(stack: Stack) -> int | None:
    consumer = KafkaConsumer(bootstrap_servers=stack.bootstrap, group_id=GROUP)
    try:
        tps = [TopicPartition(INTEGRATION_EVENTS, p) for p in range(3)]
        offsets = [consumer.committed(tp) for tp in tps]
        found = [o for o in offsets if o is not None]
        return max(found) if found else None
    finally:
        consumer.close(autocommit=False)


def test_activities_of_a_poll_batch_are_saved_together(
    stack: Stack,
    publish: Publish,
    make_ingest: Callable[..., Ingest],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    refs = [f"C-{uuid.uuid4().hex[:8]}" for _ in range(3)]
    publish(*(opened(ref) for ref in refs))
    activities = [purchase(f"ext:{refs[i % 3]}", f"{i + 1}.00") for i in range(30)]
    activities.insert(10, purchase(f"ext:nobody-{uuid.uuid4().hex[:6]}"))  # refused
    publish(*activities)
    ledger = stack.services.ledger
    saves: list[int] = []
    real_save = ledger.save

    def counting_save(*aggregates: Any, **kw: Any) -> Any:
        saves.append(sum(len(a.pending_events) for a in aggregates))
        return real_save(*aggregates, **kw)

    monkeypatch.setattr(ledger, "save", counting_save)

    ingest = make_ingest()
    drain(ingest, 3 + 31)

    assert (ingest.totals.applied, ingest.totals.dead_letters) == (33, 1)
    assert saves[:3] == [1, 1, 1]  # each opening on its own
    assert sum(saves[3:]) == 30
    assert len(saves[3:]) <= 3  # the activities in a few saves, not thirty
    for i, ref in enumerate(refs):
        history = ledger.history(account_id_for(ref))
        amounts = [e.amount for e in history[1:]]  # type: ignore[attr-defined]
        assert amounts == [Decimal(f"{n + 1}.00") for n in range(i, 30, 3)]  # in order


def test_a_batch_is_applied_one_by_one_when_another_writer_got_there_first(
    stack: Stack,
    publish: Publish,
    make_ingest: Callable[..., Ingest],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    ref = f"C-{uuid.uuid4().hex[:8]}"
    publish(opened(ref))
    ingest = make_ingest()
    drain(ingest, 1)
    real_save = ActivityBatch.save

    def save_after_a_concurrent_write(batch: ActivityBatch) -> None:
        # The API records a visit on the account between the batch's load and save.
        visit = Visit("store", "counter")
        stack.services.ledger.record_activity(
            account_id_for(ref), visit, datetime.now(UTC), {"actor": "api-user"}
        )
        monkeypatch.setattr(ActivityBatch, "save", real_save)
        real_save(batch)

    monkeypatch.setattr(ActivityBatch, "save", save_after_a_concurrent_write)
    publish(*(purchase(f"ext:{ref}", f"{n}.00") for n in range(1, 6)))
    drain(ingest, 6)

    assert ingest.totals.applied == 6
    assert event_types(stack, ref) == ["AccountOpened", "VisitRecorded"] + ["PurchaseRecorded"] * 5
    assert stack.services.ledger.verify(account_id_for(ref)).ok
