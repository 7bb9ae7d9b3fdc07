"""Fixtures for the Kafka tests: a real embedded Tansu broker and the real PostgreSQL.

Each test gets its own broker (it starts in milliseconds), its own home
directory and its own PostgreSQL schema, so tests never see each other's
messages or events.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord

from domain.account import CustomerAccount
from infra.broker import kafka_bootstrap, stop_embedded_broker
from infra.settings import Settings
from infra.topics import INTEGRATION_EVENTS, ensure_topics
from infra.wiring import Services, bootstrap
from tests.support import drop_schema, make_settings

# Short, so a consumer joins its group in about a second on the embedded broker.
SESSION_TIMEOUT_MS = 3000

Publish = Callable[..., None]


@dataclass
class Stack:
    """One test's ledger, broker and settings."""

    settings: Settings
    services: Services
    bootstrap: str

    @property
    def home(self) -> Path:
        return Path(self.settings.home)


@contextmanager
def stacked(tmp_path: Path, partitions: int) -> Iterator[Stack]:
    """A ledger on a fresh schema and an embedded broker with the ledger's topics."""
    settings = make_settings(home=tmp_path / "home", kafka_partitions=partitions)
    services = bootstrap(settings)
    address = kafka_bootstrap(settings)
    ensure_topics(address, settings)
    try:
        yield Stack(settings, services, address)
    finally:
        stop_embedded_broker(settings.home)
        services.close()
        drop_schema(settings.database_schema)


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    """A ledger on a fresh schema and an embedded broker with the ledger's topics."""
    with stacked(tmp_path, partitions=3) as made:
        yield made


# ---- the ledger side ------------------------------------------------------------------


def meta(**extra: Any) -> dict[str, Any]:
    """Event metadata as the API would give it."""
    return {
        "actor": "tester",
        "department": "customer_service",
        "reason": None,
        "correlation_id": "corr-1",
        "causation_id": None,
        "source": "api",
        **extra,
    }


def open_account(services: Services, name: str = "Ann Lee") -> CustomerAccount:
    """Open an account through the ledger, with personal data to encrypt."""
    return services.ledger.open_account(
        external_ref=f"C-{uuid.uuid4().hex[:10]}",
        segment="gold",
        service_plan="standard",
        channel="store",
        customer={"name": name, "email": "ann.lee@example.com"},
        occurred_at=datetime.now(UTC),
        meta=meta(),
    )


# ---- the Kafka side --------------------------------------------------------------------


def read_topic(
    address: str, topic: str, count: int, timeout: float = 10.0, partitions: int = 3
) -> list[ConsumerRecord]:
    """Every record of `topic` from the beginning, once at least `count` arrived.

    Reads without a group (assigned partitions), so no group join slows it down;
    it waits a little after reaching `count` to catch any record too many.
    """
    consumer = KafkaConsumer(bootstrap_servers=address, enable_auto_commit=False)
    try:
        tps = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        records: list[ConsumerRecord] = []
        deadline = time.monotonic() + timeout
        settle: float | None = None
        while time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=100).values():
                records.extend(batch)
            if len(records) >= count:
                settle = settle or time.monotonic() + 0.3
                if time.monotonic() >= settle:
                    break
        return records
    finally:
        consumer.close(autocommit=False)


def cloud_event(
    type: str,
    subject: str,
    data: dict[str, Any],
    *,
    id: str | None = None,
    source: str = "pos/store-12",
    **extensions: Any,
) -> dict[str, Any]:
    """An inbound CloudEvent as an integrating system would publish it."""
    return {
        "specversion": "1.0",
        "id": id or uuid.uuid4().hex,
        "source": source,
        "type": type,
        "subject": subject,
        "time": datetime.now(UTC).isoformat(),
        "datacontenttype": "application/json",
        "data": data,
        **extensions,
    }


@pytest.fixture
def publish(stack: Stack) -> Iterator[Callable[..., None]]:
    """Publish inbound messages (CloudEvent dicts or raw bytes) in order, keyed alike."""
    producer = KafkaProducer(bootstrap_servers=stack.bootstrap, linger_ms=0)

    def publish_all(*messages: dict[str, Any] | bytes, key: bytes = b"customer-1") -> None:
        for m in messages:
            send(producer, key, m)
        producer.flush()

    yield publish_all
    producer.close()


def send(producer: KafkaProducer, key: bytes, message: dict[str, Any] | bytes) -> None:
    """Send one inbound message (a CloudEvent dict, or raw bytes) as publishers do."""
    value = message if isinstance(message, bytes) else orjson.dumps(message)
    producer.send(
        INTEGRATION_EVENTS,
        key=key,
        value=value,
        headers=[("content-type", b"application/cloudevents+json")],
    )


def wait_until(check: Callable[[], bool], timeout: float = 15.0, every: float = 0.05) -> None:
    """Wait until `check()` is true, or fail the test."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(every)
    raise AssertionError(f"not true within {timeout}s: {check}")
