"""How accounts and events are shown to a caller: decrypted, masked, and logged.

A role that may read personal data unmasked sees clear text, and that read is
written to the access log; a role that may only see it masked gets masked
values and no log entry (nothing personal was disclosed).

An event that cannot be read back is shown in its place as `Unreadable` (its
version, position and the hash its stored text names) and the others as ever.
A read of an account the continuous verifier found broken (infra/verifier.py),
or in which this read met an unreadable event, carries `integrity_warning` and
the header `Crmledger-Integrity: broken; version=N; position=P`.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from fastapi import Response

from api.auth import Permission, Principal
from api.errors import BadRequest
from api.schemas import (
    AccountOut,
    AuditEventOut,
    DirectoryEntryOut,
    EventOut,
    IntegrityWarningOut,
    PersonalDataOut,
    PersonalRecordOut,
    UnreadableAuditEventOut,
    UnreadableEventOut,
)
from domain.account import CustomerAccount
from domain.integrity import UnreadableEvent, data_of
from domain.ledger import AccountEvent
from domain.privacy import mask_all
from infra.audit_feed import FeedEvent
from infra.wiring import Services
from projections.directory import CONTACT_FIELDS, SEALED

# AccountOut's fields that account_out works out; every other is the account's
# attribute of the same name, as it is.
DERIVED = frozenset(
    {
        "customer",
        "customer_masked",
        "personal_data_erased",
        "open_inquiries",
        "open_complaints",
        "recorded_at",
        "integrity_warning",
    }
)
AS_STORED = tuple(name for name in AccountOut.model_fields if name not in DERIVED)


def account_out(
    services: Services, account: CustomerAccount, user: Principal, what: str
) -> AccountOut:
    """The account as `user` may see it; an unmasked read is logged as `what`."""
    out, shown = account_view(services, account, user)
    if shown:
        services.access_log.record(user.sub, user.roles, account.id, what, shown)
    return out


def account_view(
    services: Services, account: CustomerAccount, user: Principal
) -> tuple[AccountOut, dict[str, str] | None]:
    """The account as `user` may see it, and the personal fields it shows in clear.

    The caller logs those fields (the access log) before it answers.
    """
    customer = services.ledger.personal_data(account)
    masked = not user.may(Permission.READ_UNMASKED)
    if customer is not None and masked:
        customer = mask_all(customer)
    shown = customer if customer and not masked else None
    out = AccountOut(
        **{name: getattr(account, name) for name in AS_STORED},
        customer=customer,
        customer_masked=masked and customer is not None,
        personal_data_erased=account.erased,
        open_inquiries=sorted(account.open_inquiries),
        open_complaints=sorted(account.open_complaints),
        recorded_at=account.modified_on,
        integrity_warning=integrity_warning(services, account.id),
    )
    return out, shown


INTEGRITY_HEADER = "Crmledger-Integrity"


def integrity_warning(
    services: Services, account_id: UUID, events: Sequence[object] = ()
) -> IntegrityWarningOut | None:
    """The warning a read of this account carries; None for a whole account.

    The continuous verifier's finding, else the first unreadable event among `events`.
    """
    broken = services.integrity.warning(account_id)
    if broken is not None:
        return IntegrityWarningOut(
            version=broken.version,
            position=broken.position,
            reason=broken.reason,
            detected_at=broken.detected_at,
        )
    for e in events:
        if isinstance(e, UnreadableEvent):
            return IntegrityWarningOut(
                version=e.version,
                position=e.position,
                reason=f"event unreadable: {e.reason}",
                detected_at=datetime.now(UTC),
            )
    return None


def flag(response: Response, warning: IntegrityWarningOut | None) -> None:
    """Set the integrity header of a read that carries a warning."""
    if warning is not None:
        at = f"; position={warning.position}" if warning.position is not None else ""
        response.headers[INTEGRITY_HEADER] = f"broken; version={warning.version}{at}"


def _unreadable(e: UnreadableEvent) -> UnreadableEventOut:
    return UnreadableEventOut(
        version=e.version, position=e.position, hash=e.stored_hash, reason=e.reason
    )


def _envelope(state: dict[str, Any], data: dict[str, Any]) -> dict[str, Any]:
    """What every shown event carries besides its position: times, metadata, data, hashes."""
    return {
        "occurred_at": state["occurred_at"],
        "recorded_at": state["timestamp"],
        "metadata": state["metadata"],
        "data": data,
        "prev_hash": state["prev_hash"],
        "hash": state["hash"],
    }


def _reveal(
    services: Services, account_id: UUID, data: dict[str, Any], erased: bool = False
) -> set[str]:
    """Decrypt the personal fields in `data` in place; the names of the fields shown."""
    cipher = data.get("customer")
    if not isinstance(cipher, dict) or not cipher:
        return set()
    clear = None if erased else services.ledger.decrypt(account_id, cipher)
    data["customer"] = clear
    return set(clear or ())


def _erased(events: Sequence[AccountEvent | UnreadableEvent]) -> bool:
    # From the events, not the account: the history shows even when the
    # account cannot be built. Erasure destroys the key first anyway.
    return any(type(e).__name__ == "PersonalDataErased" for e in events)


def history_out(
    services: Services,
    account_id: UUID,
    events: list[AccountEvent | UnreadableEvent],
    user: Principal,
) -> list[EventOut | UnreadableEventOut]:
    """Every event with its metadata; personal fields decrypted unless erased.

    Only roles that may read unmasked reach history, so the whole read is one
    access-log entry naming the fields that were shown.
    """
    shown: set[str] = set()
    out: list[EventOut | UnreadableEventOut] = []
    erased = _erased(events)
    for event in events:
        if isinstance(event, UnreadableEvent):
            out.append(_unreadable(event))
            continue
        state: dict[str, Any] = dict(vars(event))
        data = data_of(state)
        shown |= _reveal(services, account_id, data, erased)
        out.append(
            EventOut(
                version=event.originator_version,
                type=type(event).__name__,
                **_envelope(state, data),
            )
        )
    if shown:
        services.access_log.record(user.sub, user.roles, account_id, "history", shown)
    return out


def audit_events_out(
    services: Services, events: list[FeedEvent | UnreadableEvent], user: Principal
) -> list[AuditEventOut | UnreadableAuditEventOut]:
    """A page of the global feed, decrypted for the auditor; one log entry per account."""
    shown: dict[UUID, set[str]] = {}
    out: list[AuditEventOut | UnreadableAuditEventOut] = []
    for e in events:
        if isinstance(e, UnreadableEvent):
            out.append(
                UnreadableAuditEventOut(
                    account_id=e.account_id,
                    version=e.version,
                    position=e.position or 0,
                    hash=e.stored_hash,
                    reason=e.reason,
                )
            )
            continue
        data = data_of(e.state)
        fields = _reveal(services, e.account_id, data)
        if fields:
            shown.setdefault(e.account_id, set()).update(fields)
        out.append(
            AuditEventOut(
                position=e.position,
                account_id=e.account_id,
                version=e.version,
                type=e.type,
                **_envelope(e.state, data),
            )
        )
    for account_id, fields in shown.items():
        services.access_log.record(user.sub, user.roles, account_id, "audit-feed", fields)
    return out


def personal_data_out(
    services: Services,
    account_id: UUID,
    account: CustomerAccount | None,
    events: list[AccountEvent | UnreadableEvent],
    user: Principal,
) -> PersonalDataOut:
    """Every personal field held on the customer, now and in each event; logged.

    A data access request is answered even when an event cannot be read (and
    so the account cannot be built, `account` None): the readable records are
    listed, the unreadable events named, and `current` is null.
    """
    records = []
    unreadable = []
    shown: set[str] = set()
    erased = account.erased if account is not None else _erased(events)
    external_ref = None
    for event in events:
        if isinstance(event, UnreadableEvent):
            unreadable.append(_unreadable(event))
            continue
        state: dict[str, Any] = dict(vars(event))
        if type(event).__name__ == "AccountOpened":
            external_ref = state.get("external_ref")
        data = data_of(state)
        if not isinstance(data.get("customer"), dict) or not data["customer"]:
            continue
        shown |= _reveal(services, account_id, data, erased)
        records.append(
            PersonalRecordOut(
                version=event.originator_version,
                type=type(event).__name__,
                occurred_at=state["occurred_at"],
                recorded_at=state["timestamp"],
                fields=data["customer"],
            )
        )
    current = services.ledger.personal_data(account) if account is not None else None
    services.access_log.record(
        user.sub, user.roles, account_id, "personal-data", shown | set(current or ())
    )
    return PersonalDataOut(
        account_id=account_id,
        external_ref=account.external_ref if account is not None else external_ref,
        personal_data_erased=erased,
        current=current,
        records=records,
        unreadable=unreadable,
        integrity_warning=integrity_warning(services, account_id, events),
    )


def directory_entry(services: Services, row: dict[str, Any], unmasked: bool) -> DirectoryEntryOut:
    """A directory row as the caller may see it: contact fields decrypted, masked unless allowed.

    The directory holds them sealed under the account's key; a key destroyed
    before the erasure reached the directory shows no contact at all.
    """
    sealed = {f: row[SEALED[f]] for f in CONTACT_FIELDS if row[SEALED[f]] is not None}
    contact = (services.ledger.decrypt(row["account_id"], sealed) if sealed else None) or None
    if contact and not unmasked:
        contact = mask_all(contact)
    return DirectoryEntryOut(
        id=row["account_id"],
        external_ref=row["external_ref"],
        status=row["status"],
        segment=row["segment"],
        service_plan=row["service_plan"],
        channel=row["channel"],
        opened_at=row["opened_at"],
        closed_at=row["closed_at"],
        details_current_at=row["details_current_at"],
        last_activity_at=row["last_activity_at"],
        contact=contact,
        personal_data_erased=row["erased"],
    )


def encode_cursor(opened_at: datetime, account_id: UUID) -> str:
    """An opaque cursor for the page after this row."""
    raw = f"{opened_at.isoformat()}|{account_id}".encode()
    return base64.urlsafe_b64encode(raw).decode()


def decode_cursor(cursor: str) -> tuple[datetime, UUID]:
    """The row a cursor points after; a cursor that is not ours is a 400."""
    try:
        opened_at, account_id = base64.urlsafe_b64decode(cursor).decode().split("|")
        return datetime.fromisoformat(opened_at), UUID(account_id)
    except ValueError:
        raise BadRequest("cursor is not one this API gave") from None


# A paged report's cursor names its report, so it is refused on any other list.
MAX_CURSOR = 200


def encode_page_cursor(report: str, key: tuple[datetime, UUID]) -> str:
    """An opaque cursor for the page of `report` after the row whose key is `key`.

    Base64url of the report's name and the row's key (its moment in UTC), one
    text for each key: decode_page_cursor takes back exactly what this gives.
    """
    moment, account_id = key
    raw = f"{report}|{moment.astimezone(UTC).isoformat()}|{account_id}"
    return base64.urlsafe_b64encode(raw.encode()).decode()


def decode_page_cursor(report: str, cursor: str) -> tuple[datetime, UUID]:
    """The row key a cursor of `report` points after; anything else is a 400.

    A cursor is taken only as encode_page_cursor wrote it for this report: any
    other text (another list's cursor, a changed moment or id, other padding,
    stray characters) is refused, never read as something near it.
    """
    try:
        if len(cursor) > MAX_CURSOR:
            raise ValueError("too long")
        named, moment, account_id = base64.urlsafe_b64decode(cursor).decode().split("|")
        key = (datetime.fromisoformat(moment), UUID(account_id))
        if named != report or encode_page_cursor(report, key) != cursor:
            raise ValueError("not as given")
    except (ValueError, OverflowError):  # a moment too near year 1 or 9999 overflows UTC
        raise BadRequest(f"cursor is not one this API gave for the {report} report") from None
    return key
