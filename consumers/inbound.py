"""The ingest consumer: crmledger.integration-events applied to the ledger, exactly once.

Each message is decoded (consumers/messages.py) and applied as a Ledger command
(consumers/commands.py) together with a receipt of its (topic, partition,
offset) and its CloudEvent (source, id), in the same PostgreSQL transaction as
the events it produced (infra/inbound_receipts.py explains how). So the
database, not Kafka, knows how far each partition was applied:

- on assignment (start, rebalance) the consumer seeks each partition to the
  offset stored in PostgreSQL; Kafka's committed offset is only used for a
  partition the database has never seen;
- a message redelivered after a crash between the database commit and the
  Kafka offset commit is therefore not read again, and were it read (a zombie
  consumer during a rebalance, a publisher that sent an event twice) the
  receipt's guards refuse it and it counts as a duplicate.

Transactions: activities of a poll batch are saved together, one transaction
for all of them, and the rest one transaction each (consumers/inbound_batch.py
applies a poll batch).

No single message stops the consumer. A message that cannot be applied, for
whatever reason but an outage (not JSON, not a valid event, refused by the
ledger, refused by PostgreSQL, a bug it meets), goes to the dead-letter topic
with its reason, whatever its size: one too large for the broker goes as a
truncated copy (consumers/dead_letters.py decides and sends). A failure of the
infrastructure (PostgreSQL unreachable or timed out, the broker away) is not
the message's: it ends the run, the worker backs off and builds the consumer
again, and it resumes from stored offsets; no good message is parked for it.

A dead letter is acknowledged by the broker before any later message's receipt
commits, since a receipt moves the stored offset past it; once acknowledged it
is recorded in PostgreSQL (infra/inbound_receipts.py), so a run that read it
again after a crash counts it as a duplicate instead of sending it twice. A
closing consumer (also after a failed run) settles and records the dead
letters it still has in flight. Only a crash between the acknowledgement and
that record can send one twice.

The checkpoint of a poll batch: every message applied or dead-lettered; the
dead letters acknowledged and recorded; the stored offsets moved past the dead
letters and duplicates at the end of the batch; then the offsets committed to
Kafka.

The consumer also prunes CloudEvent id receipts older than
CRMLEDGER_INBOUND_RECEIPT_DAYS (default 7) when it starts and every hour: the
window within which a message published again is recognised as applied.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from kafka import TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from kafka.consumer.subscription_state import ConsumerRebalanceListener
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata

from consumers.dead_letter_outbox import DeadLetterOutbox
from consumers.inbound_batch import BatchApplier, BatchResult
from infra.broker import cluster_id, group_consumer, kafka_bootstrap
from infra.inbound_receipts import advance_offsets, prune_receipts, stored_offsets
from infra.metrics import forget_ingest_lag, set_ingest_lag
from infra.topics import INTEGRATION_EVENTS, ensure_topics
from infra.wiring import Services
from infra.worker import Worker

log = logging.getLogger(__name__)

GROUP = "crmledger-ingest"
# How often a running consumer prunes old CloudEvent id receipts.
PRUNE_INTERVAL_S = 3600.0


class _SeekToStoredOffsets(ConsumerRebalanceListener):  # type: ignore[misc]  # untyped
    """On assignment, start each partition where PostgreSQL says it was applied up to."""

    def __init__(self, ingest: Ingest) -> None:
        self._ingest = ingest

    def on_partitions_assigned(self, assigned: Any) -> None:
        # One quick indexed read; it runs on the consumer's IO loop.
        self._ingest.seek_to_stored(assigned)

    def on_partitions_revoked(self, revoked: Any) -> None:
        # Nothing to save: the positions are in PostgreSQL with the events.
        # Their lag is now the new owner's to report.
        self._ingest.forget_lag(revoked)


class Ingest:
    """Consumes the integration topic in group crmledger-ingest and applies it."""

    def __init__(
        self,
        services: Services,
        bootstrap: str,
        *,
        group: str = GROUP,
        topic: str = INTEGRATION_EVENTS,
        session_timeout_ms: int | None = None,
        max_records: int = 2000,
    ) -> None:
        self._ledger = services.ledger
        self._pool = services.pool
        self.group = group
        self.topic = topic
        self.cluster_id = cluster_id(bootstrap)
        self.totals = BatchResult()
        self._receipt_days = services.settings.inbound_receipt_days
        self._next_prune = 0.0
        self._dead_letters = DeadLetterOutbox(self._pool, bootstrap, self.cluster_id, group)
        self._batches = BatchApplier(
            self._ledger, self._pool, self._dead_letters, self.cluster_id, group
        )
        self._consumer = group_consumer(
            services.settings,
            bootstrap,
            client_id="crmledger-ingest",
            group=group,
            max_records=max_records,
            session_timeout_ms=session_timeout_ms,
        )
        self._consumer.subscribe([topic], listener=_SeekToStoredOffsets(self))

    # ---- the loop -----------------------------------------------------------------

    def run(self, stop: threading.Event) -> None:
        """Consume and apply until `stop` is set."""
        # Poll back to back, with no sleep: kafka-python 3.0.12 drops a group
        # join that completes while no poll() waits for it, and joins again.
        while not stop.is_set():
            self.poll_once(timeout_ms=500)
            if time.monotonic() >= self._next_prune:
                self.prune()

    def prune(self) -> int:
        """Delete CloudEvent id receipts older than the configured window; return how many."""
        self._next_prune = time.monotonic() + PRUNE_INTERVAL_S
        pruned = prune_receipts(self._pool, self._receipt_days)
        if pruned:
            log.info("pruned %d inbound receipts older than %g days", pruned, self._receipt_days)
        return pruned

    def poll_once(self, timeout_ms: int = 500) -> BatchResult:
        """Fetch one batch, apply it, checkpoint it and report the lag left."""
        result = self.apply(self.fetch(timeout_ms))
        self.checkpoint(result)
        self.record_lag()
        return result

    def fetch(self, timeout_ms: int = 500) -> list[ConsumerRecord]:
        """The next batch of records, in order within each partition."""
        batches = self._consumer.poll(timeout_ms=timeout_ms)
        return [record for records in batches.values() for record in records]

    def apply(self, records: list[ConsumerRecord]) -> BatchResult:
        """Apply a batch of records; dead letters may still await acknowledgement."""
        return self._batches.apply(records)

    def checkpoint(self, result: BatchResult) -> None:
        """Acknowledge dead letters, store offsets, then commit them to Kafka."""
        if not result.next_offsets:
            return
        self._dead_letters.settle()
        advance_offsets(
            self._pool,
            self.cluster_id,
            self.group,
            {(tp.topic, tp.partition): o for tp, o in result.next_offsets.items()},
        )
        try:
            self._consumer.commit(
                {tp: OffsetAndMetadata(o, "", -1) for tp, o in result.next_offsets.items()}
            )
        except KafkaError as e:
            # PostgreSQL holds the positions that count; Kafka's serve lag monitoring.
            log.warning("could not commit offsets to Kafka: %s", e)
        self.totals.add(result)

    def close(self, *, commit: bool = True) -> None:
        """Settle and record the dead letters in flight, leave the group, close the clients."""
        self._dead_letters.close()
        self._consumer.close(autocommit=commit)

    # ---- positions ------------------------------------------------------------------

    def assignment(self) -> set[TopicPartition]:
        """The partitions this consumer holds now (empty while the group rebalances)."""
        return set(self._consumer.assignment() or ())

    def record_lag(self) -> None:
        """Set the lag metric of each held partition: highwater minus position."""
        lags = []
        for tp in self.assignment():
            # Known once a fetch answered for the partition; until then, no figure.
            highwater = self._consumer.highwater(tp)
            position = self._consumer.position(tp, timeout_ms=0)
            if highwater is not None and position is not None:
                lags.append((tp.partition, max(highwater - position, 0)))
        set_ingest_lag(self.group, self.topic, lags)

    def forget_lag(self, partitions: Any) -> None:
        """Drop the lag metric of partitions given up in a rebalance."""
        forget_ingest_lag(self.group, self.topic, [tp.partition for tp in partitions])

    def seek_to_stored(self, partitions: Any) -> None:
        """Seek each of these partitions to its stored offset, when one is stored."""
        stored = stored_offsets(self._pool, self.cluster_id, self.group, self.topic)
        for tp in partitions:
            if tp.topic == self.topic and tp.partition in stored:
                self._consumer.seek(tp, stored[tp.partition])


def start_ingest(services: Services, bootstrap: str | None = None, **options: Any) -> Worker:
    """Run the ingest consumer in a background thread (restarted after failures).

    Stop it with `.stop()`. Without `bootstrap`, the configured cluster or the
    embedded broker is used, looked up at every restart: an embedded broker
    that stopped is started again, on a new port. Missing topics are created
    first. `options` go to `Ingest` (group, session_timeout_ms, max_records).
    """

    def factory() -> Ingest:
        address = bootstrap or kafka_bootstrap(services.settings)
        ensure_topics(address, services.settings)
        return Ingest(services, address, **options)

    return Worker("crmledger-ingest", factory).start()
