"""Memory per role: each role's process on a loaded ledger, and the API after many accounts.

.venv/bin/python -m benchmarks.memory --events 1000000 --accounts 100000

In `make bench` it runs on the million-event ledger of benchmarks/million.py,
after that benchmark's own figures (`million --memory-accounts N`), instead of
loading another; run alone, it loads its own ledger the same way.

- The roles on the loaded ledger: the API, the ingest, the projector and the
  relay, each in a process of its own (`crmledger serve --only ROLE`,
  benchmarks/server.py) on an embedded broker, the read models emptied
  first: the relay publishes every stored event and the projector applies
  every one to both read models. Once the projector has caught up (both read
  models at the store's last position), each process's resident set (psutil
  RSS, its children's included) is taken: `rss_mb_<role>`; and the most
  sampled, every 0.5 s, since it started: `rss_mb_<role>_peak`. The ingest
  starts and waits: nothing reaches it. The API's is taken once it has
  started, before any request. For scale: the seconds from starting the
  relay, ingest and projector until the loaded events were all applied
  (`load_relayed_and_projected_seconds`), and until everything, the
  commands' events too (`relayed_and_projected_seconds`).
- The API after many accounts: meanwhile (the relay and the projector are
  waiting on round trips more than on the cores), the same API process is
  sent one command for each of `--accounts` distinct accounts over HTTP
  (benchmarks/load.py, 32 keep-alive connections): an activity on each
  account the ledger holds, up to `--accounts`, and an opening for each
  account more. Its resident set is taken after every tenth of them
  (`api_rss_curve`): past the caches' bounds (10,000 accounts and keys by
  default; every request carries the same token) it should stay flat.
  `api_growth_mb_per_10k` is its growth per 10,000 accounts from
  `api_growth_from_accounts` (the larger of the caches' bound and half the
  accounts) to the end; None when too few accounts go past the bound.
"""

from __future__ import annotations

import argparse
import asyncio
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from typing import Any
from uuid import UUID

import psutil
import psycopg

from api.auth import issue_token
from benchmarks.common import (
    bench_services,
    embedded_kafka,
    fill_in_processes,
    sampling,
    write_result,
)
from benchmarks.http_commands import VISIT, opening
from benchmarks.load import Connection, connections
from benchmarks.server import Served, serving
from infra.partitioner import KeyPartitioner
from infra.relay import relay_position
from infra.wiring import Services

ROLES = ("api", "ingest", "projector", "relay")
BACKGROUND = ROLES[1:]  # started in this order: the consumers before the relay
TARGET_MB = 300
CLIENTS = 32
CURVE_POINTS = 10


def rss_mb(pid: int) -> float:
    """The resident set of a process and its children, in MiB (0 once it has ended)."""
    total = 0
    try:
        process = psutil.Process(pid)
        for p in (process, *process.children(recursive=True)):
            total += p.memory_info().rss
    except psutil.NoSuchProcess:
        pass
    return total / 2**20


@contextmanager
def peaks(children: dict[str, Served], every: float = 0.5) -> Iterator[dict[str, float]]:
    """The largest resident set of each child, sampled every `every` s while the block runs."""
    most: dict[str, float] = {}

    def sample() -> None:
        for role, child in list(children.items()):
            if child.child.poll() is None:
                most[role] = max(most.get(role, 0.0), rss_mb(child.child.pid))

    with sampling(sample, every):
        yield most


