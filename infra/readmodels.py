"""Read models wired to the ledger: decrypting contact fields, replaying the store, rebuilding.

The projector (consumers/projector.py) and a rebuild both turn an outbound
CloudEvent into a ProjectedEvent here, so the two paths give identical figures.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from psycopg_pool import ConnectionPool

from domain.ledger import Ledger
from infra.outbound_events import outbound_event
from infra.settings import Settings
from projections.catalog import READ_MODELS
from projections.directory import CONTACT_FIELDS
from projections.events import ProjectedEvent, from_cloudevent
from projections.store import ReadModelStore


class ReadModels:
    """The read-model store, and how the ledger's events reach it."""

    def __init__(self, ledger: Ledger, pool: ConnectionPool, settings: Settings) -> None:
        self.ledger = ledger
        self.settings = settings
        self.zone = ZoneInfo(settings.timezone)
        self.store = ReadModelStore(pool, settings.readmodel_schema)

    def projected(self, message: Mapping[str, Any]) -> ProjectedEvent:
        """The event of an outbound CloudEvent, with its contact fields decrypted."""
        data = message.get("data") or {}
        cipher = data.get("customer")
        clear = None
        if isinstance(cipher, dict) and cipher:
            wanted = {k: v for k, v in cipher.items() if k in CONTACT_FIELDS}
            clear = self.ledger.decrypt(UUID(str(message["subject"])), wanted)
        return from_cloudevent(message, self.zone, clear)

    def replay(self, after: int = 0, page: int = 5000) -> Iterator[ProjectedEvent]:
        """Every stored event after `after`, in store order, as the projector sees it."""
        ledger = self.ledger
        decode = ledger.mapper.transcoder.decode
        start = after + 1
        while True:
            notifications = ledger.recorder.select_notifications(start, page)
            for n in notifications:
                yield self.projected(outbound_event(n, decode(n.state)))
            if len(notifications) < page:
                return
            start = notifications[-1].id + 1

    def status(self) -> list[dict[str, Any]]:
        """Each read model's positions per partition and how far it trails the ledger."""
        last = self.ledger.recorder.max_notification_id() or 0
        out = []
        for name, partitions in self.store.positions().items():
            position = max(partitions.values(), default=0)
            out.append(
                {
                    "name": name,
                    "position": position,
                    "ledger_position": last,
                    "lag": max(last - position, 0),
                    "partitions": dict(sorted(partitions.items())),
                }
            )
        return out

    def rebuild(self, name: str, progress: Callable[[int], None] | None = None) -> int:
        """Rebuild one read model from the event store; returns the events replayed."""
        if name not in READ_MODELS:
            raise KeyError(name)

        def counted() -> Iterator[ProjectedEvent]:
            for i, event in enumerate(self.replay(), start=1):
                yield event
                if progress and i % 1000 == 0:
                    progress(1000)

        replayed = self.store.rebuild(name, counted(), self.settings.kafka_partitions)
        if progress:
            progress(replayed % 1000)
        return replayed
