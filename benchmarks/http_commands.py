"""Commands over HTTP: throughput with many concurrent clients, then p99 latency at half load.

Clients are asyncio tasks in this process with keep-alive connections and real
tokens; the API runs in a child process (`crmledger serve --only api`). Each
client records activities (visits) on accounts of its own, so commands are not
serialised on one account.

    .venv/bin/python -m benchmarks.http_commands
"""

from __future__ import annotations

import asyncio
import statistics
import time
from typing import Any

import httpx

from api.auth import issue_token
from benchmarks.common import bench_services, write_result
from benchmarks.server import serving

VISIT = {"type": "visit", "channel": "store", "location": "central"}


async def _open_accounts(url: str, headers: dict[str, str], n: int) -> list[str]:
    async with httpx.AsyncClient(base_url=url, headers=headers) as client:
        ids = []
        for i in range(n):
            body = {"segment": "gold", "channel": "store", "customer": {"name": f"Load {i}"}}
            response = await client.post("/v1/accounts", json=body)
            response.raise_for_status()
            ids.append(response.json()["id"])
        return ids


async def _load(
    url: str, headers: dict[str, str], ids: list[str], seconds: float, rate: float | None
) -> list[float]:
    """Send commands for `seconds`: as fast as the clients can, or paced at `rate` per second."""
    latencies: list[float] = []
    limits = httpx.Limits(max_connections=len(ids), max_keepalive_connections=len(ids))
    async with httpx.AsyncClient(base_url=url, headers=headers, limits=limits) as client:
        deadline = time.perf_counter() + seconds
        interval = len(ids) / rate if rate else 0.0

        async def worker(account_id: str, offset: float) -> None:
            next_at = time.perf_counter() + offset
            while True:
                now = time.perf_counter()
                if now >= deadline:
                    return
                if interval and now < next_at:
                    await asyncio.sleep(next_at - now)
                started = time.perf_counter()
                response = await client.post(f"/v1/accounts/{account_id}/activities", json=VISIT)
                response.raise_for_status()
                latencies.append(time.perf_counter() - started)
                next_at += interval

        await asyncio.gather(*(worker(a, i * interval / len(ids)) for i, a in enumerate(ids)))
    return latencies


def run(clients: int = 32, seconds: float = 10.0) -> dict[str, Any]:
    """Saturating throughput, then p50/p99 at half of it."""
    with bench_services() as services, serving(services, "api") as url:
        token = issue_token(services.jwt_secret or "", "bench", ["customer_service"])
        headers = {"Authorization": f"Bearer {token}"}
        ids = asyncio.run(_open_accounts(url, headers, clients))
        asyncio.run(_load(url, headers, ids, 2.0, None))  # warm up
        started = time.perf_counter()
        full = asyncio.run(_load(url, headers, ids, seconds, None))
        throughput = len(full) / (time.perf_counter() - started)
        half = asyncio.run(_load(url, headers, ids, seconds, throughput / 2))
    half.sort()
    return {
        "clients": clients,
        "commands_per_s": throughput,
        "half_load_commands_per_s": throughput / 2,
        "half_load_p50_ms": statistics.median(half) * 1000,
        "half_load_p99_ms": half[int(len(half) * 0.99) - 1] * 1000,
    }


def main() -> None:
    write_result("http_commands", run())


if __name__ == "__main__":
    main()
