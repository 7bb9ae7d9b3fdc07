"""Read models in PostgreSQL: apply batches with their positions, rebuild, report lag.

A batch is one transaction: every read model's rows and, per partition, the
highest position it applied. An event at or below a stored position is skipped,
so a redelivered batch changes nothing. Statements go through psycopg's
pipeline mode, so a batch costs a few round trips, not one per statement.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from psycopg import Connection
from psycopg_pool import ConnectionPool

from projections.catalog import READ_MODELS, ReadModel
from projections.events import ProjectedEvent
from projections.schema import ddl


@dataclass(frozen=True)
class Placed:
    """An event and the Kafka partition it came from (0 for a rebuild from the store)."""

    partition: int
    event: ProjectedEvent


class ReadModelStore:
    """The read models of one PostgreSQL schema."""

    def __init__(self, pool: ConnectionPool, schema: str) -> None:
        self._pool = pool
        self.schema = schema

    def create(self) -> None:
        """Create the schema and tables when missing."""
        with self._pool.connection() as conn:
            conn.execute("SELECT pg_advisory_xact_lock(hashtext('crmledger-readmodel-ddl'))")
            conn.execute(ddl(self.schema).encode())

    def positions(self) -> dict[str, dict[int, int]]:
        """Per read model, per partition: the highest position applied."""
        out: dict[str, dict[int, int]] = {name: {} for name in READ_MODELS}
        with self._pool.connection() as conn:
            rows = conn.execute(
                self._sql("SELECT projection, partition, position FROM {rm}.positions")
            )
            for name, partition, position in rows:
                out.setdefault(name, {})[partition] = position
        return out

    def apply(self, batch: Sequence[Placed]) -> int:
        """Apply a batch to every read model in one transaction; returns statements run."""
        with self._pool.connection() as conn:
            return self._apply(conn, batch, READ_MODELS.values())

    def rebuild(self, name: str, events: Iterable[ProjectedEvent], partitions: int) -> int:
        """Empty one read model and replay `events` into it, all in one transaction.

        Afterwards every partition's position is the last replayed position, so
        the live projector skips what the rebuild covered. Returns events applied.
        """
        model = READ_MODELS[name]
        applied = 0
        with self._pool.connection() as conn:
            tables = ", ".join(f"{self.schema}.{t}" for t in model.tables)
            conn.execute(f"TRUNCATE {tables}".encode())
            conn.execute(self._sql("DELETE FROM {rm}.positions WHERE projection = %s"), (name,))
            last = 0
            chunk: list[Placed] = []
            for event in events:
                chunk.append(Placed(0, event))
                last = event.position
                if len(chunk) == 1000:
                    self._apply(conn, chunk, [model], track=False)
                    applied += len(chunk)
                    chunk.clear()
            self._apply(conn, chunk, [model], track=False)
            applied += len(chunk)
            conn.execute(
                self._sql(
                    "INSERT INTO {rm}.positions (projection, partition, position)"
                    " SELECT %s, p, %s FROM generate_series(0, %s) p"
                ),
                (name, last, partitions - 1),
            )
        return applied

    def _apply(
        self,
        conn: Connection,
        batch: Sequence[Placed],
        models: Iterable[ReadModel],
        *,
        track: bool = True,
    ) -> int:
        if not batch:
            return 0
        done = self._positions_for_update(conn) if track else {}
        run = 0
        with conn.pipeline(), conn.cursor() as cur:
            for model in models:
                seen = done.get(model.name, {})
                highest: dict[int, int] = {}
                for placed in batch:
                    position = placed.event.position
                    if position <= max(
                        seen.get(placed.partition, 0), highest.get(placed.partition, 0)
                    ):
                        continue  # applied before: a redelivery
                    for statement in model.changes(placed.event):
                        cur.execute(self._sql(statement.sql), statement.params)
                        run += 1
                    highest[placed.partition] = position
                if track:
                    for partition, position in highest.items():
                        cur.execute(
                            self._sql(
                                "INSERT INTO {rm}.positions (projection, partition, position)"
                                " VALUES (%s, %s, %s) ON CONFLICT (projection, partition)"
                                " DO UPDATE SET position = EXCLUDED.position"
                                " WHERE {rm}.positions.position < EXCLUDED.position"
                            ),
                            (model.name, partition, position),
                        )
        return run

    def _positions_for_update(self, conn: Connection) -> dict[str, dict[int, int]]:
        # Lock the position rows: two projectors never apply the same partition at once.
        out: dict[str, dict[int, int]] = {}
        rows = conn.execute(
            self._sql("SELECT projection, partition, position FROM {rm}.positions FOR UPDATE")
        )
        for name, partition, position in rows:
            out.setdefault(name, {})[partition] = position
        return out

    def _sql(self, text: str) -> bytes:
        return text.replace("{rm}", self.schema).encode()
