"""Inbound messages parked on the dead-letter topic, recorded once the broker acknowledged them.

A consumer that failed before storing its offsets reads such a message again;
this record keeps it from sending the dead letter a second time
(consumers/dead_letter_outbox.py). Rows are keyed like stored offsets, by
broker cluster, consumer group, topic, partition and offset, and say where the
dead letter went; the table is created with the others (infra/schema.py). They
are pruned with the CloudEvent id receipts (infra/inbound_receipts.py): by then
the stored offsets are long past them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from psycopg_pool import ConnectionPool


def record_dead_letters(
    pool: ConnectionPool,
    cluster_id: str,
    consumer_group: str,
    letters: Sequence[tuple[str, int, int, str, int, int]],
) -> None:
    """Record acknowledged dead letters: (topic, partition, offset, reason, DLQ partition,
    DLQ offset) each."""
    if not letters:
        return
    with pool.connection() as conn:
        conn.cursor().executemany(
            "INSERT INTO inbound_dead_lettered (cluster_id, consumer_group, topic, partition,"
            " kafka_offset, reason, dlq_partition, dlq_offset)"
            " VALUES (%s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING",
            [(cluster_id, consumer_group, *letter) for letter in letters],
        )


def dead_lettered(
    pool: ConnectionPool,
    cluster_id: str,
    consumer_group: str,
    spans: Mapping[tuple[str, int], tuple[int, int]],
) -> set[tuple[str, int, int]]:
    """Which (topic, partition, offset) within these (first, last) offset spans of each
    (topic, partition) were parked already."""
    if not spans:
        return set()
    topics, partitions, firsts, lasts = [], [], [], []
    for (topic, partition), (first, last) in spans.items():
        topics.append(topic)
        partitions.append(partition)
        firsts.append(first)
        lasts.append(last)
    with pool.connection() as conn:
        rows = conn.execute(
            "SELECT d.topic, d.partition, d.kafka_offset FROM inbound_dead_lettered d"
            " JOIN unnest(%s::text[], %s::integer[], %s::bigint[], %s::bigint[])"
            " AS s(topic, partition, first, last)"
            " ON d.topic = s.topic AND d.partition = s.partition"
            " AND d.kafka_offset BETWEEN s.first AND s.last"
            " WHERE d.cluster_id = %s AND d.consumer_group = %s",
            (topics, partitions, firsts, lasts, cluster_id, consumer_group),
        ).fetchall()
    return {(str(t), int(p), int(o)) for t, p, o in rows}
