"""`crmledger token`: signs from the settings and the secret alone, and says which secret.

No database and no broker: the runs below point CRMLEDGER_DATABASE_URL at a
port nothing listens on, or leave it unset (embedded) and check that no
embedded server appeared under the home nor as a child process.
"""

from __future__ import annotations

import socket
from pathlib import Path

import jwt
import psutil
import pytest
from typer.testing import CliRunner, Result

from api.auth import ROLES
from crmledger.cli import app
from tests.support import JWT_SECRET

ISSUER, AUDIENCE = "https://id.example.com", "crmledger"


def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def home(tmp_path: Path) -> Path:
    return tmp_path / "home"


@pytest.fixture
def env(home: Path) -> dict[str, str | None]:
    """A deployment's settings, its database on a closed port, issuer and audience set."""
    return {
        "CRMLEDGER_DATABASE_URL": f"postgresql://postgres@127.0.0.1:{closed_port()}/none",
        "CRMLEDGER_KAFKA_BOOTSTRAP": f"127.0.0.1:{closed_port()}",
        "CRMLEDGER_HOME": str(home),
        "CRMLEDGER_JWT_SECRET": JWT_SECRET,
        "CRMLEDGER_JWT_PUBLIC_KEY": None,
        "CRMLEDGER_JWT_ISSUER": ISSUER,
        "CRMLEDGER_JWT_AUDIENCE": AUDIENCE,
        "CRMLEDGER_JWT_MAX_LIFETIME_HOURS": None,
    }


@pytest.fixture
def embedded(home: Path) -> dict[str, str | None]:
    """`make run`'s settings: nothing configured but the home."""
    names = ("DATABASE_URL", "KAFKA_BOOTSTRAP", "JWT_SECRET", "JWT_PUBLIC_KEY", "JWT_ISSUER")
    return {
        **{f"CRMLEDGER_{name}": None for name in names},
        "CRMLEDGER_JWT_AUDIENCE": None,
        "CRMLEDGER_JWT_MAX_LIFETIME_HOURS": None,
        "CRMLEDGER_HOME": str(home),
    }


def run(env: dict[str, str | None], *args: str) -> Result:
    return CliRunner().invoke(app, ["token", *args], env=env)


def said(result: Result) -> str:
    """What the command said on stderr, on one line (the console wraps at its width)."""
    return " ".join(result.stderr.split())


def test_a_token_carries_the_configured_issuer_and_audience_with_the_database_away(
    env: dict[str, str | None], home: Path
) -> None:
    result = run(env, "--role", "auditor", "--ttl", "3600")
    assert result.exit_code == 0, result.output
    claims = jwt.decode(
        result.stdout.strip(), JWT_SECRET, algorithms=["HS256"], issuer=ISSUER, audience=AUDIENCE
    )
    assert claims["exp"] - claims["iat"] == 3600
    assert f"home: {home.resolve()}" in result.stderr
    assert "signed with the CRMLEDGER_JWT_SECRET variable" in result.stderr


def test_on_the_embedded_default_it_starts_no_server_and_names_the_secret_file(
    embedded: dict[str, str | None], home: Path
) -> None:
    children = {p.pid for p in psutil.Process().children(recursive=True)}
    first = run(embedded, "--role", "customer_service", "--sub", "clerk-1")
    assert first.exit_code == 0, first.output
    secret_file = home.resolve() / "jwt-secret"
    assert f"signed with {secret_file} (created now" in first.stderr
    # Only the secret: no embedded PostgreSQL data, no broker address or pid file.
    assert [p.name for p in home.iterdir()] == ["jwt-secret"]
    assert {p.pid for p in psutil.Process().children(recursive=True)} <= children
    second = run(embedded, "--role", "auditor")
    assert second.exit_code == 0, second.output
    assert f"signed with {secret_file}" in second.stderr and "created now" not in second.stderr
    # Both signed with the file's secret: the one a service on this home uses.
    secret = secret_file.read_text().strip()
    for result in (first, second):
        jwt.decode(result.stdout.strip(), secret, algorithms=["HS256"])


def test_an_unknown_role_is_refused_with_the_list_of_roles(env: dict[str, str | None]) -> None:
    result = run(env, "--role", "auditor", "--role", "janitor")
    assert result.exit_code == 2 and result.stdout == ""
    assert "unknown roles: janitor;" in said(result)
    assert all(role in said(result) for role in ROLES)


@pytest.mark.parametrize(
    "ttl, max_hours, says",
    [
        ("43201", None, "at most 43200 seconds"),
        ("7200", "1", "at most 3600 seconds"),
        ("0", None, "positive"),
        ("-60", None, "positive"),
    ],
)
def test_a_lifetime_over_the_maximum_or_not_positive_is_refused(
    env: dict[str, str | None], ttl: str, max_hours: str | None, says: str
) -> None:
    result = run(
        {**env, "CRMLEDGER_JWT_MAX_LIFETIME_HOURS": max_hours}, "--role", "admin", "--ttl", ttl
    )
    assert result.exit_code == 2 and result.stdout == ""
    assert says in said(result)


def test_a_deployment_without_a_secret_is_refused_not_given_a_new_one(
    env: dict[str, str | None], home: Path
) -> None:
    result = run({**env, "CRMLEDGER_JWT_SECRET": None}, "--role", "admin")
    assert result.exit_code == 2 and result.stdout == ""
    assert "CRMLEDGER_JWT_SECRET is required" in said(result)
    assert not home.exists()


def test_with_only_a_public_key_there_is_nothing_to_sign_with(
    embedded: dict[str, str | None],
) -> None:
    public_key = "-----BEGIN PUBLIC KEY-----\nMFkw\n-----END PUBLIC KEY-----"
    result = run({**embedded, "CRMLEDGER_JWT_PUBLIC_KEY": public_key}, "--role", "admin")
    assert result.exit_code == 2 and "only a public key" in said(result)
