"""Read models in PostgreSQL: apply batches with their positions, rebuild, report lag.

A batch is one transaction: every read model's rows and, per partition, the
highest position it applied. An event at or below a stored position is skipped,
so a redelivered batch changes nothing. Each read model folds the batch in
memory and writes every changed row once, with executemany (which psycopg
pipelines), so a batch costs a few round trips, not one per event.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import NamedTuple

from psycopg import Connection
from psycopg_pool import ConnectionPool

from projections.catalog import READ_MODELS, ReadModel
from projections.events import ProjectedEvent
from projections.schema import ddl

# Events folded per write during a rebuild: bigger chunks, fewer row writes.
REBUILD_CHUNK = 20_000


class Placed(NamedTuple):
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
        """Apply a batch to every read model in one transaction; returns events applied."""
        with self._pool.connection() as conn:
            return self._apply(conn, batch, READ_MODELS.values())

    def rebuild(
        self, names: Sequence[str], events: Iterable[ProjectedEvent], partitions: int
    ) -> int:
        """Empty these read models and replay `events` into them, all in one transaction.

        Afterwards every partition's position is the last replayed position, so
        the live projector skips what the rebuild covered. Returns events replayed.
        """
        models = [READ_MODELS[name] for name in names]
        replayed = 0
        with self._pool.connection() as conn:
            tables = ", ".join(f"{self.schema}.{t}" for m in models for t in m.tables)
            conn.execute(f"TRUNCATE {tables}".encode())
            conn.execute(
                self._sql("DELETE FROM {rm}.positions WHERE projection = ANY(%s)"), (list(names),)
            )
            last = 0
            chunk: list[Placed] = []
            for event in events:
                chunk.append(Placed(0, event))
                last = event.position
                if len(chunk) == REBUILD_CHUNK:
                    self._apply(conn, chunk, models, track=False)
                    replayed += len(chunk)
                    chunk.clear()
            self._apply(conn, chunk, models, track=False)
            replayed += len(chunk)
            conn.execute(
                self._sql(
                    "INSERT INTO {rm}.positions (projection, partition, position)"
                    " SELECT n, p, %s FROM unnest(%s::text[]) n, generate_series(0, %s) p"
                ),
                (last, list(names), partitions - 1),
            )
        return replayed

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
        applied = 0
        with conn.cursor() as cur:
            for model in models:
                seen = done.get(model.name, {})
                fresh, highest = [], dict(seen)
                for placed in batch:
                    if placed.event.position <= highest.get(placed.partition, 0):
                        continue  # applied before: a redelivery
                    fresh.append(placed.event)
                    highest[placed.partition] = placed.event.position
                if not fresh:
                    continue
                fold = model.fold(self.schema)
                fold.load(conn, {e.account_id for e in fresh})
                for event in fresh:
                    fold.apply(event)
                fold.write(cur)
                applied = max(applied, len(fresh))
                if track:
                    cur.executemany(
                        self._sql(
                            "INSERT INTO {rm}.positions (projection, partition, position)"
                            " VALUES (%s, %s, %s) ON CONFLICT (projection, partition)"
                            " DO UPDATE SET position = EXCLUDED.position"
                            " WHERE {rm}.positions.position < EXCLUDED.position"
                        ),
                        [
                            (model.name, p, pos)
                            for p, pos in highest.items()
                            if pos > seen.get(p, 0)
                        ],
                    )
        return applied

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
