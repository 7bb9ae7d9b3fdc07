"""Dead letters listed, and replayed to the integration topic once their cause is fixed.

A replay sends a dead letter back to crmledger.integration-events as it first
arrived: its key, its value and its own headers, without the ones the dead
letter added (error, error_detail, source_*). The ingest consumer then treats
it as any other message: applied once if it now passes, or parked again as a
new dead letter if it still fails. An id applied meanwhile by another copy is a
duplicate there, never applied twice. A truncated dead letter (a message too
large for the broker, consumers/dead_letters.py) is never replayed: its value
is not the original; the report counts it apart.

Each replayed dead letter is recorded in PostgreSQL, keyed by broker cluster,
partition and offset (an embedded broker starts at offset 0 with a new cluster
id), so a dead letter is replayed at most once. The order of a replay batch:
claim the rows in one transaction (a replay running at the same moment waits
on them, then skips them), send, flush, check every send, record where each
went, commit. A failed send rolls the claims back. Only a crash between the
broker's acknowledgement and the commit can send a letter a second time: the
ingest's CloudEvent id check makes that copy a duplicate if the first applied,
or a second dead letter if it failed again.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord
from psycopg_pool import ConnectionPool

from consumers.dead_letters import DEAD_LETTER_HEADERS, TRUNCATION_HEADERS
from infra.broker import cluster_id
from infra.topics import INTEGRATION_DLQ, INTEGRATION_EVENTS
from infra.wiring import Services

BATCH = 500

_CLAIM = """
INSERT INTO dead_letter_replays (cluster_id, partition, kafka_offset, error)
VALUES (%s, %s, %s, %s)
ON CONFLICT DO NOTHING
RETURNING 1
"""

_SENT = """
UPDATE dead_letter_replays SET replayed_partition = %s, replayed_offset = %s
WHERE cluster_id = %s AND partition = %s AND kafka_offset = %s
"""


@dataclass(frozen=True)
class DeadLetter:
    """A message on the dead-letter topic, and whether it was replayed."""

    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...]
    replayed_at: datetime | None = None
    # Where the replay went on the integration topic: (partition, offset).
    replayed_to: tuple[int, int] | None = None

    def header(self, name: str) -> str | None:
        """The last header of that name, decoded; None when absent."""
        for key, value in reversed(self.headers):
            if key == name:
                return value.decode(errors="replace")
        return None

    @property
    def error(self) -> str:
        """The dead-letter reason (consumers/dead_letters.py)."""
        return self.header("error") or ""

    @property
    def error_detail(self) -> str:
        """What went wrong, in one line."""
        return self.header("error_detail") or ""

    @property
    def truncated(self) -> bool:
        """True for a truncated copy of a message too large for the broker: not replayable."""
        return self.header("truncated") == "true"

    @property
    def source(self) -> str:
        """Where the message was first read: topic[partition]@offset."""
        topic, partition = self.header("source_topic"), self.header("source_partition")
        return f"{topic}[{partition}]@{self.header('source_offset')}"

    def original_headers(self) -> list[tuple[str, bytes]]:
        """The message's own headers, as it first arrived."""
        headers = list(self.headers)
        if self.truncated:
            ours = {
                *DEAD_LETTER_HEADERS,
                *TRUNCATION_HEADERS,
                "original_key_size",
                "dropped_headers",
            }
            return [(name, value) for name, value in headers if name not in ours]
        trailing = tuple(name for name, _ in headers[-len(DEAD_LETTER_HEADERS) :])
        if trailing == DEAD_LETTER_HEADERS:
            # The usual case: ours were appended last, so a publisher's own
            # header that happens to share a name survives.
            return headers[: -len(DEAD_LETTER_HEADERS)]
        return [(name, value) for name, value in headers if name not in DEAD_LETTER_HEADERS]


@dataclass(frozen=True)
class ReplayReport:
    """What a replay did."""

    replayed: list[DeadLetter]
    # Replayed before, or by another replay running at the same moment.
    skipped: int
    # Truncated copies of messages too large for the broker: never replayed.
    truncated: int = 0


