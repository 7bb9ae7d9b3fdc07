"""`crmledger token`: issuer and audience when configured, a bounded lifetime."""

from __future__ import annotations

from collections.abc import Iterator

import jwt
import pytest
from typer.testing import CliRunner

from crmledger.cli import app
from tests.support import JWT_SECRET, drop_schema, env_for, make_settings


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    """CLI environment of a ledger with an issuer and an audience configured."""
    settings = make_settings(home=tmp_path_factory.mktemp("home"))
    yield {
        **env_for(settings),
        "CRMLEDGER_JWT_ISSUER": "https://id.example.com",
        "CRMLEDGER_JWT_AUDIENCE": "crmledger",
    }
    drop_schema(settings.database_schema)


def test_a_token_carries_the_configured_issuer_and_audience(env: dict[str, str]) -> None:
    result = CliRunner().invoke(app, ["token", "--role", "auditor", "--ttl", "3600"], env=env)
    assert result.exit_code == 0, result.output
    claims = jwt.decode(
        result.output.strip(),
        JWT_SECRET,
        algorithms=["HS256"],
        issuer="https://id.example.com",
        audience="crmledger",
    )
    assert claims["exp"] - claims["iat"] == 3600


@pytest.mark.parametrize(
    "ttl, max_hours, says",
    [
        ("43201", None, "at most"),
        ("7200", "1", "at most"),
        ("0", None, "positive"),
        ("-60", None, "positive"),
    ],
)
def test_a_lifetime_over_the_maximum_or_not_positive_is_refused(
    env: dict[str, str], ttl: str, max_hours: str | None, says: str
) -> None:
    run_env = {**env, "CRMLEDGER_JWT_MAX_LIFETIME_HOURS": max_hours} if max_hours else env
    result = CliRunner().invoke(app, ["token", "--role", "admin", "--ttl", ttl], env=run_env)
    assert result.exit_code == 2 and says in result.output
