"""Parked events: what a read model could not apply, kept with the reason, never retried for ever.

One event must not stop a read model: one it cannot apply (a value PostgreSQL
cannot hold, a stored event that does not decode, the relay's
`crmledger.EventUnreadable` marker) is parked here and its tracking position
moves past it in the same transaction. The rows sit beside the positions
because they are part of where a read model stands ("applied up to here,
except these"); a rebuild re-parks what still fails and drops the rest. Only
an error of the event parks it: an outage is raised, so the batch comes again
rather than parking every event it touches. The error kept is its class and
primary message only (a DETAIL may quote row values).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg
from eventsourcing.persistence import DataError as StoredDataError
from eventsourcing.persistence import IntegrityError as StoredIntegrityError
from eventsourcing.persistence import PersistenceError
from psycopg import Connection, Cursor
from psycopg.rows import class_row
from psycopg_pool import PoolTimeout

# The relay's marker for a stored event it cannot read (infra/relay.py).
UNREADABLE_TYPE = "crmledger.EventUnreadable"

# Why an event is parked.
UNREADABLE = "unreadable_in_store"  # the store cannot read it: the relay's marker, a rebuild
FAILED = "cannot_apply"  # read, but the read model cannot take it

ERROR_CHARS = 500
# A position PostgreSQL's bigint holds; a message claiming another is no ledger event.
MAX_POSITION = 2**63 - 1

_COLUMNS = (
    "projection, position, partition, account_id, event_type, reason, error_class, error,"
    " parked_at, last_attempt_at, attempts"
)


@dataclass(slots=True)
class Unprojectable:
    """An event, known by its position, that could not be read into a ProjectedEvent."""

    position: int
    account_id: UUID | None
    event_type: str | None
    reason: str
    error_class: str
    error: str


@dataclass(slots=True)
class ParkedEvent:
    """One parked row: which read model set which event aside, why, and how often it was tried."""

    projection: str
    position: int
    partition: int
    account_id: UUID | None
    event_type: str | None
    reason: str
    error_class: str
    error: str
    parked_at: datetime
    last_attempt_at: datetime
    attempts: int


def is_transient(e: BaseException) -> bool:
    """True for an error of the connection or the server, which a later attempt may not meet.

    Those are raised, not parked. Data and integrity errors are the event's;
    so is any error raised in Python while reading or folding it.
    """
    if isinstance(e, psycopg.DataError | psycopg.IntegrityError):
        return False
    if isinstance(e, StoredDataError | StoredIntegrityError):
        return False
    return isinstance(e, psycopg.Error | PersistenceError | PoolTimeout | OSError)


def describe(e: BaseException) -> tuple[str, str]:
    """The error's class and message as parked: the primary message only, cut short."""
    message = str(e)
    if isinstance(e, psycopg.Error) and e.diag.message_primary:
        message = e.diag.message_primary
    elif isinstance(e, KeyError):
        message = f"missing {message}"
    return type(e).__name__, (message or type(e).__name__)[:ERROR_CHARS]


def unprojectable(
    position: int,
    account_id: UUID | None,
    event_type: str | None,
    e: BaseException,
    reason: str = FAILED,
) -> Unprojectable:
    """The event at `position`, which raised `e` while being read."""
    error_class, error = describe(e)
    return Unprojectable(position, account_id, event_type, reason, error_class, error)


def unreadable_marker(message: Mapping[str, Any]) -> Unprojectable | None:
    """The relay's EventUnreadable marker as a parked event; None without a usable position.

    Read defensively: the position comes from the `position` attribute or the
    data, the account from the subject or the data, whichever is there.
    """
    raw = message.get("data")
    data: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
    position = _int(message.get("position"), data.get("position"))
    if position is None:
        return None
    account = account_in(message)
    error = str(data.get("error") or "the relay could not read the stored event")
    stored_hash = message.get("hash") or data.get("stored_hash")
    if stored_hash:
        error = f"{error} (stored hash {stored_hash})"
    return Unprojectable(
        position, account, None, UNREADABLE, "EventUnreadable", error[:ERROR_CHARS]
    )


def account_in(message: Mapping[str, Any]) -> UUID | None:
    """The account of a message, from its subject or its data's account_id; None if neither."""
    raw = message.get("data")
    data: Mapping[str, Any] = raw if isinstance(raw, Mapping) else {}
    return _uuid(message.get("subject"), data.get("account_id"))


