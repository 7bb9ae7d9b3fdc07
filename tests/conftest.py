"""Fixtures shared by every test: real PostgreSQL, the real API, real tokens.

Each test session gets its own PostgreSQL schema on the test server
(CRMLEDGER_TEST_DATABASE_URL, by default the machine's 127.0.0.1:5432/test) and
drops it at the end, so runs never see each other's events.
"""

from __future__ import annotations

import base64
import os
import uuid
from collections.abc import Callable, Iterator

import psycopg
import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import issue_token
from infra.settings import Settings
from infra.wiring import Services, bootstrap

TEST_DATABASE_URL = os.environ.get(
    "CRMLEDGER_TEST_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test"
)
JWT_SECRET = "test-secret-" + "x" * 40


def make_settings(**overrides: object) -> Settings:
    """Settings for a test on the test server, in a fresh schema unless one is given."""
    schema = f"t_{uuid.uuid4().hex[:12]}"
    values: dict[str, object] = {
        "database_url": TEST_DATABASE_URL,
        "database_schema": schema,
        "readmodel_schema": f"{schema}_rm",
        "jwt_secret": JWT_SECRET,
        "master_key": base64.b64encode(os.urandom(32)).decode(),
    }
    values.update(overrides)
    return Settings(**values)  # type: ignore[arg-type]


def drop_schema(schema: str) -> None:
    """Remove a test schema, its read-model schema and everything in them."""
    with psycopg.connect(TEST_DATABASE_URL, autocommit=True) as conn:
        conn.execute(f"DROP SCHEMA IF EXISTS {schema}, {schema}_rm CASCADE".encode())


@pytest.fixture(scope="session")
def services() -> Iterator[Services]:
    """One ledger for the whole session, on its own schema."""
    settings = make_settings()
    built = bootstrap(settings)
    yield built
    built.close()
    drop_schema(settings.database_schema)


@pytest.fixture(scope="session")
def client(services: Services) -> Iterator[TestClient]:
    """The real API over the session's services."""
    with TestClient(create_app(services)) as c:
        yield c


@pytest.fixture(scope="session")
def token() -> Callable[..., str]:
    """Make a bearer token for some roles."""

    def make(*roles: str, sub: str = "tester", department: str | None = None) -> str:
        return issue_token(JWT_SECRET, sub, list(roles), department=department)

    return make


@pytest.fixture(scope="session")
def auth(token: Callable[..., str]) -> Callable[..., dict[str, str]]:
    """Authorization headers for some roles."""

    def make(*roles: str, sub: str = "tester", **headers: str) -> dict[str, str]:
        return {"Authorization": f"Bearer {token(*roles, sub=sub)}", **headers}

    return make
