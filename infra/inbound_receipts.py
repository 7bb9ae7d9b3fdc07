"""Receipts of inbound Kafka messages, written in the same transaction as their events.

An inbound message is applied exactly once when three things commit together or
not at all: the events its command produced, the consumed (topic, partition,
offset), and its CloudEvent (source, id). eventsourcing's `Application.save`
opens its own transaction and takes no outside one, and the Ledger's verbs call
`save` themselves, so the receipt rides along another way:

- `LedgerRecorder` is the Ledger's application recorder (wired through
  APPLICATION_RECORDER_TOPIC in infra/wiring.py). eventsourcing calls its
  `_insert_events(curs, ...)` hook inside the insert transaction, on the same
  cursor, just before the event table is locked and the events are inserted.
- While a consumer thread is inside `recording(*receipts)`, the hook writes
  the receipts on that cursor: one message's, or a whole batch's when the
  consumer saves several accounts in one go. Outside such a block (API
  requests, other threads) the hook does nothing: the receipts live in a
  ContextVar, so they belong to the thread that set them and never leak into
  another request's save.

The inserts are guarded, so a redelivered message cannot apply twice even
when two consumers briefly hold the same partition during a rebalance:

- a partition's offset row moves only forward: it must not be past the first
  message of the save;
- every (source, id) row must be new.

Offsets are kept per broker cluster id: an embedded broker starts empty with a
fresh cluster id, and its offsets start again at 0. CloudEvent ids are kept
across clusters, so an event published again to a new broker is still a
duplicate.

When a guard finds a message applied already, the hook raises
`AlreadyApplied`; the transaction rolls back and no event is stored. The
consumer then counts the message as a duplicate (or, for a batch, applies its
messages one by one to find which). This is the eventsourcing tracking
pattern (a position written with the events it caused), with Kafka offsets for
positions: eventsourcing's own `Tracking` takes one integer per application
name, while a consumer needs an offset per partition and a set of event ids.

Two more records, outside the events' transaction:

- `inbound_dead_lettered` (infra/dead_lettered.py): each message the broker
  acknowledged on the dead-letter topic, so a consumer that reads it again
  after a crash does not send it twice;
- pruning (`prune_receipts`): CloudEvent id receipts and dead-letter records
  older than CRMLEDGER_INBOUND_RECEIPT_DAYS (default 7) are deleted by the
  ingest. That is the window within which a message published again (same
  source and id, new offset) is recognised as applied; Kafka's own
  redelivery is recognised for ever by the stored offsets, which are never
  pruned (one row per partition).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.persistence import StoredEvent
from eventsourcing.postgres import PostgresApplicationRecorder, PostgresDatastore
from psycopg import Cursor
from psycopg.rows import DictRow
from psycopg.sql import SQL, Identifier
from psycopg_pool import ConnectionPool

from domain.integrity import plain_state
from infra.dead_lettered import CREATE_DEAD_LETTERED

# Merge into the Ledger's eventsourcing env so its recorder writes receipts.
RECORDER_ENV = {"APPLICATION_RECORDER_TOPIC": "infra.inbound_receipts:LedgerRecorder"}

_CREATE_OFFSETS = """
CREATE TABLE IF NOT EXISTS {schema}.inbound_offsets (
    cluster_id text NOT NULL,
    consumer_group text NOT NULL,
    topic text NOT NULL,
    partition integer NOT NULL,
    next_offset bigint NOT NULL,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (cluster_id, consumer_group, topic, partition)
)
"""

_CREATE_APPLIED = """
CREATE TABLE IF NOT EXISTS {schema}.inbound_applied (
    source text NOT NULL,
    event_id text NOT NULL,
    topic text NOT NULL,
    partition integer NOT NULL,
    kafka_offset bigint NOT NULL,
    applied_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (source, event_id)
)
"""

# Pruning takes the oldest receipts first.
_INDEX_APPLIED_AT = (
    "CREATE INDEX IF NOT EXISTS inbound_applied_at ON {schema}.inbound_applied (applied_at)"
)

# Moves the partition's offset past the last of these messages, unless it is
# past the first of them already.
_CLAIM_OFFSETS = """
INSERT INTO {schema}.inbound_offsets AS o
    (cluster_id, consumer_group, topic, partition, next_offset)
VALUES (%(cluster)s, %(group)s, %(topic)s, %(partition)s, %(last)s + 1)
ON CONFLICT (cluster_id, consumer_group, topic, partition) DO UPDATE
    SET next_offset = EXCLUDED.next_offset, updated_at = now()
    WHERE o.next_offset <= %(first)s
