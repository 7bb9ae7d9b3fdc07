"""The relay (transactional outbox): the event store's notification log, published to Kafka.

Nothing writes to Kafka inside a request, so the store stays the one source of
truth: the relay publishes each event after its stored position as a CloudEvent
keyed by account id (one partition per account keeps its order), and stores the
new position only after the broker acknowledged the whole batch (send, flush,
check every send, then store). Delivery is at least once; ids are stable, so
consumers skip what they have seen. It LISTENs for the recorder's NOTIFY, so
an event goes out moments after its commit.

The position belongs to a broker cluster: a new cluster id (an embedded broker
restarted, memory only) gets the whole store again. One relay publishes at a
time (an advisory lock); another waits as a standby. A stored event it cannot
read, or cannot send for its size, is replaced by a `crmledger.EventUnreadable`
marker in its place, so one row never stops the relay (docs/design.md, Messages).
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

import psycopg
from kafka import KafkaProducer
from kafka.errors import MessageSizeTooLargeError

from domain.account import event_type_of
from infra.broker import cluster_id, on_broker
from infra.database import connection_options
from infra.event_store import EventLog, LogRow
from infra.outbound_events import stored_message, unreadable_message
from infra.partitioner import KeyPartitioner
from infra.topics import ACCOUNT_EVENTS, CLOUDEVENTS_JSON
from infra.wiring import Services
from infra.worker import Worker

log = logging.getLogger(__name__)

HEADERS = [("content-type", CLOUDEVENTS_JSON)]
LINGER_MS = 5
# How long a batch may wait for the broker's acknowledgement before the relay
# fails and its worker builds it again. An embedded broker that stopped comes
# back on another port, which the old producer would retry in vain, so fail
# sooner there; a cluster keeps its addresses: give it kafka-python's default.
EMBEDDED_DELIVERY_TIMEOUT_MS = 10_000
CLUSTER_DELIVERY_TIMEOUT_MS = 120_000
# What reading a stored event may raise when its bytes are not an event's.
UNREADABLE_ERRORS = (ValueError, TypeError, KeyError, AttributeError, RecursionError)


class Relay:
    """Publishes the notification log after the stored position; `run` follows it."""

    def __init__(
        self,
        services: Services,
        bootstrap: str,
        *,
        topic: str = ACCOUNT_EVENTS,
        batch_size: int = 1000,
        idle_recheck: float = 5.0,
        delivery_timeout_ms: int | None = None,
    ) -> None:
        self._services = services
        self._ledger = services.ledger
        self._pool = services.pool
        self.topic = topic
        self._batch_size = batch_size
        self._idle_recheck = idle_recheck
        self.cluster_id = cluster_id(bootstrap)
        if delivery_timeout_ms is None:
            embedded = services.settings.kafka_bootstrap is None
            delivery_timeout_ms = (
                EMBEDDED_DELIVERY_TIMEOUT_MS if embedded else CLUSTER_DELIVERY_TIMEOUT_MS
            )
        # Every wait for the broker is bounded by this: a relay whose broker went
        # away must fail (and be built again) rather than wait for ever.
        self._wait_s = delivery_timeout_ms / 1000 + 5
        self._producer = KafkaProducer(
            bootstrap_servers=bootstrap,
            client_id="crmledger-relay",
            # Explicit, so a conflicting setting raises instead of silently
            # turning idempotence off.
            enable_idempotence=True,
            acks="all",
            batch_size=256 * 1024,
            linger_ms=LINGER_MS,
            delivery_timeout_ms=delivery_timeout_ms,
            # kafka-python wants a request to fit in the delivery timeout.
            request_timeout_ms=min(30_000, delivery_timeout_ms - LINGER_MS),
        )
        self._log = EventLog(self._ledger)
        self._types: dict[str, str] = {}
        # The default placement (murmur2 of the key), remembered per account and
        # given to each send: the pure-Python hash was a sixth of the relay's time.
        self._placement = KeyPartitioner()
        self.position: int | None = None  # loaded on first use, after the lock
        self.published = 0

    # ---- catching up ------------------------------------------------------------

    def publish_pending(self, stop: threading.Event | None = None) -> int:
        """Publish everything after the stored position; return how many were published.

        `run` calls it while holding the relay lock; called directly (tests, a
        one-off catch-up) it does not take the lock, so no relay may be running.
        """
        if self.position is None:
            self.position = self._load_position()
        total = 0
        send, topic, placement = self._producer.send, self.topic, self._placement
        message = self._message
        while stop is None or not stop.is_set():
            with self._pool.connection() as conn:
                rows = self._log.page(conn, self.position, self._batch_size)
            if not rows:
                break
            partitions = len(self._producer.partitions_for(topic))
            # One creation time for the page: kafka-python would read the clock per record.
            now_ms = int(time.time() * 1000)
            futures = []
            for row in rows:
                key = row[1].encode()
                try:
                    value = message(row)
                except UNREADABLE_ERRORS as e:
                    value = self._unreadable(row, e)
                partition = placement.partition_of(key, partitions)
                try:
                    future = send(
                        topic,
                        value=value,
                        key=key,
                        headers=HEADERS,
                        partition=partition,
                        timestamp_ms=now_ms,
                    )
                except MessageSizeTooLargeError as e:
                    # Too large to publish (an altered row): its marker takes its place.
                    marker = self._unreadable(row, e)
                    future = send(
                        topic,
                        value=marker,
                        key=key,
                        headers=HEADERS,
                        partition=partition,
                        timestamp_ms=now_ms,
                    )
                futures.append(future)
            self._producer.flush(timeout=self._wait_s)
            for future in futures:
                if not future.is_done:  # a split batch may finish after the flush
                    future.get(timeout=self._wait_s)
                if future.failed():
                    raise future.exception  # the error of a send that failed
            self._save_position(rows[-1][0])
            total += len(rows)
            self.published += len(rows)
            if len(rows) < self._batch_size:
                break
        return total

    def _message(self, row: LogRow) -> bytes:
        position, account, version, topic, state = row
        event_type = self._types.get(topic)
        if event_type is None:
            event_type = self._types[topic] = event_type_of(topic)
        return stored_message(position, account, version, event_type, state)

    def _unreadable(self, row: LogRow, error: Exception) -> bytes:
        """The marker published in place of a stored event that cannot be read or sent."""
        from infra.metrics import RELAY_UNREADABLE  # infra.metrics imports this module

        position, account, version, _, state = row
        reason = f"{type(error).__name__}: {error}"
        log.error(
            "the stored event at position %d (account %s, version %d) cannot be published"
            " (%s); published a crmledger.EventUnreadable marker in its place",
            position,
            account,
            version,
            reason,
        )
        RELAY_UNREADABLE.labels(self.topic).inc()
        return unreadable_message(position, account, version, state, reason)

    # ---- following ----------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Publish, then wait for new events and publish them, until `stop` is set."""
        schema = self._services.settings.database_schema
        url, options = self._services.database_url, connection_options(self._services.settings)
        with psycopg.connect(url, autocommit=True, **options) as conn:
            if not self._wait_for_lock(conn, f"crmledger-relay:{schema}:{self.topic}", stop):
                return
            # LISTEN before reading, so no commit falls between the read and the wait.
            self._log.listen(conn)
            self.position = self._load_position()
            while not stop.is_set():
                self.publish_pending(stop)
                self._wait_for_news(conn, stop)

    def close(self) -> None:
        """Close the producer, without waiting long for what it still holds.

        Nothing it holds counts as published: the position moves only after a
        page is acknowledged, so a page cut short is sent again by the next relay.
        A relay that failed because its broker went away would otherwise wait
        here for records kafka-python may never expire.
        """
        self._producer.close(timeout=1)

    def _wait_for_news(self, conn: psycopg.Connection[Any], stop: threading.Event) -> None:
        deadline = time.monotonic() + self._idle_recheck
        while not stop.is_set() and time.monotonic() < deadline:
            # Short waits so a stop is seen quickly; no query runs meanwhile.
            for _ in conn.notifies(timeout=0.2, stop_after=1):
                return

    @staticmethod
    def _wait_for_lock(conn: psycopg.Connection[Any], name: str, stop: threading.Event) -> bool:
        while not stop.is_set():
            row = conn.execute("SELECT pg_try_advisory_lock(hashtext(%s))", (name,)).fetchone()
            if row and row[0]:
                return True
            log.info("another relay publishes %s; standing by", name)
            stop.wait(2.0)
        return False

    # ---- the stored position ---------------------------------------------------------

    def _load_position(self) -> int:
        with self._pool.connection() as conn:
            row = conn.execute(
                "SELECT cluster_id, position FROM relay_positions WHERE topic = %s FOR UPDATE",
                (self.topic,),
            ).fetchone()
            if row is None:
                conn.execute(
                    "INSERT INTO relay_positions (topic, cluster_id, position) VALUES (%s, %s, 0)"
                    " ON CONFLICT (topic) DO NOTHING",
                    (self.topic, self.cluster_id),
                )
                return 0
            stored_cluster, position = row
            if stored_cluster != self.cluster_id:
                log.warning(
                    "Kafka cluster %s is not %s, where %s was published up to %d;"
                    " republishing from the start",
                    self.cluster_id,
                    stored_cluster,
                    self.topic,
                    position,
                )
                conn.execute(
                    "UPDATE relay_positions SET cluster_id = %s, position = 0, updated_at = now()"
                    " WHERE topic = %s",
                    (self.cluster_id, self.topic),
                )
                return 0
            return int(position)

    def _save_position(self, position: int) -> None:
        with self._pool.connection() as conn:
            conn.execute(
                "UPDATE relay_positions SET position = %s, updated_at = now() WHERE topic = %s",
                (position, self.topic),
            )
        self.position = position


def relay_position(services: Services, topic: str = ACCOUNT_EVENTS) -> int | None:
    """How far the relay has published `topic`, or None before its first run."""
    with services.pool.connection() as conn:
        row = conn.execute(
            "SELECT position FROM relay_positions WHERE topic = %s", (topic,)
        ).fetchone()
    return int(row[0]) if row else None


def start_relay(services: Services, bootstrap: str | None = None, **options: Any) -> Worker:
    """Run the relay in a background thread (restarted after failures); stop it with `.stop()`.

    Without `bootstrap`, the configured cluster or the embedded broker is used,
    looked up at every restart: an embedded broker that stopped is started
    again (on a new port, empty, with a new cluster id, so the fresh relay
    republishes the store). Missing topics are created first. `options` go to
    `Relay`.
    """

    build = on_broker(services.settings, bootstrap, lambda at: Relay(services, at, **options))
    return Worker("crmledger-relay", build).start()
