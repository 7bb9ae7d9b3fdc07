"""Verification and digests of the ledger, read from the event store's rows.

`verify` recomputes every hash chain (domain/integrity.py's ChainVerifier) from
the stored rows in store order; `digest` chains every stored hash into the
ledger digest an auditor keeps. Both read the recorder's notifications page by
page, so memory stays flat; the audit feed (infra/audit_feed.py) and the
continuous verifier (infra/verifier.py) read the same rows.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from uuid import UUID

from eventsourcing.persistence import ApplicationRecorder, Notification

from domain.account import event_type_of
from domain.errors import AccountNotFound, PositionNotFound
from domain.integrity import GENESIS_HASH, StoredRecord, VerifyReport, next_digest, verify_records
from infra.event_store import plain_state


def verify(
    recorder: ApplicationRecorder,
    account_id: UUID | None = None,
    *,
    up_to: int | None = None,
    page: int = 5000,
) -> VerifyReport:
    """Recompute the hash chains of one account, or of the ledger up to a position.

    For the whole ledger the report also carries the ledger digest at its
    last position, for comparison with a digest an auditor kept.
    """
    if up_to is not None:
        check_position(recorder, up_to)
    return verify_records(stored_records(recorder, account_id, page, up_to))


def digest(
    recorder: ApplicationRecorder, up_to: int | None = None, page: int = 5000
) -> tuple[int, str]:
    """The ledger digest (position, digest) now, or at a position of the past."""
    if up_to is not None:
        check_position(recorder, up_to)
    position, value = 0, GENESIS_HASH
    for n in notifications(recorder, page, up_to):
        state = _safe_state(n.state) or {}
        position, value = n.id, next_digest(value, str(state.get("hash") or ""))
    return position, value


def check_position(recorder: ApplicationRecorder, position: int) -> None:
    """Raise PositionNotFound unless an event is stored at `position`."""
    if not recorder.select_notifications(position, 1, stop=position):
        raise PositionNotFound(f"no event is stored at position {position}")


def notifications(
    recorder: ApplicationRecorder, page: int, up_to: int | None = None
) -> Iterator[Notification]:
    """Every stored event in store order, up to a position, `page` rows a query."""
    start = 1
    while True:
        found = recorder.select_notifications(start, page, stop=up_to)
        yield from found
        if len(found) < page:
            return
        start = found[-1].id + 1


def stored_records(
    recorder: ApplicationRecorder, account_id: UUID | None, page: int, up_to: int | None = None
) -> Iterator[StoredRecord]:
    """The verifier's view of one account's rows, or of the ledger's in store order."""
    if account_id is not None:
        stored = recorder.select_events(account_id)
        if not stored:
            raise AccountNotFound(f"no account {account_id}")
        for s in stored:
            yield stored_record(
                0, account_id, s.originator_version, event_type_of(s.topic), s.state
            )
        return
    for n in notifications(recorder, page, up_to):
        account = n.originator_id
        yield stored_record(
            n.id,
            account if isinstance(account, UUID) else UUID(str(account)),
            n.originator_version,
            event_type_of(n.topic),
            n.state,
        )


def stored_record(
    position: int, account_id: UUID, version: int, event_type: str, state: bytes
) -> StoredRecord:
    """The verifier's view of a stored row: its state decoded, or None when it cannot be."""
    return StoredRecord(position, account_id, version, event_type, _safe_state(state))


def _safe_state(state: bytes) -> dict[str, Any] | None:
    try:
        return plain_state(state)
    except ValueError:
        return None