RETURNING 1
"""

_CLAIM_EVENTS = """
INSERT INTO {schema}.inbound_applied (source, event_id, topic, partition, kafka_offset)
SELECT * FROM unnest(%b::text[], %b::text[], %b::text[], %b::integer[], %b::bigint[])
ON CONFLICT DO NOTHING
RETURNING 1
"""


@dataclass(frozen=True)
class Receipt:
    """One consumed message: where it was read, and which CloudEvent it carried."""

    cluster_id: str
    consumer_group: str
    topic: str
    partition: int
    offset: int
    source: str
    event_id: str


class AlreadyApplied(Exception):
    """The message's offset or CloudEvent id was applied before; nothing was stored."""


@dataclass
class _Slot:
    receipts: tuple[Receipt, ...]
    recorded: bool = False


_slot: ContextVar[_Slot | None] = ContextVar("inbound_receipts", default=None)


@contextmanager
def recording(*receipts: Receipt) -> Iterator[None]:
    """Within this block, the ledger's next save also records `receipts`, atomically.

    One block covers one save: a second save in the same block is refused,
    because it would be a second transaction the receipts cannot be part of.
    Several receipts of one partition must be of consecutive messages, but for
    dead letters and duplicates between them: the stored offset jumps past all.
    """
    if not receipts:
        raise ValueError("recording needs at least one receipt")
    token = _slot.set(_Slot(receipts))
    try:
        yield
    finally:
        _slot.reset(token)


def receipt_pending() -> bool:
    """True while this thread saves under an inbound receipt (it must save alone)."""
    return _slot.get() is not None