def empty_read_models(services: Services) -> None:
    """Drop the read models' schema and make it again, empty: the projector applies everything."""
    rm = services.settings.readmodel_schema
    with psycopg.connect(services.database_url, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {rm} CASCADE".encode())
    services.readmodels.store.create()


def wait_until(done: Callable[[], bool], children: dict[str, Served], what: str) -> None:
    """Poll `done` every 0.2 s, checking that the children live."""
    started = time.perf_counter()
    while not done():
        for child in children.values():
            child.check()
        if time.perf_counter() - started > 1800:
            raise RuntimeError(f"{what}: not done in 30 minutes")
        time.sleep(0.2)


def last_per_partition(services: Services) -> dict[int, int]:
    """The last stored position on each partition, as the relay places events (by account)."""
    placement, count = KeyPartitioner(), services.settings.kafka_partitions
    last: dict[int, int] = {}
    with services.pool.connection() as conn:
        rows = conn.execute(
            "SELECT originator_id::text, max(notification_id) FROM ledger_events GROUP BY 1"
        ).fetchall()
    for account, position in rows:
        partition = placement.partition_of(account.encode(), count)
        last[partition] = max(last.get(partition, 0), position)
    return last


def applied_up_to(services: Services, wanted: dict[int, int]) -> bool:
    """Whether both read models have applied, on each partition, up to the position wanted."""
    positions = services.readmodels.store.positions()
    return all(
        applied.get(partition, 0) >= at
        for applied in positions.values()
        for partition, at in wanted.items()
    )


def caught_up(services: Services) -> bool:
    """Whether the relay has published every stored event and both read models applied it.

    A read model's position is per partition: each must have reached the last
    event placed on it (looked for once the cheaper checks pass).
    """
    last = services.ledger.recorder.max_notification_id() or 0
    if (relay_position(services) or 0) < last:
        return False
    positions = services.readmodels.store.positions()
    if any(max(applied.values(), default=0) < last for applied in positions.values()):
        return False
    return applied_up_to(services, last_per_partition(services))


def ledger_accounts(services: Services, limit: int) -> list[UUID]:
    """Up to `limit` accounts the ledger holds."""
    with services.pool.connection() as conn:
        rows = conn.execute(
            "SELECT originator_id FROM ledger_events WHERE originator_version = 1 LIMIT %s",
            (limit,),
        ).fetchall()
    return [row[0] for row in rows]


async def command_accounts(
    url: str, token: str, existing: list[UUID], accounts: int, pid: int
) -> tuple[list[tuple[int, float]], float]:
    """One command for each of `accounts` distinct accounts; the API's RSS every tenth of them.

    An activity on each of `existing`, then an opening for each account more.
    Returns the curve (accounts commanded, MiB) and the commands per second.
    """
    conns = connections([url], {"Authorization": f"Bearer {token}"}, CLIENTS)
    step = max(accounts // CURVE_POINTS, 1)
    curve: list[tuple[int, float]] = []
    started = time.perf_counter()
    for start in range(0, accounts, step):
        chunk = range(start, min(start + step, accounts))

        async def client(conn: Connection, mine: range) -> None:
            for i in mine:
                if i < len(existing):
                    await conn.post(f"/v1/accounts/{existing[i]}/activities", VISIT)
                else:
                    await conn.post("/v1/accounts", opening(i))

        await asyncio.gather(
            *(client(c, chunk[k::CLIENTS]) for k, c in enumerate(conns) if chunk[k::CLIENTS])
        )
        curve.append((chunk.stop, rss_mb(pid)))
    rate = accounts / (time.perf_counter() - started)
    for conn in conns:
        await conn.close()
    return curve, rate


def commanded(
    services: Services, api: Served, accounts: int, done: dict[str, Any]
) -> threading.Thread:
    """A thread sending one command for each of `accounts` accounts to `api`; fills `done`."""
    token = issue_token(services.jwt_secret or "", "bench-memory", ["customer_service"])
    existing = ledger_accounts(services, accounts)
    done["api_accounts_with_an_activity"] = min(len(existing), accounts)
    done["api_accounts_opened"] = max(accounts - len(existing), 0)

    def send() -> None:
        t = time.perf_counter()
        try:
            curve, rate = asyncio.run(
                command_accounts(api.url, token, existing, accounts, api.child.pid)
            )
        except BaseException as e:
            done["error"] = e
            raise
        done.update(curve=curve, rate=rate, seconds=time.perf_counter() - t)

    thread = threading.Thread(target=send, daemon=True)
    thread.start()
    return thread


def api_figures(
    services: Services, accounts: int, done: dict[str, Any], peak: float
) -> dict[str, Any]:
    """The API's figures from the commands' curve (see the module's docstring)."""
    curve: list[tuple[int, float]] = done["curve"]
    settings = services.settings
    bound = max(settings.account_cache_size, settings.key_cache_size)
    past = [(n, mb) for n, mb in curve if n >= max(bound, accounts // 2)]
    growth = None
    if len(past) > 1:
        (first, at_first), (last, at_last) = past[0], past[-1]
        growth = (at_last - at_first) / (last - first) * 10_000
    return {
        "api_accounts_commanded": accounts,
        "api_accounts_with_an_activity": done["api_accounts_with_an_activity"],
        "api_accounts_opened": done["api_accounts_opened"],
        "api_rss_mb_after_accounts": curve[-1][1],
        "api_rss_mb_peak_accounts": max(peak, curve[-1][1]),
        "api_growth_mb_per_10k": growth,
        "api_growth_from_accounts": past[0][0] if growth is not None else None,
        "api_rss_curve": [[n, round(mb, 1)] for n, mb in curve],
        "api_commands_per_s": done["rate"],
        "api_accounts_seconds": done["seconds"],
    }


def measure(services: Services, accounts: int) -> dict[str, Any]:
    """Both measurements on the services' ledger (see the module's docstring)."""
    started = time.perf_counter()
    settings = services.settings
    figures: dict[str, Any] = {
        "events": services.ledger.recorder.max_notification_id() or 0,
        "account_cache_size": settings.account_cache_size,
        "key_cache_size": settings.key_cache_size,
        "token_cache_size": settings.token_cache_size,
        "target_mb": TARGET_MB,
    }
    empty_read_models(services)
    children: dict[str, Served] = {}
    done: dict[str, Any] = {}
    with embedded_kafka() as kafka, peaks(children) as most, ExitStack() as stack:
        api = children["api"] = stack.enter_context(serving(services, "api", kafka=kafka))
        figures["rss_mb_api"] = rss_mb(api.child.pid)
        loaded = last_per_partition(services)
        t = time.perf_counter()
        for role in BACKGROUND:
            children[role] = stack.enter_context(serving(services, role, kafka=kafka))
        sender = commanded(services, api, accounts, done)

        def load_applied() -> None:
            if "load" not in done and applied_up_to(services, loaded):
                done["load"] = time.perf_counter() - t

        def commands_sent() -> bool:
            load_applied()
            return not sender.is_alive()

        def everything_applied() -> bool:
            load_applied()
            return caught_up(services)

        wait_until(commands_sent, children, "the commands")
        if "error" in done:
            raise RuntimeError("the commands failed") from done["error"]
        # The commands' events too: the relay and the projector have had everything.
        wait_until(everything_applied, children, "relay and projection")
        figures["relayed_and_projected_seconds"] = time.perf_counter() - t
        # The load may have been applied between the last two checks of the wait.
        load_applied()
        figures["load_relayed_and_projected_seconds"] = done["load"]
        for role in BACKGROUND:
            figures[f"rss_mb_{role}"] = rss_mb(children[role].child.pid)
        peak = dict(most)
    for role in BACKGROUND:  # the last reading counts too
        figures[f"rss_mb_{role}_peak"] = max(peak.get(role, 0.0), figures[f"rss_mb_{role}"])
    figures |= api_figures(services, accounts, done, peak.get("api", 0.0))
    figures["seconds"] = time.perf_counter() - started
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--per-account", type=int, default=100)
    parser.add_argument("--accounts", type=int, default=100_000, help="commanded through the API")
    args = parser.parse_args()
    with bench_services() as services:
        t = time.perf_counter()
        fill_in_processes(services.settings, args.events, args.per_account)
        load_seconds = time.perf_counter() - t
        figures = measure(services, args.accounts)
    write_result("memory", {**figures, "load_seconds": load_seconds})


if __name__ == "__main__":
    main()
