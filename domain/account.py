"""The CustomerAccount aggregate: every open, update, close and service activity.

Public methods check the rules and then call a private `@event` method, whose
body is replayed when the account is loaded, so it only assigns state. Every
event carries `occurred_at` (business time), `metadata` (who, why, from where)
and its place in the account's hash chain (`prev_hash`, `hash`), stamped in
`trigger_event` so no command can forget it.

Personal fields reach the aggregate already encrypted (one string per field):
the aggregate never sees clear personal data, so neither do events, snapshots
or Kafka messages.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any
from uuid import NAMESPACE_URL, UUID, uuid4, uuid5

from eventsourcing.domain import Aggregate, event

from domain.currencies import MINOR_UNITS
from domain.errors import AccountClosed, ConflictingState, InvalidCommand
from domain.integrity import GENESIS_HASH, data_of, event_hash

ACCOUNT_NAMESPACE = uuid5(NAMESPACE_URL, "https://crmledger/accounts")
PERSONAL_FIELDS = ("name", "email", "phone", "address", "date_of_birth", "id_document")
CHANNELS = frozenset({"store", "online", "app", "phone"})
CLOSE_REASONS = frozenset({"customer_request", "inactivity", "fraud", "deceased", "other"})
SEVERITIES = frozenset({"low", "medium", "high"})
ERASE_REASONS = frozenset({"request", "retention"})
MAX_FUTURE = timedelta(minutes=5)
# No business time, and no date of birth, before this: older ones are typing errors.
EARLIEST_TIME = datetime(1900, 1, 1, tzinfo=UTC)
EARLIEST_DATE = date(1900, 1, 1)
SCORES = range(1, 6)
DEFAULT_SEGMENTS = frozenset({"standard", "silver", "gold", "vip", "corporate"})

Metadata = Mapping[str, Any]
Ciphertexts = Mapping[str, str]


def account_id_for(external_ref: str) -> UUID:
    """The id of the account opened for a source system's customer number."""
    return uuid5(ACCOUNT_NAMESPACE, external_ref)


def event_type_of(topic: str) -> str:
    """The event's type name (`AccountOpened`) from its stored topic."""
    return topic.rsplit(".", 1)[-1].rsplit(":", 1)[-1]


