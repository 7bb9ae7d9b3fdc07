"""The memory benchmark at a tiny scale: every role measured, the API's curve past the caches."""

from __future__ import annotations

import pytest

from benchmarks import memory
from benchmarks.common import fill
from benchmarks.suite import memory_figures
from tests.support import own_ledger

CACHE = 10  # accounts and keys each process keeps: the benchmark's children get it too


@pytest.mark.slow
def test_each_role_is_measured_and_the_api_past_its_caches(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("CRMLEDGER_ACCOUNT_CACHE_SIZE", str(CACHE))
    monkeypatch.setenv("CRMLEDGER_KEY_CACHE_SIZE", str(CACHE))
    with own_ledger(account_cache_size=CACHE, key_cache_size=CACHE) as services:
        events = fill(services.ledger, 1000, per_account=50)  # 20 accounts
        services.readmodels.rebuild("directory", "kpis")  # emptied again by the benchmark

        figures = memory.measure(services, accounts=40)

        statuses = {s["name"]: s["position"] for s in services.readmodels.status()}
    # Everything stored was projected, the commands' events too: 20 activities, 20 openings.
    assert figures["events"] == events
    assert set(statuses.values()) == {events + 40}
    assert figures["api_accounts_with_an_activity"] == figures["api_accounts_opened"] == 20
    for role in memory.ROLES:
        assert 30 < figures[f"rss_mb_{role}"] < memory.TARGET_MB, role
    for role in memory.BACKGROUND:
        assert figures[f"rss_mb_{role}_peak"] >= figures[f"rss_mb_{role}"]
    curve = figures["api_rss_curve"]
    assert [n for n, _ in curve] == list(range(4, 41, 4))
    # Growth is taken from the larger of the caches' bound and half the accounts.
    assert figures["api_growth_from_accounts"] == 20
    assert figures["api_growth_mb_per_10k"] is not None
    rows = memory_figures(figures)
    assert len(rows) == 6 and all(row.unit == "MiB" for row in rows)
    assert "100,000 accounts, extrapolated" in rows[-1].name
