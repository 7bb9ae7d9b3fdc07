"""Dead letters: which failures are the message's fault, and how such a message is parked.

`dead_letter_reason` is the one place that decides. A message that is not JSON,
is not a valid inbound CloudEvent, or breaks a domain rule is parked on the
dead-letter topic with its original key, value and headers, plus headers that
say why and where it came from. Any other error met while handling one message
(a bug, a value PostgreSQL cannot store) parks it too, as `unexpected_error`
with the exception's type and message: one message must never stop the ones
behind it. Only a failure of the infrastructure is not the message's fault
(`is_infrastructure`: PostgreSQL unreachable or timed out, the broker away):
the reason is None, and the consumer backs off and retries the message instead
of parking good messages while the database is down.

Any message can be parked, whatever its size. A dead letter larger than the
broker takes (the producer's `max_request_size`, and the topic's
`max.message.bytes` when the broker reports it) goes as a truncated copy: the
first TRUNCATED_VALUE_BYTES of its value, with headers `truncated: true`,
`original_size` and `original_sha256` (hex) of the whole value, so it can be
matched to the publisher's copy. A copy refused by the broker for its size
after all is sent again truncated. A truncated dead letter cannot be replayed
(consumers/dead_letter_replay.py skips it).
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass

from kafka import KafkaAdminClient, KafkaProducer
from kafka.admin import ConfigResource, ConfigResourceType
from kafka.consumer.fetcher import ConsumerRecord
from kafka.errors import KafkaError, MessageSizeTooLargeError, RecordListTooLargeError
from kafka.producer.future import FutureRecordMetadata
from kafka.record.default_records import DefaultRecordBatchBuilder
from pydantic import ValidationError

from consumers.messages import NotJSON, describe
from domain.errors import LedgerError
from infra.database import INFRASTRUCTURE_ERRORS
from infra.metrics import DEAD_LETTERS
from infra.topics import INTEGRATION_DLQ

log = logging.getLogger(__name__)

MAX_DETAIL = 1000
# The headers `dead_letter` adds after the message's own, in this order.
DEAD_LETTER_HEADERS = ("error", "error_detail", "source_topic", "source_partition", "source_offset")
# What a truncated copy adds after those.
TRUNCATION_HEADERS = ("truncated", "original_size", "original_sha256")
# How much of a value too large for the broker a truncated copy keeps: enough
# to see what it was, far under any broker's limit.
TRUNCATED_VALUE_BYTES = 64 * 1024
# A truncated copy keeps a key or the message's own headers only up to these sizes.
MAX_KEY_BYTES = 1024
MAX_OWN_HEADER_BYTES = 16 * 1024
# The producer's default max_request_size (kafka-python and the Java client alike).
PRODUCER_MAX_REQUEST_BYTES = 1_048_576

# A refusal by size, from the producer (at send) or the broker (in the future).
_SIZE_REFUSALS = (MessageSizeTooLargeError, RecordListTooLargeError)


def is_infrastructure(error: BaseException) -> bool:
    """True when a failure is the database's or the broker's, not the message's: retry later.

    PostgreSQL unreachable, a pool checkout or a statement that timed out
    (infra/database.py's INFRASTRUCTURE_ERRORS, the ones the API answers 503
    to: its DatabaseUnavailable, psycopg's OperationalError, which covers
    psycopg_pool.PoolTimeout and QueryCanceled, and eventsourcing's wrappers),
    a broker that does not answer, a socket that failed. A refusal by size is
    the message's: it is parked, truncated.
    """
    if isinstance(error, _SIZE_REFUSALS):
        return False
    return isinstance(error, (*INFRASTRUCTURE_ERRORS, KafkaError, OSError))


def dead_letter_reason(error: BaseException) -> str | None:
    """The dead-letter reason for a failed message, or None when it should be retried.

    not_json and invalid_event for messages that cannot be read; a domain
    refusal gives its code (unknown_account, account_closed, duplicate,
    conflict, invalid, ...); the infrastructure, None; anything else,
    unexpected_error.
    """
    match error:
        case NotJSON():
            return "not_json"
        case ValidationError():
            return "invalid_event"
        case LedgerError():
            return error.code
        case _ if is_infrastructure(error):
            return None  # the database or the broker, not the message
        case _:
            # A bug met by this message, or a value the database refuses: park
            # it rather than stop every message behind it; it can be replayed
            # from the dead-letter topic once fixed.
            return "unexpected_error"


def error_detail(error: BaseException) -> str:
    """What went wrong, in one line short enough for a header."""
    if isinstance(error, ValidationError):
        detail = describe(error)
    elif isinstance(error, NotJSON | LedgerError):
        detail = str(error)
    else:
        detail = f"{type(error).__name__}: {error}"
    return detail[:MAX_DETAIL]


@dataclass
class Refusal:
    """A record to park and why: the reason (the `error` header) and its detail."""

    record: ConsumerRecord
    reason: str
    detail: str


@dataclass
class SentLetter(Refusal):
    """A dead letter handed to the producer; `future` says when the broker has it."""

    future: FutureRecordMetadata
    truncated: bool


def dead_letter_limit(bootstrap: str, producer_max: int = PRODUCER_MAX_REQUEST_BYTES) -> int:
    """The largest dead letter to send whole: the producer's limit, or the topic's if smaller.

    The topic's `max.message.bytes` is asked of the broker (a Kafka broker
    reports its own default for a topic that does not set it); a broker that
    does not say (Tansu) leaves the producer's limit, and a refusal by size
    is still caught when the broker answers.
    """
    try:
        admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="crmledger-admin")
    except KafkaError as e:
        log.warning("could not ask the broker for its message size limit: %s", e)
        return producer_max
    try:
        # Every config of the topic: Tansu drops the connection on a filtered request.
        resource = ConfigResource(ConfigResourceType.TOPIC, INTEGRATION_DLQ)
        described = admin.describe_configs([resource], config_filter="all")
        entry = described.get("topic", {}).get(INTEGRATION_DLQ, {}).get("max.message.bytes")
        value = entry.get("value") if isinstance(entry, dict) else entry
        return min(producer_max, int(value)) if value else producer_max
    except (KafkaError, ValueError, TypeError, AttributeError) as e:
        log.warning("could not read %s's max.message.bytes: %s", INTEGRATION_DLQ, e)
        return producer_max
    finally:
        admin.close()


def dead_letter(
    producer: KafkaProducer, refusal: Refusal, max_bytes: int = PRODUCER_MAX_REQUEST_BYTES
) -> SentLetter:
    """Send the record, as received, to the dead-letter topic (truncated if too large)."""
    record, reason, detail = refusal.record, refusal.reason, refusal.detail
    log.warning(
        "dead letter %s[%d]@%d: %s: %s",
        record.topic,
        record.partition,
        record.offset,
        reason,
        detail,
    )
    DEAD_LETTERS.labels(reason).inc()
    headers = [*(record.headers or []), *_our_headers(record, reason, detail)]
    size = DefaultRecordBatchBuilder.estimate_size_in_bytes(record.key, record.value, headers)
    if size <= max_bytes:
        try:
            future = producer.send(
                INTEGRATION_DLQ, value=record.value, key=record.key, headers=headers
            )
            return SentLetter(record, reason, detail, future, truncated=False)
        except _SIZE_REFUSALS:
            pass  # the producer counts differently: send the truncated copy
    return send_truncated(producer, refusal, max_bytes)


def send_truncated(
    producer: KafkaProducer, refusal: Refusal, max_bytes: int = PRODUCER_MAX_REQUEST_BYTES
) -> SentLetter:
    """Send a truncated copy of the record, with its original size and SHA-256 in headers."""
    record, reason, detail = refusal.record, refusal.reason, refusal.detail
    value = record.value or b""
    key = record.key
    own = list(record.headers or [])
    extra = []
    if key is not None and len(key) > MAX_KEY_BYTES:
        extra.append(("original_key_size", str(len(key)).encode()))
        key = key[:MAX_KEY_BYTES]
    if sum(len(k) + len(v or b"") for k, v in own) > MAX_OWN_HEADER_BYTES:
        extra.append(("dropped_headers", str(len(own)).encode()))
        own = []
    keep = min(TRUNCATED_VALUE_BYTES, max_bytes // 2)
    headers = [
        *own,
        *_our_headers(record, reason, detail),
        ("truncated", b"true"),
        ("original_size", str(len(value)).encode()),
        ("original_sha256", hashlib.sha256(value).hexdigest().encode()),
        *extra,
    ]
    log.warning(
        "dead letter %s[%d]@%d is %d bytes, too large for the broker: sent its first %d bytes",
        record.topic,
        record.partition,
        record.offset,
        len(value),
        keep,
    )
    future = producer.send(INTEGRATION_DLQ, value=value[:keep], key=key, headers=headers)
    return SentLetter(record, reason, detail, future, truncated=True)


def refused_for_size(letter: SentLetter) -> bool:
    """True when the broker refused this (whole) dead letter for its size."""
    return (
        not letter.truncated
        and letter.future.failed()
        and isinstance(letter.future.exception, _SIZE_REFUSALS)
    )


def _our_headers(record: ConsumerRecord, reason: str, detail: str) -> list[tuple[str, bytes]]:
    # errors="replace": a detail may quote a lone surrogate from the message's JSON.
    return [
        ("error", reason.encode(errors="replace")),
        ("error_detail", detail.encode(errors="replace")),
        ("source_topic", record.topic.encode()),
        ("source_partition", str(record.partition).encode()),
        ("source_offset", str(record.offset).encode()),
    ]
