"""The notary: keeps the ledger's Merkle tree up with the event store and signs its checkpoints.

Proofs must be ready moments after an event is stored, without slowing the
write path: this background role (one per deployment, an advisory lock makes
any other a standby) follows the notification log as the relay does, LISTENing
for the recorder's NOTIFY, and appends each page of new events to the tree
(infra/merkle_tree.py) in one transaction with its position. Notification ids
appear in commit order (the recorder locks the table), so nothing committed
later can land behind the position.

While the tree grows it signs a checkpoint at least every
CRMLEDGER_CHECKPOINT_SECONDS and keeps it (infra/checkpoints.py). Publishing
to `crmledger.checkpoints` is a worker of its own (infra/checkpoint_publisher.py),
so a broker outage stops neither the tree nor the signing: what it could not
publish goes out when the broker is back. While PostgreSQL is away the notary
waits and resumes from the stored head.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import TYPE_CHECKING, Any

import psycopg
from eventsourcing.persistence import PersistenceError

from infra.checkpoint_publisher import start_publisher
from infra.database import connection_options
from infra.event_store import EventLog
from infra.worker import OutageLog, Worker

if TYPE_CHECKING:
    from infra.wiring import Services

log = logging.getLogger(__name__)

PAGE = 5000
# How long the notary waits for a NOTIFY before it looks anyway (a NOTIFY lost
# to a reconnect costs at most this).
IDLE_RECHECK_S = 1.0
# Under load a round starts at most this often. Each append is a commit, a WAL
# flush competing with the commands' own; gathering a fifth of a second of
# events into one keeps the notary's cost to the writers small, and its lag
# far under the second it may lag.
MIN_ROUND_S = 0.2


class Notary:
    """Appends new events to the tree and signs checkpoints; `run` follows the ledger."""

    def __init__(
        self,
        services: Services,
        *,
        page: int = PAGE,
        checkpoint_s: float | None = None,
        idle_recheck_s: float = IDLE_RECHECK_S,
        min_round_s: float = MIN_ROUND_S,
    ) -> None:
        self._services = services
        self._tree = services.tree
        self._checkpoints = services.checkpoints
        self._signer = services.signer
        self._log = EventLog(services.ledger)
        self._page = page
        self._checkpoint_s = (
            services.settings.checkpoint_seconds if checkpoint_s is None else checkpoint_s
        )
        self._idle_recheck_s = idle_recheck_s
        self._min_round_s = min_round_s
        self._last_signed = float("-inf")  # a grown tree is signed as soon as the notary starts
        self._signed_size: int | None = None  # the largest size signed, loaded on first use
        self.signed = 0
        self.fallbacks = 0
        self.outages = 0
        self._outage = OutageLog("notary")

    def run(self, stop: threading.Event) -> None:
        """Follow the ledger until `stop` is set; a database outage only pauses it."""
        while not stop.is_set():
            try:
                self._follow(stop)
            except (psycopg.OperationalError, psycopg.InterfaceError, PersistenceError) as e:
                self.outages += 1
                stop.wait(self._outage.failed(e))

    def _follow(self, stop: threading.Event) -> None:
        settings = self._services.settings
        url = self._services.database_url
        with psycopg.connect(url, autocommit=True, **connection_options(settings)) as conn:
            name = f"crmledger-notary:{settings.database_schema}"
            while not stop.is_set():
                row = conn.execute("SELECT pg_try_advisory_lock(hashtext(%s))", (name,)).fetchone()
                if row and row[0]:
                    break
                log.info("another notary keeps the tree; standing by")
                stop.wait(2.0)
            # LISTEN before reading, so no commit falls between the read and the wait.
            self._log.listen(conn)
            while not stop.is_set():
                started = time.monotonic()
                added = self.catch_up(stop)
                self.checkpoint_if_due()
                # The outage (if one was on) ends with the first round that went well,
                # not when the loop returns: it returns only when stopped.
                self._outage.succeeded()
                if added:
                    stop.wait(max(0.0, started + self._min_round_s - time.monotonic()))
                self._wait_for_news(conn, stop)

    def catch_up(self, stop: threading.Event | None = None) -> int:
        """Append every stored event after the tree's position; return how many were added."""
        added = 0
        _, position = self._tree.head()
        while stop is None or not stop.is_set():
            with self._services.pool.connection() as conn:
                rows = self._log.page(conn, position, self._page)
            if not rows:
                break
            appended = self._tree.append(rows)
            added += appended.leaves
            position = appended.position
            for at, how in appended.fallbacks:
                self.fallbacks += 1
                log.error(
                    "notary: the event at position %d has no readable hash; its leaf is the"
                    " %s (docs/design.md, Integrity)",
                    at,
                    how.replace("_", " "),
                )
            if len(rows) < self._page:
                break
        return added

    def checkpoint_if_due(self, *, now: float | None = None) -> int | None:
        """Sign and keep a checkpoint of the current tree when it grew and one is due.

        Returns the size signed, or None.
        """
        if self._signed_size is None:
            last = self._checkpoints.last()
            self._signed_size = last.tree_size if last else 0
        size = self._tree.size()
        now = time.monotonic() if now is None else now
        if size <= self._signed_size or now - self._last_signed < self._checkpoint_s:
            return None
        root = self._tree.root(size)
        self._checkpoints.keep(size, root, self._signer.sign(size, root))
        self._last_signed, self._signed_size = now, size
        self.signed += 1
        log.info("notary: signed the checkpoint of %d events", size)
        return size

    def _wait_for_news(self, conn: psycopg.Connection[Any], stop: threading.Event) -> None:
        # Wake for a NOTIFY, for a checkpoint coming due (when there is news to
        # sign), or to look anyway.
        wait = self._idle_recheck_s
        if self._signed_size is not None and self._tree.size() > self._signed_size:
            wait = min(wait, self._last_signed + self._checkpoint_s - time.monotonic())
        deadline = time.monotonic() + max(0.05, wait)
        while not stop.is_set() and time.monotonic() < deadline:
            # Short waits so a stop is seen quickly; no query runs meanwhile.
            for _ in conn.notifies(timeout=min(0.2, max(0.01, wait)), stop_after=1):
                return

    def close(self) -> None:
        """Nothing to release: its connection closes with each run, the pool is the process's."""


def start_notary(services: Services, bootstrap: str | None = None, **options: Any) -> list[Worker]:
    """Start the notary and its checkpoint publisher, each in a worker thread.

    Without `bootstrap`, the publisher finds the configured cluster or the
    embedded broker at each restart (infra/broker.py `on_broker`). `options`
    go to `Notary`.
    """
    notary = Notary(services, **options)
    # The same notary across restarts: it keeps its signing clock.
    return [Worker("notary", lambda: notary).start(), start_publisher(services, bootstrap)]
