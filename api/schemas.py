"""Request and response bodies of the account routes.

Requests are strict about shape and size (unknown fields are refused, strings
have limits); the domain decides the rules that depend on configuration or
state (segments, closed accounts, open inquiries).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, Field

from domain import activities as act
from infra.inputs import Cost, Currency, Customer, CustomerChanges, Money, Short, Strict, Text

Channel = Literal["store", "online", "app", "phone"]


class Command(Strict):
    """Fields every command may carry."""

    occurred_at: AwareDatetime | None = Field(
        default=None, description="business time; now when omitted"
    )
    reason: Text | None = None


class OpenAccount(Command):
    external_ref: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    segment: Short
    service_plan: Short = "standard"
    channel: Channel
    customer: Customer


class UpdateDetails(Command):
    customer: CustomerChanges


class ConfirmDetails(Command):
    pass


class ChangeSegment(Command):
    segment: Short


class ChangePlan(Command):
    service_plan: Short


class CloseAccount(Command):
    reason: Literal["customer_request", "inactivity", "fraud", "deceased", "other"]  # type: ignore[assignment]
    note: Text = ""


class EraseAccount(Command):
    reason: Literal["request", "retention"] = "request"  # type: ignore[assignment]


class PurchaseIn(Command):
    type: Literal["purchase"]
    amount: Money
    cost: Cost
    currency: Currency
    store: Short


class RefundIn(Command):
    type: Literal["refund"]
    amount: Money
    cost: Cost
    currency: Currency
    store: Short


class VisitIn(Command):
    type: Literal["visit"]
    channel: Channel
    location: Short


class InquiryOpenedIn(Command):
    type: Literal["inquiry_opened"]
    inquiry_id: Short
    channel: Channel
    topic: Short


class InquiryAnsweredIn(Command):
    type: Literal["inquiry_answered"]
    inquiry_id: Short
    channel: Channel


class ComplaintLodgedIn(Command):
    type: Literal["complaint_lodged"]
    complaint_id: Short
    category: Short
    severity: Literal["low", "medium", "high"]


class ComplaintResolvedIn(Command):
    type: Literal["complaint_resolved"]
    complaint_id: Short
    resolution: Text
    satisfied: bool


class FeedbackIn(Command):
    type: Literal["feedback"]
    score: Annotated[int, Field(ge=1, le=5, strict=True)]
    comment: Text = ""


ActivityIn = Annotated[
    PurchaseIn
    | RefundIn
    | VisitIn
    | InquiryOpenedIn
    | InquiryAnsweredIn
    | ComplaintLodgedIn
    | ComplaintResolvedIn
    | FeedbackIn,
    Field(discriminator="type"),
]


def to_activity(body: BaseModel) -> act.Activity:
    """The domain command value for an activity body."""
    fields = body.model_dump(exclude={"type", "occurred_at", "reason"})
    kind: str = getattr(body, "type")  # noqa: B009  (every member of ActivityIn has it)
    return act.ACTIVITIES[kind](**fields)


class IntegrityWarningOut(BaseModel):
    """The account's hash chain breaks: what is shown may not be what was recorded.

    Found by the continuous verifier (or by this read, for an event that cannot
    be decoded); the same reads carry the header `Crmledger-Integrity`.
    """

    version: int = Field(description="the first version that breaks the chain")
    position: int | None = Field(description="that event's position in the ledger")
    reason: str
    detected_at: datetime


class AccountOut(BaseModel):
    """An account as it stands (or stood, for as-of reads)."""

    id: UUID
    version: int
    external_ref: str | None
    status: Literal["open", "closed"]
    segment: str
    service_plan: str
    channel: str
    customer: dict[str, str] | None = Field(
        description="personal fields; masked for roles that may only see them masked; "
        "null once erased"
    )
    customer_masked: bool
    personal_data_erased: bool
    opened_at: datetime
    closed_at: datetime | None
    close_reason: str | None
    details_current_at: datetime
    last_activity_at: datetime
    open_inquiries: list[str]
    open_complaints: list[str]
    recorded_at: datetime = Field(description="when the ledger recorded this version")
    integrity_warning: IntegrityWarningOut | None = Field(
        default=None, description="set when the account's hash chain is found broken"
    )


class EventOut(BaseModel):
    """One event of an account's history, with its metadata and hashes."""

    version: int
    type: str
    unreadable: Literal[False] = False
    occurred_at: datetime
    recorded_at: datetime
    metadata: dict[str, Any]
    data: dict[str, Any]
    prev_hash: str
    hash: str


