"""The continuous verifier: every event's hash chain checked as it is appended.

A tampered row should be found before an auditor stumbles on it, without
slowing the writes: this background role (one per deployment) follows the
notification log as the relay does and feeds every event to the same
`ChainVerifier` as `crmledger verify`, at most a quarter of a core. It reads
the whole ledger at start and every CRMLEDGER_VERIFY_SWEEP_HOURS (a row altered
after it was checked is found by the next sweep), keeps the first break of
each account in `broken_accounts`, and drops the rows of accounts found whole
again. The API reads the table through `BrokenAccounts` (refreshed at most once
a second, so a read costs no query) to flag broken accounts; it refuses
nothing (docs/design.md, Integrity). While PostgreSQL is away it waits and goes
on from where it was.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING
from uuid import UUID

import psycopg
from eventsourcing.persistence import PersistenceError
from psycopg.rows import dict_row
from psycopg_pool import ConnectionPool

from domain.account import event_type_of
from domain.integrity import Break, ChainVerifier
from infra.event_store import EventLog
from infra.schema import create_tables
from infra.verification import stored_record
from infra.worker import OutageLog, Worker

if TYPE_CHECKING:
    from domain.ledger import Ledger
    from infra.wiring import Services

log = logging.getLogger(__name__)

# How stale the API's copy of the table may be.
REFRESH_S = 1.0
# The share of a core the verifier may take: it runs beside the API in `serve`,
# and a thread that never waits takes the interpreter's lock from the requests.
# A quarter of a core keeps up with a steady write load (README, Performance);
# a burst beyond it is checked a little later.
DUTY = 0.25


@dataclass(frozen=True)
class BrokenAccount:
    """An account whose hash chain breaks, and where it first does."""

    account_id: UUID
    version: int
    position: int
    reason: str
    detected_at: datetime

    def header(self) -> str:
        """The value of the Crmledger-Integrity header on a read of this account."""
        return f"broken; version={self.version}; position={self.position}"


class BrokenAccounts:
    """The table of broken accounts: written by the verifier, read by the API."""

    def __init__(self, pool: ConnectionPool, schema: str, refresh_s: float = REFRESH_S) -> None:
        self._pool = pool
        self._schema = schema
        self._refresh_s = refresh_s
        self._known: dict[UUID, BrokenAccount] = {}
        self._loaded = float("-inf")
        self._loading = threading.Lock()

    def create(self) -> None:
        """Create the table if missing."""
        create_tables(self._pool, self._schema, "broken_accounts")

    def record(self, breaks: Iterable[Break]) -> None:
        """Keep these breaks; an account already kept at the same version keeps its time."""
        found = list(breaks)
        if not found:
            return
        with self._pool.connection() as conn, conn.cursor() as cur:
            cur.executemany(
                f"INSERT INTO {self._schema}.broken_accounts"
                " (account_id, version, position, reason) VALUES (%s, %s, %s, %s)"
                " ON CONFLICT (account_id) DO UPDATE SET version = excluded.version,"
                " position = excluded.position, reason = excluded.reason,"
                " detected_at = now()"
                " WHERE broken_accounts.version <> excluded.version"
                " OR broken_accounts.reason <> excluded.reason",
                [(b.account_id, b.version, b.position, b.reason) for b in found],
            )
        for b in found:
            log.error(
                "integrity: account %s broken at version %d (position %d): %s",
                b.account_id,
                b.version,
                b.position,
                b.reason,
            )
        self._loaded = float("-inf")  # this process reads its own writes at once

    def settle(self, broken: Iterable[UUID], swept_since: datetime) -> int:
        """After a whole sweep: drop the accounts found whole again; returns how many."""
        with self._pool.connection() as conn:
            dropped = conn.execute(
                f"DELETE FROM {self._schema}.broken_accounts"
                " WHERE detected_at < %s AND NOT account_id = ANY(%s::uuid[])",
                (swept_since, list(broken)),
            ).rowcount
        self._loaded = float("-inf")
        return dropped

    def all(self) -> list[BrokenAccount]:
        """Every broken account, by position."""
        with self._pool.connection() as conn, conn.cursor(row_factory=dict_row) as cur:
            cur.execute(
                "SELECT account_id, version, position, reason, detected_at"
                f" FROM {self._schema}.broken_accounts ORDER BY position"
            )
            return [BrokenAccount(**row) for row in cur.fetchall()]

    def count(self) -> int:
        """How many accounts are broken."""
        with self._pool.connection() as conn:
            row = conn.execute(f"SELECT count(*) FROM {self._schema}.broken_accounts").fetchone()
        return int(row[0]) if row else 0

    def warning(self, account_id: UUID) -> BrokenAccount | None:
        """The break of this account, when it is broken, from a copy at most a second old.

        A read must not fail for its warning: while the database is away the
        last copy answers.
        """
        if time.monotonic() - self._loaded > self._refresh_s and self._loading.acquire(
            blocking=False
        ):
            try:
                self._known = {b.account_id: b for b in self.all()}
                self._loaded = time.monotonic()
            except (psycopg.Error, PersistenceError) as e:
                log.warning("integrity: could not read the broken accounts: %s", e)
            finally:
                self._loading.release()
        return self._known.get(account_id)


class ContinuousVerifier:
    """Follows the ledger and checks every event's chain; keeps the broken accounts."""

    def __init__(
        self,
        ledger: Ledger,
        pool: ConnectionPool,
        broken: BrokenAccounts,
        *,
        sweep_s: float,
        page: int = 5000,
        idle_s: float = 0.2,
    ) -> None:
        self._log = EventLog(ledger)
        self._pool = pool
        self._broken = broken
        self._sweep_s = sweep_s
        self._page = page
        self._idle_s = idle_s
        self._chain = ChainVerifier()
        self._position = 0
        self._sweep_started = datetime.now(UTC)
        self._sweep_clock = time.monotonic()
        self._sweeping = True
        # Breaks found but not yet written: kept across a failed write, since
        # their events are not read twice (the chain moved past them).
        self._pending: list[Break] = []
        self.outages = 0

    @property
    def position(self) -> int:
        """The last ledger position checked in the current sweep."""
        return self._position

    def run(self, stop: threading.Event) -> None:
        """Check events until `stop` is set; a database outage only pauses it."""
        # Backoff capped at a few seconds, logged once per outage (infra/worker.py).
        outage = OutageLog("verifier")
        while not stop.is_set():
            started = time.monotonic()
            try:
                caught_up = self.step()
                outage.succeeded()
            except (psycopg.Error, PersistenceError) as e:
                self.outages += 1
                stop.wait(outage.failed(e))
                continue
            paced = (time.monotonic() - started) * (1 / DUTY - 1)
            stop.wait(max(paced, self._idle_s) if caught_up else paced)

    def step(self) -> bool:
        """Check one page of events; True when the ledger's end was reached."""
        if not self._sweeping and time.monotonic() - self._sweep_clock >= self._sweep_s:
            self._start_sweep()
        with self._pool.connection() as conn:
            rows = self._log.page(conn, self._position, self._page)
        for position, account, version, topic, state in rows:
            record = stored_record(position, UUID(account), version, event_type_of(topic), state)
            broken = self._chain.check(record)
            if broken is not None:
                self._pending.append(broken)
        if rows:
            self._position = rows[-1][0]
        self._broken.record(self._pending)
        self._pending = []
        if len(rows) < self._page:
            if self._sweeping:
                self._end_sweep()
            return True
        return False

    def close(self) -> None:
        """Nothing to release: the pool belongs to the process."""

    def _start_sweep(self) -> None:
        self._pending = []
        self._chain = ChainVerifier()
        self._position = 0
        self._sweep_started = datetime.now(UTC)
        self._sweep_clock = time.monotonic()
        self._sweeping = True

    def _end_sweep(self) -> None:
        dropped = self._broken.settle(self._chain.breaks, self._sweep_started)
        self._sweeping = False
        report = self._chain.report
        log.info(
            "verifier: swept %d events up to position %d: %d broken accounts%s",
            report.events,
            self._position,
            len(self._chain.breaks),
            f", {dropped} whole again" if dropped else "",
        )


def start_verifier(services: Services) -> Worker:
    """Start the continuous verifier in a worker thread."""
    sweep_s = services.settings.verify_sweep_hours * 3600
    verifier = ContinuousVerifier(
        services.ledger, services.pool, services.integrity, sweep_s=sweep_s
    )
    # The same verifier across restarts of the worker: it keeps its place.
    return Worker("verifier", lambda: verifier).start()
