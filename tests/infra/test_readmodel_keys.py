"""Read models read account keys a page of the store (a rebuild) or a poll (the projector) at once.

Within the key cache's bound, and counted as the statements the vault sends.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, cast
from uuid import uuid4

import orjson
from psycopg_pool import ConnectionPool

from domain.account import CustomerAccount
from infra.event_store import plain_state
from infra.keys import PostgresKeyVault
from infra.outbound_events import encode
from infra.secrets import master_key
from infra.wiring import Services
from tests.support import EVERY_ACTIVITY, outbound_event, own_ledger

META = {"actor": "t"}
ACCOUNTS = 240
CACHE = 100  # keys; a rebuild's page is then 50 events


class CountingPool:
    """The vault's pool, noting every statement the vault sends through it."""

    def __init__(self, pool: ConnectionPool) -> None:
        self._pool = pool
        self.statements: list[str] = []

    @contextmanager
    def connection(self) -> Iterator[Any]:
        with self._pool.connection() as conn:
            yield _Noted(conn, self.statements)


class _Noted:
    def __init__(self, conn: Any, statements: list[str]) -> None:
        self._conn = conn
        self._statements = statements

    def execute(self, query: str, params: Any = None) -> Any:
        self._statements.append(query)
        return self._conn.execute(query, params)


def opened(services: Services, n: int) -> list[CustomerAccount]:
    """`n` accounts with personal data and a few activities each, ten to a save."""
    ledger, now, accounts = services.ledger, datetime.now(UTC), []
    for i in range(n):
        account_id = uuid4()
        customer = {"name": f"Paged Person{i}", "email": f"paged{i}@example.com"}
        account = CustomerAccount.open(
            external_ref=None,
            segment="gold",
            service_plan="standard",
            channel="store",
            customer=ledger.vault.encrypt(account_id, customer),
            occurred_at=now,
            metadata=META,
            account_id=account_id,
        )
        for activity in EVERY_ACTIVITY[:3]:
            account.record(activity, now, META)
        if i % 3 == 0:  # a second event with personal data
            phone = {"phone": f"+852 5555 {i:04d}"}
            account.update_details(ledger.vault.encrypt(account_id, phone), now, META)
        accounts.append(account)
    for k in range(0, n, 10):
        ledger.save(*accounts[k : k + 10])
    return accounts


def test_a_rebuild_reads_the_keys_of_a_page_in_one_query_not_one_an_account() -> None:
    with own_ledger(key_cache_size=CACHE) as services:
        accounts = opened(services, ACCOUNTS)
        erased = accounts[::40]  # their keys are destroyed: no key to read, and none cached
        for account in erased:
            services.ledger.erase(account.id, "request", datetime.now(UTC), META)
        events = services.ledger.recorder.max_notification_id() or 0

        # A process that has read no key yet, its statements to account_keys counted.
        pool = CountingPool(services.pool)
        vault = PostgresKeyVault(
            cast(ConnectionPool, pool), master_key(services.settings), cache_size=CACHE
        )
        services.ledger.vault = vault
        outcome = services.readmodels.rebuild("directory", "kpis")

        assert outcome.events == events and not outcome.parked
        pages = math.ceil(events / (CACHE // 2))
        assert all("= ANY(" in q for q in pool.statements), "a key was read on its own"
        assert 0 < len(pool.statements) <= pages < ACCOUNTS / 3
        assert len(vault._cache) <= CACHE
        # The directory is whole: found by a name's word, the erased accounts without one.
        found = services.readmodels.directory("Person7", personal=True)
        assert [row["account_id"] for row in found] == [accounts[7].id]
        assert services.readmodels.directory("Person40", personal=True) == []


def test_a_key_that_does_not_open_parks_its_accounts_events_alone() -> None:
    with own_ledger(key_cache_size=CACHE) as services:
        accounts = opened(services, 12)
        damaged = accounts[6]  # opened, then its details updated
        with services.pool.connection() as conn:
            conn.execute(
                "UPDATE account_keys SET wrapped_key = %s WHERE account_id = %s",
                (b"\x00" * 60, damaged.id),
            )
        services.ledger.vault = PostgresKeyVault(
            services.pool, master_key(services.settings), cache_size=CACHE
        )
        outcome = services.readmodels.rebuild("directory")

        # Its opening and its details update (its events with personal data) are parked.
        parked = {u.account_id for _, _, u in outcome.parked}
        assert parked == {damaged.id} and len(outcome.parked) == 2
        assert {u.error_class for _, _, u in outcome.parked} == {"InvalidTag"}
        found = services.readmodels.directory("Person4", personal=True)
        assert [row["account_id"] for row in found] == [accounts[4].id]


def test_the_projector_reads_the_keys_of_a_poll_in_one_query() -> None:
    with own_ledger(key_cache_size=CACHE) as services:
        opened(services, 30)
        ledger = services.ledger
        messages = [
            encode(outbound_event(n, plain_state(n.state)))
            for n in ledger.recorder.select_notifications(1, 1000)
        ]
        pool = CountingPool(services.pool)
        ledger.vault = PostgresKeyVault(
            cast(ConnectionPool, pool), master_key(services.settings), cache_size=CACHE
        )
        readmodels = services.readmodels

        readmodels.prefetch_keys([*messages, b"not json", None, b'{"customer": 1}'])
        events = [readmodels.projected(orjson.loads(m)) for m in messages]

        assert len(pool.statements) == 1 and "= ANY(" in pool.statements[0]
        assert sum(1 for e in events if e.tokens) == 30 + 10  # openings and details updates
