"""Reads at scale: reports, searches and the account page at N events and at N/10, and writes.

.venv/bin/python -m benchmarks.reads --events 1000000

- The ledgers: N events over about N/10 accounts across 24 months of business
  time, a retailer's mix of activities, segments and channels, some accounts
  closed and some erased (benchmarks/ledger_mix.py), stored in business-time
  order through the vault and the ledger's batch save, by two processes at
  once (each a share of the accounts: building events holds a core).
  Beside it, in the same run, a ledger of N/10 events: the N ledger's first
  layer (the same accounts, every month with its share), loaded once and
  copied row for row (events, snapshots, keys; the two share a master key)
  into the N ledger, whose other layers are loaded after it.
  Each query runs on the
  two in turn, so a burst of load on the machine falls on both alike, and
  its growth is a ratio taken in one run: `<query>_growth` = p95 at N / p95
  at N/10.
- After the loads both ledgers' read models are rebuilt (`ReadModels.rebuild`)
  and vacuumed and analysed, as autovacuum does within a minute of a rebuild.
  The rebuild starts with no key in its vault's cache, as `crmledger
  projections rebuild` does in a process of its own: it reads the keys of
  each page of events in one query, within the default key cache.
- Each query is called in the process, as its HTTP route calls it (no HTTP:
  the figure is the query's and its answer's; benchmarks/read_queries.py
  says which function each is), `--warmup` times untimed then `--runs`
  times timed, giving p50 and p95: every report of projections/reports.py
  for the last full month, the last full quarter and the 12 months before
  (by month), as JSON and as CSV; the directory by a name, a surname, an
  email, a phone, an external reference, by segment, by status and a page
  deep into a segment; a regular customer's account, its 50 events of
  history, and the account as of a year ago.
- Writes at scale: single-activity commands from 8 threads (as
  benchmarks/proofs.py's cost phases), in alternating phases on the
  N-event ledger and on an empty ledger beside it (same server, same run):
  commands per second (median of the phases) and p99 of each command.
- Memory: the benchmark process's resident set (psutil RSS) after the loads
  (it holds three ledgers' services), and the loading processes' largest
  (each keeps the keys of its share of the accounts). Each role's own is
  benchmarks/memory.py's.
"""

from __future__ import annotations

import argparse
import functools
import operator
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, date, datetime
from typing import Any

import psutil
import psycopg
from pydantic import SecretStr

from benchmarks.common import (
    bench_services,
    loaders,
    started,
    timed_commands,
    write_result,
)
from benchmarks.ledger_mix import Loaded, load
from benchmarks.read_queries import (
    Samples,
    account_page,
    as_of_moment,
    p50_p95,
    reports,
    searches,
)
from infra.keys import PostgresKeyVault
from infra.secrets import master_key
from infra.settings import Settings
from infra.wiring import Services
from projections.schema import TABLES

# Processes loading a layer together, each a share of its accounts.
LOADERS = 2


def roomy_vault(services: Services, accounts: int) -> None:
    """Give a loading process a key vault whose cache holds every key it makes.

    A load keeps every account open until its last event, and an update of
    its details encrypts with its key again: with the default cache (10,000
    keys) that would be a key query for each such update.
    """
    vault = PostgresKeyVault(services.pool, master_key(services.settings), accounts)
    services.vault = services.ledger.vault = vault


def _load_share(
    settings: Settings, events: int, layer: int, end: datetime, share: int, shares: int
) -> Loaded:
    """One share of a layer's accounts, loaded by a process of its own."""
    services = started(settings)
    try:
        roomy_vault(services, events)
        loaded = load(services.ledger, events, layer, end, share, shares)
    finally:
        services.close()
    loaded.rss_mb = psutil.Process().memory_info().rss / 2**20
    return loaded


def load_layer(
    pool: ProcessPoolExecutor, services: Services, events: int, layer: int, end: datetime
) -> Loaded:
    """A layer of `events` events, its accounts shared among LOADERS processes at once.

    Building the events is Python and holds one core, so two processes fill
    the two.
    """
    settings = services.settings
    futures = [
        pool.submit(_load_share, settings, events, layer, end, k, LOADERS) for k in range(LOADERS)
    ]
    return functools.reduce(operator.add, (f.result() for f in futures))


