"""A stored event as the CloudEvent the relay publishes (structured JSON mode).

The message is built from the notification row and its decoded state only, so
the relay never loads aggregates and never decrypts anything: personal fields
leave the ledger as the ciphertext the event store holds.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid5

import orjson
from eventsourcing.persistence import Notification

from domain.account import event_type_of
from domain.integrity import data_of

SOURCE = "crmledger"


def event_id(account_id: UUID, version: int) -> UUID:
    """The event's stable id: the same on every republish, so consumers can de-duplicate."""
    return uuid5(account_id, str(version))


def outbound_event(notification: Notification, state: Mapping[str, Any]) -> dict[str, Any]:
    """The CloudEvent of one stored event; unset optional attributes are left out."""
    account_id = notification.originator_id
    if not isinstance(account_id, UUID):
        account_id = UUID(str(account_id))
    version = notification.originator_version
    meta: Mapping[str, Any] = state.get("metadata") or {}
    event: dict[str, Any] = {
        "specversion": "1.0",
        "id": str(event_id(account_id, version)),
        "source": SOURCE,
        "type": f"crmledger.{event_type_of(notification.topic)}",
        "subject": str(account_id),
        "time": state.get("occurred_at"),
        "datacontenttype": "application/json",
        "data": data_of(state),
        "position": notification.id,
        "accountversion": version,
        "recordedtime": state.get("timestamp"),
        "actor": meta.get("actor"),
        "department": meta.get("department"),
        "reason": meta.get("reason"),
        "correlationid": meta.get("correlation_id"),
        "causationid": meta.get("causation_id"),
        "prevhash": state.get("prev_hash"),
        "hash": state.get("hash"),
    }
    # CloudEvents treats a null attribute as an unset one; leave them out.
    return {k: v for k, v in event.items() if v is not None}


def encode(event: Mapping[str, Any]) -> bytes:
    """The event as compact JSON; decimals as strings so no amount loses a digit."""
    return orjson.dumps(event, default=_plain)


def _plain(o: object) -> str:
    if isinstance(o, Decimal):
        return str(o)
    raise TypeError(f"cannot encode a {type(o).__name__}")
