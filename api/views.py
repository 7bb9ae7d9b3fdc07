"""How accounts and events are shown to a caller: decrypted, masked, and logged.

A role that may read personal data unmasked sees clear text, and that read is
written to the access log; a role that may only see it masked gets masked
values and no log entry (nothing personal was disclosed).
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any
from uuid import UUID

from api.auth import Permission, Principal
from api.errors import BadRequest
from api.schemas import (
    AccountOut,
    AuditEventOut,
    DirectoryEntryOut,
    EventOut,
    PersonalDataOut,
    PersonalRecordOut,
)
from domain.account import CustomerAccount
from domain.integrity import data_of
from domain.ledger import AccountEvent
from domain.privacy import mask_all
from infra.audit_feed import FeedEvent
from infra.wiring import Services
from projections.directory import CONTACT_FIELDS, SEALED


def account_out(
    services: Services, account: CustomerAccount, user: Principal, what: str
) -> AccountOut:
    """The account as `user` may see it; an unmasked read is logged as `what`."""
    customer = services.ledger.personal_data(account)
    masked = not user.may(Permission.READ_UNMASKED)
    if customer is not None:
        if masked:
            customer = mask_all(customer)
        elif customer:
            services.access_log.record(user.sub, user.roles, account.id, what, customer)
    return AccountOut(
        id=account.id,
        version=account.version,
        external_ref=account.external_ref,
        status=account.status,
        segment=account.segment,
        service_plan=account.service_plan,
        channel=account.channel,
        customer=customer,
        customer_masked=masked and customer is not None,
        personal_data_erased=account.erased,
        opened_at=account.opened_at,
        closed_at=account.closed_at,
        close_reason=account.close_reason,
        details_current_at=account.details_current_at,
        last_activity_at=account.last_activity_at,
        open_inquiries=sorted(account.open_inquiries),
        open_complaints=sorted(account.open_complaints),
        recorded_at=account.modified_on,
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


def history_out(
    services: Services, account: CustomerAccount, events: list[AccountEvent], user: Principal
) -> list[EventOut]:
    """Every event with its metadata; personal fields decrypted unless erased.

    Only roles that may read unmasked reach history, so the whole read is one
    access-log entry naming the fields that were shown.
    """
    shown: set[str] = set()
    out = []
    for event in events:
        state: dict[str, Any] = dict(vars(event))
        data = data_of(state)
        shown |= _reveal(services, account.id, data, account.erased)
        out.append(
            EventOut(
                version=event.originator_version,
                type=type(event).__name__,
                **_envelope(state, data),
            )
        )
    if shown:
        services.access_log.record(user.sub, user.roles, account.id, "history", shown)
    return out


def audit_events_out(
    services: Services, events: list[FeedEvent], user: Principal
) -> list[AuditEventOut]:
    """A page of the global feed, decrypted for the auditor; one log entry per account."""
    shown: dict[UUID, set[str]] = {}
    out = []
    for e in events:
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
    services: Services, account: CustomerAccount, events: list[AccountEvent], user: Principal
) -> PersonalDataOut:
    """Every personal field held on the customer, now and in each event; logged."""
    records = []
    shown: set[str] = set()
    for event in events:
        state: dict[str, Any] = dict(vars(event))
        data = data_of(state)
        if not isinstance(data.get("customer"), dict) or not data["customer"]:
            continue
        shown |= _reveal(services, account.id, data, account.erased)
        records.append(
            PersonalRecordOut(
                version=event.originator_version,
                type=type(event).__name__,
                occurred_at=state["occurred_at"],
                recorded_at=state["timestamp"],
                fields=data["customer"],
            )
        )
    current = services.ledger.personal_data(account)
    services.access_log.record(
        user.sub, user.roles, account.id, "personal-data", shown | set(current or ())
    )
    return PersonalDataOut(
        account_id=account.id,
        external_ref=account.external_ref,
        personal_data_erased=account.erased,
        current=current,
        records=records,
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
