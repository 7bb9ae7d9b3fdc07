"""What the API reads: query parameters without control characters, JSON numbers read exactly."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pytest
from fastapi.testclient import TestClient

from infra.wiring import Services

Auth = Callable[..., dict[str, str]]


@pytest.mark.parametrize(
    ("role", "path", "name"),
    [
        ("customer_service", "/v1/accounts?q=Ann%00Lee", "q"),
        ("customer_service", "/v1/accounts?segment=gold%00", "segment"),
        ("customer_service", "/v1/accounts?cursor=%1b", "cursor"),
        ("auditor", "/v1/audit/access-log?actor=clerk%00", "actor"),
        ("auditor", "/v1/audit/events?type=AccountOpened%C2%85", "type"),
        ("management", "/v1/reports/accounts-summary?segment=%00", "segment"),
        ("auditor", "/v1/audit/verify?account_id=%00", "account_id"),
        ("customer_service", "/v1/accounts?x%00y=1", "x\x00y"),
    ],
)
def test_a_control_character_in_a_query_parameter_is_a_422_naming_it(
    client: TestClient, auth: Auth, role: str, path: str, name: str
) -> None:
    response = client.get(path, headers=auth(role))
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["errors"][0]["loc"] == ["query", name]
    assert "control character" in problem["detail"]


def test_a_clean_query_still_answers(client: TestClient, auth: Auth) -> None:
    response = client.get("/v1/accounts?q=Ann%20Lee", headers=auth("customer_service"))
    assert response.status_code == 200, response.text


def purchase_body(amount: str) -> bytes:
    head = '{"type": "crmledger.PurchaseRecorded", "cost": 1, "currency": "HKD", "store": "s"'
    return f'{head}, "amount": {amount}}}'.encode()


def test_a_json_number_amount_is_read_as_written_not_as_a_float(
    client: TestClient,
    auth: Auth,
    services: Services,
    open_account: Callable[..., dict[str, Any]],
) -> None:
    account = open_account()
    url = f"/v1/accounts/{account['id']}/activities"
    headers = {**auth("customer_service"), "content-type": "application/json"}
    # As a float this is 19.99: it would be recorded as an amount nobody sent.
    response = client.post(url, content=purchase_body("19.99000000000000000001"), headers=headers)
    assert response.status_code == 422, response.text
    assert client.post(url, content=purchase_body("19.99"), headers=headers).status_code == 201
    last = services.ledger.history(account["id"])[-1]
    assert last.amount == Decimal("19.99")  # type: ignore[attr-defined]


def test_free_text_keeps_its_lines(
    client: TestClient, auth: Auth, open_account: Callable[..., dict[str, Any]]
) -> None:
    account = open_account()
    response = client.post(
        f"/v1/accounts/{account['id']}/close",
        json={"reason": "other", "note": "moved abroad\n\tno forwarding address"},
        headers=auth("customer_service"),
    )
    assert response.status_code == 200, response.text
