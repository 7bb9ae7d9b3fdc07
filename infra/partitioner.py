"""Kafka's default placement of keyed records, remembered per key.

kafka-python's DefaultPartitioner hashes every key with a pure-Python murmur2,
a sixth of the relay's time. The relay's keys are account ids, and an account's
events come in runs, so the partition is remembered per key (and partition
count): the same partition the default would choose, without the hashing.
"""

from __future__ import annotations

from typing import Any

from kafka.partitioner import DefaultPartitioner, Partitioner

# Keys remembered before the memory starts over: a few megabytes at most.
MAX_KEYS = 100_000


class KeyPartitioner(Partitioner):
    """DefaultPartitioner's choice for every record, memoised for keyed ones."""

    def __init__(self, max_keys: int = MAX_KEYS) -> None:
        self._default = DefaultPartitioner()
        self._max_keys = max_keys
        # key -> (partition count it was chosen for, partition)
        self._chosen: dict[bytes, tuple[int, int]] = {}

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
        count = len(partitions)
        chosen = self._chosen.get(serialized_key)
        if chosen is not None and chosen[0] == count:
            return chosen[1]
        partition = int(
            self._default.partition(topic, key, serialized_key, value, serialized_value, cluster)
        )
        if len(self._chosen) >= self._max_keys:
            self._chosen.clear()
        self._chosen[serialized_key] = (count, partition)
        return partition
