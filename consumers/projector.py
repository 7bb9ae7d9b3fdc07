"""The projection runner: crmledger.account-events into the read models, idempotently.

Group crmledger-projections. Each poll batch is one PostgreSQL transaction that
writes every read model's rows and, per partition, the highest position it
applied (projections/store.py); only then are the Kafka offsets committed. A
batch redelivered after a crash, or a topic republished from the start, is
skipped event by event by position, so nothing is counted twice.

A message that is not a CloudEvent of the ledger (it cannot be: only the relay
writes the topic) is logged and skipped rather than stopping every read model;
an event type the read models do not know changes nothing and still advances
the positions.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

import orjson
from kafka.errors import KafkaError
from kafka.structs import OffsetAndMetadata

from infra.broker import group_consumer, kafka_bootstrap
from infra.topics import ACCOUNT_EVENTS
from infra.wiring import Services
from infra.worker import Worker
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
        self.applied = 0
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
        placed: list[Placed] = []
        offsets: dict[Any, OffsetAndMetadata] = {}
        projected = self._readmodels.projected
        for tp, records in batches.items():
            partition = tp.partition
            for record in records:
                try:
                    placed.append(Placed(partition, projected(orjson.loads(record.value))))
                except (ValueError, KeyError, TypeError) as e:
                    log.error(
                        "skipping a message that is not a ledger event at %s[%d]@%d: %s",
                        tp.topic,
                        tp.partition,
                        record.offset,
                        e,
                    )
            if records:
                offsets[tp] = OffsetAndMetadata(records[-1].offset + 1, "", -1)
        if not offsets:
            return 0
        self._readmodels.store.apply(placed)
        self.applied += len(placed)
        try:
            self._consumer.commit(offsets)
        except KafkaError as e:
            # Positions in PostgreSQL make redelivery harmless; the next commit catches up.
            log.warning("could not commit projection offsets: %s", e)
        return sum(len(r) for r in batches.values())

    def close(self) -> None:
        """Leave the group."""
        self._consumer.close(autocommit=False)


def start_projector(services: Services, bootstrap: str | None = None, **options: Any) -> Worker:
    """Run the projector in a worker thread that restarts it after failures."""
    address = bootstrap or kafka_bootstrap(services.settings)
    return Worker("projector", lambda: Projector(services, address, **options)).start()
