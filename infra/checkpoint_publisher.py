"""Kept checkpoints, published to `crmledger.checkpoints` as CloudEvents.

Auditors and other teams follow the ledger's checkpoints on Kafka as they
follow its events. The notary signs and keeps each checkpoint in PostgreSQL
first (infra/notary.py); this worker publishes the ones the broker has not
acknowledged, oldest first, and marks them published only after the broker
acknowledged them. It runs in a worker of its own built on the broker
(infra/broker.py `on_broker`), so a broker outage only stops it: when the
broker is back, everything kept meanwhile goes out. Delivery is at least
once; a checkpoint's id is stable (uuid5 of origin and size).
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING
from uuid import NAMESPACE_URL, uuid5

from kafka import KafkaProducer

from infra.broker import on_broker
from infra.checkpoints import Checkpoint
from infra.outbound_events import SOURCE, encode
from infra.topics import CHECKPOINTS, CLOUDEVENTS_JSON
from infra.worker import Worker

if TYPE_CHECKING:
    from infra.wiring import Services

CHECKPOINT_TYPE = "crmledger.Checkpoint"
HEADERS = [("content-type", CLOUDEVENTS_JSON)]
POLL_S = 0.5
DELIVERY_TIMEOUT_MS = 10_000


def checkpoint_message(origin: str, checkpoint: Checkpoint) -> bytes:
    """The CloudEvent of a kept checkpoint (structured JSON mode)."""
    return encode(
        {
            "specversion": "1.0",
            "id": str(uuid5(NAMESPACE_URL, f"{origin}/checkpoint/{checkpoint.tree_size}")),
            "source": SOURCE,
            "type": CHECKPOINT_TYPE,
            "subject": origin,
            "time": checkpoint.signed_at.isoformat(),
            "datacontenttype": "application/json",
            "data": {
                "origin": origin,
                "tree_size": checkpoint.tree_size,
                "root_hash": checkpoint.root_hash.hex(),
                "note": checkpoint.note,
            },
            "treesize": checkpoint.tree_size,
        }
    )


class CheckpointPublisher:
    """Publishes the checkpoints not yet acknowledged; `run` keeps doing it."""

    def __init__(self, services: Services, bootstrap: str, *, poll_s: float = POLL_S) -> None:
        self._store = services.checkpoints
        self._origin = services.signer.origin
        self._poll_s = poll_s
        self._wait_s = DELIVERY_TIMEOUT_MS / 1000 + 5
        self._producer = KafkaProducer(
            bootstrap_servers=bootstrap,
            client_id="crmledger-checkpoints",
            enable_idempotence=True,
            acks="all",
            delivery_timeout_ms=DELIVERY_TIMEOUT_MS,
            request_timeout_ms=DELIVERY_TIMEOUT_MS - 100,
        )
        self.published = 0

    def publish_pending(self) -> int:
        """Publish what is kept and unpublished; return how many went out."""
        pending = self._store.unpublished()
        if not pending:
            return 0
        key = self._origin.encode()  # one partition: the checkpoints stay in order
        futures = [
            self._producer.send(
                CHECKPOINTS,
                value=checkpoint_message(self._origin, c),
                key=key,
                headers=HEADERS,
            )
            for c in pending
        ]
        self._producer.flush(timeout=self._wait_s)
        for future in futures:
            future.get(timeout=self._wait_s)  # raises the error of a send that failed
        self._store.mark_published(c.tree_size for c in pending)
        self.published += len(pending)
        return len(pending)

    def run(self, stop: threading.Event) -> None:
        """Publish until `stop` is set; a failure ends the run and the worker builds it anew."""
        while not stop.is_set():
            if not self.publish_pending():
                stop.wait(self._poll_s)

    def close(self) -> None:
        """Close the producer; what it still holds is not marked published and goes again."""
        self._producer.close(timeout=1)


def start_publisher(services: Services, bootstrap: str | None = None) -> Worker:
    """Publish the kept checkpoints in a worker thread (restarted after failures)."""
    build = on_broker(services.settings, bootstrap, lambda at: CheckpointPublisher(services, at))
    return Worker("checkpoint-publisher", build).start()