def list_dead_letters(
    services: Services, bootstrap: str, timeout: float = 30.0
) -> list[DeadLetter]:
    """Every dead letter on the topic now, by partition and offset, with its replay if any."""
    cluster = cluster_id(bootstrap)
    records = _read_all(bootstrap, INTEGRATION_DLQ, timeout)
    with services.pool.connection() as conn:
        rows = conn.execute(
            "SELECT partition, kafka_offset, replayed_at, replayed_partition, replayed_offset"
            " FROM dead_letter_replays WHERE cluster_id = %s",
            (cluster,),
        ).fetchall()
    replays = {(int(p), int(o)): (at, rp, ro) for p, o, at, rp, ro in rows}
    letters = []
    for r in records:
        at, to_partition, to_offset = replays.get((r.partition, r.offset), (None, None, None))
        to = (int(to_partition), int(to_offset)) if to_offset is not None else None
        letters.append(
            DeadLetter(r.partition, r.offset, r.key, r.value, tuple(r.headers or ()), at, to)
        )
    return letters


def replay_dead_letters(
    services: Services,
    bootstrap: str,
    *,
    error: str | None = None,
    at: tuple[int, int] | None = None,
) -> ReplayReport:
    """Send dead letters not replayed before to the integration topic.

    Only `error`'s, if given; only the one at `at` (partition, offset), if given.
    """
    chosen = [
        letter
        for letter in list_dead_letters(services, bootstrap)
        if (error is None or letter.error == error)
        and (at is None or (letter.partition, letter.offset) == at)
    ]
    whole = [letter for letter in chosen if not letter.truncated]
    letters = [letter for letter in whole if letter.replayed_at is None]
    cluster = cluster_id(bootstrap)
    producer = KafkaProducer(
        bootstrap_servers=bootstrap,
        client_id="crmledger-dlq-replay",
        enable_idempotence=True,
        acks="all",
    )
    replayed: list[DeadLetter] = []
    try:
        for start in range(0, len(letters), BATCH):
            replayed.extend(
                _replay_batch(services.pool, producer, cluster, letters[start : start + BATCH])
            )
    finally:
        producer.close(timeout=10)
    return ReplayReport(replayed, len(whole) - len(replayed), len(chosen) - len(whole))


def _replay_batch(
    pool: ConnectionPool, producer: KafkaProducer, cluster: str, letters: Sequence[DeadLetter]
) -> list[DeadLetter]:
    # One transaction: the claims commit only once every send is acknowledged.
    with pool.connection() as conn:
        claimed = [
            letter
            for letter in letters
            if conn.execute(
                _CLAIM, (cluster, letter.partition, letter.offset, letter.error)
            ).fetchone()
        ]
        futures = [
            producer.send(
                INTEGRATION_EVENTS,
                key=letter.key,
                value=letter.value,
                headers=letter.original_headers(),
            )
            for letter in claimed
        ]
        producer.flush()
        sent = [future.get(timeout=0) for future in futures]  # raises: the claims roll back
        conn.cursor().executemany(
            _SENT,
            [
                (meta.partition, meta.offset, cluster, letter.partition, letter.offset)
                for letter, meta in zip(claimed, sent, strict=True)
            ],
        )
    return claimed


def _read_all(bootstrap: str, topic: str, timeout: float) -> list[ConsumerRecord]:
    """Every record of `topic` up to the highwater marks its fetches report, without a group."""
    consumer = KafkaConsumer(
        bootstrap_servers=bootstrap, client_id="crmledger-dlq", enable_auto_commit=False
    )
    try:
        tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]
        if not tps:
            return []
        consumer.assign(tps)
        consumer.seek_to_beginning(*tps)
        records: list[ConsumerRecord] = []
        deadline = time.monotonic() + timeout
        # The end is each fetch's highwater, not end_offsets(): Tansu answers
        # ListOffsets with too small an offset after a batch of several records.
        while not all(_at_end(consumer, tp) for tp in tps):
            if time.monotonic() > deadline:
                raise TimeoutError(f"could not read {topic} to its end within {timeout:.0f} s")
            for batch in consumer.poll(timeout_ms=200).values():
                records.extend(batch)
        return sorted(records, key=lambda r: (r.partition, r.offset))
    finally:
        consumer.close(autocommit=False)


def _at_end(consumer: KafkaConsumer, tp: TopicPartition) -> bool:
    highwater = consumer.highwater(tp)  # None until a fetch of the partition answered
    return highwater is not None and consumer.position(tp) >= highwater
