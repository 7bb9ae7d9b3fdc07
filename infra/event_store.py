"""The adapter to eventsourcing's tables and stored format (eventsourcing 9.5.6).

Every read of the library's tables and stored bytes sits here; a contract test
(tests/infra/test_event_store_contract.py) pins what they rely on to the
library's version. The tables themselves are eventsourcing's (`ledger_events`,
`ledger_snapshots`); ours beside them are in infra/schema.py.

- `LedgerRecorder`, the Ledger's application recorder (infra/ledger_store.py
  builds it). Beside eventsourcing's own work it writes the inbound receipts
  a save was given (`save(..., receipts=...)`: eventsourcing forwards a save's
  keyword arguments to `insert_events`), and the access-log rows given the
  same way (infra/access_log.py `AccessRead`), on the insert transaction's cursor,
  before the events table is locked, so offsets, CloudEvent ids and events
  commit together or not at all (infra/inbound_receipts.py has the guards);
  inserts events from four plain arrays in binary rather than one array of a
  composite type, which psycopg dumps value by value in Python; brings many
  cached accounts up to date in one query (`select_after`); and reads several
  versions' recorded times in one (`recorded_at`, for the search of a version
  by recorded time in infra/ledger_store.py).
- `EventLog`, the events table read as plain tuples in notification order, in
  binary: the relay, rebuilds, the verifier and the audit feed read the log
  through it, and the relay LISTENs on the recorder's channel with it.
- `plain_state`, a stored state (the transcoder's JSON) as plain JSON without
  the transcoder, and `stored_hash_of`, the hash named in a state's raw text.

Private methods of the libraries we override or call, and the tests that hold
them (beside the contract test, which checks each one's signature):
- `PostgresApplicationRecorder._insert_events(curs, stored_events, **kwargs)`,
  overridden here: the hook eventsourcing calls inside the insert transaction
  (its own `tracking=` uses it): tests/kafka/test_receipts.py,
  tests/kafka/test_inbound.py;
- `PostgresApplicationRecorder._insert_stored_events`, overridden here (the
  array insert), calling `_lock_table` and `_notify_channel` as the original
  does: every test that saves, e.g. tests/infra/test_ledger_batches.py, and
  tests/kafka/test_relay.py for the NOTIFY;
- `Application._take_snapshots`, overridden in infra/ledger_store.py (the
  saved aggregate is snapshotted as saved, not reloaded):
  tests/infra/test_snapshots.py;
- `Repository._use_fastforward_lock` / `_disuse_fastforward_lock`, called in
  infra/ledger_store.py to bring a shared cached account forward:
  tests/infra/test_ledger_batches.py;
- `Aggregate._create`, overridden in domain/chain.py (the first event's hash):
  tests/domain/test_integrity.py, tests/domain/test_account.py;
- psycopg_pool's `ConnectionPool._connect`, overridden by the fail-fast pools
  in infra/database.py, which also carry eventsourcing's pool's `_configure`
  and `_check` over: tests/infra/test_outage.py, tests/infra/test_database.py.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

import orjson
from eventsourcing.application import Application
from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from psycopg import Connection, Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Identifier

from infra.access_log import AccessRead, insert_reads
from infra.inbound_receipts import Receipt, ReceiptClaims


class LedgerRecorder(PostgresApplicationRecorder):
    """eventsourcing's recorder, plus inbound receipts in the events' transaction."""

    def __init__(
        self, datastore: PostgresDatastore, *, events_table_name: str = "stored_events"
    ) -> None:
        super().__init__(datastore, events_table_name=events_table_name)
        schema = Identifier(self.datastore.schema)
        self._schema = schema.as_string() if self.datastore.schema else ""
        self._receipts = ReceiptClaims(schema)
        table = Identifier(self.events_table_name)
        self._insert_columns = SQL(
            "INSERT INTO {schema}.{table} (originator_id, originator_version, topic, state)"
            " SELECT * FROM unnest(%b::uuid[], %b::bigint[], %b::text[], %b::bytea[])"
            " RETURNING notification_id"
        ).format(schema=schema, table=table)
        self._select_after = SQL(
            "SELECT e.originator_id, e.originator_version, e.topic, e.state"
            " FROM unnest(%b::uuid[], %b::bigint[]) AS k(id, version)"
            " JOIN {schema}.{table} e"
            " ON e.originator_id = k.id AND e.originator_version > k.version"
            " ORDER BY e.originator_id, e.originator_version"
        ).format(schema=schema, table=table)
        self._select_times = SQL(
            "SELECT originator_version, state FROM {schema}.{table}"
            " WHERE originator_id = %s AND originator_version = ANY(%s)"
        ).format(schema=schema, table=table)

    def recorded_at(self, originator_id: UUID, versions: Sequence[int]) -> dict[int, datetime]:
        """When each of these versions of an aggregate was recorded, in one query."""
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(self._select_times, (originator_id, list(versions)), prepare=True)
            rows = curs.fetchall()
        return {
            row["originator_version"]: datetime.fromisoformat(
                plain_state(row["state"])["timestamp"]
            )
            for row in rows
        }

    def select_after(self, versions: Mapping[UUID, int]) -> dict[UUID, list[StoredEvent]]:
        """The events of each aggregate after the given version, in one query."""
        if not versions:
            return {}
        with self.datastore.transaction(commit=False) as curs:
            curs.execute(self._select_after, (list(versions), list(versions.values())))
            rows = curs.fetchall()
        after: dict[UUID, list[StoredEvent]] = {}
        for row in rows:
            after.setdefault(row["originator_id"], []).append(
                StoredEvent(
                    originator_id=row["originator_id"],
                    originator_version=row["originator_version"],
                    topic=row["topic"],
                    state=bytes(row["state"]),
                )
            )
        return after

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        """Insert the events, and the save's `receipts=` (if any) in the same transaction.

        Raises AlreadyApplied (nothing stored) when a receipt shows its message
        was applied before. eventsourcing retries a failed transaction with the
        same arguments, so every attempt writes the receipts again.
        """
        if kwargs.get("receipts") and self.datastore.enable_db_functions:
            # That path inserts through a database function and skips the hook.
            raise RuntimeError("inbound receipts need POSTGRES_ENABLE_DB_FUNCTIONS off")
        ids: Sequence[int] | None = super().insert_events(stored_events, **kwargs)
        return ids

    def _insert_events(
        self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> None:
        # What commits with the events: inbound messages' receipts, and the
        # access-log rows of the personal data a command's answer shows.
        along: Sequence[object] = kwargs.get("receipts") or ()
        receipts = [r for r in along if isinstance(r, Receipt)]
        if receipts:
            self._receipts.claim(curs, receipts)
        insert_reads(curs, [r for r in along if isinstance(r, AccessRead)], self._schema)
        super()._insert_events(curs, stored_events, **kwargs)

    def _insert_stored_events(
        self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent], **_: Any
    ) -> None:
        # What eventsourcing's version does (lock, notify, insert returning the
        # notification ids), with the plain arrays.
        self._lock_table(curs)
        self._notify_channel(curs)
        columns: tuple[list[Any], list[int], list[str], list[bytes]] = ([], [], [], [])
        for e in stored_events:
            columns[0].append(e.originator_id)
            columns[1].append(e.originator_version)
            columns[2].append(e.topic)
            columns[3].append(e.state)
        curs.execute(self._insert_columns, columns)


def plain_state(stored: bytes) -> dict[str, Any]:
    """A stored event's JSON state with the transcoder's typed values as plain JSON.

    eventsourcing stores a decimal as {"_type_": "decimal_str", "_data_": "1.50"}
    and a datetime as its ISO string likewise; both are exactly what
    canonical_json makes of the decoded value, so hashing this plain form gives
    the event's hash without building Python objects first.
    """
    value = orjson.loads(stored)
    if not isinstance(value, dict):
        raise ValueError("a stored event's state is a JSON object")
    typed = stored.count(b'"_type_"')
    if not typed:
        return value
    # Typed values sit at the top level in this ledger's events: replace those,
    # and walk the nested containers only when the bytes say more are inside.
    for key, item in value.items():
        if type(item) is dict and len(item) == 2 and "_type_" in item and "_data_" in item:
            value[key] = _untype(item)
            typed -= 1
    return _untype(value) if typed > 0 else value


_CONTAINERS = (dict, list)


def _untype(value: Any) -> Any:
    # Only containers are visited: this runs for every stored event a verify reads.
    if type(value) is dict:
        if len(value) == 2 and "_type_" in value and "_data_" in value:
            data = value["_data_"]
            return str(UUID(data)) if value["_type_"] == "uuid_hex" else data
        return {k: _untype(v) if type(v) in _CONTAINERS else v for k, v in value.items()}
    if type(value) is list:
        return [_untype(v) if type(v) in _CONTAINERS else v for v in value]
    return value


# `"prev_hash"` does not match: no quote before `hash`.
_HASH_IN_TEXT = re.compile(rb'"hash"\s*:\s*"([0-9a-fA-F]{64})"')


def stored_hash_of(state: bytes) -> str | None:
    """The event hash named in a stored state's raw text, even when the text is not JSON.

    The last one found, as a JSON reader takes the last of duplicate keys.
    """
    found = _HASH_IN_TEXT.findall(bytes(state))
    return found[-1].decode() if found else None


# One stored event: its position, account id (as text), version, topic and state
# bytes. A plain tuple: a named one costs the relay a few percent to build.
LogRow = tuple[int, str, int, str, bytes]
# The same with the account id as a UUID: what the audit feed pages.
FeedRow = tuple[int, UUID, int, str, bytes]

_COLUMNS = "notification_id, originator_id::text, originator_version, topic, state"


class EventLog:
    """Reads the ledger's events table in notification order, as plain rows.

    eventsourcing's `select_notifications` builds Notification objects from
    dict rows in PostgreSQL's text format, where every state travels
    hex-encoded. Reading the same rows as tuples in binary format costs a
    quarter as much, which matters to the relay, rebuilds and the verifier,
    the readers of the whole log.
    """

    def __init__(self, ledger: Application[Any]) -> None:
        recorder: Any = ledger.recorder
        if not isinstance(recorder, PostgresApplicationRecorder):
            raise TypeError("the event log reads a PostgreSQL event store only")
        self._datastore = recorder.datastore
        self.channel = recorder.channel_name
        self._table = table = Identifier(recorder.datastore.schema, recorder.events_table_name)
        self._page = SQL(
            "SELECT " + _COLUMNS + " FROM {} WHERE notification_id > %s"
            " ORDER BY notification_id LIMIT %s"
        ).format(table)
        self._all = SQL(
            "SELECT " + _COLUMNS + " FROM {} WHERE notification_id > %s ORDER BY notification_id"
        ).format(table)
        self._position = SQL(
            "SELECT notification_id FROM {} WHERE originator_id = %s AND originator_version = %s"
        ).format(table)

    def position_of(self, account_id: UUID, version: int) -> int | None:
        """Where this version of the account sits in the ledger; None when it is not stored."""
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

    def listen(self, conn: Connection[Any]) -> None:
        """LISTEN on `conn` (autocommit) for the recorder's NOTIFY, sent at each insert's commit."""
        conn.execute(SQL("LISTEN {}").format(Identifier(self.channel)))

    def filtered_page(
        self,
        conn: Connection[Any],
        after: int,
        limit: int,
        *,
        account_id: UUID | None = None,
        topics: Sequence[str] = (),
    ) -> list[FeedRow]:
        """Up to `limit` events after position `after`, of one account and of these topics."""
        query = SQL(
            "SELECT notification_id, originator_id, originator_version, topic, state FROM {}"
            " WHERE notification_id > %s"
        ).format(self._table)
        args: list[Any] = [after]
        if account_id is not None:
            query += SQL(" AND originator_id = %s")
            args.append(account_id)
        if topics:
            query += SQL(" AND topic = ANY(%s)")
            args.append(list(topics))
        query += SQL(" ORDER BY notification_id LIMIT %s")
        args.append(limit)
        rows: list[FeedRow] = conn.execute(query, args).fetchall()
        return rows
