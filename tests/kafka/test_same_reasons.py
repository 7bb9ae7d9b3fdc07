"""One table of bad inputs through both doors: the same refusal, for the same reason.

Each row is sent over HTTP (expect a 422 problem+json) and published on the
inbound topic in both CloudEvents content modes (expect a dead letter whose
error_detail names the same field with the same words).
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from fastapi.testclient import TestClient
from kafka import KafkaProducer

from consumers.inbound import Ingest
from infra.contracts import MESSAGES
from infra.topics import INTEGRATION_DLQ, INTEGRATION_EVENTS
from tests.kafka.conftest import SESSION_TIMEOUT_MS, Stack, read_topic

Auth = Callable[..., dict[str, str]]
PROBLEM = "application/problem+json"
TAGS = {name for m in MESSAGES for name in m.names}

GOOD: dict[str, dict[str, Any]] = {
    "account_opened": {"segment": "gold", "channel": "store", "customer": {"name": "Ann Lee"}},
    "details_updated": {"customer": {"email": "ann@example.com"}},
    "account_closed": {"reason": "customer_request", "note": ""},
    "purchase": {"amount": "19.99", "cost": "12.00", "currency": "HKD", "store": "s1"},
    "visit": {"channel": "app", "location": "home"},
    "complaint_lodged": {"complaint_id": "K1", "category": "service", "severity": "low"},
    "feedback": {"score": 4, "comment": "fine"},
}


class Raw:
    """A JSON number written as given (1e3), which json.dumps would rewrite."""

    def __init__(self, literal: str) -> None:
        self.literal = literal


# (case, message, where: a data path or "time", bad value, field named, words of the reason)
BAD: list[tuple[str, str, tuple[str, ...], Any, str, str]] = [
    ("nul-in-name", "account_opened", ("customer", "name"), "Ann\x00Lee", "", "U+0000"),
    ("nul-in-store", "purchase", ("store",), "s\x001", "", "U+0000"),
    ("escape-in-store", "purchase", ("store",), "s\x1b[31m", "", "U+001B"),
    ("c1-in-location", "visit", ("location",), "x\x85y", "", "U+0085"),
    ("del-in-category", "complaint_lodged", ("category",), "a\x7f", "", "U+007F"),
    ("newline-in-name", "account_opened", ("customer", "name"), "Ann\nLee", "", "U+000A"),
    ("nul-in-note", "account_closed", ("note",), "a\x00b", "", "U+0000"),
    ("nul-in-address", "details_updated", ("customer", "address"), "1 Road\x00", "", "U+0000"),
    ("surrogate-in-comment", "feedback", ("comment",), "\ud800", "", "U+D800"),
    ("nul-in-external-ref", "account_opened", ("external_ref",), "C\x00", "", "U+0000"),
    ("year-1-at-plus-14", "purchase", ("time",), "0001-01-01T00:00:00+14:00", "", "1900"),
    ("year-1800", "visit", ("time",), "1800-06-01T00:00:00Z", "", "1900"),
    ("naive-time", "purchase", ("time",), "2024-05-01T10:00:00", "", "timezone"),
    ("far-future", "feedback", ("time",), "2999-01-01T00:00:00Z", "", "future"),
    ("time-as-digits", "visit", ("time",), "1714557600", "", "not a number"),
    ("birth-1899", "account_opened", ("customer", "date_of_birth"), "1899-12-31", "", "1900"),
    ("birth-future", "account_opened", ("customer", "date_of_birth"), "2999-01-01", "", "future"),
    ("currency-zzz", "purchase", ("currency",), "ZZZ", "", "ISO 4217"),
    ("currency-lower", "purchase", ("currency",), "hkd", "", "ISO 4217"),
    ("underscored-amount", "purchase", ("amount",), "1_000", "", "plain decimal"),
    ("hkd-mills", "purchase", ("amount",), "19.999", "", "at most 2 decimals in HKD"),
    ("jpy-cents", "purchase", ("amount",), "1.5", "JPY", "at most 0 decimals in JPY"),
    ("exponent-string", "purchase", ("amount",), "1e3", "", "plain decimal"),
    ("exponent-number", "purchase", ("amount",), Raw("1e3"), "", "plain decimal"),
    ("nan-string", "purchase", ("amount",), "NaN", "", "plain decimal"),
    ("negative", "purchase", ("amount",), "-1", "", "greater than 0"),
    ("negative-cost", "purchase", ("cost",), "-0.01", "", "0 or more"),
    ("huge-amount", "purchase", ("amount",), "123456789012345.67", "", "digits"),
    ("long-comment", "feedback", ("comment",), "x" * 1001, "", "at most 1000"),
    ("long-store", "purchase", ("store",), "s" * 101, "", "at most 100"),
    ("unknown-channel", "visit", ("channel",), "fax", "", "'app', 'online', 'phone' or 'store'"),
    ("unknown-severity", "complaint_lodged", ("severity",), "dire", "", "'high', 'low'"),
    ("unknown-close-reason", "account_closed", ("reason",), "bored", "", "'customer_request'"),
    ("score-6", "feedback", ("score",), 6, "", "less than or equal to 5"),
    ("score-as-text", "feedback", ("score",), "5", "", "valid integer"),
    ("unknown-field", "purchase", ("tip",), "1", "", "Extra inputs"),
]


def dumps(document: Any) -> bytes:
    """JSON with Raw numbers as written; lone surrogates escaped (ensure_ascii)."""
    raws: dict[str, str] = {}

    def default(value: Any) -> str:
        key = f"@raw{len(raws)}@"
        raws[key] = value.literal
        return key

    text = json.dumps(document, default=default)
    for key, literal in raws.items():
        text = text.replace(f'"{key}"', literal)
    return text.encode()


def bad_data(message: str, path: tuple[str, ...], value: Any, currency: str) -> dict[str, Any]:
    data = json.loads(json.dumps(GOOD[message]))
    if currency:
        data["currency"] = currency
    if path != ("time",):
        target = data
        for step in path[:-1]:
            target = target[step]
        target[path[-1]] = value
    return data


def reason_of(path: list[str], msg: str) -> tuple[str, str]:
    """(field, words) without the door's own prefix ("body", "data") or the union's tag."""
    steps = [p for p in path if p not in ("body", "data")]
    if steps and steps[0] in TAGS:
        steps = steps[1:]
    field = ".".join(steps)
    return ("time" if field == "occurred_at" else field, msg)


def over_http(
    client: TestClient, auth: Auth, account_id: str, message: str, body: dict[str, Any]
) -> tuple[str, str]:
    paths = {
        "account_opened": ("POST", "/v1/accounts"),
        "details_updated": ("PATCH", f"/v1/accounts/{account_id}"),
        "account_closed": ("POST", f"/v1/accounts/{account_id}/close"),
    }
    method, path = paths.get(message, ("POST", f"/v1/accounts/{account_id}/activities"))
    if message not in paths:
        body = {"type": message, **body}
    response = client.request(
        method,
        path,
        content=dumps(body),
        headers={**auth("customer_service"), "content-type": "application/json"},
    )
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM
    errors = response.json()["errors"]
    assert len(errors) == 1, errors
    return reason_of(errors[0]["loc"], errors[0]["msg"])


def over_kafka(stack: Stack, sent: dict[bytes, Any]) -> dict[bytes, tuple[str, str, str]]:
    """Apply what was published; each dead letter's (error, field, words) by message key."""
    ingest = Ingest(stack.services, stack.bootstrap, session_timeout_ms=SESSION_TIMEOUT_MS)
    try:
        deadline = time.monotonic() + 30
        while ingest.totals.records < len(sent):
            assert time.monotonic() < deadline, f"handled {ingest.totals.records} of {len(sent)}"
            ingest.poll_once(200)
    finally:
        ingest.close()
    letters = read_topic(stack.bootstrap, INTEGRATION_DLQ, len(sent))
    found = {}
    for letter in letters:
        headers = dict(letter.headers)
        where, _, words = headers["error_detail"].decode().partition(": ")
        assert "; " not in words, words  # one reason only
        found[letter.key] = (headers["error"].decode(), *reason_of(where.split("."), words))
    return found


