"""Read models in PostgreSQL: apply batches with their positions, park what fails, rebuild, retry.

A batch is one transaction: every read model's rows, the events it parked and,
per partition, the highest position it applied. An event at or below a stored
position is skipped, so a redelivered batch changes nothing. Each read model
folds the batch in memory and writes every changed row once, with executemany
(which psycopg pipelines), so a batch costs a few round trips, not one per event.

No event stops a read model (projections/parking.py). Each read model's fold
runs in a savepoint; when it fails for an error of the events, the batch is
halved and each half folded again in order, down to the events that fail
alone, which are parked. Folding a batch in pieces in order gives what folding
it whole would (the projector's poll batches are arbitrary cuts too), and a
failed piece is rolled back to its savepoint, so nothing is counted twice.
The positions still move past the parked events, in the same transaction.

A retry applies one parked event where the read model stands now and deletes
its parked row in the same transaction, so a KPI counts it exactly once; the
tracking position, already past it, keeps the projector from applying it again.

Locks, in one order everywhere, so a rebuild, a retry and the projector wait
for each other instead of deadlocking: the position rows, then the parked
rows, then the tables.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Sequence
from typing import Any, NamedTuple

from psycopg import Connection, Cursor
from psycopg_pool import ConnectionPool

from projections import parking
from projections.catalog import READ_MODELS, ReadModel
from projections.events import ProjectedEvent
from projections.parking import ParkedEvent, Unprojectable
from projections.schema import ddl

# Events folded per write during a rebuild: bigger chunks, fewer row writes.
REBUILD_CHUNK = 20_000


class Placed(NamedTuple):
    """An event, or one that could not be read, and its Kafka partition (0 in a rebuild)."""

    partition: int
    event: ProjectedEvent | Unprojectable


class Outcome(NamedTuple):
    """What a batch or a rebuild did: events read, and (read model, partition, event) parked."""

    events: int
    parked: list[tuple[str, int, Unprojectable]]

    def positions(self) -> list[int]:
        """The parked positions, each once, in order."""
        return sorted({u.position for _, _, u in self.parked})


class Retried(NamedTuple):
    """A retry: the parked rows now applied (as they were), and the rows still parked."""

    applied: list[ParkedEvent]
    still_parked: list[ParkedEvent]


# Reads one event from the store by position (infra/readmodels.py).
EventReader = Callable[[int], ProjectedEvent | Unprojectable]


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

    def parked_counts(self) -> dict[str, int]:
        """How many events each read model has parked (every read model named)."""
        with self._pool.connection() as conn:
            return {name: 0 for name in READ_MODELS} | parking.counts(conn, self.schema)

    def parked(
        self, projection: str | None = None, position: int | None = None, limit: int = 1000
    ) -> list[ParkedEvent]:
        """Parked events in position order, of one read model or one position when given."""
        with self._pool.connection() as conn:
            return parking.parked(
                conn, self.schema, projection=projection, position=position, limit=limit
            )

    def apply(self, batch: Sequence[Placed]) -> Outcome:
        """Apply a batch to every read model in one transaction, parking what fails."""
        with self._pool.connection() as conn:
            return self._apply(conn, batch, READ_MODELS.values())

    def rebuild(
        self,
        names: Sequence[str],
        events: Iterable[ProjectedEvent | Unprojectable],
        partitions: int,
    ) -> Outcome:
        """Empty these read models and replay `events` into them, all in one transaction.

        Afterwards every partition's position is the last replayed position, so
        the live projector skips what the rebuild covered. What fails is parked
        again (or for the first time); parked rows of events that now apply go.
        """
        models = [READ_MODELS[name] for name in names]
        replayed, parked = 0, []
        with self._pool.connection() as conn:
            self._lock(conn, names)
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
                    parked += self._apply(conn, chunk, models, track=False).parked
                    replayed += len(chunk)
                    chunk.clear()
            parked += self._apply(conn, chunk, models, track=False).parked
            replayed += len(chunk)
            conn.execute(
                self._sql(
                    "INSERT INTO {rm}.positions (projection, partition, position)"
                    " SELECT n, p, %s FROM unnest(%s::text[]) n, generate_series(0, %s) p"
                ),
                (last, list(names), partitions - 1),
            )
            again: defaultdict[str, list[int]] = defaultdict(list)
            for name, _, u in parked:
                again[name].append(u.position)
            with conn.cursor() as cur:
                parking.keep_only(cur, self.schema, names, again)
        return Outcome(replayed, parked)

    def retry(
        self, read: EventReader, projection: str | None = None, position: int | None = None
    ) -> Retried:
        """Apply parked events again, read afresh from the store by `read`; one transaction each.

        An event that applies now leaves the parked table in the transaction
        that applies it, so it counts once however often it is retried; one that
        fails again stays, with an attempt more and the new error.
        """
        retried = Retried([], [])
        for row in self.parked(projection, position, limit=1_000_000):
            outcome = self._retry_one(read, row.projection, row.position)
            if outcome is not None:  # else retried meanwhile by someone else
                (retried.applied if outcome[0] else retried.still_parked).append(outcome[1])
        return retried

    def _retry_one(
        self, read: EventReader, name: str, position: int
    ) -> tuple[bool, ParkedEvent] | None:
        event = read(position)
        with self._pool.connection() as conn:
            self._lock(conn, [name])
            rows = parking.parked(conn, self.schema, projection=name, position=position, lock=True)
            if not rows:
                return None
            row = rows[0]
            model = READ_MODELS.get(name)
            with conn.cursor() as cur:
                failure = event
                if model is None:  # parked by a read model this version no longer has
                    failure = parking.unprojectable(position, None, None, LookupError(name))
                elif isinstance(event, ProjectedEvent):
                    failed = self._fold_safely(conn, cur, model, [event])
                    if not failed:
                        parking.unpark(cur, self.schema, name, position)
                        return True, row
                    failure = failed[0][1]
                assert isinstance(failure, Unprojectable)
                parking.still_failed(cur, self.schema, row, failure)
            (after,) = parking.parked(conn, self.schema, projection=name, position=position)
            return False, after

    def _apply(
        self,
        conn: Connection,
        batch: Sequence[Placed],
        models: Iterable[ReadModel],
        *,
        track: bool = True,
    ) -> Outcome:
        if not batch:
            return Outcome(0, [])
        done = self._positions_for_update(conn) if track else {}
        parked: list[tuple[str, int, Unprojectable]] = []
        with conn.cursor() as cur:
            for model in models:
                seen = done.get(model.name, {})
                highest = dict(seen)
                fresh: list[ProjectedEvent] = []
                partition_of: dict[int, int] = {}
                setaside: list[tuple[int, Unprojectable]] = []
                for placed in batch:
                    event = placed.event
                    if event.position <= highest.get(placed.partition, 0):
                        continue  # applied (or parked) before: a redelivery
                    highest[placed.partition] = event.position
                    if isinstance(event, Unprojectable):
                        setaside.append((placed.partition, event))
                    else:
                        fresh.append(event)
                        partition_of[event.position] = placed.partition
                for e, failure in self._fold_safely(conn, cur, model, fresh):
                    setaside.append((partition_of[e.position], failure))
                setaside.sort(key=lambda item: item[1].position)
                parking.park(cur, self.schema, model.name, setaside)
                parked += [(model.name, p, u) for p, u in setaside]
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
        return Outcome(len(batch), parked)

    def _fold_safely(
        self, conn: Connection, cur: Cursor[Any], model: ReadModel, events: list[ProjectedEvent]
    ) -> list[tuple[ProjectedEvent, Unprojectable]]:
        """Fold `events` into the model; the events that fail alone, with why, are returned.

        `conn` is in a transaction already, so each piece is a savepoint in it.
        """
        if not events:
            return []
        try:
            with conn.transaction():
                fold = model.fold(self.schema)
                fold.load(conn, {e.account_id for e in events})
                for event in events:
                    fold.apply(event)
                fold.write(cur)
            return []
        except Exception as e:
            if parking.is_transient(e):
                raise
            if len(events) == 1:
                (one,) = events
                return [(one, parking.unprojectable(one.position, one.account_id, one.type, e))]
        half = len(events) // 2
        return self._fold_safely(conn, cur, model, events[:half]) + self._fold_safely(
            conn, cur, model, events[half:]
        )

    def _lock(self, conn: Connection, names: Sequence[str]) -> None:
        # Positions first, then parked rows: the order the projector takes them in.
        conn.execute(
            self._sql("SELECT 1 FROM {rm}.positions WHERE projection = ANY(%s) FOR UPDATE"),
            (list(names),),
        )
        conn.execute(
            self._sql("SELECT 1 FROM {rm}.parked_events WHERE projection = ANY(%s) FOR UPDATE"),
            (list(names),),
        )

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