# What a load stores: the events, their snapshots, the accounts' keys.
LOADED_TABLES = ("ledger_events", "ledger_snapshots", "account_keys")


def copy_ledger(source: Services, target: Services) -> None:
    """Store `source`'s events, snapshots and account keys in `target` too: the same ledger.

    The N ledger's first layer is the N/10 ledger, row for row: copied, it is
    loaded once rather than twice. The two share a master key, so its account
    keys open in either.
    """
    a, b = source.settings.database_schema, target.settings.database_schema
    with psycopg.connect(target.database_url, autocommit=True) as conn:
        for table in LOADED_TABLES:
            order = " ORDER BY notification_id" if table == "ledger_events" else ""
            conn.execute(f"INSERT INTO {b}.{table} SELECT * FROM {a}.{table}{order}".encode())
        conn.execute(
            f"SELECT setval(pg_get_serial_sequence('{b}.ledger_events', 'notification_id'),"
            f" (SELECT max(notification_id) FROM {b}.ledger_events))".encode()
        )


def secret(value: SecretStr | None) -> str:
    """A setting's secret value."""
    assert value is not None
    return value.get_secret_value()


def project(services: Services) -> float:
    """Rebuild both read models from the store, then vacuum and analyse them: seconds.

    A checkpoint follows, so the load's and the rebuild's dirty pages are not
    written out under the measurements.
    """
    started = time.perf_counter()
    outcome = services.readmodels.rebuild("directory", "kpis")
    seconds = time.perf_counter() - started
    assert not outcome.parked, outcome.parked[:5]
    rm = services.settings.readmodel_schema
    with psycopg.connect(services.database_url, autocommit=True) as conn:
        for table in (t for tables in TABLES.values() for t in tables):
            conn.execute(f"VACUUM (ANALYZE) {rm}.{table}".encode())
        conn.execute(b"CHECKPOINT")
    return seconds


def measure(
    sides: dict[str, Services], loaded: Loaded, end: datetime, runs: int, warmup: int
) -> tuple[dict[str, Samples], set[str]]:
    """Every query's samples on each side, and the names of the fixed-range ones."""
    samples, fixed = reports(sides, end.date(), runs, warmup)
    found = searches(sides, loaded, runs, warmup)
    page = account_page(sides, loaded.busy, as_of_moment(end), runs, warmup)
    for side in sides:
        samples[side] |= found[side] | page[side]
    # A search by a field and the account page answer a fixed amount whatever the ledger's size.
    fixed |= {n for n in (*found["n"], *page["n"]) if n != "search_surname"}
    return samples, fixed


def writes(empty: Services, full: Services, seconds: float, rounds: int) -> dict[str, Any]:
    """Commands on the full ledger and on an empty one, in alternating phases."""
    rates: dict[str, list[float]] = {"empty": [], "full": []}
    ms: dict[str, list[float]] = {"empty": [], "full": []}
    for r in range(rounds):
        sides = [("empty", empty), ("full", full)]
        for side, services in sides if r % 2 == 0 else sides[::-1]:
            rate, done = timed_commands(services, seconds)
            rates[side].append(rate)
            ms[side] += done
    out: dict[str, Any] = {}
    for side in ("empty", "full"):
        ordered = sorted(ms[side])
        out[f"commands_per_s_{side}_ledger"] = statistics.median(rates[side])
        out[f"commands_p99_ms_{side}_ledger"] = ordered[int(len(ordered) * 0.99)]
    out["commands_full_vs_empty"] = (
        out["commands_per_s_full_ledger"] / out["commands_per_s_empty_ledger"]
    )
    out["commands_p99_full_vs_empty"] = (
        out["commands_p99_ms_full_ledger"] / out["commands_p99_ms_empty_ledger"]
    )
    out["commands_phase_seconds"], out["commands_rounds"] = seconds, rounds
    return out


