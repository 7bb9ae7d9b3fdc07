"""Receipts of inbound CloudEvent ids are pruned past their window; offsets are kept."""

from __future__ import annotations

import threading
import time
import uuid
from typing import Any

from consumers.inbound import GROUP, Ingest
from domain.account import account_id_for
from infra.inbound_receipts import prune_receipts, stored_offsets
from infra.topics import INTEGRATION_EVENTS
from tests.kafka.conftest import SESSION_TIMEOUT_MS, Publish, Stack, cloud_event, wait_until


def opened(ref: str) -> dict[str, Any]:
    data = {"segment": "gold", "channel": "store", "customer": {"name": "Ann Lee"}}
    return cloud_event("account_opened", f"ext:{ref}", data)


def purchase(subject: str) -> dict[str, Any]:
    data = {"amount": "5.00", "cost": "1.00", "currency": "HKD", "store": "store-12"}
    return cloud_event("purchase", subject, data)


def receipt_ids(stack: Stack) -> set[str]:
    with stack.services.pool.connection() as conn:
        return {r[0] for r in conn.execute("SELECT event_id FROM inbound_applied").fetchall()}


def dead_letter_records(stack: Stack) -> int:
    with stack.services.pool.connection() as conn:
        row = conn.execute("SELECT count(*) FROM inbound_dead_lettered").fetchone()
    return int(row[0]) if row else 0


def age(stack: Stack, days: int, event_ids: list[str]) -> None:
    """Make receipts (and every dead-letter record) look `days` old."""
    with stack.services.pool.connection() as conn:
        conn.execute(
            "UPDATE inbound_applied SET applied_at = now() - make_interval(days => %s)"
            " WHERE event_id = ANY(%s)",
            (days, event_ids),
        )
        conn.execute(
            "UPDATE inbound_dead_lettered SET sent_at = now() - make_interval(days => %s)",
            (days,),
        )


def purchases(stack: Stack, ref: str) -> int:
    history = stack.services.ledger.history(account_id_for(ref))
    return sum(type(e).__name__ == "PurchaseRecorded" for e in history)


def test_receipts_older_than_the_window_are_pruned_and_a_copy_within_it_is_still_refused(
    stack: Stack, publish: Publish
) -> None:
    ref = f"C-{uuid.uuid4().hex[:8]}"
    open_it, old_buy, recent_buy = opened(ref), purchase(f"ext:{ref}"), purchase(f"ext:{ref}")
    publish(open_it, old_buy, recent_buy, b"not JSON")
    first = Ingest(stack.services, stack.bootstrap, session_timeout_ms=SESSION_TIMEOUT_MS)
    try:
        deadline = time.monotonic() + 20
        while first.totals.records < 4:
            assert time.monotonic() < deadline
            first.poll_once(200)
    finally:
        first.close()
    assert receipt_ids(stack) == {open_it["id"], old_buy["id"], recent_buy["id"]}
    assert dead_letter_records(stack) == 1
    age(stack, 8, [open_it["id"], old_buy["id"]])
    assert stack.settings.inbound_receipt_days == 7

    # A longer window keeps them all.
    assert prune_receipts(stack.services.pool, days=10) == 0

    # A running consumer prunes what is older than the configured 7 days.
    ingest = Ingest(stack.services, stack.bootstrap, session_timeout_ms=SESSION_TIMEOUT_MS)
    stop = threading.Event()
    thread = threading.Thread(target=ingest.run, args=(stop,), daemon=True)
    thread.start()
    try:
        wait_until(lambda: receipt_ids(stack) == {recent_buy["id"]})
        assert dead_letter_records(stack) == 0
        # The partition's offset is kept: Kafka's own redelivery is still recognised.
        offsets = stored_offsets(stack.services.pool, ingest.cluster_id, GROUP, INTEGRATION_EVENTS)
        assert list(offsets.values()) == [4]

        # Copies published again: the recent one is refused, the pruned one is applied anew.
        publish(recent_buy, old_buy)
        wait_until(lambda: ingest.totals.records == 2)
    finally:
        stop.set()
        thread.join(10)
        ingest.close()
    assert (ingest.totals.duplicates, ingest.totals.applied) == (1, 1)
    assert purchases(stack, ref) == 3
