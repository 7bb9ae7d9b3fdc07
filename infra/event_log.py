"""The ledger's notification log read as plain rows, for the relay and rebuilds.

eventsourcing's `select_notifications` returns Notification objects built from
dict rows in PostgreSQL's text format, where every state travels hex-encoded.
Reading the same rows as tuples in binary format costs a quarter as much, which
matters to the relay and to a rebuild, the two readers of the whole log. The
rows are the recorder's own: the table, the ordering by notification id, and
the stored state bytes are what `select_notifications` reads.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from uuid import UUID

from psycopg import Connection, sql

from domain.ledger import Ledger

# One stored event: its position, account id (as text), version, topic and state
# bytes. A plain tuple: a named one costs the relay a few percent to build.
LogRow = tuple[int, str, int, str, bytes]


_COLUMNS = "notification_id, originator_id::text, originator_version, topic, state"


class EventLog:
    """Reads the ledger's events table in notification order."""

    def __init__(self, ledger: Ledger) -> None:
        recorder: Any = ledger.recorder
        self._datastore = recorder.datastore
        self._table = sql.Identifier(recorder.datastore.schema, recorder.events_table_name)
        self._page = sql.SQL(
            "SELECT " + _COLUMNS + " FROM {} WHERE notification_id > %s"
            " ORDER BY notification_id LIMIT %s"
        ).format(self._table)
        self._all = sql.SQL(
            "SELECT " + _COLUMNS + " FROM {} WHERE notification_id > %s ORDER BY notification_id"
        ).format(self._table)
        self._position = sql.SQL(
            "SELECT notification_id FROM {} WHERE originator_id = %s AND originator_version = %s"
        ).format(self._table)

    def position_of(self, account_id: UUID, version: int) -> int | None:
        """Where this version of the account sits in the ledger; None when it is not stored.

        The Ledger asks it (`Ledger.position_of`) to name an unreadable event.
        """
        with self._datastore.transaction(commit=False) as curs:
            curs.execute(self._position, (account_id, version))
            row = curs.fetchone()
        return int(row["notification_id"]) if row else None

    def page(self, conn: Connection[Any], after: int, limit: int) -> list[LogRow]:
        """Up to `limit` events after position `after`."""
        with conn.cursor(binary=True) as cur:
            cur.execute(self._page, (after, limit), prepare=True)
            rows: list[LogRow] = cur.fetchall()
            return rows

    def stream(self, conn: Connection[Any], after: int = 0, fetch: int = 5000) -> Iterator[LogRow]:
        """Every event after position `after`, through a server-side cursor.

        `conn` must be in a transaction (a named cursor lives in one); rows come
        `fetch` at a time, so memory stays flat however long the log is.
        """
        with conn.cursor("crmledger_event_log", binary=True) as cur:
            cur.itersize = fetch
            cur.execute(self._all, (after,))
            yield from cur
