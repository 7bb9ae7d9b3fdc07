"""Inbound apply rate: M activity messages on a few hundred accounts, applied by the ingest.

.venv/bin/python -m benchmarks.ingest --messages 20000 --accounts 300

The messages (purchases, visits, feedback; keyed by account) are on the
integration topic before the consumer starts. Timed from its first poll to the
last message applied, the group join included (on the embedded broker a join
takes about half the 6 s session timeout); the rate after the join, from the
first records fetched, is given too. Then as many messages again are applied
by one `crmledger serve --only ingest` process per core in one consumer group,
as production scales the ingest (by partitions).
"""

from __future__ import annotations

import argparse
import os
import random
import time
import uuid
from contextlib import ExitStack
from datetime import UTC, datetime
from typing import Any

import orjson
from kafka import KafkaProducer

from benchmarks.common import bench_services, embedded_kafka, open_account, write_result
from benchmarks.server import serving
from consumers.inbound import Ingest
from infra.broker import EMBEDDED_SESSION_TIMEOUT_MS
from infra.topics import INTEGRATION_EVENTS, ensure_topics
from infra.wiring import Services

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


def produce(address: str, keys: list[str], messages: int, seed: int) -> float:
    """Put `messages` activities on the integration topic; returns messages per second."""
    producer = KafkaProducer(bootstrap_servers=address, linger_ms=5, batch_size=256 * 1024)
    rng = random.Random(seed)
    now = datetime.now(UTC).isoformat()
    started = time.perf_counter()
    for n in range(messages):
        key = keys[rng.randrange(len(keys))]
        producer.send(
            INTEGRATION_EVENTS, key=key.encode(), value=activity(key, n, now), headers=HEADERS
        )
    producer.flush()
    producer.close()
    return messages / (time.perf_counter() - started)


def one_consumer(services: Services, address: str, messages: int) -> dict[str, float]:
    """One Ingest in this process, timed from its first poll and from its first records."""
    before = services.ledger.recorder.max_notification_id() or 0
    ingest = Ingest(services, address)
    try:
        first_records: float | None = None
        started = time.perf_counter()
        while ingest.totals.records < messages:
            records = ingest.fetch(500)
            if records and first_records is None:
                first_records = time.perf_counter()
            result = ingest.apply(records)
            ingest.checkpoint(result)
        finished = time.perf_counter()
    finally:
        ingest.close()
    assert first_records is not None
    stored = (services.ledger.recorder.max_notification_id() or 0) - before
    totals = ingest.totals
    assert (totals.applied, totals.dead_letters, totals.duplicates) == (messages, 0, 0)
    assert stored == messages, f"{stored} events stored for {messages} messages"
    return {
        "join_seconds": first_records - started,
        "apply_seconds": finished - first_records,
        "events_per_s": messages / (finished - started),
        "events_per_s_after_join": messages / (finished - first_records),
    }


def consumer_processes(
    services: Services, address: str, keys: list[str], messages: int, n: int
) -> float:
    """`n` ingest processes (`serve --only ingest`) in one group: events per second.

    The processes start first and get two session timeouts to settle the
    group (a member joining later stops everyone for a rebalance); then the
    messages are produced. Timed from the end of producing, which shares the
    cores, to the last event stored; the events stored before are left out.
    """
    before = services.ledger.recorder.max_notification_id() or 0
    table = f"{services.settings.database_schema}.ledger_events"
    count = f"SELECT count(*) FROM {table} WHERE notification_id > %s".encode()
    with ExitStack() as stack, services.pool.connection() as conn:
        conn.autocommit = True
        for _ in range(n):
            stack.enter_context(serving(services, "ingest", kafka=address))
        time.sleep(2 * EMBEDDED_SESSION_TIMEOUT_MS / 1000)
        produce(address, keys, messages, seed=2)
        produced = time.perf_counter()
        (at_produced,) = conn.execute(count, (before,)).fetchone() or (0,)
        deadline = time.monotonic() + 120
        while True:
            (stored,) = conn.execute(count, (before,)).fetchone() or (0,)
            now = time.perf_counter()
            if stored >= messages:
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"only {stored} of {messages} messages applied in 120 s")
            time.sleep(0.02)
    assert stored == messages and at_produced < messages, "the consumers kept up with producing"
    return (messages - at_produced) / (now - produced)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--messages", type=int, default=20_000)
    parser.add_argument("--accounts", type=int, default=300)
    args = parser.parse_args()
    processes = os.cpu_count() or 1

    with bench_services() as services, embedded_kafka() as address:
        ledger = services.ledger
        accounts = [open_account(ledger, save=False) for _ in range(args.accounts)]
        for start in range(0, len(accounts), 100):
            ledger.save(*accounts[start : start + 100])
        ensure_topics(address, services.settings)
        keys = [str(a.id) for a in accounts]

        produced = produce(address, keys, args.messages, seed=1)
        figures: dict[str, Any] = {
            "messages": args.messages,
            "accounts": args.accounts,
            "partitions": services.settings.kafka_partitions,
            "produce_messages_per_s": produced,
            **one_consumer(services, address, args.messages),
        }
        rate = consumer_processes(services, address, keys, args.messages, processes)
        figures["consumer_processes"] = processes
        figures["events_per_s_consumer_processes"] = rate

    write_result("ingest", figures)


if __name__ == "__main__":
    main()
