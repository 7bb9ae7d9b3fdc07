"""The baselines every figure is set against, measured in the same run on the same database.

- the library's single-event save(): one event per eventsourcing save(), plain aggregate;
- raw psycopg single-row commits;
- executemany of 1,000 rows per call;
- COPY.

    .venv/bin/python -m benchmarks.baselines
"""

from __future__ import annotations

import os
import time
import uuid
from typing import Any

import psycopg
from eventsourcing.application import Application
from eventsourcing.domain import Aggregate, event

from benchmarks.common import bench_services, write_result
from infra.database import event_store_env

PAYLOAD = os.urandom(200)


class Counter(Aggregate):
    """The smallest aggregate: what the library does for one event, nothing of ours."""

    @event("Incremented")
    def increment(self) -> None:
        pass


class Baseline(Application[uuid.UUID]):
    """A plain eventsourcing application on the same PostgreSQL."""


def run(seconds: float = 3.0) -> dict[str, Any]:
    """Measure the four baselines for about `seconds` each."""
    with bench_services() as services:
        env = event_store_env(services.database_url, services.settings)
        app = Baseline(env)
        counter = Counter()
        app.save(counter)
        saves, started = 0, time.perf_counter()
        while time.perf_counter() - started < seconds:
            counter.increment()
            app.save(counter)
            saves += 1
        save_rate = saves / (time.perf_counter() - started)
        app.close()

        schema = services.settings.database_schema
        with psycopg.connect(services.database_url) as conn:
            conn.execute(
                f"CREATE TABLE {schema}.bench_rows (id uuid, n bigint, payload bytea)".encode()
            )
            conn.commit()
            table = f"{schema}.bench_rows".encode()
            insert = b"INSERT INTO " + table + b" VALUES (%s, %s, %s)"
            rows, started = 0, time.perf_counter()
            while time.perf_counter() - started < seconds:
                conn.execute(insert, (uuid.uuid4(), rows, PAYLOAD))
                conn.commit()
                rows += 1
            single_rate = rows / (time.perf_counter() - started)

            batch = [(uuid.uuid4(), n, PAYLOAD) for n in range(1000)]
            rows, started = 0, time.perf_counter()
            with conn.cursor() as cur:
                while time.perf_counter() - started < seconds:
                    cur.executemany(insert, batch)
                    conn.commit()
                    rows += len(batch)
            many_rate = rows / (time.perf_counter() - started)

            rows, started = 0, time.perf_counter()
            with conn.cursor() as cur:
                while time.perf_counter() - started < seconds:
                    with cur.copy(b"COPY " + table + b" (id, n, payload) FROM STDIN") as copy:
                        for row in batch * 10:
                            copy.write_row(row)
                    conn.commit()
                    rows += len(batch) * 10
            copy_rate = rows / (time.perf_counter() - started)
    return {
        "library_single_save_events_per_s": save_rate,
        "psycopg_single_commit_rows_per_s": single_rate,
        "executemany_1000_rows_per_s": many_rate,
        "copy_rows_per_s": copy_rate,
    }


def main() -> None:
    write_result("baselines", run())


if __name__ == "__main__":
    main()
