"""End to end: a command committed over HTTP until it is visible in the read model.

Each role runs in a child process of its own (`crmledger serve --only ROLE`),
as in production: the API (one replica per core), the relay and the projector,
on an embedded broker. Commands (visits) are sent at a steady rate; a watcher
reads the directory's account versions every few milliseconds and notes when
each command's version shows. The latency is from the event's recorded time
(the store's timestamp, taken just before the commit: it errs on the long side)
to that moment, both on this machine's clock.

    .venv/bin/python -m benchmarks.end_to_end --rate 500
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import threading
import time
from datetime import datetime
from typing import Any
from uuid import UUID

import psycopg

from api.auth import issue_token
from benchmarks.common import bench_services, connections_held, embedded_kafka, write_result
from benchmarks.http_commands import VISIT, open_accounts
from benchmarks.load import Connection, connections
from benchmarks.server import START_S, Served, api_replicas, bench_name, serving


async def _opened(urls: list[str], headers: dict[str, str], n: int) -> list[str]:
    conns = connections(urls, headers, n)
    ids = await open_accounts(conns)
    for conn in conns:
        await conn.close()
    return ids


async def _send(
    urls: list[str], headers: dict[str, str], ids: list[str], rate: float, seconds: float
) -> list[tuple[str, int, float]]:
    """Send commands at `rate` per second; returns (account, version, recorded at)."""
    conns = connections(urls, headers, len(ids))
    done: list[tuple[str, int, float]] = []
    interval = len(ids) / rate
    deadline = time.perf_counter() + seconds

    async def client(conn: Connection, account_id: str, offset: float) -> None:
        next_at = time.perf_counter() + offset
        while next_at < deadline:
            now = time.perf_counter()
            if now < next_at:
                await asyncio.sleep(next_at - now)
            answer = await conn.post(f"/v1/accounts/{account_id}/activities", VISIT)
            account = answer.json()
            version, recorded = account["version"], account["recorded_at"]
            assert isinstance(version, int) and isinstance(recorded, str)
            done.append((account_id, version, datetime.fromisoformat(recorded).timestamp()))
            next_at += interval

    pairs = enumerate(zip(conns, ids, strict=True))
    await asyncio.gather(*(client(c, a, i * interval / len(ids)) for i, (c, a) in pairs))
    return done


def run(rate: float = 500.0, seconds: float = 10.0, clients: int = 50) -> dict[str, Any]:
    """p50 and p99 from commit to visible, at `rate` commands per second.

    Also the most connections each role's process held at once (pg_stat_activity,
    by application_name): `connections_<role>_max`, the API's of one replica.
    """
    with (
        bench_services() as services,
        embedded_kafka() as kafka,
        connections_held(services.database_url, bench_name(services)) as held,
        serving(services, "relay", kafka=kafka) as relay,
        serving(services, "projector", kafka=kafka) as projector,
        api_replicas(services, os.cpu_count() or 1) as urls,
    ):
        pipeline = (relay, projector)
        token = issue_token(services.jwt_secret or "", "bench", ["customer_service"])
        headers = {"Authorization": f"Bearer {token}"}
        ids = asyncio.run(_opened(urls, headers, clients))
        seen: dict[str, list[tuple[int, float]]] = {a: [] for a in ids}
        stop = threading.Event()
        schema = services.settings.readmodel_schema

        def watch() -> None:
            with psycopg.connect(services.database_url, autocommit=True) as conn:
                query = (
                    f"SELECT account_id, version FROM {schema}.accounts WHERE account_id = ANY(%s)"
                )
                keys = [UUID(a) for a in ids]
                last: dict[str, int] = {}
                while not stop.is_set():
                    rows = conn.execute(query.encode(), (keys,)).fetchall()
                    # Noted when the answer is in hand: a version may have shown
                    # at any moment of the query, so this errs on the late side.
                    now = time.time()
                    for account_id, version in rows:
                        key = str(account_id)
                        if version != last.get(key):
                            last[key] = version
                            seen[key].append((version, now))
                    time.sleep(0.002)

        # Warm up: the pipeline's consumers join their groups before the clock starts.
        _wait_for_read_model(services.database_url, schema, len(ids), pipeline)
        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        started = time.perf_counter()
        done = asyncio.run(_send(urls, headers, ids, rate, seconds))
        achieved = len(done) / (time.perf_counter() - started)
        time.sleep(3)  # let the pipeline catch up before reading the watcher's notes
        stop.set()
        watcher.join(5)
        for child in pipeline:
            child.check()
    latencies = []
    for account_id, version, recorded in done:
        shown = next((t for v, t in seen[account_id] if v >= version), None)
        if shown is not None:
            latencies.append(shown - recorded)
    if not latencies:
        raise RuntimeError(f"none of {len(done)} commands reached the read model")
    latencies.sort()
    # A child's connections are named `<schema>-<port>-<role>`: the most of any child per role.
    per_role: dict[str, int] = {}
    for name, count in held.items():
        if name.startswith(bench_name(services) + "-"):
            role = name.rsplit("-", 1)[1]
            per_role[role] = max(per_role.get(role, 0), count)
    return {
        "target_commands_per_s": rate,
        "achieved_commands_per_s": achieved,
        "commands": len(done),
        "visible": len(latencies),
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[max(int(len(latencies) * 0.99) - 1, 0)] * 1000,
        **{f"connections_{role}_max": count for role, count in sorted(per_role.items())},
    }


def _wait_for_read_model(url: str, schema: str, n: int, pipeline: tuple[Served, ...]) -> None:
    """Wait for the `n` opened accounts in the read model; raise with the pipeline's output."""
    deadline = time.monotonic() + START_S
    count = f"SELECT count(*) FROM {schema}.accounts".encode()
    with psycopg.connect(url, autocommit=True) as conn:
        while conn.execute(count).fetchone() != (n,):
            for child in pipeline:
                child.check()
            if time.monotonic() > deadline:
                outputs = "\n".join(c.output() for c in pipeline)
                raise RuntimeError(
                    f"the opened accounts did not reach the read model in {START_S:g} s;"
                    f" the relay's and the projector's output:\n{outputs}"
                )
            time.sleep(0.1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--rate", type=float, default=500.0)
    parser.add_argument("--seconds", type=float, default=10.0)
    args = parser.parse_args()
    write_result("end_to_end", run(args.rate, args.seconds))


if __name__ == "__main__":
    main()
