"""Tokens: issuer and audience when configured, a maximum lifetime, no known role is a 403."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import jwt
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import issue_token
from tests.support import JWT_SECRET, own_ledger

Auth = Callable[..., dict[str, str]]
ISSUER, AUDIENCE = "https://id.example.com", "crmledger"


def bearer(**claims: Any) -> dict[str, str]:
    """Authorization headers for a token with exactly these claims."""
    return {"Authorization": f"Bearer {jwt.encode(claims, JWT_SECRET)}"}


def claims(**extra: Any) -> dict[str, Any]:
    """Claims of a good one-hour token for customer service, with `extra` over them."""
    now = int(time.time())
    return {"sub": "t", "roles": ["customer_service"], "iat": now, "exp": now + 3600, **extra}


@pytest.fixture(scope="module")
def checked() -> Iterator[TestClient]:
    """The API of a ledger configured with an issuer and an audience."""
    with (
        own_ledger(jwt_issuer=ISSUER, jwt_audience=AUDIENCE) as services,
        TestClient(create_app(services)) as c,
    ):
        yield c


def test_a_configured_issuer_and_audience_are_required(
    checked: TestClient, client: TestClient
) -> None:
    url = f"/v1/accounts/{uuid4()}"
    good = claims(iss=ISSUER, aud=AUDIENCE)
    assert checked.get(url, headers=bearer(**good)).status_code == 404
    plain = bearer(**claims())
    # Accepted (and remembered) where nothing is configured, refused where it is.
    assert client.get(url, headers=plain).status_code == 404
    for bad in (
        plain,
        bearer(**{**good, "iss": "https://elsewhere.example.com"}),
        bearer(**{**good, "aud": "another-service"}),
        bearer(**claims(aud=AUDIENCE)),
        bearer(**claims(iss=ISSUER)),
    ):
        response = checked.get(url, headers=bad)
        assert response.status_code == 401, response.text
        assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    "token_claims",
    [
        {"sub": "t", "roles": ["admin"], "exp": int(datetime(3000, 1, 1, tzinfo=UTC).timestamp())},
        claims(exp=int(time.time()) + 13 * 3600),
        {"sub": "t", "roles": ["admin"], "iat": int(time.time())},
    ],
    ids=["exp-in-year-3000", "exp-minus-iat-13-hours", "no-exp"],
)
def test_a_token_that_lives_too_long_or_for_ever_is_a_401(
    client: TestClient, token_claims: dict[str, Any]
) -> None:
    response = client.get(f"/v1/accounts/{uuid4()}", headers=bearer(**token_claims))
    assert response.status_code == 401 and "invalid token" in response.json()["detail"]


def test_a_token_of_exactly_the_maximum_lifetime_is_accepted(client: TestClient) -> None:
    token = issue_token(JWT_SECRET, "t", ["auditor"], ttl=12 * 3600)
    headers = {"Authorization": f"Bearer {token}"}
    assert client.get(f"/v1/accounts/{uuid4()}", headers=headers).status_code == 404
    with pytest.raises(ValueError, match="at most"):
        issue_token(JWT_SECRET, "t", ["auditor"], ttl=12 * 3600 + 1)


@pytest.mark.parametrize(
    "method, path",
    [
        ("GET", "/v1/reports"),
        ("GET", "/v1/reports/accounts-summary"),
        ("GET", "/v1/accounts"),
        ("GET", "/v1/accounts/{id}"),
        ("POST", "/v1/accounts"),
        ("POST", "/v1/accounts/{id}/activities"),
        ("GET", "/v1/audit/events"),
        ("GET", "/v1/admin/projections"),
        ("GET", "/v1/guidelines"),
    ],
)
def test_a_token_with_no_known_role_is_a_403_everywhere(
    client: TestClient, method: str, path: str
) -> None:
    headers = bearer(**claims(roles=["janitor", "superuser"]))
    response = client.request(method, path.format(id=uuid4()), headers=headers, json={})
    assert response.status_code == 403, response.text
    assert "none of the roles" in response.json()["detail"]


def test_auditors_read_the_projections_status_but_do_not_rebuild(
    client: TestClient, auth: Auth
) -> None:
    assert client.get("/v1/admin/projections", headers=auth("auditor")).status_code == 200
    rebuild = client.post("/v1/admin/projections/directory/rebuild", headers=auth("auditor"))
    assert rebuild.status_code == 403
    for role in ("customer_service", "management", "integration"):
        assert client.get("/v1/admin/projections", headers=auth(role)).status_code == 403
