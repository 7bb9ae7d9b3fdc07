"""Every cache of a process is bounded by its setting, so memory does not grow with the ledger."""

from __future__ import annotations

from datetime import UTC, datetime

from api.auth import _VERIFIED, issue_token, remembered, token_rules
from api.auth import _verify_and_remember as verify
from infra.wiring import bootstrap
from tests.support import drop_schema, make_settings

META = {"actor": "cache-test"}


def test_the_account_and_key_caches_hold_at_most_their_settings() -> None:
    settings = make_settings(account_cache_size=3, key_cache_size=2)
    services = bootstrap(settings)
    try:
        ledger = services.ledger
        ids = [
            ledger.open_account(
                external_ref=f"CACHE-{i}",
                segment="gold",
                service_plan="standard",
                channel="store",
                customer={"name": f"Cache {i}"},
                occurred_at=datetime.now(UTC),
                meta=META,
            ).id
            for i in range(6)
        ]
        for account_id in ids:
            ledger.account(account_id)
            assert services.vault._key(account_id, create=False) is not None
        cache = ledger.repository.cache
        assert cache is not None and getattr(cache, "maxsize", None) == 3
        held = getattr(cache, "cache", {})
        assert set(held) == set(ids[-3:])  # the most recently used
        assert list(services.vault._cache) == ids[-2:]
        # An account out of the cache still reads whole from the store.
        assert ledger.account(ids[0]).external_ref == "CACHE-0"
    finally:
        services.close()
        drop_schema(settings.database_schema)


def test_remembered_tokens_are_forgotten_past_the_setting() -> None:
    settings = make_settings(jwt_secret="t" * 40, token_cache_size=2)
    services = bootstrap(settings, roles=set())
    try:
        rules = token_rules(services)
        assert rules.remember == 2
        _VERIFIED.clear()
        tokens = [issue_token("t" * 40, f"sub-{i}", ["auditor"], ttl=600) for i in range(3)]
        for token in tokens[:2]:
            verify(rules, token)
        assert all(remembered(rules, t) for t in tokens[:2])
        verify(rules, tokens[2])  # a third: the two before are let go
        assert len(_VERIFIED) == 1 and remembered(rules, tokens[2])
        assert remembered(rules, tokens[0]) is None
    finally:
        services.close()
        drop_schema(settings.database_schema)
