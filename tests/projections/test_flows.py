"""The per-day and per-month sums (projections/flows.py) hold what a recount from the rows gives."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, timedelta
from typing import Any

import psycopg
import pytest

from infra.wiring import Services
from projections import store
from projections.flows import whole_months
from projections.kpis import calendar_periods
from tests.projections import history
from tests.support import own_ledger

# Each account where it is now: opened on its opening day, closed on its closing
# day, ended on the later of the two; per day and per month.
RECOUNT = """
SELECT g.grain, CASE g.grain WHEN 'day' THEN f.day ELSE date_trunc('month', f.day)::date END,
       {keys}, sum(f.opened), sum(f.closed), sum(f.ended)
FROM (
    SELECT opened_day AS day, {keys}, 1 AS opened, 0 AS closed, 0 AS ended FROM {rm}.{table}
    UNION ALL
    SELECT closed_day, {keys}, 0, 1, 0 FROM {rm}.{table} WHERE closed_day IS NOT NULL
    UNION ALL
    SELECT greatest(opened_day, closed_day), {keys}, 0, 0, 1
    FROM {rm}.{table} WHERE closed_day IS NOT NULL
) f CROSS JOIN (VALUES ('day'), ('month')) g (grain)
GROUP BY 1, 2, {positions}
"""
DIRECTORY_KEYS = ("segment", "service_plan", "channel")
KPI_KEYS = ("segment", "channel")


@pytest.fixture(scope="module")
def services() -> Iterator[Services]:
    with own_ledger() as services:
        history.build(services)
        yield services


def rows(services: Services, sql: str) -> set[tuple[Any, ...]]:
    with psycopg.connect(services.database_url) as conn:
        return set(conn.execute(sql.encode()).fetchall())


def flows(services: Services, table: str, keys: tuple[str, ...], counters: tuple[str, ...]) -> Any:
    """The table's rows but those whose sums all came to zero (every account moved off)."""
    rm = services.settings.readmodel_schema
    got = rows(services, f"SELECT grain, day, {', '.join(keys + counters)} FROM {rm}.{table}")
    return {r for r in got if any(r[-len(counters) :])}


def recount(services: Services, table: str, keys: tuple[str, ...], kpi: bool) -> set[Any]:
    rm = services.settings.readmodel_schema
    positions = ", ".join(str(3 + i) for i in range(len(keys)))
    sql = RECOUNT.format(rm=rm, table=table, keys=", ".join(keys), positions=positions)
    got = rows(services, sql)
    # kpi_account_flows keeps no `closed`: drop that column of the recount.
    return {(*r[:-3], r[-3], r[-1]) for r in got} if kpi else got


def check(services: Services) -> None:
    directory = flows(services, "account_flows", DIRECTORY_KEYS, ("opened", "closed", "ended"))
    assert directory == recount(services, "accounts", DIRECTORY_KEYS, kpi=False)
    kpis = flows(services, "kpi_account_flows", KPI_KEYS, ("opened", "ended"))
    assert kpis == recount(services, "kpi_accounts", KPI_KEYS, kpi=True)
    rm = services.settings.readmodel_schema
    keys = "segment, channel, store, currency"
    sums = "sum(purchases), sum(refunds), sum(turnover), sum(profit)"
    monthly = rows(
        services, f"SELECT month, {keys}, {sums} FROM {rm}.sales_monthly GROUP BY 1, 2, 3, 4, 5"
    )
    rolled = rows(
        services,
        f"SELECT date_trunc('month', day)::date, {keys}, {sums} FROM {rm}.sales_daily"
        " GROUP BY 1, 2, 3, 4, 5",
    )
    assert monthly == rolled and monthly


def test_the_flows_of_a_rebuild_are_a_recount_of_the_accounts(services: Services) -> None:
    check(services)


def test_batches_move_each_account_they_change(
    services: Services, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Three events a batch: closings, erasures and a segment change land in a
    # later batch than the account's opening, so its flows are moved, not made.
    monkeypatch.setattr(store, "REBUILD_CHUNK", 3)
    for name in ("directory", "kpis"):
        services.readmodels.rebuild(name)
    check(services)


def test_a_read_model_made_before_the_flows_gets_them_filled_at_start(
    services: Services,
) -> None:
    rm = services.settings.readmodel_schema
    with psycopg.connect(services.database_url, autocommit=True) as conn:
        for table in ("account_flows", "kpi_account_flows", "sales_monthly"):
            conn.execute(f"DROP TABLE {rm}.{table}".encode())
    services.readmodels.store.create()
    services.readmodels.store.create()  # and again, as every start does
    check(services)


@pytest.mark.parametrize("period", ["day", "week", "month", "quarter"])
@pytest.mark.parametrize(
    ("start", "end"),
    [
        (date(2026, 1, 1), date(2026, 1, 2)),
        (date(2025, 11, 17), date(2026, 3, 1)),
        (date(2024, 2, 29), date(2025, 3, 1)),
        (date(2026, 3, 31), date(2026, 4, 1)),
    ],
)
def test_the_calendar_periods_are_postgresql_s_series(
    services: Services, start: date, end: date, period: str
) -> None:
    steps = {"day": "1 day", "week": "1 week", "month": "1 month", "quarter": "3 months"}
    with psycopg.connect(services.database_url) as conn:
        series = conn.execute(
            "SELECT p::date, least((p + %(step)s::interval)::date, %(end)s::date)"
            " FROM generate_series(date_trunc(%(period)s, %(start)s::date), %(end)s::date - 1,"
            " %(step)s::interval) p",
            {"start": start, "end": end, "period": period, "step": steps[period]},
        ).fetchall()
    assert calendar_periods(start, end, period) == series  # type: ignore[arg-type]


def test_whole_months_are_the_months_inside_a_range() -> None:
    assert whole_months(date(2026, 1, 1), date(2026, 4, 1)) == (date(2026, 1, 1), date(2026, 4, 1))
    assert whole_months(date(2026, 1, 2), date(2026, 4, 15)) == (
        date(2026, 2, 1),
        date(2026, 4, 1),
    )
    assert whole_months(date(2025, 12, 31), date(2026, 1, 31)) == (
        date(2025, 12, 31),
        date(2025, 12, 31),
    )
    start = date(2026, 1, 10)
    assert whole_months(start, start + timedelta(days=20)) == (start, start)
