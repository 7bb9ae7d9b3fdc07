"""The access log: who read which account's personal data unmasked, when, and what.

A read is shown only after its row is committed. Concurrent reads are written
together (domain/group_commit.py): one transaction for many requests rather
than a commit, and its flush to disk, for each.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from psycopg_pool import ConnectionPool

from domain.group_commit import GroupCommit

_INSERT = (
    "INSERT INTO access_log (actor, roles, account_id, what, fields) VALUES (%s, %s, %s, %s, %s)"
)
Row = tuple[str, list[str], UUID, str, list[str]]


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
        self._group.save((actor, sorted(roles), account_id, what, sorted(fields)))

    def record_many(
        self,
        actor: str,
        roles: Iterable[str],
        reads: Iterable[tuple[UUID, Iterable[str]]],
        what: str,
    ) -> None:
        """Append one read per account, in one round trip."""
        self._insert(*((actor, sorted(roles), a, what, sorted(f)) for a, f in reads))

    def _insert(self, *rows: Row) -> None:
        if not rows:
            return
        with self._pool.connection() as conn, conn.cursor() as cur:
            cur.executemany(_INSERT, rows)

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
