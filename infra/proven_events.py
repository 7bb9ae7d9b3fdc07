"""A stored event as an offline checker needs it: the fields its own hash covers, as stored.

An inclusion proof says that a leaf (the event's `hash`) is in the tree; the
auditor must also recompute that hash from the event to know the leaf stands
for this event. So the event goes out exactly as stored: the data with its
ciphertext (never decrypted), decimals and times as the stored text writes
them, which is what canonical JSON makes of them (infra/event_store.py's
`plain_state`). A row that cannot be read gives what its raw text names (its
place and the hash found in it), so a corrupt row is shown, not hidden.
"""

from __future__ import annotations

from typing import Any

from eventsourcing.application import Application
from psycopg_pool import ConnectionPool

from domain.account import event_type_of
from domain.integrity import data_of
from infra.event_store import EventLog, plain_state, stored_hash_of

# The envelope every readable stored event holds, in its plain (stored) JSON form.
_ENVELOPE: dict[str, type] = {"occurred_at": str, "metadata": dict, "prev_hash": str, "hash": str}


class ProvenEvents:
    """Reads one stored event by its position, in the form the proof routes give it."""

    def __init__(self, pool: ConnectionPool, ledger: Application[Any]) -> None:
        self._pool = pool
        self._log = EventLog(ledger)

    def at(self, position: int) -> dict[str, Any] | None:
        """The event stored at `position` as an offline checker reads it; None when no row is."""
        with self._pool.connection() as conn:
            rows = self._log.filtered_page(conn, position - 1, 1)
        if not rows or rows[0][0] != position:
            return None
        _, account_id, version, topic, state = rows[0]
        return stored_form(position, str(account_id), version, event_type_of(topic), bytes(state))


def stored_form(
    position: int, account_id: str, version: int, event_type: str, raw: bytes
) -> dict[str, Any]:
    """One stored row as the hash covers it, or, when unreadable, what its raw text names."""
    place = {"position": position, "account_id": account_id, "version": version}
    try:
        state = plain_state(raw)
    except ValueError:
        state = None
    missing = (
        [name for name, kind in _ENVELOPE.items() if not isinstance(state.get(name), kind)]
        if state is not None
        else []
    )
    if state is None or missing:
        reason = (
            "its stored state cannot be decoded"
            if state is None
            else f"its {', '.join(missing)} is missing or mistyped"
        )
        return {
            **place,
            "type": event_type,
            "unreadable": True,
            "hash": stored_hash_of(raw),
            "reason": reason,
        }
    return {
        **place,
        "type": event_type,
        "unreadable": False,
        "occurred_at": state["occurred_at"],
        "metadata": state["metadata"],
        "data": data_of(state),
        "prev_hash": state["prev_hash"],
        "hash": state["hash"],
    }
