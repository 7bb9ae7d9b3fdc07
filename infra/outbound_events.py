"""A stored event as the CloudEvent the relay publishes (structured JSON mode).

Built from the stored row and its state only, so the relay never loads an
aggregate and never decrypts: personal fields leave the ledger as the
ciphertext the store holds. The relay builds one per event, so the path is lean
(the id through hashlib, not `uuid.UUID`; optional attributes added only when
set). A row that is not an event's (bytes not JSON, a broken envelope) raises
`UnreadableEvent`, and `unreadable_message` builds the `crmledger.EventUnreadable`
marker the relay publishes in its place, with an id of its own so a repaired
event published again is not taken for a copy (docs/design.md, Messages).
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from hashlib import sha1
from typing import Any
from uuid import UUID, uuid5

import orjson

from domain.integrity import ENVELOPE_KEYS
from infra.event_store import plain_state, stored_hash_of

SOURCE = "crmledger"
UNREADABLE_TYPE = "crmledger.EventUnreadable"
MAX_ERROR = 500

# Optional attributes after `recordedtime`, in message order: (attribute, metadata key).
_META_ATTRIBUTES = (
    ("actor", "actor"),
    ("department", "department"),
    ("reason", "reason"),
    ("correlationid", "correlation_id"),
    ("causationid", "causation_id"),
)


def event_id_text(account_id: bytes, version: int) -> str:
    """The event's stable id, `str(uuid5(UUID(bytes=account_id), str(version)))`, made faster.

    The same on every republish, so consumers can de-duplicate; computed
    without building UUID objects.

    uuid5 is SHA-1 of the namespace's bytes and the name, with the version and
    variant bits set (RFC 4122, section 4.3).
    """
    x = sha1(account_id + str(version).encode()).hexdigest()
    variant = "89ab"[int(x[16], 16) & 3]
    return f"{x[:8]}-{x[8:12]}-5{x[13:16]}-{variant}{x[17:20]}-{x[20:32]}"


def cloudevent(
    position: int,
    subject: str,
    account_bytes: bytes,
    version: int,
    event_type: str,
    state: Mapping[str, Any],
) -> dict[str, Any]:
    """The CloudEvent of a stored event given as plain parts (`subject` is the account id).

    CloudEvents treats a null attribute as an unset one, so a missing or null
    attribute is left out.
    """
    event: dict[str, Any] = {
        "specversion": "1.0",
        "id": event_id_text(account_bytes, version),
        "source": SOURCE,
        "type": "crmledger." + event_type,
        "subject": subject,
    }
    time = state.get("occurred_at")
    if time is not None:
        event["time"] = time
    event["datacontenttype"] = "application/json"
    event["data"] = {k: v for k, v in state.items() if k not in ENVELOPE_KEYS}
    event["position"] = position
    event["accountversion"] = version
    recorded = state.get("timestamp")
    if recorded is not None:
        event["recordedtime"] = recorded
    meta = state.get("metadata")
    if meta:
        for attribute, key in _META_ATTRIBUTES:
            value = meta.get(key)
            if value is not None:
                event[attribute] = value
    prev_hash, hash_ = state.get("prev_hash"), state.get("hash")
    if prev_hash is not None:
        event["prevhash"] = prev_hash
    if hash_ is not None:
        event["hash"] = hash_
    return event


class UnreadableEvent(ValueError):
    """A stored event's state is JSON but not an event's: its envelope is missing or ill-typed."""


def stored_message(
    position: int, account_id: str, version: int, event_type: str, stored: bytes
) -> bytes:
    """The encoded CloudEvent of a stored row (the account id as text, the state's bytes).

    The same bytes as `encode(cloudevent(...))` of the decoded event: the
    plain stored JSON holds the values the transcoder would decode, as text.
    Raises ValueError (UnreadableEvent, or orjson's JSONDecodeError) when the
    state cannot be read as an event.
    """
    account_bytes = bytes.fromhex(account_id.replace("-", ""))
    state = plain_state(stored)
    # A handful of type checks: the cost of knowing the envelope is whole.
    if (
        type(state.get("occurred_at")) is not str
        or type(state.get("timestamp")) is not str
        or type(state.get("metadata")) is not dict
        or type(state.get("prev_hash")) is not str
        or type(state.get("hash")) is not str
    ):
        raise UnreadableEvent(_envelope_fault(state))
    return encode(cloudevent(position, account_id, account_bytes, version, event_type, state))


def _envelope_fault(state: Mapping[str, Any]) -> str:
    expected = {
        "occurred_at": str,
        "timestamp": str,
        "metadata": dict,
        "prev_hash": str,
        "hash": str,
    }
    faults = []
    for key, kind in expected.items():
        if key not in state:
            faults.append(f"{key} is missing")
        elif type(state[key]) is not kind:
            faults.append(f"{key} is a {type(state[key]).__name__}, not a {kind.__name__}")
    return "the stored event's envelope is broken: " + ", ".join(faults)


def unreadable_message(
    position: int, account_id: str, version: int, stored: bytes | None, error: str
) -> bytes:
    """The encoded marker the relay publishes for a stored event it cannot read."""
    hash_ = stored_hash_of(stored) if stored is not None else None
    event: dict[str, Any] = {
        "specversion": "1.0",
        "id": str(uuid5(UUID(account_id), f"unreadable:{version}")),
        "source": SOURCE,
        "type": UNREADABLE_TYPE,
        "subject": account_id,
        "datacontenttype": "application/json",
        "data": {
            "position": position,
            "account_id": account_id,
            "version": version,
            "stored_hash": hash_,
            "error": error[:MAX_ERROR],
        },
        "position": position,
        "accountversion": version,
    }
    if hash_ is not None:
        event["hash"] = hash_
    return encode(event)


def encode(event: Mapping[str, Any]) -> bytes:
    """The event as compact JSON; decimals as strings so no amount loses a digit."""
    return orjson.dumps(event, default=_plain)


def _plain(o: object) -> str:
    if isinstance(o, Decimal):
        return str(o)
    raise TypeError(f"cannot encode a {type(o).__name__}")
