"""Shared set-up for benchmarks: a throw-away ledger on a real PostgreSQL, and result files.

Benchmarks run against CRMLEDGER_BENCH_DATABASE_URL (default: the machine's
test server) in a schema of their own, dropped at the end.
"""

from __future__ import annotations

import base64
import json
import multiprocessing
import os
import platform
import tempfile
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import psycopg

from domain import activities as act
from domain.account import CustomerAccount
from domain.activities import apply_activity
from domain.ledger import Ledger
from infra.broker import embedded_broker, stop_embedded_broker
from infra.settings import Settings
from infra.wiring import Services, bootstrap

DATABASE_URL = os.environ.get(
    "CRMLEDGER_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
RESULTS = Path(__file__).parent / "results"
META = {"actor": "bench", "department": "customer_service", "source": "bench"}


@contextmanager
def bench_services(master_key: str | None = None) -> Iterator[Services]:
    """Services over a fresh schema, dropped afterwards; a master key of their own unless given."""
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    settings = Settings(
        database_url=DATABASE_URL,
        database_schema=schema,
        readmodel_schema=f"{schema}_rm",
        jwt_secret="bench-" + "s" * 40,
        master_key=master_key or base64.b64encode(os.urandom(32)).decode(),
        signing_key=base64.b64encode(os.urandom(32)).decode(),
        pool_size=8,
        # Its connections, and its served children's (`<schema>-<role>`), by name.
        application_name=schema,
    )  # type: ignore[call-arg]
    services = bootstrap(settings)
    try:
        yield services
    finally:
        services.close()
        with psycopg.connect(DATABASE_URL, autocommit=True) as conn:
            conn.execute(f"DROP SCHEMA IF EXISTS {schema}, {schema}_rm CASCADE".encode())


@contextmanager
def embedded_kafka() -> Iterator[str]:
    """An embedded broker of its own (memory only), stopped afterwards; yields its address."""
    with tempfile.TemporaryDirectory(prefix="crmledger-bench-") as home:
        try:
            yield embedded_broker(Path(home)).bootstrap
        finally:
            stop_embedded_broker(Path(home))


@contextmanager
def sampling(step: Callable[[], None], every: float) -> Iterator[None]:
    """Call `step` in a thread every `every` seconds while the block runs, and once more."""
    stop = threading.Event()

    def run() -> None:
        while True:
            step()
            if stop.wait(every):
                return

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(5)


def in_threads(work: Callable[[int], None], threads: int) -> float:
    """Run `work(k)` for k in range(threads) at once; the seconds until all ended."""
    started = time.perf_counter()
    pool = [threading.Thread(target=work, args=(k,)) for k in range(threads)]
    for t in pool:
        t.start()
    for t in pool:
        t.join()
    return time.perf_counter() - started


@contextmanager
def connections_held(url: str, prefix: str, every: float = 0.2) -> Iterator[dict[str, int]]:
    """The most connections each application_name starting with `prefix` held at once.

    Sampled from pg_stat_activity every `every` seconds while the block runs;
    the dict fills in as it goes and is complete when the block ends.
    """
    peaks: dict[str, int] = {}
    query = (
        "SELECT application_name, count(*) FROM pg_stat_activity"
        " WHERE application_name LIKE %s GROUP BY 1"
    )
    with psycopg.connect(url, autocommit=True, application_name="bench-sampler") as conn:

        def sample() -> None:
            rows = conn.execute(query.encode(), (prefix + "%",)).fetchall()
            for name, count in rows:
                peaks[name] = max(peaks.get(name, 0), count)

        with sampling(sample, every):
            yield peaks


def timed_commands(
    services: Services, seconds: float, threads: int = 8
) -> tuple[float, list[float]]:
    """Single-activity commands from `threads` threads for `seconds`: per second, each one's ms."""
    ledger = services.ledger
    accounts = [open_account(ledger).id for _ in range(threads * 4)]
    latencies: list[list[float]] = [[] for _ in range(threads)]
    visit = act.Visit("store", "central")
    until = time.perf_counter() + seconds

    def work(k: int) -> None:
        mine, mine_ms = accounts[k::threads], latencies[k]
        while (started := time.perf_counter()) < until:
            ledger.record_activity(mine[len(mine_ms) % len(mine)], visit, datetime.now(UTC), META)
            mine_ms.append((time.perf_counter() - started) * 1000)

    elapsed = in_threads(work, threads)
    done = [ms for mine in latencies for ms in mine]
    return len(done) / elapsed, done


def open_account(ledger: Ledger, save: bool = True) -> CustomerAccount:
    """A fresh account with encrypted personal data."""
    account_id = uuid.uuid4()
    account = CustomerAccount.open(
        external_ref=None,
        segment="gold",
        service_plan="standard",
        channel="store",
        customer=ledger.vault.encrypt(account_id, {"name": "Bench Mark", "email": "b@example.com"}),
        occurred_at=datetime.now(UTC),
        metadata=META,
        account_id=account_id,
    )
    if save:
        ledger.save(account)
    return account


def add_visits(account: CustomerAccount, n: int) -> None:
    """Append `n` visits to the account, unsaved."""
    now = datetime.now(UTC)
    visit = act.Visit("store", "central")
    for _ in range(n):
        apply_activity(account, visit, now, META)


def add_activities(account: CustomerAccount, n: int) -> None:
    """Append `n` mixed activities over the last 90 days, unsaved: what read models see."""
    start = datetime.now(UTC) - timedelta(days=90)
    step = timedelta(days=90) / max(n, 1)
    kinds = (
        act.Purchase(Decimal("120.50"), Decimal("70.25"), "HKD", "central"),
        act.Visit("store", "central"),
        act.Visit("app", "home"),
        act.Purchase(Decimal("35.00"), Decimal("20.00"), "HKD", "web"),
        act.GiveFeedback(4, ""),
    )
    i = 0
    while i < n:
        at = start + step * i
        if i % 10 == 9 and i + 1 < n:
            apply_activity(account, act.OpenInquiry(f"Q{i}", "phone", "billing"), at, META)
            apply_activity(account, act.AnswerInquiry(f"Q{i}", "phone"), at + step / 2, META)
            i += 2
            continue
        apply_activity(account, kinds[i % len(kinds)], at, META)
        i += 1


def fill(ledger: Ledger, events: int, per_account: int = 100) -> int:
    """Store about `events` events, `per_account` to an account, ten accounts a save."""
    written = 0
    while written < events:
        batch = []
        for _ in range(10):
            account = open_account(ledger, save=False)
            add_activities(account, per_account - 1)
            batch.append(account)
        ledger.save(*batch)
        written += 10 * per_account
    return written


# Held by a loading process while it starts its services (see `started`).
_STARTING: Any = None


def _keep(lock: Any) -> None:
    global _STARTING
    _STARTING = lock


@contextmanager
def loaders(processes: int) -> Iterator[ProcessPoolExecutor]:
    """`processes` spawned loading processes, which start their services one at a time."""
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(
        processes, mp_context=context, initializer=_keep, initargs=(context.Lock(),)
    ) as pool:
        yield pool


def started(settings: Settings) -> Services:
    """The services of a loading process (see `loaders`), started one process at a time.

    The event store's CREATE OR REPLACE FUNCTION fails ("tuple concurrently
    updated") when two processes run it at the same moment.
    """
    with _STARTING:
        return bootstrap(settings)


def _fill_share(settings: Settings, events: int, per_account: int) -> int:
    services = started(settings)
    try:
        return fill(services.ledger, events, per_account)
    finally:
        services.close()


def fill_in_processes(
    settings: Settings, events: int, per_account: int = 100, processes: int = 2
) -> int:
    """`fill` from `processes` processes at once, a share each: building events holds a core."""
    with loaders(processes) as pool:
        shares = [
            pool.submit(_fill_share, settings, events // processes, per_account)
            for _ in range(processes)
        ]
        return sum(share.result() for share in shares)


def write_result(name: str, figures: dict[str, Any]) -> Path:
    """Print the figures and write them as JSON to benchmarks/results/<name>.json."""
    RESULTS.mkdir(exist_ok=True)
    record = {
        "benchmark": name,
        "at": datetime.now(UTC).isoformat(),
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
        "figures": figures,
    }
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(record, indent=2))
    width = max(len(k) for k in figures)
    print(f"== {name}")
    for key, value in figures.items():
        shown = (
            f"{value:,.1f}"
            if isinstance(value, float)
            else f"{value:,}"
            if isinstance(value, int)
            else value
        )
        print(f"  {key:<{width}}  {shown}")
    return path
