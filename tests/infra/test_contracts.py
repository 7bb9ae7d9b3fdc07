"""Every text field of every contract refuses control characters, at both doors alike."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import pytest
from pydantic import BaseModel, TypeAdapter, ValidationError

from api import schemas
from consumers.messages import parse
from domain.activities import ACTIVITIES
from infra.contracts import ACTIVITY_MESSAGES, MESSAGES

SAMPLES: dict[str, dict[str, Any]] = {
    "account_opened": {
        "external_ref": "C-1",
        "segment": "gold",
        "service_plan": "standard",
        "channel": "store",
        "customer": {
            "name": "Ann Lee",
            "email": "ann@example.com",
            "phone": "+852 1234 5678",
            "address": "1 Nathan Road",
            "date_of_birth": "1990-04-01",
            "id_document": "A1234567",
        },
    },
    "details_updated": {"customer": {"name": "Ann Lee", "address": "2 Nathan Road"}},
    "account_closed": {"reason": "other", "note": "moved"},
    "purchase": {"amount": "19.99", "cost": "12", "currency": "HKD", "store": "s1"},
    "refund": {"amount": "19.99", "cost": "12", "currency": "HKD", "store": "s1"},
    "visit": {"channel": "app", "location": "home"},
    "inquiry_opened": {"inquiry_id": "Q1", "channel": "phone", "topic": "billing"},
    "inquiry_answered": {"inquiry_id": "Q1", "channel": "phone"},
    "complaint_lodged": {"complaint_id": "K1", "category": "service", "severity": "low"},
    "complaint_resolved": {"complaint_id": "K1", "resolution": "refunded", "satisfied": True},
    "feedback": {"score": 5, "comment": "great"},
}
# Strings that carry a number or a date, refused as such.
NOT_TEXT = {"amount", "cost", "date_of_birth"}
HTTP_BODIES: dict[str, Any] = {
    "account_opened": schemas.OpenAccount,
    "details_updated": schemas.UpdateDetails,
    "account_closed": schemas.CloseAccount,
}


def text_paths(data: dict[str, Any], prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    for name, value in data.items():
        if isinstance(value, dict):
            yield from text_paths(value, (*prefix, name))
        elif isinstance(value, str) and name not in NOT_TEXT:
            yield (*prefix, name)


def with_value(data: dict[str, Any], path: tuple[str, ...], value: str) -> dict[str, Any]:
    changed = json.loads(json.dumps(data))
    target = changed
    for step in path[:-1]:
        target = target[step]
    target[path[-1]] = value
    return changed


def over_http(alias: str, data: dict[str, Any]) -> BaseModel:
    if alias in HTTP_BODIES:
        model: type[BaseModel] = HTTP_BODIES[alias]
        return model.model_validate(data)
    return TypeAdapter(schemas.ActivityIn).validate_python({"type": alias, **data})


def over_kafka(alias: str, data: dict[str, Any]) -> BaseModel:
    event = {
        "specversion": "1.0",
        "id": "1",
        "source": "pos",
        "type": alias,
        "subject": "ext:C-1",
        "time": datetime.now(UTC).isoformat(),
        "data": data,
    }
    return parse(json.dumps(event).encode())


CASES = [
    (alias, path, char)
    for alias, sample in SAMPLES.items()
    for path in text_paths(sample)
    for char in ("\x00", "\x1f", "\x9b")
]


def test_the_samples_are_good_at_both_doors() -> None:
    assert set(SAMPLES) == {m.alias for m in MESSAGES}
    for alias, data in SAMPLES.items():
        over_http(alias, data)
        over_kafka(alias, data)


@pytest.mark.parametrize(("alias", "path", "char"), CASES, ids=str)
def test_every_text_field_refuses_control_characters_at_both_doors(
    alias: str, path: tuple[str, ...], char: str
) -> None:
    bad = with_value(SAMPLES[alias], path, "a" + char + "b")
    reasons = []
    for door in (over_http, over_kafka):
        with pytest.raises(ValidationError) as caught:
            door(alias, bad)
        (error,) = caught.value.errors()
        reasons.append((error["loc"][-len(path) :], error["msg"]))
    assert reasons[0] == reasons[1] == (path, reasons[0][1])
    assert f"U+{ord(char):04X}" in reasons[0][1]


def test_each_activity_contract_has_the_fields_of_its_domain_value() -> None:
    for message in ACTIVITY_MESSAGES:
        command = ACTIVITIES[message.alias]
        fields = set(message.contract.model_fields)
        assert fields == set(command.__dataclass_fields__), message.alias
        assert message.contract.model_validate(SAMPLES[message.alias]).command() == command(
            **message.contract.model_validate(SAMPLES[message.alias]).model_dump()
        )
