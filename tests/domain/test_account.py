"""The CustomerAccount's rules, without any database."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from uuid import UUID

import pytest

from domain import activities as act
from domain.account import CustomerAccount, account_id_for
from domain.activities import apply_activity
from domain.errors import AccountClosed, ConflictingState, InvalidCommand
from tests.support import EVERY_ACTIVITY

NOW = datetime.now(UTC)
META = {"actor": "t", "department": "customer_service", "source": "test"}


def opened(**overrides: object) -> CustomerAccount:
    values: dict[str, object] = {
        "external_ref": "C-1",
        "segment": "gold",
        "service_plan": "standard",
        "channel": "store",
        "customer": {"name": "v1:cipher"},
        "occurred_at": NOW,
        "metadata": META,
    }
    values.update(overrides)
    return CustomerAccount.open(**values)  # type: ignore[arg-type]


def test_an_external_ref_always_gives_the_same_id() -> None:
    assert opened().id == account_id_for("C-1") == opened().id
    assert opened(external_ref=None).id != opened(external_ref=None).id


def test_every_event_carries_business_time_metadata_and_chained_hashes() -> None:
    account = opened()
    account.record(act.Visit("store", "central"), NOW, META)
    first, second = account.collect_events()
    assert first.occurred_at == NOW and first.metadata == META  # type: ignore[attr-defined]
    assert second.prev_hash == first.hash  # type: ignore[attr-defined]
    assert first.hash != second.hash  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"segment": "platinum"}, "segment must be one of"),
        ({"channel": "fax"}, "channel must be one of"),
        ({"occurred_at": NOW + timedelta(minutes=30)}, "more than 5 minutes in the future"),
        ({"occurred_at": NOW.replace(tzinfo=None)}, "time zone"),
        ({"occurred_at": NOW.replace(year=1899)}, "before 1900"),
    ],
)
def test_opening_refuses_bad_values(overrides: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidCommand, match=message):
        opened(**overrides)


def test_a_slightly_future_time_is_accepted() -> None:
    assert opened(occurred_at=NOW + timedelta(minutes=4)).version == 1


@pytest.mark.parametrize(
    "amount, cost, currency",
    [
        (Decimal("0"), Decimal("1"), "HKD"),
        (Decimal("-5"), Decimal("1"), "HKD"),
        (Decimal("NaN"), Decimal("1"), "HKD"),
        (Decimal("5"), Decimal("-1"), "HKD"),
        (Decimal("5"), Decimal("1"), "hkd"),
        (Decimal("5"), Decimal("1"), "HKDX"),
        (Decimal("5"), Decimal("1"), "ZZZ"),
        (Decimal("19.999"), Decimal("1"), "HKD"),
        (Decimal("5"), Decimal("0.001"), "HKD"),
        (Decimal("1.5"), Decimal("1"), "JPY"),
    ],
)
def test_money_must_be_positive_with_a_currency_code(
    amount: Decimal, cost: Decimal, currency: str
) -> None:
    with pytest.raises(InvalidCommand):
        opened().record(act.Purchase(amount, cost, currency, "central"), NOW, META)


def test_money_in_a_currency_s_minor_units_is_accepted() -> None:
    account = opened()
    account.record(act.Purchase(Decimal("19.990"), Decimal("0.5"), "HKD", "central"), NOW, META)
    account.record(act.Purchase(Decimal("1.234"), Decimal("1"), "KWD", "central"), NOW, META)
    account.record(act.Purchase(Decimal("500"), Decimal("1.00"), "JPY", "central"), NOW, META)
    assert account.version == 4


def test_a_closed_account_takes_no_command_but_erase() -> None:
    account = opened()
    account.close("customer_request", "moving abroad", NOW, META)
    commands = [
        lambda: account.update_details({"name": "v1:x"}, NOW, META),
        lambda: account.confirm_details(NOW, META),
        lambda: account.change_segment("vip", NOW, META),
        lambda: account.change_plan("plus", NOW, META),
        lambda: account.close("other", "", NOW, META),
        lambda: account.record(act.Visit("store", "central"), NOW, META),
    ]
    for command in commands:
        with pytest.raises(AccountClosed):
            command()
    assert account.erase_personal_data("request", NOW, META) is True
    assert account.erased and account.customer == {}


def test_erasing_twice_records_once() -> None:
    account = opened()
    assert account.erase_personal_data("request", NOW, META) is True
    assert account.erase_personal_data("request", NOW, META) is False
    assert [type(e).__name__ for e in account.collect_events()] == [
        "AccountOpened",
        "PersonalDataErased",
    ]


def test_an_erased_account_takes_no_new_personal_data() -> None:
    account = opened()
    account.erase_personal_data("request", NOW, META)
    with pytest.raises(ConflictingState, match="erased"):
        account.update_details({"name": "v1:x"}, NOW, META)


def test_an_answer_needs_its_open_inquiry() -> None:
    account = opened()
    with pytest.raises(ConflictingState, match="not open"):
        account.record(act.AnswerInquiry("Q1", "phone"), NOW, META)
    account.record(act.OpenInquiry("Q1", "phone", "billing"), NOW, META)
    with pytest.raises(ConflictingState, match="already open"):
        account.record(act.OpenInquiry("Q1", "phone", "billing"), NOW, META)
    account.record(act.AnswerInquiry("Q1", "phone"), NOW, META)
    assert account.open_inquiries == {}


def test_a_resolution_needs_its_open_complaint() -> None:
    account = opened()
    with pytest.raises(ConflictingState):
        account.record(act.ResolveComplaint("C1", "refund", True), NOW, META)
    account.record(act.LodgeComplaint("C1", "service", "high"), NOW, META)
    account.record(act.ResolveComplaint("C1", "refund", True), NOW, META)
    assert account.open_complaints == {}


@pytest.mark.parametrize("score", [0, 6, True])
def test_feedback_scores_run_from_one_to_five(score: int) -> None:
    with pytest.raises(InvalidCommand):
        opened().record(act.GiveFeedback(score, ""), NOW, META)


def test_changing_to_the_same_segment_or_plan_is_a_conflict() -> None:
    account = opened()
    with pytest.raises(ConflictingState):
        account.change_segment("gold", NOW, META)
    with pytest.raises(ConflictingState):
        account.change_plan("standard", NOW, META)


def test_segments_come_from_configuration() -> None:
    account = opened(segment="staff", segments=frozenset({"staff", "standard"}))
    account.change_segment("standard", NOW, META, frozenset({"staff", "standard"}))
    assert account.segment == "standard"


def test_every_activity_type_maps_to_its_event() -> None:
    account = opened()
    for activity in EVERY_ACTIVITY:
        apply_activity(account, activity, NOW, META)
    names = [type(e).__name__ for e in account.collect_events()[1:]]
    assert names == [
        "PurchaseRecorded",
        "RefundRecorded",
        "VisitRecorded",
        "InquiryOpened",
        "InquiryAnswered",
        "ComplaintLodged",
        "ComplaintResolved",
        "FeedbackGiven",
    ]


def _every_field_set() -> CustomerAccount:
    account = opened(customer={"name": "v1:a", "email": "v1:b"})
    account.record(act.OpenInquiry("Q2", "phone", "billing"), NOW, META)
    account.record(act.LodgeComplaint("C2", "service", "high"), NOW, META)
    for activity in EVERY_ACTIVITY:
        account.record(activity, NOW, META)
    account.close("other", "left town", NOW, META)
    return account  # its events still pending


def test_a_copy_is_as_deep_as_copy_deepcopy_and_shares_nothing_mutable() -> None:
    account = _every_field_set()
    twin = copy.deepcopy(account)
    assert type(twin) is CustomerAccount and twin is not account
    assert twin.__dict__ == copy.copy(account).__dict__
    immutable = (str, int, bool, type(None), datetime, UUID, Decimal, frozenset, tuple)
    for name, value in account.__dict__.items():
        # The copy copies containers one level down: anything nested must not change.
        if isinstance(value, dict | list):
            assert twin.__dict__[name] is not value, name
            items = value.values() if isinstance(value, dict) else value
            for item in items:
                frozen = getattr(type(item), "__dataclass_params__", None)
                assert isinstance(item, immutable) or (frozen and frozen.frozen), (name, item)
        else:
            assert isinstance(value, immutable), name
    twin.customer["name"] = "v1:changed"
    twin.open_inquiries["Q9"] = "phone"
    twin.collect_events()
    assert account.customer["name"] == "v1:a" and "Q9" not in account.open_inquiries
    assert account.pending_events