class CustomerAccount(Aggregate):
    """One customer's account with a retailer, and everything that happened to it."""

    class Event(Aggregate.Event):
        occurred_at: datetime
        metadata: dict[str, Any]
        prev_hash: str
        hash: str

        def apply(self, aggregate: Any) -> None:
            aggregate.last_hash = self.hash

    class Created(Event, Aggregate.Created):
        pass

    # Class attributes without annotations: annotated ones would turn the
    # aggregate into a dataclass.
    segments = DEFAULT_SEGMENTS

    # ---- opening ------------------------------------------------------------

    @classmethod
    def open(
        cls,
        *,
        external_ref: str | None,
        segment: str,
        service_plan: str,
        channel: str,
        customer: Ciphertexts,
        occurred_at: datetime,
        metadata: Metadata,
        segments: frozenset[str] | None = None,
        account_id: UUID | None = None,
    ) -> CustomerAccount:
        """Open an account; its id is derived from external_ref when one is given."""
        cls.check_opening(segment, channel, occurred_at, segments or cls.segments)
        if account_id is None:
            account_id = account_id_for(external_ref) if external_ref else uuid4()
        return cls(
            id=account_id,
            external_ref=external_ref,
            segment=segment,
            service_plan=service_plan,
            channel=channel,
            customer=dict(customer),
            opened_at=occurred_at,
            occurred_at=occurred_at,
            metadata=dict(metadata),
        )

    @event("AccountOpened")
    def __init__(
        self,
        id: UUID,
        external_ref: str | None,
        segment: str,
        service_plan: str,
        channel: str,
        customer: dict[str, str],
        opened_at: datetime,
        occurred_at: datetime,
        metadata: dict[str, Any],
    ) -> None:
        self.external_ref = external_ref
        self.segment = segment
        self.service_plan = service_plan
        self.channel = channel
        self.customer = dict(customer)
        self.opened_at = opened_at
        self.status = "open"
        self.closed_at: datetime | None = None
        self.close_reason: str | None = None
        self.details_current_at = occurred_at
        self.last_activity_at = occurred_at
        self.open_inquiries: dict[str, str] = {}
        self.open_complaints: dict[str, str] = {}
        self.erased = False
        self.erased_at: datetime | None = None

    # ---- keeping details current ------------------------------------------

    def update_details(self, customer: Ciphertexts, occurred_at: datetime, meta: Metadata) -> None:
        """Change some of the customer's personal fields."""
        self.check_details_changeable()
        check_time(occurred_at)
        if not customer:
            raise InvalidCommand("an update needs at least one changed field")
        unknown = set(customer) - set(PERSONAL_FIELDS)
        if unknown:
            raise InvalidCommand(f"unknown customer fields: {', '.join(sorted(unknown))}")
        self._update_details(dict(customer), occurred_at, dict(meta))

    @event("DetailsUpdated")
    def _update_details(
        self, customer: dict[str, str], occurred_at: datetime, metadata: dict[str, Any]
    ) -> None:
        self.customer.update(customer)
        self.details_current_at = occurred_at

    def confirm_details(self, occurred_at: datetime, meta: Metadata) -> None:
        """Record that the customer confirmed their details are unchanged."""
        self.check_open()
        self.check_not_erased()
        check_time(occurred_at)
        self._confirm_details(occurred_at, dict(meta))

    @event("DetailsConfirmed")
    def _confirm_details(self, occurred_at: datetime, metadata: dict[str, Any]) -> None:
        self.details_current_at = occurred_at

    def change_segment(
        self,
        segment: str,
        occurred_at: datetime,
        meta: Metadata,
        segments: frozenset[str] | None = None,
    ) -> None:
        """Move the account to another customer segment."""
        self.check_open()
        check_segment(segment, segments or self.segments)
        check_time(occurred_at)
        if segment == self.segment:
            raise ConflictingState(f"the account is already in segment {segment}")
        self._change_segment(self.segment, segment, occurred_at, dict(meta))

    @event("SegmentChanged")
    def _change_segment(
        self, from_segment: str, to_segment: str, occurred_at: datetime, metadata: dict[str, Any]
    ) -> None:
        self.segment = to_segment

    def change_plan(self, plan: str, occurred_at: datetime, meta: Metadata) -> None:
        """Move the account to another service plan."""
        self.check_open()
        check_time(occurred_at)
        if plan == self.service_plan:
            raise ConflictingState(f"the account is already on plan {plan}")
        self._change_plan(self.service_plan, plan, occurred_at, dict(meta))

    @event("ServicePlanChanged")
    def _change_plan(
        self, from_plan: str, to_plan: str, occurred_at: datetime, metadata: dict[str, Any]
    ) -> None:
        self.service_plan = to_plan

    def close(self, reason: str, note: str, occurred_at: datetime, meta: Metadata) -> None:
        """Close the account; afterwards it takes no command except erase."""
        self.check_open()
        check_choice("reason", reason, CLOSE_REASONS)
        check_time(occurred_at)
        self._close(reason, note, occurred_at, dict(meta))

    @event("AccountClosed")
    def _close(
        self, reason: str, note: str, occurred_at: datetime, metadata: dict[str, Any]
    ) -> None:
        self.status = "closed"
        self.closed_at = occurred_at
        self.close_reason = reason

    # ---- service activities -----------------------------------------------

    def record_purchase(
        self,
        amount: Decimal,
        cost: Decimal,
        currency: str,
        store: str,
        occurred_at: datetime,
        meta: Metadata,
    ) -> None:
        """Record a purchase: its amount, its cost to the retailer, where."""
        self.check_open()
        check_money(amount, cost, currency)
        check_time(occurred_at)
        self._record_purchase(amount, cost, currency, store, occurred_at, dict(meta))

    @event("PurchaseRecorded")
    def _record_purchase(
        self,
        amount: Decimal,
        cost: Decimal,
        currency: str,
        store: str,
        occurred_at: datetime,
        metadata: dict[str, Any],
    ) -> None:
        self.last_activity_at = max(self.last_activity_at, occurred_at)

    def record_refund(
        self,
        amount: Decimal,
        cost: Decimal,
        currency: str,
        store: str,
        occurred_at: datetime,
        meta: Metadata,
    ) -> None:
        """Record a refund of goods: the amount given back and the cost recovered."""
        self.check_open()
        check_money(amount, cost, currency)
        check_time(occurred_at)
        self._record_refund(amount, cost, currency, store, occurred_at, dict(meta))

    @event("RefundRecorded")
    def _record_refund(
        self,
        amount: Decimal,
        cost: Decimal,
        currency: str,
        store: str,
        occurred_at: datetime,
        metadata: dict[str, Any],
    ) -> None:
        self.last_activity_at = max(self.last_activity_at, occurred_at)

    def record_visit(
        self, channel: str, location: str, occurred_at: datetime, meta: Metadata
    ) -> None:
        """Record a visit in a store, online, in the app or by phone."""
        self.check_open()
        check_choice("channel", channel, CHANNELS)
        check_time(occurred_at)
        self._record_visit(channel, location, occurred_at, dict(meta))

    @event("VisitRecorded")
    def _record_visit(
        self, channel: str, location: str, occurred_at: datetime, metadata: dict[str, Any]
    ) -> None:
        self.last_activity_at = max(self.last_activity_at, occurred_at)

    def open_inquiry(
        self, inquiry_id: str, channel: str, topic: str, occurred_at: datetime, meta: Metadata
    ) -> None:
        """Record a customer's inquiry, to be answered later."""
        self.check_open()
        check_choice("channel", channel, CHANNELS)
        check_time(occurred_at)
        if inquiry_id in self.open_inquiries:
            raise ConflictingState(f"inquiry {inquiry_id} is already open")
        self._open_inquiry(inquiry_id, channel, topic, occurred_at, dict(meta))

    @event("InquiryOpened")
    def _open_inquiry(
        self,
        inquiry_id: str,
        channel: str,
        topic: str,
        occurred_at: datetime,
        metadata: dict[str, Any],
    ) -> None:
        self.open_inquiries[inquiry_id] = topic
        self.last_activity_at = max(self.last_activity_at, occurred_at)

    def answer_inquiry(
        self, inquiry_id: str, channel: str, occurred_at: datetime, meta: Metadata
    ) -> None:
        """Record the answer to an open inquiry."""
        self.check_open()
        check_choice("channel", channel, CHANNELS)
        check_time(occurred_at)
        topic = self.open_inquiries.get(inquiry_id)
        if topic is None:
            raise ConflictingState(f"inquiry {inquiry_id} is not open on this account")
        self._answer_inquiry(inquiry_id, channel, topic, occurred_at, dict(meta))

    @event("InquiryAnswered")
    def _answer_inquiry(
        self,
        inquiry_id: str,
        channel: str,
        topic: str,
        occurred_at: datetime,
        metadata: dict[str, Any],
    ) -> None:
        del self.open_inquiries[inquiry_id]

    def lodge_complaint(
        self, complaint_id: str, category: str, severity: str, occurred_at: datetime, meta: Metadata
    ) -> None:
        """Record a complaint, to be resolved later."""
        self.check_open()
        check_choice("severity", severity, SEVERITIES)
        check_time(occurred_at)
        if complaint_id in self.open_complaints:
            raise ConflictingState(f"complaint {complaint_id} is already open")
        self._lodge_complaint(complaint_id, category, severity, occurred_at, dict(meta))

    @event("ComplaintLodged")
    def _lodge_complaint(
        self,
        complaint_id: str,
        category: str,
        severity: str,
        occurred_at: datetime,
        metadata: dict[str, Any],
    ) -> None:
        self.open_complaints[complaint_id] = category
        self.last_activity_at = max(self.last_activity_at, occurred_at)

    def resolve_complaint(
        self,
        complaint_id: str,
        resolution: str,
        satisfied: bool,
        occurred_at: datetime,
        meta: Metadata,
    ) -> None:
        """Record how an open complaint was resolved and whether the customer was satisfied."""
        self.check_open()
        check_time(occurred_at)
        if complaint_id not in self.open_complaints:
            raise ConflictingState(f"complaint {complaint_id} is not open on this account")
        self._resolve_complaint(complaint_id, resolution, satisfied, occurred_at, dict(meta))

    @event("ComplaintResolved")
    def _resolve_complaint(
        self,
        complaint_id: str,
        resolution: str,
        satisfied: bool,
        occurred_at: datetime,
        metadata: dict[str, Any],
    ) -> None:
        del self.open_complaints[complaint_id]

    def give_feedback(
        self, score: int, comment: str, occurred_at: datetime, meta: Metadata
    ) -> None:
        """Record the customer's satisfaction score (1 to 5) and comment."""
        self.check_open()
        check_time(occurred_at)
        if isinstance(score, bool) or not isinstance(score, int) or score not in SCORES:
            raise InvalidCommand("score must be a whole number from 1 to 5")
        self._give_feedback(score, comment, occurred_at, dict(meta))

    @event("FeedbackGiven")
    def _give_feedback(
        self, score: int, comment: str, occurred_at: datetime, metadata: dict[str, Any]
    ) -> None:
        self.last_activity_at = max(self.last_activity_at, occurred_at)

    # ---- privacy --------------------------------------------------------------

    def erase_personal_data(self, reason: str, occurred_at: datetime, meta: Metadata) -> bool:
        """Mark the personal data erased (its key is destroyed elsewhere).

        Returns False, and records nothing, when it was erased already.
        """
        check_choice("reason", reason, ERASE_REASONS)
        check_time(occurred_at)
        if self.erased:
            return False
        self._erase(reason, occurred_at, dict(meta))
        return True

    @event("PersonalDataErased")
    def _erase(self, reason: str, occurred_at: datetime, metadata: dict[str, Any]) -> None:
        self.erased = True
        self.erased_at = occurred_at
        self.customer = {}

    # ---- guards ---------------------------------------------------------------

    @staticmethod
    def check_opening(
        segment: str, channel: str, occurred_at: datetime, segments: frozenset[str]
    ) -> None:
        check_segment(segment, segments)
        check_choice("channel", channel, CHANNELS)
        check_time(occurred_at)

    def check_details_changeable(self) -> None:
        self.check_open()
        self.check_not_erased()

    def check_open(self) -> None:
        if self.status == "closed":
            raise AccountClosed(f"account {self.id} is closed")

    def check_not_erased(self) -> None:
        if self.erased:
            raise ConflictingState(f"the personal data of account {self.id} was erased")

    # ---- the hash chain ---------------------------------------------------------

    @classmethod
    def _create(cls, event_class: type[Any], *, id: Any = None, **kwargs: Any) -> Any:
        kwargs["prev_hash"] = GENESIS_HASH
        kwargs["hash"] = _stamp(GENESIS_HASH, id, 1, event_class, kwargs)
        return super()._create(event_class, id=id, **kwargs)

    def trigger_event(self, event_class: type[Any], **kwargs: Any) -> None:
        prev = self.last_hash
        kwargs["prev_hash"] = prev
        kwargs["hash"] = _stamp(prev, self.id, self.version + 1, event_class, kwargs)
        super().trigger_event(event_class, **kwargs)

    last_hash = GENESIS_HASH


