"""The projection runner: crmledger.account-events into the read models, idempotently.

Each poll batch is one PostgreSQL transaction that writes every read model's
rows, the events it parked and, per partition, the highest position applied
(projections/store.py); only then are the Kafka offsets committed, so a batch
redelivered after a crash, or a topic republished from the start, is skipped
event by event and nothing counts twice. No event stops the read models: what
cannot be read (and the relay's `crmledger.EventUnreadable` marker) is parked
for every read model, what one read model cannot write for that one alone
(projections/parking.py); an error of PostgreSQL itself is raised and the batch
comes again. A message without a position is not a ledger event: logged and
skipped. Like the relay and the ingest, it finds the broker anew at each restart.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Mapping
from typing import Any

import orjson
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata

from infra.broker import group_consumer, on_broker
from infra.metrics import count_parked
from infra.topics import ACCOUNT_EVENTS
from infra.wiring import Services
from infra.worker import Worker
from projections.events import ProjectedEvent
from projections.parking import (
    UNREADABLE_TYPE,
    Unprojectable,
    account_in,
    is_transient,
    unprojectable,
    unreadable_marker,
    valid_position,
)
from projections.store import Placed

log = logging.getLogger(__name__)

GROUP = "crmledger-projections"


class Projector:
    """Consumes the account events and applies them to every read model."""

    def __init__(
        self,
        services: Services,
        bootstrap: str,
        *,
        group: str = GROUP,
        session_timeout_ms: int | None = None,
        max_records: int = 2000,
    ) -> None:
        self._readmodels = services.readmodels
        self.bootstrap = bootstrap
        self.applied = 0
        self.parked = 0
        self._consumer = group_consumer(
            services.settings,
            bootstrap,
            ACCOUNT_EVENTS,
            client_id="crmledger-projector",
            group=group,
            max_records=max_records,
            session_timeout_ms=session_timeout_ms,
        )

    def run(self, stop: threading.Event) -> None:
        """Consume and apply until `stop` is set."""
        while not stop.is_set():
            self.poll_once(timeout_ms=500)

    def poll_once(self, timeout_ms: int = 500) -> int:
        """Apply one poll batch and commit its offsets; returns the records seen."""
        batches = self._consumer.poll(timeout_ms=timeout_ms)
        # The keys of the batch's accounts with personal data, in one query rather than one each.
        self._readmodels.prefetch_keys(r.value for records in batches.values() for r in records)
        placed: list[Placed] = []
        offsets: dict[Any, OffsetAndMetadata] = {}
        projected = self._readmodels.projected
        for tp, records in batches.items():
            for record in records:
                event = read_message(record.value, projected)
                if event is None:
                    log.error(
                        "skipping a message that is not a ledger event at %s[%d]@%d",
                        tp.topic,
                        tp.partition,
                        record.offset,
                    )
                    continue
                placed.append(Placed(tp.partition, event))
            if records:
                offsets[tp] = OffsetAndMetadata(records[-1].offset + 1, "", -1)
        if not offsets:
            return 0
        outcome = self._readmodels.store.apply(placed)
        self.applied += len(placed)
        self.parked += len(outcome.parked)
        for name, partition, u in outcome.parked:
            log.error(
                "%s parked the event at position %d (partition %d, account %s, %s): %s: %s",
                name,
                u.position,
                partition,
                u.account_id,
                u.reason,
                u.error_class,
                u.error,
            )
            count_parked(name, u.reason)
        try:
            self._consumer.commit(offsets)
        except KafkaError as e:
            # Positions in PostgreSQL make redelivery harmless; the next commit catches up.
            log.warning("could not commit projection offsets: %s", e)
        return sum(len(r) for r in batches.values())

    def close(self) -> None:
        """Leave the group."""
        self._consumer.close(autocommit=False)


def read_message(
    value: bytes | None, projected: Callable[[Mapping[str, Any]], ProjectedEvent]
) -> ProjectedEvent | Unprojectable | None:
    """The event of one message, or what to park instead; None for a message of no position."""
    try:
        message = orjson.loads(value or b"")
    except orjson.JSONDecodeError:
        return None
    if not isinstance(message, dict):
        return None
    if message.get("type") == UNREADABLE_TYPE:
        return unreadable_marker(message)
    position = valid_position(message.get("position"))
    if position is None:
        return None
    try:
        return projected(message)
    except Exception as e:
        if is_transient(e):
            raise
        kind = message.get("type")
        event_type = kind.removeprefix("crmledger.") if isinstance(kind, str) else None
        return unprojectable(position, account_in(message), event_type, e)


def start_projector(services: Services, bootstrap: str | None = None, **options: Any) -> Worker:
    """Run the projector in a worker thread that restarts it after failures.

    Without `bootstrap`, the broker is looked up at every restart, as the relay
    and the ingest do (infra/broker.py `on_broker`). `options` go to `Projector`.
    """
    return Worker("projector", projector_factory(services, bootstrap, **options)).start()


def projector_factory(
    services: Services, bootstrap: str | None = None, **options: Any
) -> Callable[[], Projector]:
    """Builds a projector on the broker as it is now (the worker calls it at each restart)."""
    return on_broker(services.settings, bootstrap, lambda at: Projector(services, at, **options))
