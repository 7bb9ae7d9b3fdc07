"""How one poll batch of the ingest is applied: batched, split, dead-lettered.

Activities of a poll batch are saved together, one transaction for all of them
(`Ledger.record_batch` with every message's receipt); openings, updates and
closings take one transaction each (the activities collected before one are
saved first, so each account's order holds). A message the ledger refuses is
split out of the batch; when the batch save itself fails (another writer
changed an account meanwhile, or a receipt shows a message applied before),
its messages are applied one by one. A message that cannot be applied goes to
the dead-letter outbox; an infrastructure failure is raised, to end the run.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

from eventsourcing.persistence import IntegrityError
from kafka import TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from psycopg_pool import ConnectionPool

from consumers.commands import ACTIVITY_TYPES, ActivityBatch, apply_event
from consumers.dead_letter_outbox import DeadLetterOutbox
from consumers.dead_letters import dead_letter_reason, error_detail, is_infrastructure
from consumers.messages import Activity, InboundEvent, parse
from domain.errors import LedgerError
from infra.inbound_receipts import AlreadyApplied, Receipt, applied_events
from infra.ledger_store import PostgresLedger

log = logging.getLogger(__name__)


@dataclass
class BatchResult:
    """What one poll batch did, and where each of its partitions is up to."""

    applied: int = 0
    duplicates: int = 0
    dead_letters: int = 0
    next_offsets: dict[TopicPartition, int] = field(default_factory=dict)

    @property
    def records(self) -> int:
        """How many records were handled."""
        return self.applied + self.duplicates + self.dead_letters

    def add(self, other: BatchResult) -> None:
        """Add another batch's counts to these."""
        self.applied += other.applied
        self.duplicates += other.duplicates
        self.dead_letters += other.dead_letters


class BatchApplier:
    """Applies poll batches to the ledger, each message with its receipt."""

    def __init__(
        self,
        ledger: PostgresLedger,
        pool: ConnectionPool,
        dead_letters: DeadLetterOutbox,
        cluster_id: str,
        group: str,
    ) -> None:
        self._ledger = ledger
        self._pool = pool
        self._dead_letters = dead_letters
        self.cluster_id = cluster_id
        self.group = group

    def apply(self, records: list[ConsumerRecord]) -> BatchResult:
        """Apply a batch of records; dead letters may still await acknowledgement."""
        result = BatchResult()
        events: list[InboundEvent | Exception] = []
        for record in records:
            try:
                events.append(parse(record.value, record.headers))
            except Exception as e:  # NotJSON, pydantic's ValidationError, or a bug: parked
                events.append(e)
        self._dead_letters.start_batch(records)
        done = self._applied(events)
        batch = ActivityBatch(self._ledger)
        activities = [e for e in events if isinstance(e, Activity) and (e.source, e.id) not in done]
        self._preload(batch, activities)
        for record, event in zip(records, events, strict=True):
            result.next_offsets[TopicPartition(record.topic, record.partition)] = record.offset + 1
            if isinstance(event, Exception):
                self._dead_letter(record, event, result)
                continue
            key = (event.source, event.id)
            if key in batch.keys:  # a copy of a message not saved yet: settle that first
                self._save(batch, done, result)
            if key in done:
                result.duplicates += 1
            elif event.type in ACTIVITY_TYPES:
                self._collect(batch, record, event, done, result)
            else:
                self._save(batch, done, result)
                batch.forget(event.account_id)
                self._apply_one(record, event, done, result)
        self._save(batch, done, result)
        return result

    def _receipt(self, record: ConsumerRecord, event: InboundEvent) -> Receipt:
        return Receipt(
            self.cluster_id,
            self.group,
            record.topic,
            record.partition,
            record.offset,
            event.source,
            event.id,
        )

    def _applied(self, events: list[InboundEvent | Exception]) -> set[tuple[str, str]]:
        """Which events' (source, id) were applied before; an event the lookup fails on
        becomes its error, to be parked."""
        keys = [(e.source, e.id) for e in events if not isinstance(e, Exception)]
        try:
            return applied_events(self._pool, keys)
        except Exception as e:
            if is_infrastructure(e):
                raise
        # One event's source or id the lookup cannot take: find it, one by one.
        done: set[tuple[str, str]] = set()
        for i, event in enumerate(events):
            if isinstance(event, Exception):
                continue
            try:
                done |= applied_events(self._pool, [(event.source, event.id)])
            except Exception as e:
                if is_infrastructure(e):
                    raise
                events[i] = e
        return done

    def _preload(self, batch: ActivityBatch, activities: list[Activity]) -> None:
        try:
            batch.preload(e.account_id for e in activities)
        except Exception as e:
            if is_infrastructure(e):
                raise
            # An account that cannot be loaded: load them one by one instead,
            # so only that account's messages are parked.
            log.warning("could not load the batch's accounts together: %s", e)
            batch.loaded = {}

    def _collect(
        self,
        batch: ActivityBatch,
        record: ConsumerRecord,
        event: Any,
        done: set[tuple[str, str]],
        result: BatchResult,
    ) -> None:
        try:
            batch.add(record, event, self._receipt(record, event))
        except LedgerError as e:
            self._dead_letter(record, e, result)
        except Exception as e:
            if is_infrastructure(e):
                raise
            # The batch may hold a half-changed account: apply it all one by one.
            self._one_by_one(batch, done, result)
            self._apply_one(record, event, done, result)

    def _save(self, batch: ActivityBatch, done: set[tuple[str, str]], result: BatchResult) -> None:
        if not batch:
            return
        self._dead_letters.settle()
        try:
            batch.save()
        except (AlreadyApplied, IntegrityError):
            self._one_by_one(batch, done, result)
            return
        except Exception as e:
            if is_infrastructure(e):
                raise
            # One of its messages cannot be stored: find it, one by one.
            self._one_by_one(batch, done, result)
            return
        done.update(batch.keys)
        result.applied += len(batch.take())

    def _one_by_one(
        self, batch: ActivityBatch, done: set[tuple[str, str]], result: BatchResult
    ) -> None:
        for record, event, _ in batch.take():
            self._apply_one(record, event, done, result)

    def _apply_one(
        self,
        record: ConsumerRecord,
        event: InboundEvent,
        done: set[tuple[str, str]],
        result: BatchResult,
    ) -> None:
        self._dead_letters.settle()
        try:
            apply_event(self._ledger, event, self._receipt(record, event))
        except AlreadyApplied:
            result.duplicates += 1
        except Exception as e:
            # Not applied: a later copy gets its own chance, as in a later batch.
            self._dead_letter(record, e, result)
            return
        else:
            result.applied += 1
        done.add((event.source, event.id))

    def _dead_letter(self, record: ConsumerRecord, error: Exception, result: BatchResult) -> None:
        reason = dead_letter_reason(error)
        if reason is None:
            raise error  # not the message's fault: retry it after a restart
        if reason == "unexpected_error":
            log.error(
                "%s[%d]@%d met an unexpected error; parking it",
                record.topic,
                record.partition,
                record.offset,
                exc_info=error,
            )
        if self._dead_letters.park(record, reason, error_detail(error)):
            result.dead_letters += 1
        else:
            result.duplicates += 1  # parked by a run that stopped before storing its offsets
