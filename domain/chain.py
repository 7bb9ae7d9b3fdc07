"""An aggregate whose every event has a business time, metadata and a place in a hash chain.

The chain is stamped where eventsourcing creates an aggregate's events
(`_create` for the first, `trigger_event` for the others), not in each
command, so no command can forget it: each event's `hash` covers its
predecessor's (`prev_hash`; 64 zeros for the first) and the event's own
fields, as domain/integrity.py defines. `_create` is a private method of
eventsourcing's `Aggregate`; tests/domain/test_integrity.py holds it.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.domain import Aggregate

from domain.integrity import GENESIS_HASH, data_of, event_hash

# What every event carries besides its fields: actor, department, reason, ids, source.
Meta = dict[str, Any]


class ChainedAggregate(Aggregate):
    """The base of an aggregate whose events form a SHA-256 hash chain."""

    class Event(Aggregate.Event):
        occurred_at: datetime
        metadata: Meta
        prev_hash: str
        hash: str

        def apply(self, aggregate: Any) -> None:
            aggregate.last_hash = self.hash

    class Created(Event, Aggregate.Created):
        pass

    last_hash = GENESIS_HASH

    @classmethod
    def _create(cls, event_class: type[Any], *, id: Any = None, **kwargs: Any) -> Any:
        kwargs["prev_hash"] = GENESIS_HASH
        kwargs["hash"] = _stamp(GENESIS_HASH, id, 1, event_class, kwargs)
        return super()._create(event_class, id=id, **kwargs)

    def trigger_event(self, event_class: type[Any], **kwargs: Any) -> None:
        prev = self.last_hash
        kwargs["prev_hash"] = prev
        kwargs["hash"] = _stamp(prev, self.id, self.version + 1, event_class, kwargs)
        super().trigger_event(event_class, **kwargs)


def _stamp(
    prev: str, account_id: UUID, version: int, event_class: type[Any], kw: dict[str, Any]
) -> str:
    return event_hash(
        prev,
        account_id,
        version,
        event_class.__name__,
        kw["occurred_at"],
        kw["metadata"],
        data_of(kw),
    )
