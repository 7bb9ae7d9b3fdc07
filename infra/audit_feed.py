"""The global replay feed: every stored event in store order, filtered and paged.

It reads the event store's table directly (one indexed query per page, through
infra/event_store.py) because eventsourcing's notification log cannot filter by
account. Time filters apply
to the store's recorded time, the time line auditors replay.

A stored event whose state cannot be decoded does not fail the page: it comes
as an UnreadableEvent in its place (position, account, version, the hash its
raw text names). Its recorded time cannot be read either, so a time filter
keeps it: a corrupt row is shown to the auditor rather than hidden.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from eventsourcing.utils import get_topic
from psycopg_pool import ConnectionPool

from domain.account import CustomerAccount, event_type_of
from domain.errors import InvalidCommand
from domain.integrity import IncompleteEvent, UnreadableEvent, check_envelope
from domain.ledger import Ledger
from infra.event_store import EventLog, stored_hash_of

EVENT_TOPICS: dict[str, str] = {
    name: get_topic(cls)
    for name, cls in vars(CustomerAccount).items()
    if isinstance(cls, type)
    and issubclass(cls, CustomerAccount.Event)
    and name not in ("Event", "Created")
}


@dataclass(frozen=True)
class FeedEvent:
    """One stored event, decoded but not yet decrypted."""

    position: int
    account_id: UUID
    version: int
    type: str
    state: dict[str, Any]


@dataclass
class FeedPage:
    """A page of the feed; pass `next_after` back as `after` for the next one."""

    events: list[FeedEvent | UnreadableEvent] = field(default_factory=list)
    next_after: int = 0


class AuditFeed:
    """Reads pages of the global, ordered log of events."""

    def __init__(self, pool: ConnectionPool, ledger: Ledger) -> None:
        self._pool = pool
        self._decode = ledger.mapper.transcoder.decode
        self._log = EventLog(ledger)

    def page(
        self,
        after: int,
        limit: int,
        *,
        account_id: UUID | None = None,
        types: Sequence[str] = (),
        since: datetime | None = None,
        until: datetime | None = None,
    ) -> FeedPage:
        """Up to `limit` events after position `after` that match every filter.

        A page may hold fewer events than `limit` when the filters skip many
        rows; `next_after` still moves past every row looked at, so paging never
        repeats or misses an event.
        """
        unknown = [t for t in types if t not in EVENT_TOPICS]
        if unknown:
            raise InvalidCommand(
                f"unknown event types: {', '.join(unknown)}; known: {', '.join(EVENT_TOPICS)}"
            )
        topics = [EVENT_TOPICS[t] for t in types]

        page = FeedPage(next_after=after)
        # Look at a bounded number of rows per request, however selective the filters.
        for _ in range(10):
            with self._pool.connection() as conn:
                rows = self._log.filtered_page(
                    conn, page.next_after, limit, account_id=account_id, topics=topics
                )
            for position, originator_id, version, topic, state in rows:
                page.next_after = position
                raw = bytes(state)
                try:
                    decoded = self._decode(raw)
                    check_envelope(decoded)
                except Exception as e:  # decoding is in memory: whatever fails is the row's
                    page.events.append(
                        UnreadableEvent(
                            originator_id, version, position, stored_hash_of(raw), _reason(e)
                        )
                    )
                else:
                    recorded: datetime = decoded["timestamp"]
                    if (since and recorded < since) or (until and recorded >= until):
                        continue
                    page.events.append(
                        FeedEvent(position, originator_id, version, event_type_of(topic), decoded)
                    )
                if len(page.events) == limit:
                    return page
            if len(rows) < limit:
                return page
        return page


def _reason(error: Exception) -> str:
    if isinstance(error, IncompleteEvent):
        return str(error)
    return "its stored state cannot be decoded"
