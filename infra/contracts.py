"""One contract per message: the fields of every account command and activity.

The HTTP bodies (api/schemas.py) and the data of inbound CloudEvents
(consumers/messages.py) are built from these models and from nothing else, so
both doors accept and refuse the same input with the same words. The allowed
values (channels, close reasons, severities, erase reasons, scores) are the
domain's constants; rules that depend on configuration or state (segments,
closed accounts, open inquiries) stay the domain's.

Message names follow one scheme: an integrator publishes the event it wants
recorded under the name the ledger publishes it with, `crmledger.<EventName>`
(`crmledger.PurchaseRecorded`, `crmledger.AccountOpened`). The older short
names (`purchase`, `account_opened`) remain aliases on the inbound topic, and
are the HTTP activity `type` values; the HTTP API takes the long names too.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Annotated, ClassVar

from pydantic import Field

from domain import activities as act
from domain.rules import CHANNELS, CLOSE_REASONS, ERASE_REASONS, SCORES, SEVERITIES
from infra.inputs import (
    Amount,
    Cost,
    Currency,
    Customer,
    CustomerChanges,
    Reference,
    Short,
    Strict,
    Text,
    one_of,
)

EVENT_PREFIX = "crmledger."

Channel = one_of(CHANNELS)
CloseReason = one_of(CLOSE_REASONS)
EraseReason = one_of(ERASE_REASONS)
Severity = one_of(SEVERITIES)
Score = Annotated[int, Field(ge=min(SCORES), le=max(SCORES), strict=True)]

# ---- account commands ------------------------------------------------------------------


class OpenAccount(Strict):
    external_ref: Reference | None = None
    segment: Short
    service_plan: Short = "standard"
    channel: Channel
    customer: Customer


class UpdateDetails(Strict):
    customer: CustomerChanges


class ConfirmDetails(Strict):
    pass


class ChangeSegment(Strict):
    segment: Short


class ChangePlan(Strict):
    service_plan: Short


class CloseAccount(Strict):
    reason: CloseReason
    note: Text = ""


class EraseAccount(Strict):
    reason: EraseReason = "request"


# ---- activities ------------------------------------------------------------------------


class Activity(Strict):
    """The fields of one service activity; `command()` is the domain's value for it."""

    command_type: ClassVar[type[act.Activity]]

    def command(self) -> act.Activity:
        """The domain's command value with these fields (a body's envelope fields left out)."""
        names = [f.name for f in dataclasses.fields(self.command_type)]
        return self.command_type(**{name: getattr(self, name) for name in names})


class Purchase(Activity):
    command_type = act.Purchase

    currency: Currency  # first: the amounts' check reads it
    amount: Amount
    cost: Cost
    store: Short


class Refund(Purchase):
    command_type = act.Refund


class Visit(Activity):
    command_type = act.Visit

    channel: Channel
    location: Short


class OpenInquiry(Activity):
    command_type = act.OpenInquiry

    inquiry_id: Short
    channel: Channel
    topic: Short


class AnswerInquiry(Activity):
    command_type = act.AnswerInquiry

    inquiry_id: Short
    channel: Channel


class LodgeComplaint(Activity):
    command_type = act.LodgeComplaint

    complaint_id: Short
    category: Short
    severity: Severity


class ResolveComplaint(Activity):
    command_type = act.ResolveComplaint

    complaint_id: Short
    resolution: Text
    satisfied: Annotated[bool, Field(strict=True)]


class GiveFeedback(Activity):
    command_type = act.GiveFeedback

    score: Score
    comment: Text = ""


# ---- names -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Message:
    """A message either door takes: its names and its contract."""

    alias: str  # the short name: the HTTP activity `type`, and the older inbound type
    event: str  # the event the ledger records for it, and publishes as crmledger.<event>
    contract: type[Strict]

    @property
    def type(self) -> str:
        """The CloudEvent type, the same inbound and outbound."""
        return EVENT_PREFIX + self.event

    @property
    def names(self) -> tuple[str, str]:
        """Every type name it is known by."""
        return (self.type, self.alias)

    def title(self) -> str:
        """The alias as a class name: `inquiry_opened` -> `InquiryOpened`."""
        return self.alias.title().replace("_", "")


ACCOUNT_MESSAGES = (
    Message("account_opened", "AccountOpened", OpenAccount),
    Message("details_updated", "DetailsUpdated", UpdateDetails),
    Message("account_closed", "AccountClosed", CloseAccount),
)
ACTIVITY_MESSAGES = (
    Message("purchase", "PurchaseRecorded", Purchase),
    Message("refund", "RefundRecorded", Refund),
    Message("visit", "VisitRecorded", Visit),
    Message("inquiry_opened", "InquiryOpened", OpenInquiry),
    Message("inquiry_answered", "InquiryAnswered", AnswerInquiry),
    Message("complaint_lodged", "ComplaintLodged", LodgeComplaint),
    Message("complaint_resolved", "ComplaintResolved", ResolveComplaint),
    Message("feedback", "FeedbackGiven", GiveFeedback),
)
MESSAGES = ACCOUNT_MESSAGES + ACTIVITY_MESSAGES
ACTIVITY_TYPES = frozenset(name for m in ACTIVITY_MESSAGES for name in m.names)
