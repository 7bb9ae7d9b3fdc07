"""`crmledger report` against the known history of tests/projections/history.py."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from typer.testing import CliRunner

from crmledger.cli import app
from infra.wiring import bootstrap
from tests.projections import history
from tests.support import drop_schema, env_for, make_settings

APRIL = ["--from", "2026-04-01", "--to", "2026-05-01"]


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    settings = make_settings(home=tmp_path_factory.mktemp("home"))
    services = bootstrap(settings)
    history.build(services)
    yield {**env_for(settings), "COLUMNS": "200"}
    services.close()
    drop_schema(settings.database_schema)


def test_report_prints_a_table(env: dict[str, str]) -> None:
    result = CliRunner().invoke(app, ["report", "staff-performance", *APRIL], env=env)
    assert result.exit_code == 0, result.output
    assert "Inquiries answered and complaints resolved" in result.output
    agent1 = next(line for line in result.output.splitlines() if "agent-1" in line)
    assert [cell.strip() for cell in agent1.strip("│ ").split("│")] == [
        "agent-1",
        "3",
        "2",
        "8.0",
        "36.0",
        "50.0%",
    ]


def test_report_prints_csv_and_json(env: dict[str, str]) -> None:
    runner = CliRunner()
    as_csv = runner.invoke(
        app, ["report", "financial-summary", *APRIL, "--segment", "standard", "--format", "csv"],
        env=env,
    )  # fmt: skip
    assert as_csv.exit_code == 0, as_csv.output
    assert as_csv.output.splitlines() == [
        "period_start,period_end,segment,channel,store,currency,purchases,refunds,turnover,profit",
        "2026-04-01,2026-05-01,standard,store,central,USD,1,0,20.00,15.00",
    ]
    as_json = runner.invoke(app, ["report", "scheme-review", *APRIL, "--format", "json"], env=env)
    assert as_json.exit_code == 0, as_json.output
    rows = {r["kpi"]: r for r in json.loads(as_json.output)["rows"]}
    assert (rows["churn_rate"]["value"], rows["churn_rate"]["met"]) == (0.2, False)


@pytest.mark.parametrize(
    ("args", "says"),
    [
        (["report", "everything"], "no report is named"),
        (["report", "service-kpis", "--from", "April"], "not a date"),
        (["report", "service-kpis", "--from", "2026-05-01", "--to", "2026-04-01"], "before"),
        (["report", "service-kpis", "--segment", "platinum"], "segment must be one of"),
        (["report", "service-kpis", "--format", "xlsx"], "--format"),
    ],
)
def test_report_refuses_bad_input_with_exit_2(
    env: dict[str, str], args: list[str], says: str
) -> None:
    result = CliRunner().invoke(app, args, env=env)
    assert result.exit_code == 2
    assert says in result.output
