"""Reading inbound CloudEvents, and deciding what becomes a dead letter."""

from __future__ import annotations

import uuid
from datetime import timedelta
from decimal import Decimal
from typing import Any

import orjson
import psycopg
import pytest
from kafka.errors import KafkaTimeoutError
from pydantic import ValidationError

from consumers.commands import event_metadata
from consumers.dead_letters import dead_letter_reason, error_detail
from consumers.messages import AccountOpened, NotJSON, Purchase, parse
from domain.account import account_id_for
from domain.errors import (
    AccountClosed,
    AccountNotFound,
    ConflictingState,
    DuplicateAccount,
    InvalidCommand,
    StaleVersion,
)
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
    assert isinstance(event, Purchase)
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
