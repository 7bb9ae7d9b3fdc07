"""Inbound integration events: CloudEvents 1.0 in structured JSON mode.

`parse` turns a message value into one of the inbound event models, or raises
`NotJSON` or pydantic's `ValidationError`. The models check shape and types;
rules that depend on configuration or state (segments, channels, closed
accounts, open inquiries) are the domain's, so its error names the reason.

`data` carries the event's fields as in the domain table. For details_updated
it is `{"customer": {<changed fields>}}`, like the stored DetailsUpdated event.
The envelope may carry CloudEvents extension attributes; `correlationid`,
`department` and `reason`, when given, go into the events' metadata.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    TypeAdapter,
    ValidationError,
    field_validator,
    model_validator,
)

from domain.account import account_id_for
from infra.inputs import Cost, Currency, Customer, CustomerChanges, Money, Short, Text

EXTERNAL_PREFIX = "ext:"


class NotJSON(ValueError):
    """The message value is not JSON at all."""


def _plain_tz(t: datetime) -> datetime:
    # pydantic gives its own tzinfo class; events keep the standard one.
    offset = t.utcoffset() or timedelta(0)
    return t.replace(tzinfo=timezone(offset))


class _Data(BaseModel):
    # Unknown fields are refused: a misspelt field would otherwise vanish quietly.
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class AccountOpenedData(_Data):
    external_ref: Annotated[str, Field(min_length=1, max_length=64)] | None = None
    segment: Short
    service_plan: Short = "standard"
    channel: Short
    customer: Customer


class DetailsUpdatedData(_Data):
    customer: CustomerChanges


class AccountClosedData(_Data):
    reason: Short
    note: Text = ""


class MoneyData(_Data):
    amount: Money
    cost: Cost
    currency: Currency
    store: Short


class VisitData(_Data):
    channel: Short
    location: Short


class InquiryOpenedData(_Data):
    inquiry_id: Short
    channel: Short
    topic: Short


class InquiryAnsweredData(_Data):
    inquiry_id: Short
    channel: Short


class ComplaintLodgedData(_Data):
    complaint_id: Short
    category: Short
    severity: Short


class ComplaintResolvedData(_Data):
    complaint_id: Short
    resolution: Text
    satisfied: Annotated[bool, Field(strict=True)]


class FeedbackData(_Data):
    score: Annotated[int, Field(ge=1, le=5, strict=True)]
    comment: Text = ""


class Envelope(BaseModel):
    """The CloudEvents attributes every inbound event has."""

    # Extension attributes are allowed, as CloudEvents allows them.
    model_config = ConfigDict(extra="allow", frozen=True)

    specversion: Literal["1.0"]
    id: Annotated[str, Field(min_length=1, max_length=200)]
    source: Annotated[str, Field(min_length=1, max_length=200)]
    subject: Annotated[str, Field(min_length=1, max_length=200)]
    time: Annotated[AwareDatetime, AfterValidator(_plain_tz)]
    datacontenttype: Literal["application/json"] | None = None

    @field_validator("subject")
    @classmethod
    def _account_reference(cls, v: str) -> str:
        if v.startswith(EXTERNAL_PREFIX):
            if len(v) == len(EXTERNAL_PREFIX):
                raise ValueError("subject ext: needs an external_ref after the colon")
            return v
        try:
            UUID(v)
        except ValueError:
            raise ValueError("subject must be an account id or ext:<external_ref>") from None
        return v

    @property
    def external_ref(self) -> str | None:
        """The external_ref named by the subject, if it names one."""
        if self.subject.startswith(EXTERNAL_PREFIX):
            return self.subject[len(EXTERNAL_PREFIX) :]
        return None

    @property
    def account_id(self) -> UUID:
        """The account the event is about."""
        ref = self.external_ref
        return account_id_for(ref) if ref is not None else UUID(self.subject)

    def extension(self, name: str) -> str | None:
        """An extension attribute as a string, or None when absent."""
        value = (self.model_extra or {}).get(name)
        return None if value is None else str(value)


class AccountOpened(Envelope):
    type: Literal["account_opened"]
    data: AccountOpenedData

    @model_validator(mode="after")
    def _one_external_ref(self) -> AccountOpened:
        given, named = self.data.external_ref, self.external_ref
        if given and named and given != named:
            raise ValueError("data.external_ref differs from the subject's")
        if given and named is None and account_id_for(given) != UUID(self.subject):
            raise ValueError("subject is not the account id of data.external_ref")
        return self

    @property
    def opening_ref(self) -> str | None:
        """The external_ref the account is opened with."""
        return self.data.external_ref or self.external_ref


class DetailsUpdated(Envelope):
    type: Literal["details_updated"]
    data: DetailsUpdatedData


class AccountClosed(Envelope):
    type: Literal["account_closed"]
    data: AccountClosedData


class Purchase(Envelope):
    type: Literal["purchase"]
    data: MoneyData


class Refund(Envelope):
    type: Literal["refund"]
    data: MoneyData


class Visit(Envelope):
    type: Literal["visit"]
    data: VisitData


class InquiryOpened(Envelope):
    type: Literal["inquiry_opened"]
    data: InquiryOpenedData


class InquiryAnswered(Envelope):
    type: Literal["inquiry_answered"]
    data: InquiryAnsweredData


class ComplaintLodged(Envelope):
    type: Literal["complaint_lodged"]
    data: ComplaintLodgedData


class ComplaintResolved(Envelope):
    type: Literal["complaint_resolved"]
    data: ComplaintResolvedData


class Feedback(Envelope):
    type: Literal["feedback"]
    data: FeedbackData


Activity = (
    Purchase
    | Refund
    | Visit
    | InquiryOpened
    | InquiryAnswered
    | ComplaintLodged
    | ComplaintResolved
    | Feedback
)
InboundEvent = AccountOpened | DetailsUpdated | AccountClosed | Activity

_inbound: TypeAdapter[InboundEvent] = TypeAdapter(
    Annotated[InboundEvent, Field(discriminator="type")]
)


def parse(value: bytes | None) -> InboundEvent:
    """The inbound event in a message value.

    Raises NotJSON when the value is not JSON, and ValidationError when it is
    JSON but not a valid CloudEvent of an inbound type.
    """
    if value is None:
        raise NotJSON("the message has no value")
    try:
        # Parsed by pydantic straight from the bytes, so amounts keep every digit.
        return _inbound.validate_json(value)
    except ValidationError as e:
        errors = e.errors()
        if errors and errors[0]["type"] == "json_invalid":
            raise NotJSON(errors[0]["msg"]) from None
        raise


def describe(error: ValidationError) -> str:
    """A short, one-line account of what is wrong with a message."""
    parts = []
    for item in error.errors()[:5]:
        where = ".".join(str(p) for p in item["loc"]) or "message"
        parts.append(f"{where}: {item['msg']}")
    more = error.error_count() - len(parts)
    return "; ".join(parts) + (f"; and {more} more" if more > 0 else "")


def activity_fields(event: Activity) -> dict[str, Any]:
    """The activity's fields, named as the domain's activity values name them."""
    return event.data.model_dump()
