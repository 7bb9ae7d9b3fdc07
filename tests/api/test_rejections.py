"""Every kind of bad input gets a 4xx problem+json with a clear message and writes nothing."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import uuid4

import jwt
import pytest
from fastapi.testclient import TestClient

from tests.support import JWT_SECRET

Auth = Callable[..., dict[str, str]]
PROBLEM = "application/problem+json"


def assert_problem(response: Any, status: int, *words: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["status"] == status and body["title"] and body["detail"]
    for word in words:
        assert word in body["detail"], body["detail"]
    return body


GOOD_OPEN = {"segment": "gold", "channel": "store", "customer": {"name": "Ann Lee"}}


@pytest.mark.parametrize(
    "body, status, words",
    [
        ({**GOOD_OPEN, "segment": "platinum"}, 422, ("segment must be one of",)),
        ({**GOOD_OPEN, "channel": "fax"}, 422, ("channel",)),
        ({**GOOD_OPEN, "segment": 5}, 422, ("segment",)),
        ({**GOOD_OPEN, "customer": {"name": ""}}, 422, ("name",)),
        ({**GOOD_OPEN, "customer": {"name": "x" * 201}}, 422, ("name",)),
        ({**GOOD_OPEN, "customer": {"name": "A", "email": "not-an-email"}}, 422, ("email",)),
        ({**GOOD_OPEN, "customer": {"name": "A", "date_of_birth": "2999-01-01"}}, 422, ("future",)),
        ({**GOOD_OPEN, "customer": {"name": "A", "date_of_birth": "01/02/1990"}}, 422, ("date",)),
        ({**GOOD_OPEN, "customer": {"name": "A", "shoe_size": "9"}}, 422, ("shoe_size",)),
        ({**GOOD_OPEN, "external_ref": "r" * 65}, 422, ("external_ref",)),
        ({**GOOD_OPEN, "occurred_at": "yesterday"}, 422, ("occurred_at",)),
        ({**GOOD_OPEN, "occurred_at": "2026-01-01T10:00:00"}, 422, ("occurred_at",)),
        ({"channel": "store", "customer": {"name": "A"}}, 422, ("segment",)),
        ([1, 2, 3], 422, ()),
    ],
)
def test_a_bad_open_is_refused_and_writes_nothing(
    client: TestClient,
    auth: Auth,
    stored_events: Callable[[], int],
    body: Any,
    status: int,
    words: tuple[str, ...],
) -> None:
    before = stored_events()
    response = client.post("/v1/accounts", json=body, headers=auth("customer_service"))
    assert_problem(response, status, *words)
    assert stored_events() == before


def test_a_future_occurred_at_is_refused(client: TestClient, auth: Auth) -> None:
    later = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    response = client.post(
        "/v1/accounts", json={**GOOD_OPEN, "occurred_at": later}, headers=auth("customer_service")
    )
    assert_problem(response, 422, "future")


def test_malformed_json_is_a_400(client: TestClient, auth: Auth) -> None:
    response = client.post(
        "/v1/accounts",
        content=b'{"segment": "gold",',
        headers={**auth("customer_service"), "content-type": "application/json"},
    )
    assert_problem(response, 400, "not valid JSON")


def test_an_oversized_body_is_refused_before_parsing(client: TestClient, auth: Auth) -> None:
    response = client.post(
        "/v1/accounts",
        content=b"{" + b" " * 70_000 + b"}",
        headers={**auth("customer_service"), "content-type": "application/json"},
    )
    assert_problem(response, 413, "limited")


@pytest.mark.parametrize(
    "activity, words",
    [
        (
            {"type": "purchase", "amount": "-1", "cost": "1", "currency": "HKD", "store": "s"},
            ("amount",),
        ),
        (
            {"type": "purchase", "amount": "0", "cost": "1", "currency": "HKD", "store": "s"},
            ("amount",),
        ),
        (
            {"type": "purchase", "amount": "ten", "cost": "1", "currency": "HKD", "store": "s"},
            ("amount",),
        ),
        (
            {
                "type": "purchase",
                "amount": "Infinity",
                "cost": "1",
                "currency": "HKD",
                "store": "s",
            },
            ("amount",),
        ),
        (
            {"type": "purchase", "amount": "1", "cost": "1", "currency": "HK", "store": "s"},
            ("currency",),
        ),
        (
            {"type": "refund", "amount": "1", "cost": "-1", "currency": "HKD", "store": "s"},
            ("cost",),
        ),
        ({"type": "visit", "channel": "carrier-pigeon", "location": "x"}, ("channel",)),
        ({"type": "feedback", "score": 6}, ("score",)),
        ({"type": "feedback", "score": "5"}, ("score",)),
        (
            {"type": "complaint_lodged", "complaint_id": "c", "category": "x", "severity": "dire"},
            ("severity",),
        ),
        ({"type": "teleport"}, ("type",)),
        ({"amount": "1"}, ("type",)),
    ],
)
def test_a_bad_activity_is_refused_and_writes_nothing(
    client: TestClient,
    auth: Auth,
    open_account: Callable[..., dict[str, Any]],
    stored_events: Callable[[], int],
    activity: dict[str, Any],
    words: tuple[str, ...],
) -> None:
    account = open_account()
    before = stored_events()
    response = client.post(
        f"/v1/accounts/{account['id']}/activities", json=activity, headers=auth("customer_service")
    )
    assert_problem(response, 422, *words)
    assert stored_events() == before


def test_an_unknown_account_is_a_404(client: TestClient, auth: Auth) -> None:
    unknown = uuid4()
    headers = auth("customer_service")
    assert_problem(client.get(f"/v1/accounts/{unknown}", headers=headers), 404, str(unknown))
    assert_problem(
        client.patch(f"/v1/accounts/{unknown}", json={"customer": {"name": "B"}}, headers=headers),
        404,
    )
    assert_problem(
        client.post(
            f"/v1/accounts/{unknown}/activities",
            json={"type": "visit", "channel": "store", "location": "x"},
            headers=headers,
        ),
        404,
    )
    assert_problem(client.get(f"/v1/accounts/{unknown}/history", headers=headers), 404)


def test_a_bad_uuid_is_refused(client: TestClient, auth: Auth) -> None:
    response = client.get("/v1/accounts/not-a-uuid", headers=auth("customer_service"))
    assert_problem(response, 422, "account_id")


def test_a_closed_account_refuses_commands_with_409(
    client: TestClient,
    auth: Auth,
    open_account: Callable[..., dict[str, Any]],
    stored_events: Callable[[], int],
) -> None:
    account = open_account()
    headers = auth("customer_service")
    closed = client.post(
        f"/v1/accounts/{account['id']}/close", json={"reason": "fraud"}, headers=headers
    )
    assert closed.status_code == 200 and closed.json()["status"] == "closed"
    before = stored_events()
    response = client.post(
        f"/v1/accounts/{account['id']}/activities",
        json={"type": "visit", "channel": "store", "location": "x"},
        headers=headers,
    )
    body = assert_problem(response, 409, "closed")
    assert body["title"] == "Account closed"
    assert stored_events() == before


def test_a_stale_version_is_a_412(
    client: TestClient, auth: Auth, open_account: Callable[..., dict[str, Any]]
) -> None:
    account = open_account()
    headers = auth("customer_service")
    url = f"/v1/accounts/{account['id']}"
    first = client.patch(
        url, json={"customer": {"name": "B"}}, headers={**headers, "If-Match": '"1"'}
    )
    assert first.status_code == 200 and first.headers["etag"] == '"2"'
    again = client.patch(
        url, json={"customer": {"name": "C"}}, headers={**headers, "If-Match": '"1"'}
    )
    assert_problem(again, 412, "version 2")
    assert client.get(url, headers=headers).json()["customer"]["name"] == "B"


def test_a_malformed_if_match_is_a_400(
    client: TestClient, auth: Auth, open_account: Callable[..., dict[str, Any]]
) -> None:
    account = open_account()
    response = client.patch(
        f"/v1/accounts/{account['id']}",
        json={"customer": {"name": "B"}},
        headers={**auth("customer_service"), "If-Match": "yesterday"},
    )
    assert_problem(response, 400, "If-Match")


def test_an_empty_update_is_refused(
    client: TestClient, auth: Auth, open_account: Callable[..., dict[str, Any]]
) -> None:
    account = open_account()
    response = client.patch(
        f"/v1/accounts/{account['id']}", json={"customer": {}}, headers=auth("customer_service")
    )
    assert_problem(response, 422, "at least one")


def test_a_repeated_external_ref_is_a_409(
    client: TestClient, auth: Auth, open_account: Callable[..., dict[str, Any]]
) -> None:
    account = open_account()
    response = client.post(
        "/v1/accounts",
        json={**GOOD_OPEN, "external_ref": account["external_ref"]},
        headers=auth("customer_service"),
    )
    assert_problem(response, 409, account["external_ref"])


def test_no_token_is_a_401(client: TestClient) -> None:
    response = client.post("/v1/accounts", json=GOOD_OPEN)
    assert_problem(response, 401, "token")
    assert response.headers["www-authenticate"] == "Bearer"


@pytest.mark.parametrize(
    "token",
    [
        "not.a.jwt",
        jwt.encode({"sub": "x", "roles": ["admin"], "exp": int(time.time()) + 60}, "w" * 40),
        jwt.encode({"sub": "x", "roles": ["admin"], "exp": int(time.time()) - 60}, JWT_SECRET),
        jwt.encode({"sub": "x", "roles": ["admin"]}, JWT_SECRET),
        jwt.encode({"sub": "x", "roles": "admin", "exp": int(time.time()) + 60}, JWT_SECRET),
    ],
    ids=["garbage", "wrong-secret", "expired", "no-expiry", "roles-not-a-list"],
)
def test_a_bad_token_is_a_401(client: TestClient, token: str) -> None:
    response = client.get(f"/v1/accounts/{uuid4()}", headers={"Authorization": f"Bearer {token}"})
    assert_problem(response, 401, "invalid token")


def test_a_token_accepted_before_is_refused_once_it_expires(client: TestClient) -> None:
    expires = int(time.time()) + 2
    claims = {"sub": "brief", "roles": ["customer_service"], "exp": expires}
    headers = {"Authorization": f"Bearer {jwt.encode(claims, JWT_SECRET)}"}
    assert client.get(f"/v1/accounts/{uuid4()}", headers=headers).status_code == 404
    time.sleep(max(expires - time.time(), 0) + 0.1)
    response = client.get(f"/v1/accounts/{uuid4()}", headers=headers)
    assert_problem(response, 401, "invalid token")


@pytest.mark.parametrize(
    "role, method, path, body",
    [
        ("marketing", "POST", "/v1/accounts", GOOD_OPEN),
        ("finance", "POST", "/v1/accounts", GOOD_OPEN),
        ("auditor", "POST", "/v1/accounts", GOOD_OPEN),
        ("admin", "POST", "/v1/accounts/{id}/activities", {"type": "feedback", "score": 4}),
        ("integration", "GET", "/v1/accounts/{id}", None),
        ("marketing", "GET", "/v1/accounts/{id}/history", None),
        ("management", "GET", "/v1/accounts/{id}?version=1", None),
        ("customer_service", "POST", "/v1/accounts/{id}/erase", {"reason": "request"}),
        ("customer_service", "GET", "/v1/audit/verify", None),
    ],
)
def test_a_role_that_may_not_gets_403_and_writes_nothing(
    client: TestClient,
    auth: Auth,
    open_account: Callable[..., dict[str, Any]],
    stored_events: Callable[[], int],
    role: str,
    method: str,
    path: str,
    body: Any,
) -> None:
    account = open_account()
    before = stored_events()
    response = client.request(method, path.format(id=account["id"]), json=body, headers=auth(role))
    assert_problem(response, 403, "roles")
    assert stored_events() == before


def test_version_and_as_of_together_are_refused(
    client: TestClient, auth: Auth, open_account: Callable[..., dict[str, Any]]
) -> None:
    account = open_account()
    response = client.get(
        f"/v1/accounts/{account['id']}",
        params={"version": 1, "as_of": datetime.now(UTC).isoformat()},
        headers=auth("auditor"),
    )
    assert_problem(response, 400, "not both")


@pytest.mark.parametrize("query", ["version=0", "version=abc", "as_of=yesterday"])
def test_bad_point_in_time_parameters_are_refused(
    client: TestClient, auth: Auth, open_account: Callable[..., dict[str, Any]], query: str
) -> None:
    account = open_account()
    response = client.get(f"/v1/accounts/{account['id']}?{query}", headers=auth("auditor"))
    assert_problem(response, 422)


def test_a_version_beyond_the_last_is_a_404(
    client: TestClient, auth: Auth, open_account: Callable[..., dict[str, Any]]
) -> None:
    account = open_account()
    response = client.get(f"/v1/accounts/{account['id']}?version=9", headers=auth("auditor"))
    assert_problem(response, 404, "version 9")
