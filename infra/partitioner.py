"""Kafka's default placement of keyed records, remembered per key.

kafka-python's DefaultPartitioner hashes every key with a pure-Python murmur2,
a sixth of the relay's time. The relay's keys are account ids, and an account's
events come in runs, so the partition is remembered per key (and partition
count): the same partition the default would choose, without the hashing.
"""

from __future__ import annotations

from typing import Any

from kafka.partitioner import DefaultPartitioner, Partitioner
from kafka.partitioner.default import murmur2

# Keys remembered before the memory starts over: a few megabytes at most.
MAX_KEYS = 100_000


class KeyPartitioner(Partitioner):
    """DefaultPartitioner's choice for every record, memoised for keyed ones.

    Pass it as the producer's `partitioner`, or ask `partition_of` and send with
    an explicit partition, which spares the producer a few steps per record.
    """

    def __init__(self, max_keys: int = MAX_KEYS) -> None:
        self._default = DefaultPartitioner()
        self._max_keys = max_keys
        # key -> (partition count it was chosen for, partition)
        self._chosen: dict[bytes, tuple[int, int]] = {}

    def partition_of(self, key: bytes, count: int) -> int:
        """The partition of `key` among partitions 0..count-1, as the default chooses it."""
        chosen = self._chosen.get(key)
        if chosen is not None and chosen[0] == count:
            return chosen[1]
        # DefaultPartitioner: murmur2, made positive, modulo the partition count.
        partition = (murmur2(key) & 0x7FFFFFFF) % count
        if len(self._chosen) >= self._max_keys:
            self._chosen.clear()
        self._chosen[key] = (count, partition)
        return partition

    def partition(
        self,
        topic: str,
        key: Any,
        serialized_key: bytes | None,
        value: Any,
        serialized_value: bytes | None,
        cluster: Any,
    ) -> int:
        """The partition for one record, as DefaultPartitioner would choose it."""
        partitions = cluster.partitions_for_topic(topic)
        if serialized_key is None or not partitions:
            return int(
                self._default.partition(
                    topic, key, serialized_key, value, serialized_value, cluster
                )
            )
        # Kafka numbers a topic's partitions 0..n-1, so the default's index is the partition.
        return self.partition_of(serialized_key, len(partitions))