class UnreadableEventOut(BaseModel):
    """A stored event that cannot be read back, shown in its place instead of failing the page."""

    version: int
    type: Literal["Unreadable"] = "Unreadable"
    unreadable: Literal[True] = True
    position: int | None = Field(description="its position in the ledger")
    hash: str | None = Field(description="the hash named in its stored text, when one is found")
    reason: str


class HistoryOut(BaseModel):
    account_id: UUID
    events: list[EventOut | UnreadableEventOut]
    integrity_warning: IntegrityWarningOut | None = Field(
        default=None, description="set when the account's hash chain is found broken"
    )


class EraseOut(BaseModel):
    account_id: UUID
    erased: bool = Field(description="false when the data had been erased before")
    version: int


class VerifyOut(BaseModel):
    ok: bool
    events: int
    accounts: int
    position: int | None = Field(default=None, description="last position verified")
    digest: str | None = Field(default=None, description="ledger digest at that position")
    digest_matches: bool | None = Field(
        default=None, description="when a kept digest was given: whether it still holds"
    )
    broken_account_id: UUID | None = None
    broken_version: int | None = None
    broken_position: int | None = None
    reason: str | None = None


class AuditEventOut(EventOut):
    """One event of the global log, as an auditor sees it: an account event and its place."""

    position: int
    account_id: UUID


class UnreadableAuditEventOut(UnreadableEventOut):
    """A stored event of the global log that cannot be read back, in its place."""

    position: int
    account_id: UUID


class AuditPageOut(BaseModel):
    events: list[AuditEventOut | UnreadableAuditEventOut]
    next_after: int = Field(description="pass as `after` to read the next page")


class DigestOut(BaseModel):
    position: int = Field(description="the last event position the digest covers")
    digest: str


class AccessEntryOut(BaseModel):
    id: int
    at: datetime
    actor: str
    roles: list[str]
    account_id: UUID
    what: str
    fields: list[str]


class AccessLogOut(BaseModel):
    entries: list[AccessEntryOut]
    next_after: int


class PersonalRecordOut(BaseModel):
    """Personal fields as one event recorded them."""

    version: int
    type: str
    occurred_at: datetime
    recorded_at: datetime
    fields: dict[str, str] | None = Field(description="null once the data was erased")


class PersonalDataOut(BaseModel):
    """Everything the ledger holds on one customer (a data access request)."""

    account_id: UUID
    external_ref: str | None
    personal_data_erased: bool
    current: dict[str, str] | None = Field(
        description="null once erased, or when an unreadable event keeps the account from"
        " being built (see unreadable)"
    )
    records: list[PersonalRecordOut]
    unreadable: list[UnreadableEventOut] = Field(
        default_factory=list,
        description="stored events that cannot be read back: what they hold cannot be shown",
    )
    integrity_warning: IntegrityWarningOut | None = None


class RetentionOut(BaseModel):
    dry_run: bool
    retention_days: int
    erased: list[UUID] = Field(description="accounts erased, or that would be on a dry run")


class DirectoryEntryOut(BaseModel):
    """One account in the directory (a read model: it may trail the ledger by moments)."""

    id: UUID
    external_ref: str | None
    status: str
    segment: str
    service_plan: str
    channel: str
    opened_at: datetime
    closed_at: datetime | None
    details_current_at: datetime
    last_activity_at: datetime
    contact: dict[str, str] | None = Field(description="masked for roles that may not see it")
    personal_data_erased: bool


class DirectoryOut(BaseModel):
    items: list[DirectoryEntryOut]
    next_cursor: str | None = Field(description="pass as `cursor` for the next page")


class ProjectionOut(BaseModel):
    name: str
    position: int = Field(description="highest ledger position applied")
    ledger_position: int
    lag: int = Field(description="events in the ledger after the position")
    partitions: dict[int, int]
    parked: int = Field(0, description="events it set aside: GET /v1/admin/projections/parked")


class RebuildOut(BaseModel):
    name: str
    events: int
    seconds: float
    parked: int = Field(0, description="events the rebuild could not apply, parked")
    parked_positions: list[int] = Field(
        default_factory=list, description="their ledger positions (the first 1000)"
    )


class ParkedEventOut(BaseModel):
    """An event a read model set aside because it could not apply it."""

    read_model: str
    position: int = Field(description="the event's ledger position")
    partition: int
    account_id: UUID | None
    event_type: str | None
    reason: Literal["cannot_apply", "unreadable_in_store"]
    error_class: str
    error: str
    parked_at: datetime
    last_attempt_at: datetime
    attempts: int = Field(description="times applying it was tried")


class ParkedOut(BaseModel):
    items: list[ParkedEventOut]


class RetryOut(BaseModel):
    applied: list[ParkedEventOut] = Field(description="applied now, parked no more")
    still_parked: list[ParkedEventOut] = Field(description="failed again: attempts and error new")
