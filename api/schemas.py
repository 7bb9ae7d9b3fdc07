"""Request and response bodies of the account routes.

Requests derive from the contracts of infra/contracts.py, the same the inbound
Kafka messages derive from: a command body is its contract plus the fields
every command may carry (`occurred_at`, `reason`); an activity body is flat,
its contract's fields beside a `type` (the short name, or the
`crmledger.<EventName>` the inbound topic uses). The domain decides the rules
that depend on configuration or state (segments, closed accounts, open
inquiries).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal, Union
from uuid import UUID

from pydantic import BaseModel, Field, create_model

from domain import activities as act
from infra import contracts as c
from infra.access_log import AccessEntry
from infra.inputs import Strict, Text, Time


class Command(Strict):
    """Fields every command may carry."""

    occurred_at: Time | None = Field(default=None, description="business time; now when omitted")
    reason: Text | None = None


class OpenAccount(c.OpenAccount, Command):
    pass


class UpdateDetails(c.UpdateDetails, Command):
    pass


class ConfirmDetails(c.ConfirmDetails, Command):
    pass


class ChangeSegment(c.ChangeSegment, Command):
    pass


class ChangePlan(c.ChangePlan, Command):
    pass


class CloseAccount(c.CloseAccount, Command):
    """The contract's `reason` (why the account closes) stands for the metadata reason too."""


class EraseAccount(c.EraseAccount, Command):
    """The contract's `reason` (request or retention) stands for the metadata reason too."""


def _activity_body(message: c.Message) -> type[Command]:
    """The flat HTTP body of an activity: its contract's fields, a `type` and a Command's."""
    return create_model(  # type: ignore[no-any-return,call-overload]
        f"{message.title()}In",
        __base__=(message.contract, Command),
        __module__=__name__,
        type=(Literal[message.names[::-1]], ...),
    )


ACTIVITY_BODIES = {m.alias: _activity_body(m) for m in c.ACTIVITY_MESSAGES}
# One body per activity, told apart by `type` (OpenAPI lists each by its name).
ActivityIn = Annotated[
    Union[tuple(ACTIVITY_BODIES.values())],  # type: ignore[valid-type]  # noqa: UP007
    Field(discriminator="type"),
]


def to_activity(body: BaseModel) -> act.Activity:
    """The domain command value for an activity body."""
    assert isinstance(body, c.Activity)
    return body.command()


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


class AccessLogOut(BaseModel):
    entries: list[AccessEntry]  # the stored row as it is (infra/access_log.py)
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