def test_one_table_of_bad_inputs_gets_the_same_reason_at_both_doors(
    client: TestClient, auth: Auth, stack: Stack
) -> None:
    opened = client.post(
        "/v1/accounts", json=GOOD["account_opened"], headers=auth("customer_service")
    )
    account_id = opened.json()["id"]
    now = datetime.now(UTC).isoformat()
    producer = KafkaProducer(bootstrap_servers=stack.bootstrap, linger_ms=0)
    expected: dict[bytes, tuple[str, tuple[str, str]]] = {}
    for case, message, path, value, currency, words in BAD:
        data = bad_data(message, path, value, currency)
        when = value if path == ("time",) else now
        http_body = {**data, "occurred_at": when} if path == ("time",) else data
        reason = over_http(client, auth, account_id, message, http_body)
        field = "time" if path == ("time",) else ".".join(path)
        assert reason[0] == field and words in reason[1], (case, reason)
        attributes = {
            "specversion": "1.0",
            "source": "pos/store-12",
            "type": message,
            "subject": f"ext:C-{case}",
            "time": when,
        }
        # Structured: the whole event is the value.
        key = f"{case}/structured".encode()
        value_bytes = dumps({**attributes, "id": key.decode(), "data": data})
        headers = [("content-type", b"application/cloudevents+json")]
        producer.send(INTEGRATION_EVENTS, key=key, value=value_bytes, headers=headers)
        expected[key] = (case, reason)
        # Binary: attributes in ce_ headers, the data is the value.
        key = f"{case}/binary".encode()
        headers = [
            (f"ce_{n}", str(v).encode()) for n, v in {**attributes, "id": key.decode()}.items()
        ]
        headers.append(("content-type", b"application/json"))
        producer.send(INTEGRATION_EVENTS, key=key, value=dumps(data), headers=headers)
        expected[key] = (case, reason)
    producer.flush()
    producer.close()

    letters = over_kafka(stack, expected)

    assert set(letters) == set(expected)
    for key, (case, reason) in expected.items():
        assert letters[key] == ("invalid_event", *reason), case


@pytest.mark.parametrize(
    "body",
    [b'{"type": "purchase", "amount": NaN, "cost": "1", "currency": "HKD", "store": "s"}', b"\xff"],
    ids=["nan-literal", "not-utf8"],
)
def test_what_is_not_json_is_refused_as_such_at_both_doors(
    client: TestClient, auth: Auth, stack: Stack, body: bytes
) -> None:
    response = client.post(
        f"/v1/accounts/{uuid.uuid4()}/activities",
        content=body,
        headers={**auth("customer_service"), "content-type": "application/json"},
    )
    assert response.status_code == 400 and response.headers["content-type"] == PROBLEM
    producer = KafkaProducer(bootstrap_servers=stack.bootstrap, linger_ms=0)
    headers = [("content-type", b"application/cloudevents+json")]
    producer.send(INTEGRATION_EVENTS, key=b"k", value=body, headers=headers)
    producer.flush()
    producer.close()
    letters = over_kafka(stack, {b"k": None})
    assert letters[b"k"][0] == "not_json"
