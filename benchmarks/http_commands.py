"""Commands over HTTP: throughput with many concurrent clients, then p99 latency at half load.

Clients are asyncio tasks in this process on keep-alive connections, with a
real token; the API runs in child processes (`crmledger serve --only api`),
first one, then one replica per core, as production scales it. The commands
are a mix, per client and in turn: one account opened, one update of personal
details, eight activities recorded, on an account of the client's own so that
commands are not serialised on one account. For scale, the rate of a route
that does nothing (GET /healthz) on one process is measured too.

    .venv/bin/python -m benchmarks.http_commands
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import time
from typing import Any

from api.auth import issue_token
from benchmarks.common import bench_services, write_result
from benchmarks.load import Connection, connections
from benchmarks.server import api_replicas

VISIT = {"type": "visit", "channel": "store", "location": "central"}
MIX = ("open", "update") + ("activity",) * 8


def opening(i: int) -> dict[str, Any]:
    """The body of an account opening."""
    return {"segment": "gold", "channel": "store", "customer": {"name": f"Load {i}"}}


async def open_accounts(conns: list[Connection]) -> list[str]:
    """One account per connection, opened over it."""
    opens = (c.post("/v1/accounts", opening(i)) for i, c in enumerate(conns))
    answers = await asyncio.gather(*opens)
    return [str(a.json()["id"]) for a in answers]


async def _command(conn: Connection, account_id: str, step: int) -> None:
    kind = MIX[step % len(MIX)]
    if kind == "open":
        await conn.post("/v1/accounts", opening(step))
    elif kind == "update":
        details = {"customer": {"email": f"load{step}@example.com"}}
        await conn.send("PATCH", f"/v1/accounts/{account_id}", details)
    else:
        await conn.post(f"/v1/accounts/{account_id}/activities", VISIT)


async def _load(
    conns: list[Connection], ids: list[str], seconds: float, rate: float | None
) -> list[float]:
    """Send commands for `seconds`: as fast as the clients can, or paced at `rate` per second."""
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds
    interval = len(conns) / rate if rate else 0.0

    async def client(conn: Connection, account_id: str, offset: float) -> None:
        next_at = time.perf_counter() + offset
        step = 0
        while True:
            now = time.perf_counter()
            if now >= deadline:
                return
            if interval and now < next_at:
                await asyncio.sleep(next_at - now)
            started = time.perf_counter()
            await _command(conn, account_id, step)
            latencies.append(time.perf_counter() - started)
            next_at += interval
            step += 1

    pairs = enumerate(zip(conns, ids, strict=True))
    await asyncio.gather(*(client(c, a, i * interval / len(conns)) for i, (c, a) in pairs))
    return latencies


async def empty_route(url: str, clients: int, seconds: float) -> float:
    """Requests per second to GET /healthz, which does nothing: the framework's floor."""
    conns = connections([url], {}, clients)
    deadline = time.perf_counter() + seconds
    answered = 0

    async def client(conn: Connection) -> None:
        nonlocal answered
        while time.perf_counter() < deadline:
            await conn.send("GET", "/healthz")
            answered += 1

    started = time.perf_counter()
    await asyncio.gather(*(client(c) for c in conns))
    rate = answered / (time.perf_counter() - started)
    for conn in conns:
        await conn.close()
    return rate


async def _measure(urls: list[str], token: str, clients: int, seconds: float) -> dict[str, float]:
    conns = connections(urls, {"Authorization": f"Bearer {token}"}, clients)
    ids = await open_accounts(conns)
    await _load(conns, ids, 2.0, None)  # warm up
    started = time.perf_counter()
    full = await _load(conns, ids, seconds, None)
    throughput = len(full) / (time.perf_counter() - started)
    half = sorted(await _load(conns, ids, seconds, throughput / 2))
    for conn in conns:
        await conn.close()
    return {
        "commands_per_s": throughput,
        "half_load_p50_ms": statistics.median(half) * 1000,
        "half_load_p99_ms": half[int(len(half) * 0.99) - 1] * 1000,
    }


def run(clients: int = 32, seconds: float = 10.0) -> dict[str, Any]:
    """Saturating throughput, then p50/p99 at half of it: on one API process, then replicas."""
    replicas = os.cpu_count() or 1
    figures: dict[str, Any] = {"clients": clients, "replicas": replicas}
    with bench_services() as services:
        token = issue_token(services.jwt_secret or "", "bench", ["customer_service"])
        for n, prefix in ((1, "one_process_"), (replicas, "")):
            with api_replicas(services, n) as urls:
                measured = asyncio.run(_measure(urls, token, clients, seconds))
                if n == 1:
                    floor = asyncio.run(empty_route(urls[0], clients, seconds / 2))
                    measured["empty_route_requests_per_s"] = floor
            figures.update({prefix + k: v for k, v in measured.items()})
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0, help="each timed load")
    write_result("http_commands", run(seconds=parser.parse_args().seconds))


if __name__ == "__main__":
    main()
