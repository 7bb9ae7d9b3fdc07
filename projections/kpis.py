"""Service KPIs per period, computed from the KPI facts exactly as the design defines them.

A period is a day, an ISO week (from Monday), a month or a quarter of
`occurred_at` in the reporting time zone, or the whole range as one period
("range", for the scheme review). Means and p90s of response and
resolution times cover the cases closed in the period; p90 is PostgreSQL's
`percentile_cont(0.9)` (linear interpolation between the two nearest values).
Turnover and profit add amounts of every currency: the KPIs assume one
trading currency, the financial summary splits by currency.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Any, Literal

from psycopg import Connection
from psycopg.rows import dict_row

Period = Literal["day", "week", "month", "quarter", "range"]
Split = Literal["segment", "channel"]

# The length of one calendar period as a PostgreSQL interval. PostgreSQL's
# date_trunc knows 'quarter' but its interval input does not ('1 quarter' is an
# error), so the step is given, not spelt from the period's name.
STEPS = {"day": "1 day", "week": "1 week", "month": "1 month", "quarter": "3 months"}

KPI_NAMES = (
    "turnover",
    "profit",
    "visits",
    "complaints",
    "complaint_resolution_hours_mean",
    "complaint_resolution_hours_p90",
    "inquiries",
    "first_response_hours_mean",
    "first_response_hours_p90",
    "new_customers",
    "lost_customers",
    "new_to_lost_ratio",
    "churn_rate",
    "satisfaction",
)


@dataclass(frozen=True)
class Scope:
    """Which facts a report covers: a date range [start, end), a bucket size, filters."""

    start: date
    end: date
    period: Period = "month"
    segment: str | None = None
    channel: str | None = None
    split: Split | None = None


KPI_SQL = """
WITH periods AS ({periods}),
groups AS ({groups}),
facts AS (
    SELECT {bucket_day} AS period_start, {split} AS grp,
           sum(new_customers)::bigint AS new_customers,
           sum(lost_customers)::bigint AS lost_customers,
           sum(turnover) AS turnover, sum(profit) AS profit, sum(visits)::bigint AS visits,
           sum(inquiries)::bigint AS inquiries, sum(complaints)::bigint AS complaints,
           sum(feedback_sum)::bigint AS feedback_sum, sum(feedback_count)::bigint AS feedback_count
    FROM {rm}.daily_facts
    WHERE day >= %(start)s AND day < %(end)s {filters}
    GROUP BY 1, 2
),
times AS (
    SELECT {bucket_closed} AS period_start, {split} AS grp, kind,
           avg(hours) AS mean, percentile_cont(0.9) WITHIN GROUP (ORDER BY hours) AS p90
    FROM {rm}.cases
    WHERE closed_day >= %(start)s AND closed_day < %(end)s {filters}
    GROUP BY 1, 2, 3
)
SELECT p.period_start, p.period_end, g.grp,
       coalesce(f.turnover, 0) AS turnover, coalesce(f.profit, 0) AS profit,
       coalesce(f.visits, 0) AS visits, coalesce(f.complaints, 0) AS complaints,
       c.mean AS complaint_resolution_hours_mean, c.p90 AS complaint_resolution_hours_p90,
       coalesce(f.inquiries, 0) AS inquiries,
       i.mean AS first_response_hours_mean, i.p90 AS first_response_hours_p90,
       coalesce(f.new_customers, 0) AS new_customers,
       coalesce(f.lost_customers, 0) AS lost_customers,
       (SELECT count(*) FROM {rm}.kpi_accounts a
        WHERE a.opened_day < greatest(p.period_start, %(start)s::date)
          AND (a.closed_day IS NULL OR a.closed_day >= greatest(p.period_start, %(start)s::date))
          AND {split_a} IS NOT DISTINCT FROM g.grp {filters_a}) AS active_at_start,
       f.feedback_sum, f.feedback_count
FROM periods p CROSS JOIN groups g
LEFT JOIN facts f ON f.period_start = p.period_start AND f.grp IS NOT DISTINCT FROM g.grp
LEFT JOIN times c ON c.period_start = p.period_start AND c.grp IS NOT DISTINCT FROM g.grp
                  AND c.kind = 'complaint'
LEFT JOIN times i ON i.period_start = p.period_start AND i.grp IS NOT DISTINCT FROM g.grp
                  AND i.kind = 'inquiry'
ORDER BY p.period_start, g.grp
"""

CALENDAR_PERIODS = """
    SELECT p::date AS period_start,
           least((p + %(step)s::interval)::date, %(end)s::date) AS period_end
    FROM generate_series(date_trunc(%(period)s, %(start)s::date), %(end)s::date - 1,
                         %(step)s::interval) p
"""


def service_kpis(conn: Connection, schema: str, scope: Scope) -> list[dict[str, Any]]:
    """Every KPI of the design for each period (and segment or channel, when split)."""
    split = scope.split or "NULL::text"
    split_a = f"a.{scope.split}" if scope.split else "NULL::text"
    filters, filters_a, params = _filters(scope)
    groups = "SELECT NULL::text AS grp"
    if scope.split:
        groups = (
            f"SELECT DISTINCT {split} AS grp FROM {{rm}}.daily_facts"
            f" WHERE day >= %(start)s AND day < %(end)s {filters}"
            f" UNION SELECT DISTINCT {split} FROM {{rm}}.kpi_accounts"
            f" WHERE opened_day < %(end)s {filters}"
        )
    periods, bucket = CALENDAR_PERIODS, "date_trunc(%(period)s, {})::date"
    if scope.period == "range":
        # One period, so every fact of the range falls in it.
        periods = "SELECT %(start)s::date AS period_start, %(end)s::date AS period_end"
        bucket = "%(start)s::date"
    sql = KPI_SQL.replace("{groups}", groups).format(
        rm=schema,
        periods=periods,
        bucket_day=bucket.format("day"),
        bucket_closed=bucket.format("closed_day"),
        split=split,
        split_a=split_a,
        filters=filters,
        filters_a=filters_a,
    )
    params |= {
        "start": scope.start,
        "end": scope.end,
        "period": scope.period,
        "step": STEPS.get(scope.period),
    }
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(sql.encode(), params).fetchall()
    return [_finish(row, scope.split) for row in rows]


def _filters(scope: Scope) -> tuple[str, str, dict[str, Any]]:
    filters, filters_a, params = "", "", {}
    for name in ("segment", "channel"):
        value = getattr(scope, name)
        if value is not None:
            filters += f" AND {name} = %({name})s"
            filters_a += f" AND a.{name} = %({name})s"
            params[name] = value
    return filters, filters_a, params


def _finish(row: dict[str, Any], split: Split | None) -> dict[str, Any]:
    new, lost, active = row["new_customers"], row["lost_customers"], row["active_at_start"]
    feedback_count = row.pop("feedback_count") or 0
    feedback_sum = row.pop("feedback_sum") or 0
    grp = row.pop("grp")
    out: dict[str, Any] = {"period_start": row["period_start"], "period_end": row["period_end"]}
    if split:
        out[split] = grp
    out |= {k: row[k] for k in KPI_NAMES if k in row}
    out["new_to_lost_ratio"] = new / lost if lost else None
    out["churn_rate"] = lost / active if active else None
    out["satisfaction"] = feedback_sum / feedback_count if feedback_count else None
    for name in ("complaint_resolution_hours_p90", "first_response_hours_p90"):
        out[name] = float(out[name]) if out[name] is not None else None
    out["active_at_start"] = active
    return out
