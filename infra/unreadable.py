"""Stored events that cannot be read back: how the ledger answers for them.

A row altered or damaged in the database (undecodable bytes, an unknown type,
a state missing what `apply` reads) must not pass for an account: loading one
raises LedgerIntegrityError naming the event and its position, a history
shows an UnreadableEvent in the row's place, and batch loading leaves the
account out so its command is refused alone. When every event reads, the
snapshot was the damaged part: it is only a shortcut, so the events answer.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any, cast
from uuid import UUID

from eventsourcing.persistence import MapperDeserialisationError, StoredEvent
from eventsourcing.utils import TopicError

from domain.account import CustomerAccount
from domain.errors import AccountNotFound, LedgerError, LedgerIntegrityError
from domain.integrity import UnreadableEvent, check_envelope
from domain.ledger import AccountEvent
from infra.event_store import stored_hash_of

if TYPE_CHECKING:
    from infra.ledger_store import PostgresLedger

log = logging.getLogger(__name__)

# What loading an account raises when a stored row is not what was written:
# undecodable bytes, an unknown topic, or a decoded state missing what
# `apply` reads. Anything else (the database away) is not the row's fault.
ERRORS = (
    MapperDeserialisationError,
    TopicError,
    AttributeError,
    KeyError,
    TypeError,
    ValueError,
)


def replay(
    ledger: PostgresLedger, account_id: UUID, version: int | None, cause: Exception
) -> CustomerAccount:
    """The account rebuilt from its events alone, after a load failed on `cause`.

    An event that cannot be read or applied is refused with
    LedgerIntegrityError. When every event reads, the snapshot was the
    unreadable part: it is only a shortcut, so the events answer.
    """
    if isinstance(cause, LedgerError):
        raise cause
    stored = ledger.recorder.select_events(account_id, lte=version)
    if not stored:
        raise AccountNotFound(f"no account {account_id}")
    account: Any = None
    for s in stored:
        try:
            event = cast(CustomerAccount.Event, ledger.mapper.to_domain_event(s))
            check_envelope(vars(event))
            account = event.mutate(account)
        except Exception as e:  # in memory only: whatever fails here is the row's fault
            raise error(ledger, account_id, s.originator_version, e) from None
    log.warning("account %s: snapshot unreadable (%s); rebuilt from its events", account_id, cause)
    return cast(CustomerAccount, account)


def event_or_marker(ledger: PostgresLedger, stored: StoredEvent) -> AccountEvent | UnreadableEvent:
    """The stored row as its event, or as an UnreadableEvent when it cannot be read."""
    try:
        event = ledger.mapper.to_domain_event(stored)
        check_envelope(vars(event))
    except Exception as e:  # in memory only: whatever fails here is the row's fault
        account_id = UUID(str(stored.originator_id))
        version = stored.originator_version
        return UnreadableEvent(
            account_id,
            version,
            ledger.position_of(account_id, version),
            stored_hash_of(stored.state),
            reason(e),
        )
    return event


def first_unreadable(ledger: PostgresLedger, account_id: UUID) -> LedgerIntegrityError:
    """The refusal naming the account's first unreadable event."""
    for entry in ledger.history(account_id):
        if isinstance(entry, UnreadableEvent):
            return error(ledger, account_id, entry.version, entry.reason)
    return error(ledger, account_id, 0, "the recorded times cannot be read")


def error(
    ledger: PostgresLedger, account_id: UUID, version: int, why: Exception | str
) -> LedgerIntegrityError:
    """LedgerIntegrityError for one unreadable event of the account, with its position."""
    position = ledger.position_of(account_id, version) if version else None
    where = f" at position {position}" if position is not None else ""
    because = why if isinstance(why, str) else reason(why)
    return LedgerIntegrityError(
        f"account {account_id} cannot be read: its event version {version}{where}"
        f" is unreadable ({because})",
        account_id,
        version,
        position,
    )


def reason(error: Exception) -> str:
    """Why a row could not be read, in words."""
    if isinstance(error, MapperDeserialisationError):
        return "its stored state cannot be decoded"
    if isinstance(error, TopicError):
        return "its stored type is unknown"
    return str(error) or type(error).__name__
