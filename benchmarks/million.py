"""Verify rate: recompute every hash chain and the ledger digest over N stored events.

.venv/bin/python -m benchmarks.verify --events 1000000
"""

from __future__ import annotations

import argparse
import time

from benchmarks.common import bench_services, fill, write_result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--per-account", type=int, default=100)
    args = parser.parse_args()

    with bench_services() as services:
        ledger = services.ledger
        started = time.perf_counter()
        written = fill(ledger, args.events, args.per_account)
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
            "rebuild_seconds": rebuild_seconds,
            "rebuild_events_per_s": written / rebuild_seconds,
            "verify_seconds": verify_seconds,
            "verify_events_per_s": written / verify_seconds,
            "digest_events_per_s": written / digest_seconds,
        },
    )


if __name__ == "__main__":
    main()
