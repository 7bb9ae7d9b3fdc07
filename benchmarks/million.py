"""A million events: load, rebuild rate, verify rate; then, with --memory-accounts, memory per role.

.venv/bin/python -m benchmarks.million --events 1000000 [--memory-accounts 20000]

The ledger is loaded by two processes at once (benchmarks/common.py
`fill_in_processes`: building events holds a core), about 100 events an
account. Timed: rebuilding both read models from the store (its key cache
cold, as in a process of its own), recomputing every hash chain, the digest.
With `--memory-accounts N`, benchmarks/memory.py then measures each role's
resident memory on this same ledger (no second load) and writes its own
results (benchmarks/results/memory.json).
"""

from __future__ import annotations

import argparse
import time

from benchmarks import memory
from benchmarks.common import bench_services, fill_in_processes, write_result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--per-account", type=int, default=100)
    parser.add_argument(
        "--memory-accounts",
        type=int,
        default=0,
        help="then memory per role on this ledger, the API after this many accounts (0: not)",
    )
    args = parser.parse_args()

    with bench_services() as services:
        ledger = services.ledger
        started = time.perf_counter()
        written = fill_in_processes(services.settings, args.events, args.per_account)
        load_seconds = time.perf_counter() - started

        started = time.perf_counter()
        rebuilt = services.readmodels.rebuild("directory", "kpis")
        rebuild_seconds = time.perf_counter() - started
        assert rebuilt.events == written and not rebuilt.parked, rebuilt.parked[:5]

        started = time.perf_counter()
        report = ledger.verify()
        verify_seconds = time.perf_counter() - started
        assert report.ok and report.events == written, report

        started = time.perf_counter()
        ledger.digest()
        digest_seconds = time.perf_counter() - started

        write_result(
            "million",
            {
                "events": written,
                "load_events_per_s": written / load_seconds,
                "load_processes": 2,
                "rebuild_seconds": rebuild_seconds,
                "rebuild_events_per_s": written / rebuild_seconds,
                "verify_seconds": verify_seconds,
                "verify_events_per_s": written / verify_seconds,
                "digest_events_per_s": written / digest_seconds,
            },
        )
        if args.memory_accounts:
            write_result("memory", memory.measure(services, args.memory_accounts))


if __name__ == "__main__":
    main()
