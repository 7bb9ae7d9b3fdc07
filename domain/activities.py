"""Service activities as command values: what the ledger is asked to record.

ACTIVITIES names each by its short name (the HTTP activity `type`, and the
older inbound type). The HTTP API and the inbound Kafka consumer both build one
of these from a message checked against its contract (infra/contracts.py),
then hand it to the ledger.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # the account records these: it imports this module
    from domain.account import CustomerAccount, Metadata


@dataclass(frozen=True)
class Sale:
    """Money moved in a store: the amount, its cost to the retailer, the currency, where."""

    amount: Decimal
    cost: Decimal
    currency: str
    store: str


@dataclass(frozen=True)
class Purchase(Sale):
    """The customer bought goods."""


@dataclass(frozen=True)
class Refund(Sale):
    """The customer was paid back for goods returned (the cost is recovered)."""


@dataclass(frozen=True)
class Visit:
    channel: str
    location: str


@dataclass(frozen=True)
class OpenInquiry:
    inquiry_id: str
    channel: str
    topic: str


@dataclass(frozen=True)
class AnswerInquiry:
    inquiry_id: str
    channel: str


@dataclass(frozen=True)
class LodgeComplaint:
    complaint_id: str
    category: str
    severity: str


@dataclass(frozen=True)
class ResolveComplaint:
    complaint_id: str
    resolution: str
    satisfied: bool


@dataclass(frozen=True)
class GiveFeedback:
    score: int
    comment: str


Activity = (
    Purchase
    | Refund
    | Visit
    | OpenInquiry
    | AnswerInquiry
    | LodgeComplaint
    | ResolveComplaint
    | GiveFeedback
)

ACTIVITIES: dict[str, type[Activity]] = {
    "purchase": Purchase,
    "refund": Refund,
    "visit": Visit,
    "inquiry_opened": OpenInquiry,
    "inquiry_answered": AnswerInquiry,
    "complaint_lodged": LodgeComplaint,
    "complaint_resolved": ResolveComplaint,
    "feedback": GiveFeedback,
}


def apply_activity(
    account: CustomerAccount, activity: Activity, occurred_at: datetime, meta: Metadata
) -> None:
    """Record the activity on the account (`CustomerAccount.record`)."""
    account.record(activity, occurred_at, meta)
