"""A long-lived account loads from its snapshots, now and as of any version."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from domain import activities as act
from domain.activities import apply_activity
from infra.wiring import Services
from tests.support import open_plain

NOW = datetime.now(UTC)
META = {"actor": "t"}


@pytest.mark.slow
def test_an_account_with_ten_thousand_events_loads_from_a_snapshot(services: Services) -> None:
    ledger = services.ledger
    account = open_plain(ledger, "Busy Bee")
    for _ in range(20):
        for i in range(500 if account.version > 1 else 499):
            apply_activity(account, act.Visit("store", f"s{i}"), NOW, META)
        ledger.save(account)
    assert account.version == 10_000

    assert ledger.snapshots is not None
    (latest,) = ledger.snapshots.get(account.id, desc=True, limit=1)
    assert latest.originator_version == 10_000
    assert ledger.account(account.id).version == 10_000
    middle = ledger.account(account.id, version=5_050)
    assert middle.version == 5_050
    assert ledger.account(account.id, as_of=datetime.now(UTC)).version == 10_000
    assert ledger.verify(account.id).ok
