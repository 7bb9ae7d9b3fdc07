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


DUE_30 = ["report", "accounts-due-for-review", "--to", "2026-05-01", "--days", "30"]


def refs_in(output: str) -> list[str]:
    """The external references of a due-for-review table, in order."""
    return [ref for line in output.splitlines() for ref in ("E", "F", "A") if f"│ {ref} " in line]


def test_report_prints_the_accounts_due_a_page_at_a_time(env: dict[str, str]) -> None:
    runner = CliRunner()
    first = runner.invoke(app, [*DUE_30, "--limit", "2"], env=env)
    assert first.exit_code == 0, first.output
    assert refs_in(first.output) == ["E", "F"]
    said = first.output.strip().splitlines()[-1]
    assert said.startswith("2 of 3 rows; next page: --cursor ")
    cursor = said.rsplit(" ", 1)[1]
    last = runner.invoke(app, [*DUE_30, "--limit", "2", "--cursor", cursor], env=env)
    assert last.exit_code == 0, last.output
    assert refs_in(last.output) == ["A"]
    assert last.output.strip().splitlines()[-1] == "1 of 3 rows; the last page"
    # JSON: the API's document, paging fields included; CSV: the page, the cursor on stderr.
    as_json = json.loads(runner.invoke(app, [*DUE_30, "--limit", "2", "--format", "json"],
                                       env=env).stdout)  # fmt: skip
    assert (as_json["total"], as_json["limit"], as_json["next_cursor"]) == (3, 2, cursor)
    as_csv = runner.invoke(app, [*DUE_30, "--limit", "2", "--format", "csv"], env=env)
    assert [line.split(",")[1] for line in as_csv.stdout.splitlines()[1:]] == ["E", "F"]
    assert f"--cursor {cursor}" in as_csv.stderr and cursor not in as_csv.stdout
    # --all: every row, as the export it is.
    every = runner.invoke(app, [*DUE_30, "--all", "--format", "csv"], env=env)
    assert [line.split(",")[1] for line in every.stdout.splitlines()[1:]] == ["E", "F", "A"]
    assert every.stderr == ""


@pytest.mark.parametrize(
    ("args", "says"),
    [
        ([*DUE_30, "--cursor", "not-a-cursor"], "cursor is not one this API gave"),
        ([*DUE_30, "--limit", "0"], "limit must be between 1 and 5000"),
        ([*DUE_30, "--limit", "5001"], "limit must be between 1 and 5000"),
        ([*DUE_30, "--all", "--limit", "10"], "--all prints every row"),
        (["report", "service-kpis", "--limit", "10"], "is not paged"),
        (["report", "service-kpis", "--cursor", "abc"], "is not paged"),
        (["report", "service-kpis", "--all"], "is not paged"),
    ],
)
def test_report_refuses_bad_paging_with_exit_2(
    env: dict[str, str], args: list[str], says: str
) -> None:
    result = CliRunner().invoke(app, args, env=env)
    assert result.exit_code == 2, result.output
    assert says in result.output
