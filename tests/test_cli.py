"""The command line against the real test database."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator

import jwt
import pytest
from typer.testing import CliRunner

from crmledger.cli import app
from infra.wiring import Services, bootstrap
from tests.support import JWT_SECRET, drop_schema, env_for, make_settings


@pytest.fixture(scope="module")
def cli_env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[dict[str, str], Services]]:
    """Environment variables for a CLI run, and the services over the same ledger."""
    settings = make_settings(home=tmp_path_factory.mktemp("home"))
    services = bootstrap(settings)
    yield env_for(settings), services
    services.close()
    drop_schema(settings.database_schema)


def test_token_prints_a_token_signed_with_the_configured_secret(
    cli_env: tuple[dict[str, str], Services],
) -> None:
    env, _ = cli_env
    result = CliRunner().invoke(
        app, ["token", "--role", "auditor", "--role", "admin", "--sub", "audrey"], env=env
    )
    assert result.exit_code == 0, result.output
    # stdout holds the token alone; stderr says which home and secret signed it.
    claims = jwt.decode(result.stdout.strip(), JWT_SECRET, algorithms=["HS256"])
    assert claims["sub"] == "audrey" and claims["roles"] == ["auditor", "admin"]


def test_token_refuses_an_unknown_role(cli_env: tuple[dict[str, str], Services]) -> None:
    env, _ = cli_env
    result = CliRunner().invoke(app, ["token", "--role", "janitor"], env=env)
    assert result.exit_code == 2 and "unknown roles: janitor" in result.output


@pytest.mark.slow
def test_demo_then_erase_one_account(cli_env: tuple[dict[str, str], Services]) -> None:
    env, services = cli_env
    runner = CliRunner()
    demo = runner.invoke(app, ["demo", "--customers", "8", "--days", "60"], env=env)
    assert demo.exit_code == 0, demo.output
    assert "demo: 8 customers" in demo.output
    applied, sent = re.search(r"(\d+) of (\d+) inbound messages applied", demo.output).groups()
    assert applied == sent and int(sent) > 0, "some activity came in over Kafka"
    assert "Service KPIs per month" in demo.output
    status = services.readmodels.status()
    assert all(s["lag"] == 0 for s in status), "the KPI summary was printed from caught-up models"
    again = runner.invoke(app, ["demo", "--customers", "8", "--days", "60"], env=env)
    assert again.exit_code == 0 and "demo: 0 customers" in again.output

    (first,) = services.ledger.recorder.select_notifications(1, 1)
    account_id = str(first.originator_id)
    erased = runner.invoke(app, ["erase", account_id], env=env)
    assert erased.exit_code == 0 and "erased the personal data" in erased.output
    again = runner.invoke(app, ["erase", account_id], env=env)
    assert again.exit_code == 0 and "erased before" in again.output
    unknown = runner.invoke(app, ["erase", "00000000-0000-0000-0000-000000000000"], env=env)
    assert unknown.exit_code == 2 and "no account" in unknown.output


def test_python_dash_m_runs_the_command_line() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "crmledger", "--help"],
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, "COLUMNS": "120"},
    )
    assert result.returncode == 0 and "verify" in result.stdout
