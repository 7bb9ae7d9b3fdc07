"""Batch paths of the ledger: many accounts loaded at once, snapshots from the saved aggregate."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import uuid4

from eventsourcing.application import project_aggregate

from domain import activities as act
from domain.activities import apply_activity
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
