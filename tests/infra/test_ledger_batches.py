"""Batch paths of the ledger: many accounts loaded at once, snapshots from the saved aggregate."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal
from uuid import uuid4

import pytest
from eventsourcing.application import project_aggregate

from domain import activities as act
from domain import integrity
from domain.activities import apply_activity
from infra.canonical import orjson_canonical_json
from infra.inbound_receipts import AlreadyApplied, Receipt, applied_events, stored_offsets
from infra.wiring import Services, bootstrap
from tests.support import open_plain

NOW = datetime.now(UTC)
META = {"actor": "t"}
VISIT = act.Visit("store", "central")


def test_accounts_loads_many_at_their_current_versions(services: Services) -> None:
    ledger = services.ledger
    cached, uncached = open_plain(ledger, "Batch Person"), open_plain(ledger, "Batch Person")
    ledger.account(cached.id)  # now in this ledger's cache
    # Another process writes to both accounts behind this ledger's back.
    other = bootstrap(services.settings)
    try:
        for account in (cached, uncached):
            other.ledger.record_activity(account.id, VISIT, NOW, META)
            other.ledger.record_activity(account.id, VISIT, NOW, META)
    finally:
        other.close()

    found = ledger.accounts([cached.id, uncached.id, uuid4()])

    assert {i: a.version for i, a in found.items()} == {cached.id: 3, uncached.id: 3}
    # The copies are the caller's: changing one leaves the cache as it was.
    apply_activity(found[cached.id], VISIT, NOW, META)
    assert ledger.account(cached.id).version == 3
    ledger.save(found[cached.id])
    assert ledger.account(cached.id).version == 4
    assert ledger.verify(cached.id).ok


def test_accounts_handed_over_after_a_save_stay_current(services: Services) -> None:
    ledger = services.ledger
    account = open_plain(ledger, "Batch Person")
    (loaded,) = ledger.accounts([account.id]).values()
    apply_activity(loaded, VISIT, NOW, META)
    ledger.save(loaded)
    ledger.hand_over([loaded])
    ledger.record_activity(account.id, VISIT, NOW, META)  # another writer, after

    (again,) = ledger.accounts([account.id]).values()

    assert again.version == 3 and again is not loaded
    assert again.last_hash == ledger.account(account.id).last_hash


def test_a_save_across_the_interval_snapshots_the_saved_aggregate(services: Services) -> None:
    ledger = services.ledger
    account = open_plain(ledger, "Batch Person")
    for _ in range(97):
        apply_activity(account, VISIT, NOW, META)
    ledger.save(account)
    assert ledger.snapshots is not None
    assert not list(ledger.snapshots.get(account.id))
    for _ in range(4):  # versions 99 to 102: one save crosses 100
        apply_activity(account, VISIT, NOW, META)
    ledger.save(account)

    (snapshot,) = ledger.snapshots.get(account.id)
    assert snapshot.originator_version == 102
    replayed = project_aggregate(None, ledger.events.get(account.id))
    assert vars(ledger.account(account.id)) == vars(replayed)


def test_a_batch_saved_with_receipts_stores_them_and_refuses_them_a_second_time(
    services: Services,
) -> None:
    ledger = services.ledger
    account = open_plain(ledger, "Batch Person")
    receipt = Receipt("cluster", "group", "topic", 0, 7, "crm", f"id-{uuid4()}")
    (loaded,) = ledger.accounts([account.id]).values()
    apply_activity(loaded, VISIT, NOW, META)

    ledger.record_batch([loaded], [receipt])

    assert applied_events(services.pool, [(receipt.source, receipt.event_id)])
    assert stored_offsets(services.pool, "cluster", "group", "topic") == {0: 8}
    (again,) = ledger.accounts([account.id]).values()
    assert again.version == 2, "the batch stays in the cache as saved"
    apply_activity(again, VISIT, NOW, META)
    with pytest.raises(AlreadyApplied):
        ledger.record_batch([again], [receipt])
    assert ledger.account(account.id).version == 2, "nothing stored with a refused receipt"
    # A verb takes its receipt the same way, and the store refuses it the same way.
    with pytest.raises(AlreadyApplied):
        ledger.record_activity(account.id, VISIT, NOW, META, receipts=[receipt])
    assert len(ledger.history(account.id)) == 2


def test_the_wiring_hashes_through_orjson_with_the_same_bytes(services: Services) -> None:
    assert integrity._canonical is orjson_canonical_json
    value = {"b": Decimal("1.50"), "a": NOW, "ü": [1, None]}
    assert integrity.canonical_json(value) == integrity.standard_canonical_json(value)
