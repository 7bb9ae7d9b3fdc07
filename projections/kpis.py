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
from datetime import date, timedelta
from typing import Any, Literal

from psycopg import Connection
from psycopg.rows import dict_row

from projections.flows import BEFORE

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
),
active AS (
    -- Accounts active at each period's start: opened less ended before it, from
    -- the flows (projections/flows.py), not counted from every account.
    SELECT p.period_start, {split} AS grp, sum(f.opened - f.ended) AS active
    FROM periods p JOIN {rm}.kpi_account_flows f ON {active_before}
    WHERE true {filters}
    GROUP BY 1, 2
)
SELECT p.period_start, p.period_end, g.grp,
       coalesce(f.turnover, 0) AS turnover, coalesce(f.profit, 0) AS profit,
       coalesce(f.visits, 0) AS visits, coalesce(f.complaints, 0) AS complaints,
       c.mean AS complaint_resolution_hours_mean, c.p90 AS complaint_resolution_hours_p90,
       coalesce(f.inquiries, 0) AS inquiries,
       i.mean AS first_response_hours_mean, i.p90 AS first_response_hours_p90,
       coalesce(f.new_customers, 0) AS new_customers,
       coalesce(f.lost_customers, 0) AS lost_customers,
       coalesce(a.active, 0)::bigint AS active_at_start,
       f.feedback_sum, f.feedback_count
FROM periods p CROSS JOIN groups g
LEFT JOIN facts f ON f.period_start = p.period_start AND f.grp IS NOT DISTINCT FROM g.grp
LEFT JOIN active a ON a.period_start = p.period_start AND a.grp IS NOT DISTINCT FROM g.grp
LEFT JOIN times c ON c.period_start = p.period_start AND c.grp IS NOT DISTINCT FROM g.grp
                  AND c.kind = 'complaint'
LEFT JOIN times i ON i.period_start = p.period_start AND i.grp IS NOT DISTINCT FROM g.grp
                  AND i.kind = 'inquiry'
ORDER BY p.period_start, g.grp
"""

# The periods, listed here rather than generated in SQL: PostgreSQL guesses a
# generated series at 1,000 rows, and plans (and JIT-compiles) for that many.
PERIOD_ROWS = """
    SELECT * FROM unnest(%(period_starts)s::date[], %(period_ends)s::date[])
        AS p (period_start, period_end)
"""


def calendar_periods(start: date, end: date, period: Period) -> list[tuple[date, date]]:
    """Each calendar period meeting [start, end), as (its first day, its end).

    The first period's first day may lie before `start`; the last end is cut to
    `end`. A "range" is [start, end) itself.
    """
    if period == "range":
        return [(start, end)]
    first = {
        "day": start,
        "week": start - timedelta(days=start.weekday()),
        "month": start.replace(day=1),
        "quarter": start.replace(month=(start.month - 1) // 3 * 3 + 1, day=1),
    }[period]
    periods = []
    while first < end:
        if period in ("day", "week"):
            following = first + timedelta(days=1 if period == "day" else 7)
        else:
            index = first.year * 12 + first.month - 1 + (1 if period == "month" else 3)
            following = date(index // 12, index % 12 + 1, 1)
        periods.append((first, min(following, end)))
        first = following
    return periods


def service_kpis(conn: Connection, schema: str, scope: Scope) -> list[dict[str, Any]]:
    """Every KPI of the design for each period (and segment or channel, when split)."""
    split = scope.split or "NULL::text"
    filters, params = _filters(scope)
    groups = "SELECT NULL::text AS grp"
    if scope.split:
        # Every group with facts in the range or an account opened before its end.
        groups = (
            f"SELECT DISTINCT {split} AS grp FROM {{rm}}.daily_facts"
            f" WHERE day >= %(start)s AND day < %(end)s {filters}"
            f" UNION SELECT {split} FROM {{rm}}.kpi_account_flows"
            f" WHERE {BEFORE.format(before='%(end)s::date')} {filters}"
            f" GROUP BY 1 HAVING sum(opened) > 0"
        )
    bucket = "date_trunc(%(period)s, {})::date"
    if scope.period == "range":
        bucket = "%(start)s::date"  # one period, so every fact of the range falls in it
    sql = KPI_SQL.replace("{groups}", groups).format(
        rm=schema,
        periods=PERIOD_ROWS,
        bucket_day=bucket.format("day"),
        bucket_closed=bucket.format("closed_day"),
        split=split,
        filters=filters,
        active_before=BEFORE.format(before="greatest(p.period_start, %(start)s::date)"),
    )
    periods = calendar_periods(scope.start, scope.end, scope.period)
    params |= {
        "start": scope.start,
        "end": scope.end,
        "period": scope.period,
        "period_starts": [p for p, _ in periods],
        "period_ends": [e for _, e in periods],
    }
    with conn.cursor(row_factory=dict_row) as cur:
        rows = cur.execute(sql.encode(), params).fetchall()
    return [_finish(row, scope.split) for row in rows]


def _filters(scope: Scope) -> tuple[str, dict[str, Any]]:
    filters, params = "", {}
    for name in ("segment", "channel"):
        value = getattr(scope, name)
        if value is not None:
            filters += f" AND {name} = %({name})s"
            params[name] = value
    return filters, params


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
