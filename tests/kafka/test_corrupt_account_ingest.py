"""An inbound message on an account with an unreadable stored event is dead-lettered, not fatal."""

from __future__ import annotations

import time
import uuid

from consumers.inbound import Ingest
from domain.account import account_id_for
from infra.topics import INTEGRATION_DLQ
from tests.infra.test_corrupt_events import garble
from tests.kafka.conftest import SESSION_TIMEOUT_MS, Publish, Stack, cloud_event, read_topic


def test_a_message_on_an_unreadable_account_is_dead_lettered_and_the_others_apply(
    stack: Stack, publish: Publish
) -> None:
    bad_ref, good_ref = f"C-{uuid.uuid4().hex[:8]}", f"C-{uuid.uuid4().hex[:8]}"
    customer = {"name": "Ann Lee"}
    opened = [
        cloud_event(
            "account_opened",
            f"ext:{ref}",
            {"segment": "gold", "channel": "store", "customer": customer},
        )
        for ref in (bad_ref, good_ref)
    ]
    visit = {"channel": "store", "location": "x"}
    publish(*opened)
    ingest = Ingest(stack.services, stack.bootstrap, session_timeout_ms=SESSION_TIMEOUT_MS)
    try:
        drain(ingest, 2)
        garble(stack.services, account_id_for(bad_ref), 1)
        stack.services.ledger.repository.cache = None  # as after a restart
        publish(
            cloud_event("visit", f"ext:{bad_ref}", visit),
            cloud_event("visit", f"ext:{good_ref}", visit),
            cloud_event("visit", f"ext:{bad_ref}", visit),
            cloud_event("visit", f"ext:{good_ref}", visit),
        )
        drain(ingest, 6)
    finally:
        ingest.close()

    assert (ingest.totals.applied, ingest.totals.dead_letters) == (4, 2)
    letters = read_topic(stack.bootstrap, INTEGRATION_DLQ, 2)
    assert [dict(r.headers)["error"] for r in letters] == [b"ledger_integrity"] * 2
    good = stack.services.ledger.account(account_id_for(good_ref))
    assert good.version == 3


def drain(ingest: Ingest, records: int, timeout: float = 20.0) -> None:
    """Poll until the consumer has handled `records` records in all."""
    deadline = time.monotonic() + timeout
    while ingest.totals.records < records:
        assert time.monotonic() < deadline, f"handled {ingest.totals.records} of {records}"
        ingest.poll_once(200)
