"""The access log: who read which account's personal data unmasked, when, and what.

A read is shown only after its row is committed. Concurrent reads are written
together (domain/group_commit.py): one transaction for many requests rather
than a commit, and its flush to disk, for each. A command's answer shows the
account it saved: its row (an `AccessRead`) commits in the transaction of the
command's events (infra/event_store.py), so a command costs one commit.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from psycopg import Cursor
from psycopg_pool import ConnectionPool

from domain.group_commit import GroupCommit

_INSERT = "INSERT INTO {schema}access_log (actor, roles, account_id, what, fields) VALUES "
_VALUES = "(%s, %s::text[], %s, %s, %s::text[])"
Row = tuple[str, list[str], UUID, str, list[str]]


class AccessRead(tuple[str, list[str], UUID, str, list[str]]):
    """One row of the access log, to commit with the events of the account it shows."""

    __slots__ = ()


def insert_reads(cursor: Cursor[Any], rows: Sequence[Row], schema: str = "") -> None:
    """Append rows on `cursor`, in its transaction (`schema`: quoted, or the search path).

    One statement for all: executemany sends one per row.
    """
    if rows:
        sql = _INSERT.format(schema=f"{schema}." if schema else "") + ", ".join(
            [_VALUES] * len(rows)
        )
        values: list[object] = []
        for actor, roles, account_id, what, fields in rows:
            values += (actor, _array(roles), account_id, what, _array(fields))
        cursor.execute(sql.encode(), values)


def _array(items: Sequence[str]) -> str:
    # The text of a text[] (a string is sent as it is; psycopg dumps a list
    # element by element in Python, a cost on every command's row).
    quoted = (item.replace("\\", "\\\\").replace('"', '\\"') for item in items)
    return "{" + ",".join(f'"{q}"' for q in quoted) + "}"


def read_row(
    actor: str, roles: Iterable[str], account_id: UUID, what: str, fields: Iterable[str]
) -> AccessRead:
    """The row of one read: roles and fields in order."""
    return AccessRead((actor, sorted(roles), account_id, what, sorted(fields)))


@dataclass(frozen=True)
class AccessEntry:
    """One unmasked read of personal data."""

    id: int
    at: datetime
    actor: str
    roles: list[str]
    account_id: UUID
    what: str
    fields: list[str]


class AccessLog:
    """Appends to and queries the access_log table (the database refuses edits)."""

    def __init__(self, pool: ConnectionPool) -> None:
        self._pool = pool
        # Every row is its own: group by identity, never hold one back.
        self._group = GroupCommit(self._insert, key=id)

    def record(
        self, actor: str, roles: Iterable[str], account_id: UUID, what: str, fields: Iterable[str]
    ) -> None:
        """Append one read; returns once it is committed."""
        self._group.save(read_row(actor, roles, account_id, what, fields))

    async def record_async(
        self, actor: str, roles: Iterable[str], account_id: UUID, what: str, fields: Iterable[str]
    ) -> None:
        """As `record`, awaited on an event loop: no thread waits for the commit."""
        await self._group.save_async(read_row(actor, roles, account_id, what, fields))

    def record_many(
        self,
        actor: str,
        roles: Iterable[str],
        reads: Iterable[tuple[UUID, Iterable[str]]],
        what: str,
    ) -> None:
        """Append one read per account, in one round trip."""
        self._insert(*(read_row(actor, roles, a, what, f) for a, f in reads))

    def _insert(self, *rows: Row) -> None:
        if not rows:
            return
        with self._pool.connection() as conn, conn.cursor() as cur:
            insert_reads(cur, rows)

    def query(
        self,
        *,
        account_id: UUID | None = None,
        actor: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        after_id: int = 0,
        limit: int = 100,
    ) -> list[AccessEntry]:
        """Entries matching every given filter, oldest first, after `after_id`."""
        sql = "SELECT id, at, actor, roles, account_id, what, fields FROM access_log WHERE id > %s"
        args: list[object] = [after_id]
        for clause, value in (
            (" AND account_id = %s", account_id),
            (" AND actor = %s", actor),
            (" AND at >= %s", since),
            (" AND at < %s", until),
        ):
            if value is not None:
                sql += clause
                args.append(value)
        sql += " ORDER BY id LIMIT %s"
        args.append(limit)
        with self._pool.connection() as conn:
            rows = conn.execute(sql.encode(), args).fetchall()
        return [AccessEntry(*row) for row in rows]
