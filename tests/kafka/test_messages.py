"""Reading inbound CloudEvents, and deciding what becomes a dead letter."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import orjson
import psycopg
import pytest
from cloudevents.core.bindings import kafka as kafka_binding
from cloudevents.core.formats.json import JSONFormat
from cloudevents.core.v1.event import CloudEvent
from kafka.errors import KafkaTimeoutError
from pydantic import ValidationError

from consumers.commands import event_metadata
from consumers.dead_letters import dead_letter_reason, error_detail
from consumers.messages import ACTIVITY_EVENTS, AccountOpened, NotJSON, parse
from domain.account import CustomerAccount, account_id_for
from domain.activities import ACTIVITIES
from domain.activities import Purchase as Purchase_
from domain.errors import (
    AccountClosed,
    AccountNotFound,
    ConflictingState,
    DuplicateAccount,
    InvalidCommand,
    StaleVersion,
)
from infra.contracts import ACTIVITY_MESSAGES, MESSAGES
from tests.kafka.conftest import cloud_event


def encoded(event: dict[str, Any]) -> bytes:
    return orjson.dumps(event)


def purchase(**data: Any) -> dict[str, Any]:
    values = {"amount": "19.99", "cost": "12", "currency": "HKD", "store": "s1", **data}
    return cloud_event("purchase", "ext:C-1", values)


def test_an_amount_keeps_every_digit_given_as_a_json_number() -> None:
    raw = b'{"specversion":"1.0","id":"1","source":"pos","type":"purchase","subject":"ext:C-1",'
    raw += b'"time":"2024-05-01T10:00:00+08:00",'
    raw += b'"data":{"amount":19.99,"cost":0.1,"currency":"HKD","store":"s1"}}'
    event = parse(raw)
    assert isinstance(event, ACTIVITY_EVENTS["purchase"])
    assert event.data.amount == Decimal("19.99")
    assert event.data.cost == Decimal("0.1")
    assert event.time.utcoffset() == timedelta(hours=8)
    assert event.account_id == account_id_for("C-1")


def test_a_subject_is_an_account_id_or_an_external_ref() -> None:
    account_id = uuid.uuid4()
    event = parse(
        encoded(cloud_event("visit", str(account_id), {"channel": "app", "location": "x"}))
    )
    assert event.account_id == account_id
    for bad in ("C-1", "ext:", "12345"):
        with pytest.raises(ValidationError):
            parse(encoded(cloud_event("visit", bad, {"channel": "app", "location": "x"})))


@pytest.mark.parametrize(
    "value",
    [b"", b"{", b"\xff\xfe", b"<xml/>"],
)
def test_a_value_that_is_not_json_is_told_apart(value: bytes) -> None:
    with pytest.raises(NotJSON):
        parse(value)


@pytest.mark.parametrize(
    "change",
    [
        {"specversion": "0.3"},
        {"type": "teleport"},
        {"time": "2024-05-01T10:00:00"},  # no offset
        {"id": ""},
        {"data": {"amount": "-1", "cost": "0", "currency": "HKD", "store": "s"}},
        {"data": {"amount": "1", "cost": "0", "currency": "hkd", "store": "s"}},
        {"data": {"amount": "1", "cost": "0", "currency": "HKD", "store": "s", "tip": "1"}},
    ],
)
def test_an_invalid_cloudevent_is_refused(change: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        parse(encoded({**purchase(), **change}))


def test_json_that_is_not_an_object_is_invalid_not_unreadable() -> None:
    with pytest.raises(ValidationError):
        parse(b"[1, 2, 3]")


def test_an_opening_names_one_external_ref() -> None:
    data = {"segment": "gold", "channel": "store", "customer": {"name": "A"}}
    by_ref = parse(encoded(cloud_event("account_opened", "ext:C-9", data)))
    assert isinstance(by_ref, AccountOpened)
    assert by_ref.opening_ref == "C-9"
    with pytest.raises(ValidationError, match="differs"):
        parse(encoded(cloud_event("account_opened", "ext:C-9", {**data, "external_ref": "C-8"})))
    with pytest.raises(ValidationError, match="not the account id"):
        parse(
            encoded(
                cloud_event("account_opened", str(uuid.uuid4()), {**data, "external_ref": "C-8"})
            )
        )


def test_metadata_names_the_publishing_system() -> None:
    event = parse(encoded({**purchase(), "correlationid": "basket-1", "department": "sales"}))
    assert event_metadata(event) == {
        "actor": "pos/store-12",
        "department": "sales",
        "reason": None,
        "correlation_id": "basket-1",
        "causation_id": event.id,
        "source": "kafka:pos/store-12",
    }


def _validation_error() -> ValidationError:
    try:
        parse(encoded({**purchase(), "type": "teleport"}))
    except ValidationError as e:
        return e
    raise AssertionError("no error")


@pytest.mark.parametrize(
    ("error", "reason"),
    [
        (NotJSON("x"), "not_json"),
        (_validation_error(), "invalid_event"),
        (InvalidCommand("x"), "invalid"),
        (AccountNotFound("x"), "unknown_account"),
        (ConflictingState("x"), "conflict"),
        (AccountClosed("x"), "account_closed"),
        (DuplicateAccount("x"), "duplicate"),
        (StaleVersion("x"), "stale_version"),
        (RuntimeError("a bug"), "unexpected_error"),
        (psycopg.OperationalError("server closed"), None),
        (KafkaTimeoutError("no broker"), None),
        (ConnectionRefusedError(), None),
    ],
)
def test_the_dead_letter_reason_names_the_message_fault_or_none(
    error: Exception, reason: str | None
) -> None:
    assert dead_letter_reason(error) == reason


def test_an_error_detail_is_one_short_line() -> None:
    detail = error_detail(_validation_error())
    assert "teleport" in detail and "\n" not in detail
    assert len(error_detail(InvalidCommand("x" * 5000))) == 1000


@pytest.mark.parametrize(
    "customer",
    [
        {"name": "Ann", "email": "not-an-email"},
        {"name": "Ann", "phone": "1"},
        {"name": "Ann", "date_of_birth": "2999-01-01"},
        {"name": ""},
    ],
)
def test_a_customer_record_is_checked_as_the_api_checks_it(customer: dict[str, Any]) -> None:
    opening = {
        **purchase(),
        "type": "account_opened",
        "subject": "ext:C-77",
        "data": {"segment": "gold", "channel": "store", "customer": customer},
    }
    with pytest.raises(ValidationError):
        parse(encoded(opening))
    good = {**opening, "data": {**opening["data"], "customer": {"name": "Ann"}}}
    assert parse(encoded(good)).type == "account_opened"


# ---- content modes and names --------------------------------------------------------


def sdk_event(type: str, data: dict[str, Any], **attributes: Any) -> Any:
    """A CloudEvent as the official SDK builds it."""
    return CloudEvent(
        attributes={
            "type": type,
            "source": "pos/store-12",
            "id": uuid.uuid4().hex,
            "subject": "ext:C-1",
            "time": datetime.now(UTC),
            "datacontenttype": "application/json",
            **attributes,
        },
        data=data,
    )


@pytest.mark.parametrize("mode", [kafka_binding.to_structured, kafka_binding.to_binary])
def test_both_content_modes_of_the_sdk_read_alike(mode: Any) -> None:
    data = {"amount": "19.99", "cost": "12", "currency": "HKD", "store": "s1"}
    message = mode(sdk_event("crmledger.PurchaseRecorded", data, correlationid="b-1"), JSONFormat())
    event = parse(message.value, list(message.headers.items()))
    assert isinstance(event, ACTIVITY_EVENTS["purchase"])
    assert event.command() == Purchase_(Decimal("19.99"), Decimal("12"), "HKD", "s1")
    assert event.extension("correlationid") == "b-1"
    assert event.account_id == account_id_for("C-1")


def test_a_binary_message_is_checked_like_a_structured_one() -> None:
    bad = {"amount": "19.999", "cost": "12", "currency": "HKD", "store": "s1"}
    message = kafka_binding.to_binary(sdk_event("purchase", bad), JSONFormat())
    with pytest.raises(ValidationError, match="at most 2 decimals in HKD"):
        parse(message.value, list(message.headers.items()))
    headers = [*message.headers.items(), ("ce_id", b"again")]
    with pytest.raises(ValidationError, match="given twice"):
        parse(message.value, headers)
    with pytest.raises(NotJSON):
        parse(b"{", list(message.headers.items()))


def test_a_binary_message_needs_json_data() -> None:
    message = kafka_binding.to_binary(
        sdk_event("visit", {"channel": "app", "location": "x"}), JSONFormat()
    )
    headers = {**message.headers, "content-type": b"text/plain"}
    with pytest.raises(ValidationError, match="datacontenttype"):
        parse(message.value, list(headers.items()))
    charset = {**message.headers, "content-type": b"application/json; charset=utf-8"}
    assert parse(message.value, list(charset.items())).type == "visit"


def test_every_inbound_type_has_the_name_the_ledger_publishes_it_under() -> None:
    published = {
        name
        for name, value in vars(CustomerAccount).items()
        if isinstance(value, type) and issubclass(value, CustomerAccount.Event)
    }
    for message in MESSAGES:
        assert message.event in published, message
        assert message.type == f"crmledger.{message.event}"
    assert {m.alias: m.contract.command_type for m in ACTIVITY_MESSAGES} == ACTIVITIES


def test_the_old_inbound_names_are_aliases_of_the_new_ones() -> None:
    data = {"segment": "gold", "channel": "store", "customer": {"name": "A"}}
    old = parse(encoded(cloud_event("account_opened", "ext:C-9", data)))
    new = parse(encoded(cloud_event("crmledger.AccountOpened", "ext:C-9", data)))
    assert type(old) is type(new) is AccountOpened


@pytest.mark.parametrize(
    "extension",
    [{"Department": "x"}, {"department": "a\x00b"}, {"department": {"nested": 1}}],
)
def test_extension_attributes_are_lower_case_names_of_clean_values(
    extension: dict[str, Any],
) -> None:
    with pytest.raises(ValidationError, match="extension attribute"):
        parse(encoded({**purchase(), **extension}))


def test_free_text_may_hold_lines_and_tabs_one_line_fields_may_not() -> None:
    event = parse(
        encoded(cloud_event("feedback", "ext:C-1", {"score": 5, "comment": "good\n\tthanks\r\n"}))
    )
    assert event.command().comment == "good\n\tthanks"
    with pytest.raises(ValidationError, match="U\\+0009"):
        parse(encoded(cloud_event("visit", "ext:C-1", {"channel": "app", "location": "a\tb"})))
