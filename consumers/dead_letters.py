"""Dead letters: which failures are the message's fault, and how such a message is parked.

`dead_letter_reason` is the one place that decides. A message that is not JSON,
is not a valid inbound CloudEvent, or breaks a domain rule is parked on the
dead-letter topic with its original key, value and headers, plus headers that
say why and where it came from. A failure of the database or the broker is not
the message's fault: the reason is None, and the consumer retries the message
instead of parking it.
"""

from __future__ import annotations

import logging

import psycopg
from eventsourcing.persistence import PersistenceError
from kafka import KafkaProducer
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import KafkaError
from kafka.producer.future import FutureRecordMetadata
from pydantic import ValidationError

from consumers.messages import NotJSON, describe
from domain.errors import LedgerError
from infra.metrics import DEAD_LETTERS
from infra.topics import INTEGRATION_DLQ

log = logging.getLogger(__name__)

MAX_DETAIL = 1000
# The headers `dead_letter` adds after the message's own, in this order.
DEAD_LETTER_HEADERS = ("error", "error_detail", "source_topic", "source_partition", "source_offset")


def dead_letter_reason(error: BaseException) -> str | None:
    """The dead-letter reason for a failed message, or None when it should be retried.

    not_json and invalid_event for messages that cannot be read; a domain
    refusal gives its code (unknown_account, account_closed, duplicate,
    conflict, invalid, ...); an error of our own code, unexpected_error.
    """
    match error:
        case NotJSON():
            return "not_json"
        case ValidationError():
            return "invalid_event"
        case LedgerError():
            return error.code
        case PersistenceError() | psycopg.Error() | KafkaError() | OSError():
            return None  # the database or the broker, not the message
        case _:
            # A bug met by this message: park it rather than stop every message
            # behind it; it can be replayed from the dead-letter topic once fixed.
            return "unexpected_error"


def error_detail(error: BaseException) -> str:
    """What went wrong, in one line short enough for a header."""
    detail = describe(error) if isinstance(error, ValidationError) else str(error)
    return detail[:MAX_DETAIL]


def dead_letter(
    producer: KafkaProducer, record: ConsumerRecord, reason: str, detail: str
) -> FutureRecordMetadata:
    """Send the record, as received, to the dead-letter topic; the future says when it is safe."""
    log.warning(
        "dead letter %s[%d]@%d: %s: %s",
        record.topic,
        record.partition,
        record.offset,
        reason,
        detail,
    )
    headers = [
        *(record.headers or []),
        ("error", reason.encode()),
        ("error_detail", detail.encode()),
        ("source_topic", record.topic.encode()),
        ("source_partition", str(record.partition).encode()),
        ("source_offset", str(record.offset).encode()),
    ]
    future: FutureRecordMetadata = producer.send(
        INTEGRATION_DLQ, value=record.value, key=record.key, headers=headers
    )
    DEAD_LETTERS.labels(reason).inc()
    return future