def valid_position(value: Any) -> int | None:
    """`value` as a ledger position (1 to a bigint's largest), or None."""
    return _int(value)


def park(
    cur: Cursor[Any], schema: str, projection: str, items: Iterable[tuple[int, Unprojectable]]
) -> None:
    """Park (partition, event) pairs for a read model; one parked again counts an attempt more."""
    rows = [
        (
            projection,
            u.position,
            partition,
            u.account_id,
            _text(u.event_type),
            u.reason,
            _text(u.error_class),
            _text(u.error),
        )
        for partition, u in items
    ]
    if not rows:
        return
    cur.executemany(
        f"INSERT INTO {schema}.parked_events (projection, position, partition, account_id,"
        " event_type, reason, error_class, error) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)"
        " ON CONFLICT (projection, position) DO UPDATE SET reason = EXCLUDED.reason,"
        " error_class = EXCLUDED.error_class, error = EXCLUDED.error,"
        f" last_attempt_at = now(), attempts = {schema}.parked_events.attempts + 1".encode(),
        rows,
    )


def parked(
    conn: Connection,
    schema: str,
    *,
    projection: str | None = None,
    position: int | None = None,
    limit: int | None = None,
    lock: bool = False,
) -> list[ParkedEvent]:
    """Parked events in position order, of one read model or position when given."""
    where: list[str] = ["true"]
    params: list[Any] = []
    if projection is not None:
        where.append("projection = %s")
        params.append(projection)
    if position is not None:
        where.append("position = %s")
        params.append(position)
    sql = (
        f"SELECT {_COLUMNS} FROM {schema}.parked_events WHERE {' AND '.join(where)}"
        " ORDER BY position, projection"
    )
    if limit is not None:
        sql += f" LIMIT {int(limit)}"
    if lock:
        sql += " FOR UPDATE"
    with conn.cursor(row_factory=class_row(ParkedEvent)) as cur:
        return cur.execute(sql.encode(), params).fetchall()


def counts(conn: Connection, schema: str) -> dict[str, int]:
    """How many events each read model has parked."""
    rows = conn.execute(
        f"SELECT projection, count(*) FROM {schema}.parked_events GROUP BY projection".encode()
    )
    return {name: int(n) for name, n in rows}


def still_failed(cur: Cursor[Any], schema: str, row: ParkedEvent, u: Unprojectable) -> None:
    """A retry failed again: one attempt more, and the new error."""
    cur.execute(
        f"UPDATE {schema}.parked_events SET reason = %s, error_class = %s, error = %s,"
        " last_attempt_at = now(), attempts = attempts + 1"
        " WHERE projection = %s AND position = %s".encode(),
        (u.reason, _text(u.error_class), _text(u.error), row.projection, row.position),
    )


def unpark(cur: Cursor[Any], schema: str, projection: str, position: int) -> None:
    """The event is applied now: it is parked no more."""
    cur.execute(
        f"DELETE FROM {schema}.parked_events WHERE projection = %s AND position = %s".encode(),
        (projection, position),
    )


def keep_only(
    cur: Cursor[Any], schema: str, projections: Sequence[str], positions: Mapping[str, list[int]]
) -> None:
    """After a rebuild: drop the parked rows of these read models that it did not park again."""
    for name in projections:
        cur.execute(
            f"DELETE FROM {schema}.parked_events"
            " WHERE projection = %s AND NOT (position = ANY(%s))".encode(),
            (name, positions.get(name, [])),
        )


def _text(value: str | None) -> str | None:
    # The parked row must hold whatever the event held: PostgreSQL text takes no NUL.
    return None if value is None else value.replace("\x00", "\\x00")[:ERROR_CHARS]


def _int(*values: Any) -> int | None:
    for value in values:
        if isinstance(value, bool):
            continue
        try:
            n = int(value)
        except (TypeError, ValueError, OverflowError):
            continue
        if 0 < n <= MAX_POSITION:
            return n
    return None


def _uuid(*values: Any) -> UUID | None:
    for value in values:
        try:
            return UUID(str(value))
        except (TypeError, ValueError):
            continue
    return None
