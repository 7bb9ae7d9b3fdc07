"""Inbound apply rate: M activity messages on a few hundred accounts, applied by the ingest.

.venv/bin/python -m benchmarks.ingest --messages 20000 --accounts 300

The messages (purchases, visits, feedback; keyed by account) are on the
integration topic before the consumer starts. Timed from its first poll to the
last message applied, the group join included (on the embedded broker a join
takes about half the 6 s session timeout); the rate after the join, from the
first records fetched, is given too.
"""

from __future__ import annotations

import argparse
import random
import time
import uuid
from datetime import UTC, datetime

import orjson
from kafka import KafkaProducer

from benchmarks.common import bench_services, embedded_kafka, open_account, write_result
from consumers.inbound import Ingest
from infra.topics import INTEGRATION_EVENTS, ensure_topics

HEADERS = [("content-type", b"application/cloudevents+json")]


def activity(subject: str, n: int, now: str) -> bytes:
    """An inbound CloudEvent: a purchase, a visit or a feedback, by turns."""
    store = f"store-{n % 12}"
    kind, data = [
        (
            "purchase",
            {"amount": f"{1 + n % 90}.50", "cost": "3", "currency": "HKD", "store": store},
        ),
        ("visit", {"channel": "store", "location": store}),
        ("feedback", {"score": 1 + n % 5}),
    ][n % 3]
    event = {
        "specversion": "1.0",
        "id": uuid.uuid4().hex,
        "source": "bench/pos",
        "type": kind,
        "subject": subject,
        "time": now,
        "data": data,
    }
    return orjson.dumps(event)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--accounts", type=int, default=300)
    args = parser.parse_args()

    with bench_services() as services, embedded_kafka() as address:
        ledger = services.ledger
        accounts = [open_account(ledger, save=False) for _ in range(args.accounts)]
        for start in range(0, len(accounts), 100):
            ledger.save(*accounts[start : start + 100])
        ensure_topics(address, services.settings)

        producer = KafkaProducer(bootstrap_servers=address, linger_ms=5, batch_size=256 * 1024)
        rng = random.Random(1)
        now = datetime.now(UTC).isoformat()
        started = time.perf_counter()
        for n in range(args.messages):
            key = str(accounts[rng.randrange(len(accounts))].id)
            producer.send(
                INTEGRATION_EVENTS, key=key.encode(), value=activity(key, n, now), headers=HEADERS
            )
        producer.flush()
        produce_seconds = time.perf_counter() - started
        producer.close()
        before = ledger.recorder.max_notification_id() or 0

        ingest = Ingest(services, address)
        try:
            first_records: float | None = None
            started = time.perf_counter()
            while ingest.totals.records < args.messages:
                records = ingest.fetch(500)
                if records and first_records is None:
                    first_records = time.perf_counter()
                result = ingest.apply(records)
                ingest.checkpoint(result)
            finished = time.perf_counter()
        finally:
            ingest.close()
        assert first_records is not None
        stored = (ledger.recorder.max_notification_id() or 0) - before
        totals = ingest.totals
        assert (totals.applied, totals.dead_letters, totals.duplicates) == (args.messages, 0, 0)
        assert stored == args.messages, f"{stored} events stored for {args.messages} messages"

    write_result(
        "ingest",
        {
            "messages": args.messages,
            "accounts": args.accounts,
            "partitions": services.settings.kafka_partitions,
            "produce_messages_per_s": args.messages / produce_seconds,
            "join_seconds": first_records - started,
            "apply_seconds": finished - first_records,
            "events_per_s": args.messages / (finished - started),
            "events_per_s_after_join": args.messages / (finished - first_records),
        },
    )


if __name__ == "__main__":
    main()
