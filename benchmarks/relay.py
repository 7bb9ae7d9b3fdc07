"""Relay publish rate: N stored events published to an embedded broker as CloudEvents.

.venv/bin/python -m benchmarks.relay --events 100000

Timed: `Relay.publish_pending()` from the first notification read to the last
batch acknowledged and its position stored. Loading the store is timed apart.
With `--project`, the projector benchmark then runs on the events published
(benchmarks/projector.py `project`, its own results), rather than writing and
publishing its own.
"""

from __future__ import annotations

import argparse
import time

from kafka import KafkaConsumer, TopicPartition

from benchmarks.common import (
    bench_services,
    embedded_kafka,
    fill,
    write_result,
)
from benchmarks.projector import project
from infra.relay import Relay, relay_position
from infra.topics import ACCOUNT_EVENTS, ensure_topics


def count_on_topic(address: str, topic: str, partitions: int, expected: int) -> int:
    """How many messages `topic` holds, read to the end (at least `expected`, or a timeout)."""
    consumer = KafkaConsumer(bootstrap_servers=address, enable_auto_commit=False)
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        seen = 0
        deadline = time.monotonic() + 60
        while seen < expected and time.monotonic() < deadline:
            seen += sum(len(batch) for batch in consumer.poll(timeout_ms=500).values())
        return seen
    finally:
        consumer.close(autocommit=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--per-account", type=int, default=100)
    parser.add_argument("--batch-size", type=int, default=1000, help="notifications per batch")
    parser.add_argument("--project", action="store_true", help="then the projector benchmark")
    args = parser.parse_args()

    with bench_services() as services, embedded_kafka() as address:
        ledger = services.ledger
        started = time.perf_counter()
        written = fill(ledger, args.events, args.per_account)
        load_seconds = time.perf_counter() - started

        partitions = services.settings.kafka_partitions
        ensure_topics(address, services.settings)
        relay = Relay(services, address, batch_size=args.batch_size)
        try:
            started = time.perf_counter()
            published = relay.publish_pending()
            publish_seconds = time.perf_counter() - started
        finally:
            relay.close()
        assert (
            published == written
            and relay_position(services) == ledger.recorder.max_notification_id()
        )
        on_topic = count_on_topic(address, ACCOUNT_EVENTS, partitions, written)
        assert on_topic == written, f"{on_topic} of {written} on the topic"
        write_result(
            "relay",
            {
                "events": written,
                "partitions": partitions,
                "relay_batch_size": args.batch_size,
                "load_events_per_s": written / load_seconds,
                "publish_seconds": publish_seconds,
                "publish_events_per_s": written / publish_seconds,
            },
        )
        if args.project:
            write_result("projector", project(services, address, written))


if __name__ == "__main__":
    main()
