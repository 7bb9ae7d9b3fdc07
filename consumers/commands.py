"""Inbound events as Ledger commands: one at a time, or activities in a batch.

Openings, detail updates and closings go through the Ledger's verbs with the
message's receipt (`receipts=`), one transaction each (the verbs encrypt, check
for duplicates and retry on their own). Activities, most of the traffic, are
applied in memory to accounts loaded once per batch and saved together with
`Ledger.record_batch`: one transaction for the batch, with every message's
receipt in it. A refused activity raises before it changes the
account (the aggregate checks its rules first), so it is split out and the rest
of the batch stays.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from consumers.messages import (
    AccountClosed,
    AccountOpened,
    Activity,
    DetailsUpdated,
    InboundEvent,
)
from domain.account import CustomerAccount
from domain.activities import apply_activity
from infra.contracts import ACTIVITY_TYPES
from infra.inbound_receipts import Receipt
from infra.ledger_store import PostgresLedger

__all__ = ["ACTIVITY_TYPES", "ActivityBatch", "apply_event", "event_metadata"]


def event_metadata(event: InboundEvent) -> dict[str, Any]:
    """The metadata every event applied from this message carries."""
    return {
        "actor": event.source,
        "department": event.extension("department"),
        "reason": event.extension("reason"),
        "correlation_id": event.extension("correlationid") or event.id,
        "causation_id": event.id,
        "source": f"kafka:{event.source}",
    }


def apply_event(ledger: PostgresLedger, event: InboundEvent, receipt: Receipt) -> None:
    """Apply one inbound event with its receipt, in one transaction.

    Raises AlreadyApplied when the receipt shows it was applied before, and the
    domain's error when the ledger refuses it.
    """
    meta = event_metadata(event)
    receipts = (receipt,)
    match event:
        case AccountOpened():
            ref = event.opening_ref
            ledger.open_account(
                external_ref=ref,
                segment=event.data.segment,
                service_plan=event.data.service_plan,
                channel=event.data.channel,
                customer=event.data.customer.fields(),
                occurred_at=event.time,
                meta=meta,
                account_id=None if ref else event.account_id,
                receipts=receipts,
            )
        case DetailsUpdated():
            ledger.update_details(
                event.account_id, event.data.customer.fields(), event.time, meta, receipts=receipts
            )
        case AccountClosed():
            ledger.close_account(
                event.account_id,
                event.data.reason,
                event.data.note,
                event.time,
                meta,
                receipts=receipts,
            )
        case Activity():
            ledger.record_activity(
                event.account_id, event.command(), event.time, meta, receipts=receipts
            )
        case _:
            raise TypeError(f"no command for inbound type {event.type}")


@dataclass
class ActivityBatch:
    """Activities applied to in-memory accounts, to be saved in one transaction."""

    ledger: PostgresLedger
    accounts: dict[UUID, CustomerAccount] = field(default_factory=dict)
    items: list[tuple[Any, Activity, Receipt]] = field(default_factory=list)
    keys: set[tuple[str, str]] = field(default_factory=set)
    # Accounts loaded ahead for the activities of a poll batch, each used once.
    loaded: dict[UUID, CustomerAccount] = field(default_factory=dict)

    def preload(self, account_ids: Iterable[UUID]) -> None:
        """Load the accounts these activities touch, together (Ledger.accounts)."""
        self.loaded = self.ledger.accounts(account_ids)

    def forget(self, account_id: UUID) -> None:
        """Drop the account loaded ahead: another command is about to change it."""
        self.loaded.pop(account_id, None)

    def add(self, record: Any, event: Activity, receipt: Receipt) -> None:
        """Apply the activity to its account in memory.

        A domain refusal (LedgerError) leaves the batch as it was. Any other
        error may have left an account half changed: the caller must drop the
        batch (`take`) and apply its messages one by one.
        """
        account = self.accounts.get(event.account_id) or self.loaded.pop(event.account_id, None)
        if account is None:
            account = self.ledger.account(event.account_id)
        apply_activity(account, event.command(), event.time, event_metadata(event))
        self.accounts[account.id] = account
        self.items.append((record, event, receipt))
        self.keys.add((event.source, event.id))

    def save(self) -> None:
        """Save every changed account and every receipt in one transaction.

        Raises AlreadyApplied, or eventsourcing's IntegrityError when another
        writer changed one of the accounts meanwhile; either way nothing was
        stored, and the caller applies the messages one by one.
        """
        self.ledger.record_batch(self.accounts.values(), [receipt for _, _, receipt in self.items])
        self.accounts = {}

    def take(self) -> list[tuple[Any, Activity, Receipt]]:
        """Empty the batch; returns its messages, in order."""
        items = self.items
        self.accounts, self.items, self.keys = {}, [], set()
        return items

    def __len__(self) -> int:
        return len(self.items)
