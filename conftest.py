"""Fixtures for every test suite (tests/ and features/): the real ledger, API and tokens."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import issue_token
from infra.wiring import Services
from tests.support import JWT_SECRET, own_ledger

if TYPE_CHECKING:
    from tests.oidc import OidcProvider


@pytest.fixture(scope="session")
def services() -> Iterator[Services]:
    """One ledger for the whole session, on its own schema."""
    with own_ledger() as built:
        yield built


@pytest.fixture(scope="session")
def client(services: Services) -> Iterator[TestClient]:
    """The real API over the session's services."""
    with TestClient(create_app(services)) as c:
        yield c


@pytest.fixture(scope="session")
def token() -> Callable[..., str]:
    """Make a bearer token for some roles."""

    def make(
        *roles: str, sub: str = "tester", department: str | None = None, ttl: int = 3600
    ) -> str:
        return issue_token(JWT_SECRET, sub, list(roles), department=department, ttl=ttl)

    return make


@pytest.fixture(scope="session")
def auth(token: Callable[..., str]) -> Callable[..., dict[str, str]]:
    """Authorization headers for some roles."""

    def make(*roles: str, sub: str = "tester", **headers: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token(*roles, sub=sub)}", **headers}

    return make


@pytest.fixture(scope="session")
def oidc_provider() -> Iterator[OidcProvider]:
    """A real OpenID Connect provider on a loopback port (tests/oidc.py), one per session."""
    from tests.oidc import running_provider  # Flask and Authlib only where a test needs them

    with running_provider() as provider:
        yield provider
