"""Projection apply rate: account events from Kafka into every read model.

N events are written to the store and published by the relay to an embedded
broker first; the figure is the projector's, from its first record to the
last event applied (its group join excluded). In `make bench` it runs on the
relay benchmark's events, once that benchmark has published them
(`relay --project`), instead of writing and publishing them again.

    .venv/bin/python -m benchmarks.projector --events 100000
"""

from __future__ import annotations

import argparse
import time
from typing import Any

from benchmarks.common import (
    bench_services,
    embedded_kafka,
    fill,
    write_result,
)
from consumers.projector import Projector
from infra.relay import Relay
from infra.topics import ensure_topics
from infra.wiring import Services


def project(services: Services, address: str, events: int) -> dict[str, Any]:
    """Apply the `events` events on the broker's account-events topic: the projector's rate."""
    projector = Projector(services, address, session_timeout_ms=3000, max_records=5000)
    try:
        first: float | None = None
        # Poll back to back: kafka-python drops a join completed between polls.
        while projector.applied < events:
            before = time.perf_counter()
            seen = projector.poll_once(200)
            if seen and first is None:
                first = before
        finished = time.perf_counter()
    finally:
        projector.close()
    assert first is not None
    lag = {s["name"]: s["lag"] for s in services.readmodels.status()}
    assert set(lag.values()) == {0}, lag
    return {
        "events": events,
        "apply_seconds": finished - first,
        "events_per_s": events / (finished - first),
    }


def run(events: int = 100_000, per_account: int = 100) -> dict[str, Any]:
    """Write, publish, then project `events` events; returns the projector's rate."""
    with bench_services() as services, embedded_kafka() as address:
        written = fill(services.ledger, events, per_account)
        ensure_topics(address, services.settings)
        relay = Relay(services, address)
        try:
            relay.publish_pending()
        finally:
            relay.close()
        return project(services, address, written)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=100_000)
    args = parser.parse_args()
    write_result("projector", run(args.events))


if __name__ == "__main__":
    main()
