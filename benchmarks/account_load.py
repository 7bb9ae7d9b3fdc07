"""Loading an account with 10,000 events: now, at a version, and as of a moment (p50, p99).

.venv/bin/python -m benchmarks.account_load
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime

from benchmarks.common import add_visits, bench_services, open_account, write_result


def timed(fn: Callable[[], object], runs: int = 200) -> tuple[float, float]:
    """p50 and p99 of `fn` in milliseconds."""
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        fn()
        samples.append((time.perf_counter() - started) * 1000)
    samples.sort()
    return statistics.median(samples), samples[int(len(samples) * 0.99) - 1]


def main() -> None:
    with bench_services() as services:
        ledger = services.ledger
        account = open_account(ledger)
        for _ in range(20):
            add_visits(account, 500 if account.version > 1 else 499)
            ledger.save(account)
        middle = datetime.now(UTC)
        add_visits(account, 1)
        ledger.save(account)
        cached_p50, _ = timed(lambda: ledger.account(account.id))
        # Asking for a version skips the cache: the load from snapshot plus newer events.
        last = account.version
        uncached_p50, uncached_p99 = timed(lambda: ledger.account(account.id, version=last))
        version_p50, _ = timed(lambda: ledger.account(account.id, version=9_950))
        as_of_p50, as_of_p99 = timed(lambda: ledger.account(account.id, as_of=middle))

    write_result(
        "account_load",
        {
            "events": account.version,
            "current_cached_p50_ms": cached_p50,
            "current_from_snapshot_p50_ms": uncached_p50,
            "current_from_snapshot_p99_ms": uncached_p99,
            "at_version_p50_ms": version_p50,
            "as_of_p50_ms": as_of_p50,
            "as_of_p99_ms": as_of_p99,
        },
    )


if __name__ == "__main__":
    main()
