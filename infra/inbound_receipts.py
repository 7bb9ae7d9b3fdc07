"""Receipts of inbound Kafka messages, written in the same transaction as their events.

An inbound message is applied exactly once when three things commit together or
not at all: the events its command produced, the consumed (topic, partition,
offset), and its CloudEvent (source, id). The consumer hands the receipts to
the ledger's save explicitly (`Ledger.record_batch(accounts, receipts)`, or a
verb's `receipts=`); eventsourcing forwards a save's keyword arguments to the
recorder, and the Ledger's recorder (infra/event_store.py) has `ReceiptClaims`
write them on the insert transaction's cursor, before the events go in.

The inserts are guarded, so a redelivered message cannot apply twice even
when two consumers briefly hold the same partition during a rebalance:

- a partition's offset row moves only forward: it must not be past the first
  message of the save;
- every (source, id) row must be new.

Offsets are kept per broker cluster id: an embedded broker starts empty with a
fresh cluster id, and its offsets start again at 0. CloudEvent ids are kept
across clusters, so an event published again to a new broker is still a
duplicate.

When a guard finds a message applied already, `AlreadyApplied` is raised; the
transaction rolls back and no event is stored. The consumer then counts the
message as a duplicate (or, for a batch, applies its messages one by one to
find which). This is the eventsourcing tracking pattern (a position written
with the events it caused), with Kafka offsets for positions: eventsourcing's
own `Tracking` takes one integer per application name, while a consumer needs
an offset per partition and a set of event ids.

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

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from psycopg import Cursor
from psycopg.sql import SQL, Identifier
from psycopg_pool import ConnectionPool

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


class ReceiptClaims:
    """Writes a save's receipts on its transaction's cursor, or raises AlreadyApplied."""

    def __init__(self, schema: Identifier) -> None:
        self._claim_offsets = SQL(_CLAIM_OFFSETS).format(schema=schema)
        self._claim_events = SQL(_CLAIM_EVENTS).format(schema=schema)

    def claim(self, curs: Cursor[Any], receipts: Sequence[Receipt]) -> None:
        """Move each partition's offset past these messages and record their CloudEvent ids.

        Several receipts of one partition must be of consecutive messages, but
        for dead letters and duplicates between them: the stored offset jumps
        past all of them.
        """
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
