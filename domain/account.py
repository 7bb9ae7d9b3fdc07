"""The CustomerAccount aggregate: every open, update, close and service activity.

Public methods check the rules (domain/rules.py) and then call a private
`@event` method, whose body is replayed when the account is loaded, so it only
assigns state. The base class (domain/chain.py) gives every event its business
time, metadata and place in the hash chain. Personal fields arrive encrypted,
so no event, snapshot or Kafka message holds them in clear.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any
from uuid import UUID, uuid4

from eventsourcing.domain import event

from domain import activities as act
from domain.chain import ChainedAggregate, Meta
from domain.errors import AccountClosed, ConflictingState, InvalidCommand
from domain.rules import (
    CHOICES,
    ERASE_REASONS,
    PERSONAL_FIELDS,
    check_choice,
    check_money,
    check_score,
    check_segment,
    check_time,
)
from domain.rules import (  # read here by domain/ledger.py and infra/
    DEFAULT_SEGMENTS as DEFAULT_SEGMENTS,
)
from domain.rules import (
    Ciphertexts as Ciphertexts,
)
from domain.rules import (
    Metadata as Metadata,
)
from domain.rules import (
    account_id_for as account_id_for,
)
from domain.rules import (
    event_type_of as event_type_of,
)

_CONTAINERS = (dict, list)


class CustomerAccount(ChainedAggregate):
    """One customer's account with a retailer, and everything that happened to it."""

    # Class attributes without annotations: annotated ones would turn the
    # aggregate into a dataclass.
    segments = DEFAULT_SEGMENTS

    def __deepcopy__(self, memo: dict[int, Any]) -> CustomerAccount:
        """A copy that shares nothing mutable with this account.

        Its values are immutable, or flat containers of immutable values (dicts
        of strings, the list of pending events, which are frozen): copying the
        containers one level down is a deep copy, without copy.deepcopy's walk
        of every value. An account is copied for every command (from the cache).
        """
        twin = object.__new__(type(self))
        twin.__dict__.update(
            {k: v.copy() if type(v) in _CONTAINERS else v for k, v in self.__dict__.items()}
        )
        return twin

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
        metadata: Meta,
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
        self, customer: dict[str, str], occurred_at: datetime, metadata: Meta
    ) -> None:
        self.customer.update(customer)
        self.details_current_at = occurred_at

    def confirm_details(self, occurred_at: datetime, meta: Metadata) -> None:
        """Record that the customer confirmed their details are unchanged."""
        self.check_details_changeable()
        check_time(occurred_at)
        self._confirm_details(occurred_at, dict(meta))

    @event("DetailsConfirmed")
    def _confirm_details(self, occurred_at: datetime, metadata: Meta) -> None:
        self.details_current_at = occurred_at

    def change_segment(
        self,
        segment: str,
        occurred_at: datetime,
        meta: Metadata,
        segments: frozenset[str] | None = None,
    ) -> None:
        """Move the account to another customer segment."""
        self.check_move(occurred_at, "in segment", self.segment, segment)
        check_segment(segment, segments or self.segments)
        self._change_segment(self.segment, segment, occurred_at, dict(meta))

    @event("SegmentChanged")
    def _change_segment(
        self, from_segment: str, to_segment: str, occurred_at: datetime, metadata: Meta
    ) -> None:
        self.segment = to_segment

    def change_plan(self, plan: str, occurred_at: datetime, meta: Metadata) -> None:
        """Move the account to another service plan."""
        self.check_move(occurred_at, "on plan", self.service_plan, plan)
        self._change_plan(self.service_plan, plan, occurred_at, dict(meta))

    @event("ServicePlanChanged")
    def _change_plan(
        self, from_plan: str, to_plan: str, occurred_at: datetime, metadata: Meta
    ) -> None:
        self.service_plan = to_plan

    def close(self, reason: str, note: str, occurred_at: datetime, meta: Metadata) -> None:
        """Close the account; afterwards it takes no command except erase."""
        self.check_command(occurred_at, reason=reason)
        self._close(reason, note, occurred_at, dict(meta))

    @event("AccountClosed")
    def _close(self, reason: str, note: str, occurred_at: datetime, metadata: Meta) -> None:
        self.status = "closed"
        self.closed_at = occurred_at
        self.close_reason = reason

    # ---- service activities -----------------------------------------------

    def record(self, activity: act.Activity, occurred_at: datetime, meta: Metadata) -> None:
        """Record a service activity (domain/activities.py) on the open account."""
        m = dict(meta)
        match activity:
            case act.Purchase(amount, cost, currency, store):
                self.check_command(occurred_at)
                check_money(amount, cost, currency)
                self._record_purchase(amount, cost, currency, store, occurred_at, m)
            case act.Refund(amount, cost, currency, store):
                self.check_command(occurred_at)
                check_money(amount, cost, currency)
                self._record_refund(amount, cost, currency, store, occurred_at, m)
            case act.Visit(channel, location):
                self.check_command(occurred_at, channel=channel)
                self._record_visit(channel, location, occurred_at, m)
            case act.OpenInquiry(inquiry_id, channel, topic):
                self.check_command(occurred_at, channel=channel)
                if inquiry_id in self.open_inquiries:
                    raise ConflictingState(f"inquiry {inquiry_id} is already open")
                self._open_inquiry(inquiry_id, channel, topic, occurred_at, m)
            case act.AnswerInquiry(inquiry_id, channel):
                self.check_command(occurred_at, channel=channel)
                if inquiry_id not in self.open_inquiries:
                    raise ConflictingState(f"inquiry {inquiry_id} is not open on this account")
                topic = self.open_inquiries[inquiry_id]
                self._answer_inquiry(inquiry_id, channel, topic, occurred_at, m)
            case act.LodgeComplaint(complaint_id, category, severity):
                self.check_command(occurred_at, severity=severity)
                if complaint_id in self.open_complaints:
                    raise ConflictingState(f"complaint {complaint_id} is already open")
                self._lodge_complaint(complaint_id, category, severity, occurred_at, m)
            case act.ResolveComplaint(complaint_id, resolution, satisfied):
                self.check_command(occurred_at)
                if complaint_id not in self.open_complaints:
                    raise ConflictingState(f"complaint {complaint_id} is not open on this account")
                self._resolve_complaint(complaint_id, resolution, satisfied, occurred_at, m)
            case act.GiveFeedback(score, comment):
                self.check_command(occurred_at)
                check_score(score)
                self._give_feedback(score, comment, occurred_at, m)

    @event("PurchaseRecorded")
    def _record_purchase(
        self,
        amount: Decimal,
        cost: Decimal,
        currency: str,
        store: str,
        occurred_at: datetime,
        metadata: Meta,
    ) -> None:
        self.last_activity_at = max(self.last_activity_at, occurred_at)

    @event("RefundRecorded")
    def _record_refund(
        self,
        amount: Decimal,
        cost: Decimal,
        currency: str,
        store: str,
        occurred_at: datetime,
        metadata: Meta,
    ) -> None:
        self.last_activity_at = max(self.last_activity_at, occurred_at)

    @event("VisitRecorded")
    def _record_visit(
        self, channel: str, location: str, occurred_at: datetime, metadata: Meta
    ) -> None:
        self.last_activity_at = max(self.last_activity_at, occurred_at)

    @event("InquiryOpened")
    def _open_inquiry(
        self, inquiry_id: str, channel: str, topic: str, occurred_at: datetime, metadata: Meta
    ) -> None:
        self.open_inquiries[inquiry_id] = topic
        self.last_activity_at = max(self.last_activity_at, occurred_at)

    @event("InquiryAnswered")
    def _answer_inquiry(
        self, inquiry_id: str, channel: str, topic: str, occurred_at: datetime, metadata: Meta
    ) -> None:
        del self.open_inquiries[inquiry_id]

    @event("ComplaintLodged")
    def _lodge_complaint(
        self, complaint_id: str, category: str, severity: str, occurred_at: datetime, metadata: Meta
    ) -> None:
        self.open_complaints[complaint_id] = category
        self.last_activity_at = max(self.last_activity_at, occurred_at)

    @event("ComplaintResolved")
    def _resolve_complaint(
        self,
        complaint_id: str,
        resolution: str,
        satisfied: bool,
        occurred_at: datetime,
        metadata: Meta,
    ) -> None:
        del self.open_complaints[complaint_id]

    @event("FeedbackGiven")
    def _give_feedback(
        self, score: int, comment: str, occurred_at: datetime, metadata: Meta
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
    def _erase(self, reason: str, occurred_at: datetime, metadata: Meta) -> None:
        self.erased = True
        self.erased_at = occurred_at
        self.customer = {}

    # ---- guards ---------------------------------------------------------------

    @staticmethod
    def check_opening(
        segment: str, channel: str, occurred_at: datetime, segments: frozenset[str]
    ) -> None:
        check_segment(segment, segments)
        check_choice("channel", channel, CHOICES["channel"])
        check_time(occurred_at)

    def check_command(self, occurred_at: datetime, **choices: str) -> None:
        """What every command on an open account checks: open, its choices, its business time."""
        self.check_open()
        for name, value in choices.items():
            check_choice(name, value, CHOICES[name])
        check_time(occurred_at)

    def check_move(self, occurred_at: datetime, where: str, now: str, to: str) -> None:
        """A move to another segment or plan needs an open account and a new place to go."""
        self.check_command(occurred_at)
        if to == now:
            raise ConflictingState(f"the account is already {where} {to}")

    def check_details_changeable(self) -> None:
        """A change of personal details needs an open account whose data was not erased."""
        self.check_open()
        self.check_not_erased()

    def check_open(self) -> None:
        if self.status == "closed":
            raise AccountClosed(f"account {self.id} is closed")

    def check_not_erased(self) -> None:
        if self.erased:
            raise ConflictingState(f"the personal data of account {self.id} was erased")
