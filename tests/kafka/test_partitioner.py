"""The relay's memoised partitioner places every key where Kafka's default would."""

from __future__ import annotations

import uuid

from kafka import KafkaAdminClient, KafkaProducer

from infra.partitioner import KeyPartitioner
from tests.kafka.conftest import Stack


def placements(address: str, topic: str, keys: list[bytes], **config: object) -> list[int]:
    producer = KafkaProducer(bootstrap_servers=address, linger_ms=0, **config)
    try:
        futures = [producer.send(topic, value=b"x", key=k) for k in keys]
        producer.flush()
        return [f.get(timeout=10).partition for f in futures]
    finally:
        producer.close()


def test_a_key_lands_on_the_default_partitioners_partition_for_every_count(
    stack: Stack,
) -> None:
    # Account ids as the relay sends them, each twice: once hashed, once remembered.
    keys = [str(uuid.uuid4()).encode() for _ in range(150)] + [b"", b"a", b"ab", b"abc"]
    keys += keys
    admin = KafkaAdminClient(bootstrap_servers=stack.bootstrap)
    try:
        for count in (1, 3, 7, 12):
            admin.create_topics({f"placement-{count}": {"num_partitions": count}})
    finally:
        admin.close()
    shared = KeyPartitioner()  # one memory across topics of different counts
    for count in (1, 3, 7, 12):
        topic = f"placement-{count}"
        default = placements(stack.bootstrap, topic, keys)
        assert len(set(default)) == min(count, len(set(default)))
        assert placements(stack.bootstrap, topic, keys, partitioner=shared) == default
        assert placements(stack.bootstrap, topic, keys, partitioner=KeyPartitioner(10)) == default
        # As the relay asks it, to send with an explicit partition.
        assert [shared.partition_of(k, count) for k in keys] == default