def _stamp(
    prev: str, account_id: UUID, version: int, event_class: type[Any], kw: dict[str, Any]
) -> str:
    return event_hash(
        prev,
        account_id,
        version,
        event_class.__name__,
        kw["occurred_at"],
        kw["metadata"],
        data_of(kw),
    )


def check_segment(segment: str, segments: frozenset[str]) -> None:
    """Refuse a segment outside the configured list."""
    check_choice("segment", segment, segments)


def check_choice(name: str, value: str, allowed: frozenset[str]) -> None:
    """Refuse a value outside its allowed set, naming the allowed ones."""
    if value not in allowed:
        raise InvalidCommand(f"{name} must be one of {', '.join(sorted(allowed))}; got {value!r}")


def check_money(amount: Decimal, cost: Decimal, currency: str) -> None:
    """Amounts are positive decimals, costs not negative, both in an ISO 4217 currency's units."""
    if not isinstance(amount, Decimal) or not amount.is_finite() or amount <= 0:
        raise InvalidCommand("amount must be a positive decimal")
    if not isinstance(cost, Decimal) or not cost.is_finite() or cost < 0:
        raise InvalidCommand("cost must be a decimal of zero or more")
    if currency not in MINOR_UNITS:
        raise InvalidCommand("currency must be an ISO 4217 code such as HKD")
    for name, value in (("amount", amount), ("cost", cost)):
        if decimals(value) > MINOR_UNITS[currency]:
            raise InvalidCommand(f"{name} has more decimals than {currency} has")


def decimals(value: Decimal) -> int:
    """How many decimals the value needs (19.990 needs 2)."""
    exponent = value.normalize().as_tuple().exponent
    return max(-exponent, 0) if isinstance(exponent, int) else 0


def check_time(occurred_at: datetime) -> None:
    """Business time must carry a time zone, be from 1900 on and at most 5 minutes ahead."""
    if occurred_at.tzinfo is None:
        raise InvalidCommand("occurred_at needs a time zone offset")
    if occurred_at < EARLIEST_TIME:
        raise InvalidCommand("occurred_at is before 1900")
    if occurred_at - datetime.now(occurred_at.tzinfo) > MAX_FUTURE:
        raise InvalidCommand("occurred_at is more than 5 minutes in the future")