class LedgerRecorder(PostgresApplicationRecorder):
    """The Ledger's recorder: eventsourcing's, plus inbound receipts in the same transaction.

    Two more things for speed: events are inserted from four plain arrays in
    binary rather than one array of a composite type (psycopg dumps a
    composite value by value in Python: 500 events took 8.8 ms, now 1.2), and
    `select_after` brings many cached accounts up to date in one query.
    """

    def __init__(
        self, datastore: PostgresDatastore, *, events_table_name: str = "stored_events"
    ) -> None:
        super().__init__(datastore, events_table_name=events_table_name)
        schema = Identifier(self.datastore.schema)
        self.sql_create_statements.append(SQL(_CREATE_OFFSETS).format(schema=schema))
        self.sql_create_statements.append(SQL(_CREATE_APPLIED).format(schema=schema))
        self.sql_create_statements.append(SQL(CREATE_DEAD_LETTERED).format(schema=schema))
        self.sql_create_statements.append(SQL(_INDEX_APPLIED_AT).format(schema=schema))
        self._claim_offsets = SQL(_CLAIM_OFFSETS).format(schema=schema)
        self._claim_events = SQL(_CLAIM_EVENTS).format(schema=schema)
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
        ).format(schema=schema, table=Identifier(self.events_table_name))

    def recorded_at(self, originator_id: UUID, versions: Sequence[int]) -> dict[int, datetime]:
        """When each of these versions of an aggregate was recorded, in one query.

        Point-in-time reads search versions by recorded time (domain/ledger.py).
        """
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

    def insert_events(
        self, stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> Sequence[int] | None:
        slot = _slot.get()
        if slot is not None:
            if slot.recorded:
                raise RuntimeError("one inbound receipt can cover only one save")
            if self.datastore.enable_db_functions:
                # That path inserts through a database function and skips the hook.
                raise RuntimeError("inbound receipts need POSTGRES_ENABLE_DB_FUNCTIONS off")
        ids: Sequence[int] | None = super().insert_events(stored_events, **kwargs)
        if slot is not None:
            # Only after the commit: eventsourcing retries a failed transaction,
            # and each attempt must write the receipt again.
            slot.recorded = True
        return ids

    def _insert_events(
        self, curs: Cursor[DictRow], stored_events: Sequence[StoredEvent], **kwargs: Any
    ) -> None:
        slot = _slot.get()
        if slot is not None:
            self._claim(curs, slot.receipts)
        super()._insert_events(curs, stored_events, **kwargs)

    def _claim(self, curs: Cursor[DictRow], receipts: Sequence[Receipt]) -> None:
        spans: dict[tuple[str, str, str, int], tuple[int, int]] = {}
        for r in receipts:
            key = (r.cluster_id, r.consumer_group, r.topic, r.partition)
            first, last = spans.get(key, (r.offset, r.offset))
            spans[key] = (min(first, r.offset), max(last, r.offset))
        for (cluster, group, topic, partition), (first, last) in spans.items():
            params = {
                "cluster": cluster,
                "group": group,
                "topic": topic,
                "partition": partition,
                "first": first,
                "last": last,
            }
            curs.execute(self._claim_offsets, params, prepare=True)
            if curs.fetchone() is None:
                raise AlreadyApplied(f"{topic}[{partition}]@{first} was applied before")
        columns = (
            [r.source for r in receipts],
            [r.event_id for r in receipts],
            [r.topic for r in receipts],
            [r.partition for r in receipts],
            [r.offset for r in receipts],
        )
        curs.execute(self._claim_events, columns, prepare=True)
        if len(curs.fetchall()) != len(receipts):
            raise AlreadyApplied("a CloudEvent of these messages was applied before")


# ---- the consumer's side: reading and advancing positions ------------------------


def stored_offsets(
    pool: ConnectionPool, cluster_id: str, consumer_group: str, topic: str
) -> dict[int, int]:
    """The next offset to consume of each partition of `topic` the group has stored."""
    with pool.connection() as conn:
        rows = conn.execute(
            "SELECT partition, next_offset FROM inbound_offsets"
            " WHERE cluster_id = %s AND consumer_group = %s AND topic = %s",
            (cluster_id, consumer_group, topic),
        ).fetchall()
    return {int(p): int(o) for p, o in rows}


def advance_offsets(
    pool: ConnectionPool,
    cluster_id: str,
    consumer_group: str,
    next_offsets: Mapping[tuple[str, int], int],
) -> None:
    """Move stored offsets forward (never back) past messages that stored no events.

    Dead letters and duplicates write no events, so no receipt moved the offset
    for them; without this a restart would dead-letter them a second time.
    """
    if not next_offsets:
        return
    with pool.connection() as conn:
        conn.cursor().executemany(
            "INSERT INTO inbound_offsets AS o"
            " (cluster_id, consumer_group, topic, partition, next_offset)"
            " VALUES (%s, %s, %s, %s, %s)"
            " ON CONFLICT (cluster_id, consumer_group, topic, partition) DO UPDATE"
            " SET next_offset = EXCLUDED.next_offset, updated_at = now()"
            " WHERE o.next_offset < EXCLUDED.next_offset",
            [(cluster_id, consumer_group, t, p, o) for (t, p), o in next_offsets.items()],
        )


def applied_events(pool: ConnectionPool, keys: Iterable[tuple[str, str]]) -> set[tuple[str, str]]:
    """Which of these (source, CloudEvent id) pairs were applied already."""
    sources, ids = [], []
    for source, event_id in keys:
        sources.append(source)
        ids.append(event_id)
    if not ids:
        return set()
    with pool.connection() as conn:
        rows = conn.execute(
            "SELECT a.source, a.event_id FROM inbound_applied a"
            " JOIN unnest(%s::text[], %s::text[]) AS k(source, event_id)"
            " USING (source, event_id)",
            (sources, ids),
        ).fetchall()
    return {(str(s), str(i)) for s, i in rows}


# ---- pruning ---------------------------------------------------------------------------

PRUNE_BATCH = 10_000


def prune_receipts(pool: ConnectionPool, days: float) -> int:
    """Delete CloudEvent id receipts and dead-letter records older than `days`; return how many.

    The window is how long a message published again (same source and id) is
    still recognised as applied; after it, a copy would be applied anew. A
    redelivery by Kafka (same partition and offset) is recognised for ever:
    the stored offsets (inbound_offsets, one row per partition) are kept.
    Deleted in batches, so no long lock holds up the ingest.
    """
    deleted = 0
    for table, column in (("inbound_applied", "applied_at"), ("inbound_dead_lettered", "sent_at")):
        statement = SQL(
            "DELETE FROM {table} WHERE ctid = ANY(ARRAY("
            "SELECT ctid FROM {table} WHERE {column} < now() - make_interval(secs => %s)"
            " LIMIT %s))"
        ).format(table=Identifier(table), column=Identifier(column))
        while True:
            with pool.connection() as conn:
                count = conn.execute(statement, (days * 86400, PRUNE_BATCH)).rowcount
            deleted += count
            if count < PRUNE_BATCH:
                break
    return deleted
