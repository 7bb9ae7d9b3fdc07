"""Helpers for API tests: open an account, count what the store holds."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from infra.wiring import Services


@pytest.fixture
def open_account(
    client: TestClient, auth: Callable[..., dict[str, str]]
) -> Callable[..., dict[str, Any]]:
    """Open an account as customer service and return its JSON."""

    def make(**overrides: Any) -> dict[str, Any]:
        body: dict[str, Any] = {
            "external_ref": f"C-{uuid.uuid4().hex[:10]}",
            "segment": "gold",
            "channel": "store",
            "customer": {
                "name": "Ann Lee",
                "email": "ann.lee@example.com",
                "phone": "+852 1234 5678",
                "date_of_birth": "1990-04-01",
            },
        }
        body.update(overrides)
        response = client.post("/v1/accounts", json=body, headers=auth("customer_service"))
        assert response.status_code == 201, response.text
        return response.json()  # type: ignore[no-any-return]

    return make


@pytest.fixture
def stored_events(services: Services) -> Callable[[], int]:
    """How many events the store holds: a rejected command must not change it."""

    def count() -> int:
        return services.ledger.recorder.max_notification_id() or 0

    return count
