"""How accounts and events are shown to a caller: decrypted, masked, and logged.

A role that may read personal data unmasked sees clear text, and that read is
written to the access log; a role that may only see it masked gets masked
values and no log entry (nothing personal was disclosed).
"""

from __future__ import annotations

from typing import Any

from api.auth import Permission, Principal
from api.schemas import AccountOut, EventOut
from domain.account import CustomerAccount
from domain.integrity import data_of
from domain.ledger import AccountEvent
from domain.privacy import mask_all
from infra.wiring import Services


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
        cipher = data.get("customer")
        if isinstance(cipher, dict) and cipher:
            clear = None if account.erased else services.ledger.decrypt(account.id, cipher)
            data["customer"] = clear
            if clear:
                shown.update(clear)
        out.append(
            EventOut(
                version=event.originator_version,
                type=type(event).__name__,
                occurred_at=state["occurred_at"],
                recorded_at=state["timestamp"],
                metadata=state["metadata"],
                data=data,
                prev_hash=state["prev_hash"],
                hash=state["hash"],
            )
        )
    if shown:
        services.access_log.record(user.sub, user.roles, account.id, "history", shown)
    return out
