"""The ingest's dead letters on their way: sent, acknowledged, recorded, never sent twice.

The order for each dead letter: send it (truncated if too large for the broker,
consumers/dead_letters.py); at the next settlement wait for the broker's
acknowledgement, send again truncated what the broker refused for its size,
and record every acknowledged one in PostgreSQL (infra/dead_lettered.py). The
ingest settles before any later receipt or stored offset can move past a dead
letter, so an offset never passes a dead letter the broker does not hold.

A message read again (a run that failed before storing its offsets) whose
dead letter is recorded is not sent again: `park` says so and the ingest
counts it as a duplicate. The records of a poll batch are looked up once, at
its first dead letter, so a batch without one costs nothing.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Sequence

from kafka import KafkaProducer
from kafka.consumer.fetcher import ConsumerRecord
from psycopg_pool import ConnectionPool

from consumers.dead_letters import (
    Refusal,
    SentLetter,
    dead_letter,
    dead_letter_limit,
    refused_for_size,
    send_truncated,
)
from infra.dead_lettered import dead_lettered, record_dead_letters

log = logging.getLogger(__name__)

# How long acknowledging dead letters may take before the run fails.
DEAD_LETTER_WAIT_S = 30.0
# How long a closing consumer waits for the dead letters it still holds.
CLOSING_WAIT_S = 5.0


class DeadLetterOutbox:
    """One consumer's dead letters: `park` sends, `settle` waits and records, `close` ends."""

    def __init__(self, pool: ConnectionPool, bootstrap: str, cluster_id: str, group: str) -> None:
        self._pool = pool
        self._cluster_id = cluster_id
        self._group = group
        self._producer = KafkaProducer(
            bootstrap_servers=bootstrap,
            client_id="crmledger-ingest-dlq",
            enable_idempotence=True,
            acks="all",
            linger_ms=5,
        )
        self._limit = dead_letter_limit(bootstrap)
        self._unsettled: list[SentLetter] = []
        # Of the batch being applied: its messages parked before (by an earlier
        # run), looked up at its first dead letter.
        self._sent_before: set[tuple[str, int, int]] | None = None
        self._spans: dict[tuple[str, int], tuple[int, int]] = {}

    def start_batch(self, records: Sequence[ConsumerRecord]) -> None:
        """Note the offsets of the poll batch about to be applied."""
        self._sent_before, self._spans = None, _spans(records)

    def park(self, record: ConsumerRecord, reason: str, detail: str) -> bool:
        """Send the record to the dead-letter topic; False when an earlier run parked it already."""
        if self._sent_before is None:
            self._sent_before = dead_lettered(
                self._pool, self._cluster_id, self._group, self._spans
            )
        if (record.topic, record.partition, record.offset) in self._sent_before:
            return False
        refusal = Refusal(record, reason, detail)
        self._unsettled.append(dead_letter(self._producer, refusal, self._limit))
        return True

    def settle(self, wait_s: float = DEAD_LETTER_WAIT_S) -> None:
        """Wait until every dead letter sent so far is acknowledged, and record them (or raise).

        A dead letter the broker refused for its size is sent again truncated.
        """
        if not self._unsettled:
            return
        unsettled, self._unsettled = self._unsettled, []
        self._wait_for(unsettled, wait_s)
        resent = []
        for i, letter in enumerate(unsettled):
            if refused_for_size(letter):
                unsettled[i] = send_truncated(self._producer, letter, self._limit)
                resent.append(unsettled[i])
        self._wait_for(resent, wait_s)
        sent = []
        for letter in unsettled:
            meta = letter.future.get(timeout=0)  # raises the error of a dead letter that failed
            r = letter.record
            sent.append(
                (r.topic, r.partition, r.offset, letter.reason, meta.partition, meta.offset)
            )
        record_dead_letters(self._pool, self._cluster_id, self._group, sent)

    def close(self) -> None:
        """Settle and record what is still in flight (briefly), then close the producer.

        A run that failed may have dead letters in flight: recorded now, the
        next run, which reads their messages again, does not send them twice.
        """
        try:
            self.settle(CLOSING_WAIT_S)
        except Exception as e:
            log.warning("could not settle the dead letters in flight: %s", e)
        self._producer.close(timeout=1)

    def _wait_for(self, letters: list[SentLetter], wait_s: float) -> None:
        if not letters:
            return
        # Bounded: kafka-python may never expire a batch whose broker went away,
        # and a run that fails is built again and resumes from stored offsets.
        self._producer.flush(timeout=wait_s)
        for letter in letters:
            if not letter.future.is_done:  # a split batch may finish after the flush
                # A failure is read from the future afterwards.
                with contextlib.suppress(Exception):
                    letter.future.get(timeout=wait_s)


def _spans(records: Sequence[ConsumerRecord]) -> dict[tuple[str, int], tuple[int, int]]:
    """The first and last offset of each partition in a batch."""
    spans: dict[tuple[str, int], tuple[int, int]] = {}
    for r in records:
        key = (r.topic, r.partition)
        first, last = spans.get(key, (r.offset, r.offset))
        spans[key] = (min(first, r.offset), max(last, r.offset))
    return spans
