"""The event as read models see it, whether it came from Kafka or from the store.

Read models consume the outbound CloudEvent (the design's Kafka message); a
rebuild feeds them the same message built from the store, so there is one path.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

from domain.integrity import data_of


# Not frozen: a rebuild makes a million of these, and a frozen dataclass sets
# every field through object.__setattr__, which cost a tenth of the rebuild.
# Nothing changes an event after it is made.
@dataclass(slots=True)
class ProjectedEvent:
    """One account event with what every read model needs to place it."""

    position: int
    account_id: UUID
    version: int
    type: str
    occurred_at: datetime
    day: date  # occurred_at's date in the reporting time zone
    actor: str | None
    data: Mapping[str, Any]  # personal fields as stored: ciphertext
    # Blind-index tokens of the personal fields the event sets, by field; None
    # when it sets none, or when their key is destroyed (then the ciphertext,
    # unreadable for good, is dropped from `data` too).
    tokens: Mapping[str, tuple[bytes, ...]] | None = None

    def decimal(self, name: str) -> Decimal:
        """A money field of the data."""
        return Decimal(str(self.data[name]))


def from_cloudevent(
    message: Mapping[str, Any],
    zone: ZoneInfo,
    tokens: Mapping[str, tuple[bytes, ...]] | None = None,
    account_id: UUID | None = None,
) -> ProjectedEvent:
    """Read an outbound CloudEvent, with the blind-index `tokens` of its personal fields.

    `account_id` is the message's subject as a UUID, when the caller has it already.
    """
    occurred_at = _datetime(message["time"])
    data = message.get("data") or {}
    if not isinstance(data, dict):
        data = dict(data)  # a mapping of another kind, or an error for what is none
    if tokens is None and data.get("customer"):
        data = {**data, "customer": None}
    return ProjectedEvent(
        position=int(message["position"]),
        account_id=account_id or UUID(str(message["subject"])),
        version=int(message["accountversion"]),
        type=str(message["type"]).removeprefix("crmledger."),
        occurred_at=occurred_at,
        day=occurred_at.astimezone(zone).date(),
        actor=message.get("actor"),
        data=data,
        tokens=tokens,
    )


def from_stored(
    position: int,
    account_id: UUID,
    version: int,
    event_type: str,
    state: Mapping[str, Any],
    zone: ZoneInfo,
    tokens: Mapping[str, tuple[bytes, ...]] | None = None,
) -> ProjectedEvent:
    """Read a stored event's plain state (domain.integrity.plain_state), as a rebuild does.

    It gives the same event as the outbound CloudEvent of it would: the same
    data (amounts as strings, personal fields as ciphertext), business time,
    actor and tokens.
    """
    occurred_at = _datetime(state["occurred_at"])
    data = data_of(state)
    if tokens is None and data.get("customer"):
        data["customer"] = None
    return ProjectedEvent(
        position=position,
        account_id=account_id,
        version=version,
        type=event_type,
        occurred_at=occurred_at,
        day=occurred_at.astimezone(zone).date(),
        actor=(state.get("metadata") or {}).get("actor"),
        data=data,
        tokens=tokens,
    )


def _datetime(value: Any) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