def query_figures(at_n: Samples, at_tenth: Samples, fixed: set[str]) -> dict[str, Any]:
    """p50, p95 at N and at N/10 and the growth of each query; the worst of each kind."""
    out: dict[str, Any] = {}
    growth: dict[str, float] = {}
    for name, samples in at_n.items():
        if name.endswith("_rows"):
            out[name], out[f"{name}_tenth"] = int(samples[0]), int(at_tenth[name][0])
            continue
        p50, p95 = p50_p95(samples)
        t50, t95 = p50_p95(at_tenth[name])
        out |= {f"{name}_p50_ms": p50, f"{name}_p95_ms": p95}
        out |= {f"{name}_tenth_p50_ms": t50, f"{name}_tenth_p95_ms": t95}
        growth[name] = out[f"{name}_growth"] = p95 / t95

    def worst(prefix: str, suffix: str = "") -> tuple[str, float]:
        names = [n for n in growth if n.startswith(prefix) and suffix in n]
        name = max(names, key=lambda n: out[f"{n}_p95_ms"])
        return name, out[f"{name}_p95_ms"]

    for window in ("month", "quarter", "trend12"):
        name, p95 = worst("report_", f"_{window}_")
        out[f"worst_report_{window}"], out[f"worst_report_{window}_p95_ms"] = name, p95
    name, p95 = worst("search_")
    page, page_p95 = worst("account_")
    out["worst_search"], out["worst_search_p95_ms"] = name, p95
    out["worst_account_page"], out["worst_account_page_p95_ms"] = page, page_p95
    steepest = max((n for n in growth if n in fixed), key=lambda n: growth[n])
    out["steepest_fixed_growth"], out["steepest_fixed_growth_ratio"] = steepest, growth[steepest]
    out["fixed_queries"] = len([n for n in growth if n in fixed])
    out["fixed_queries_over_2x"] = sorted(n for n in growth if n in fixed and growth[n] > 2)
    most = max(len(s) for s in at_n.values())
    out["queries_cut_short"] = {n: len(s) for n, s in at_n.items() if 1 < len(s) < most}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=30, help="timed runs of each query")
    parser.add_argument("--warmup", type=int, default=3)
    parser.add_argument("--seconds", type=float, default=2.5, help="each write phase")
    parser.add_argument("--rounds", type=int, default=4, help="pairs of write phases")
    args = parser.parse_args()

    started = time.perf_counter()
    # Business time ends at today's midnight (UTC): the last full month is behind it.
    today = date.today()
    end = datetime(today.year, today.month, today.day, tzinfo=UTC)
    figures: dict[str, Any] = {}
    with (
        bench_services() as empty,
        bench_services() as tenth,
        bench_services(secret(tenth.settings.master_key)) as full,
    ):
        with loaders(LOADERS) as pool:
            # The N/10 ledger is the N ledger's first layer: the same accounts and events.
            t = time.perf_counter()
            first = load_layer(pool, tenth, args.events // 10, 1, end)
            figures["load_seconds_tenth"] = time.perf_counter() - t
            t = time.perf_counter()
            copy_ledger(tenth, full)
            figures["copy_seconds"] = time.perf_counter() - t
            t = time.perf_counter()
            rest = load_layer(pool, full, args.events - first.events, 2, end)
            load_seconds = figures["load_seconds_tenth"] + time.perf_counter() - t
        rss = psutil.Process().memory_info().rss
        figures["rebuild_seconds_tenth"] = project(tenth)
        figures["rebuild_seconds"] = project(full)
        t = time.perf_counter()
        samples, fixed = measure({"n": full, "tenth": tenth}, first, end, args.runs, args.warmup)
        figures["reads_seconds"] = time.perf_counter() - t
        t = time.perf_counter()
        figures |= writes(empty, full, args.seconds, args.rounds)
        figures["writes_seconds"] = time.perf_counter() - t

    events = first.events + rest.events
    figures = {
        "events": events,
        "accounts": first.accounts + rest.accounts,
        "events_tenth": first.events,
        "accounts_tenth": first.accounts,
        "load_seconds": load_seconds,
        "load_events_per_s": events / load_seconds,
        "rss_after_load_mb": rss / 2**20,
        "loader_rss_mb": max(first.rss_mb, rest.rss_mb),
        "loader_processes": LOADERS,
        **figures,
        **query_figures(samples["n"], samples["tenth"], fixed),
        "runs": args.runs,
        "seconds": time.perf_counter() - started,
    }
    write_result("reads", figures)


if __name__ == "__main__":
    main()
