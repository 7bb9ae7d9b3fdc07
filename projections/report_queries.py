"""The department reports' SQL: one function a report, over the read models only.

Each takes a connection, the read models' schema and a ReportScope, and
returns flat rows (one dict per row, keys as the report's columns). Which
report is which, who reads it and how its parameters are checked is
projections/reports.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from psycopg import Connection
from psycopg.rows import dict_row

from projections.flows import BEFORE, SPAN, span_params
from projections.kpis import STEPS, Scope, service_kpis

DEFAULT_REVIEW_DAYS = 365
Rows = list[dict[str, Any]]


@dataclass(frozen=True)
class ReportScope(Scope):
    """A report's parameters: the KPI scope, plus the review age and the time zone."""

    days: int = DEFAULT_REVIEW_DAYS
    zone: str = "UTC"


def _filters(scope: Scope, prefix: str = "") -> tuple[str, dict[str, Any]]:
    sql, params = "", {}
    for name in ("segment", "channel"):
        value = getattr(scope, name)
        if value is not None:
            sql += f" AND {prefix}{name} = %({name})s"
            params[name] = value
    return sql, params


def _query(conn: Connection, sql: str, schema: str, params: dict[str, Any]) -> Rows:
    with conn.cursor(row_factory=dict_row) as cur:
        return cur.execute(sql.replace("{rm}", schema).encode(), params).fetchall()


def _range(scope: Scope) -> dict[str, Any]:
    return {
        "start": scope.start,
        "end": scope.end,
        "period": scope.period,
        "step": STEPS[scope.period],
    }


# A periodic report's buckets: calendar periods cut to [start, end).
PERIOD_START = "greatest(date_trunc(%(period)s, {col})::date, %(start)s::date)"
PERIOD_END = "least((date_trunc(%(period)s, {col}) + %(step)s::interval)::date, %(end)s::date)"


def accounts_summary(conn: Connection, schema: str, scope: ReportScope) -> Rows:
    """Accounts opened and closed in the range and active at its end, per segment, plan, channel.

    From the directory's flows (projections/flows.py), which count each account
    where it is now: an account that moved since is counted where it is now.
    An account closed in the range counts as closed there.
    """
    filters, params = _filters(scope)
    sql = f"""
    WITH span AS (
        SELECT segment, service_plan, channel, sum(opened) AS opened, sum(closed) AS closed
        FROM {{rm}}.account_flows
        WHERE {SPAN} {filters}
        GROUP BY 1, 2, 3
    ),
    past AS (
        SELECT segment, service_plan, channel, sum(opened - ended) AS active_at_end
        FROM {{rm}}.account_flows
        WHERE {BEFORE.format(before="%(end)s::date")} {filters}
        GROUP BY 1, 2, 3
    )
    SELECT segment, service_plan, channel,
           coalesce(s.opened, 0)::bigint AS opened, coalesce(s.closed, 0)::bigint AS closed,
           coalesce(p.active_at_end, 0)::bigint AS active_at_end
    FROM span s FULL JOIN past p USING (segment, service_plan, channel)
    WHERE coalesce(s.opened, 0) + coalesce(s.closed, 0) + coalesce(p.active_at_end, 0) > 0
    ORDER BY segment, service_plan, channel
    """
    return _query(conn, sql, schema, params | span_params(scope.start, scope.end))


# The accounts due for review: open, unerased, details last current `days` or more before
# `end`, in the order of the accounts_due index. The first bound, a day wider than the exact
# test after it, lets the index give the rows in order (a day's length changes with DST).
DUE_COLUMNS = "account_id, external_ref, segment, channel, details_current_at"
DUE_FROM = """
    FROM {{rm}}.accounts
    WHERE status = 'open' AND NOT erased
      AND details_current_at < ((%(cutoff)s::date + 1)::timestamp AT TIME ZONE %(zone)s)
      AND (details_current_at AT TIME ZONE %(zone)s)::date < %(cutoff)s {filters}
"""
DUE_ORDER = " ORDER BY details_current_at, account_id"


@dataclass(frozen=True)
class Page:
    """A page of a paged report: at most `limit` rows, after the row whose key is `after`.

    A key is (details_current_at, account_id) for the accounts due: the order of
    the accounts_due index, so a page is read from the index where the last one
    stopped, never counted off from the start (no OFFSET).
    """

    limit: int
    after: tuple[datetime, UUID] | None = None


@dataclass(frozen=True)
class Paged:
    """One page of a paged report: its rows, the key of its last row when more follow
    (None on the last page) and how many rows the whole report has."""

    rows: Rows
    next_key: tuple[datetime, UUID] | None
    total: int


def _due(scope: ReportScope) -> tuple[str, dict[str, Any]]:
    filters, params = _filters(scope)
    cutoff = scope.end - timedelta(days=scope.days)
    return DUE_FROM.format(filters=filters), params | {"zone": scope.zone, "cutoff": cutoff}


def accounts_due_for_review(conn: Connection, schema: str, scope: ReportScope) -> Rows:
    """Open accounts whose details were last updated or confirmed `days` or more before `end`.

    Only what staff need to follow up; no personal field. Erased accounts are
    left out: they have no details left to confirm. Every one, stalest first
    (the downloads' export); accounts_due_page reads them a page at a time.
    """
    where, params = _due(scope)
    return _query(conn, f"SELECT {DUE_COLUMNS} {where} {DUE_ORDER}", schema, params)


def accounts_due_page(conn: Connection, schema: str, scope: ReportScope, page: Page) -> Paged:
    """One page of accounts_due_for_review's rows, in its order, and how many there are.

    A row more than the page is read, to know whether another page follows.
    The count reads the accounts_due index alone (its columns are in it), and
    is skipped when a first page holds them all.
    """
    where, params = _due(scope)
    keyset = ""
    fetch: dict[str, Any] = {"fetch": page.limit + 1}
    if page.after is not None:
        keyset = " AND (details_current_at, account_id) > (%(after_at)s, %(after_id)s)"
        fetch |= {"after_at": page.after[0], "after_id": page.after[1]}
    sql = f"SELECT {DUE_COLUMNS} {where}{keyset} {DUE_ORDER} LIMIT %(fetch)s"
    rows = _query(conn, sql, schema, params | fetch)
    more = len(rows) > page.limit
    del rows[page.limit :]
    if page.after is None and not more:
        total = len(rows)
    else:
        (count,) = _query(conn, f"SELECT count(*) AS total {where}", schema, params)
        total = count["total"]
    last = rows[-1] if more else None
    next_key = (last["details_current_at"], last["account_id"]) if last else None
    return Paged(rows, next_key, total)


def segment_analysis(conn: Connection, schema: str, scope: ReportScope) -> Rows:
    """Per period and segment: size at the start and end, new, lost, migrations, churn.

    A segment's size at a day is everything that flowed into it before that day
    (opened, moved in) less everything that flowed out (closed, moved out), so
    an account counts in the segment it was in at the time. Churn is the
    period's lost accounts over the size at its start.
    """
    filters, params = _filters(scope)
    start = PERIOD_START.format(col="p")
    sql = f"""
    WITH periods AS (
        SELECT {start} AS period_start,
               least((p + %(step)s::interval)::date, %(end)s::date) AS period_end
        FROM generate_series(date_trunc(%(period)s, %(start)s::date), %(end)s::date - 1,
                             %(step)s::interval) p
    ),
    segments AS (SELECT DISTINCT segment FROM {{rm}}.daily_facts WHERE day < %(end)s {filters}),
    before AS (
        SELECT segment, sum(new_customers - lost_customers + migrations_in - migrations_out) AS size
        FROM {{rm}}.daily_facts
        WHERE day < %(start)s {filters}
        GROUP BY segment
    ),
    flows AS (
        SELECT {PERIOD_START.format(col="day")} AS period_start, segment,
               sum(new_customers) AS new_customers, sum(lost_customers) AS lost_customers,
               sum(migrations_in) AS migrations_in, sum(migrations_out) AS migrations_out
        FROM {{rm}}.daily_facts
        WHERE day >= %(start)s AND day < %(end)s {filters}
        GROUP BY 1, 2
    ),
    grid AS (
        SELECT p.period_start, p.period_end, s.segment, coalesce(b.size, 0) AS before,
               coalesce(f.new_customers - f.lost_customers + f.migrations_in - f.migrations_out,
                        0) AS net,
               f.new_customers IS NOT NULL AS moved,
               coalesce(f.new_customers, 0) AS new_customers,
               coalesce(f.lost_customers, 0) AS lost_customers,
               coalesce(f.migrations_in, 0) AS migrations_in,
               coalesce(f.migrations_out, 0) AS migrations_out
        FROM periods p CROSS JOIN segments s
        LEFT JOIN before b ON b.segment = s.segment
        LEFT JOIN flows f ON f.period_start = p.period_start AND f.segment = s.segment
    ),
    sized AS (
        SELECT *, before + sum(net) OVER (PARTITION BY segment ORDER BY period_start) AS size_at_end
        FROM grid
    )
    SELECT period_start, period_end, segment,
           (size_at_end - net)::bigint AS size_at_start, size_at_end::bigint AS size_at_end,
           new_customers::bigint AS new_customers, lost_customers::bigint AS lost_customers,
           migrations_in::bigint AS migrations_in, migrations_out::bigint AS migrations_out
    FROM sized
    -- A segment with nobody in it and nothing moving says nothing for the period.
    WHERE size_at_end - net <> 0 OR size_at_end <> 0 OR moved
    ORDER BY period_start, segment
    """
    rows = _query(conn, sql, schema, params | _range(scope))
    for row in rows:
        new, lost, size = row["new_customers"], row["lost_customers"], row["size_at_start"]
        row["new_to_lost_ratio"] = new / lost if lost else None
        row["churn_rate"] = lost / size if size > 0 else None
    return rows


# The financial summary's columns after its period, as sales_daily and sales_monthly hold them.
SALES_COLUMNS = (
    "segment",
    "channel",
    "store",
    "currency",
    "purchases",
    "refunds",
    "turnover",
    "profit",
)


def financial_summary(conn: Connection, schema: str, scope: ReportScope) -> Rows:
    """Per period: purchases, refunds, turnover and profit by segment, channel, store, currency.

    Amounts stay in their own currency (no conversion); the channel is the one
    the account was opened through.
    """
    filters, params = _filters(scope)
    # Whole months of a range by month or quarter come from sales_monthly, a row
    # per month and key; the days of a cut month (or of day and week buckets) per day.
    sales = SALES_COLUMNS
    sql = f"""
    SELECT {PERIOD_START.format(col="day")} AS period_start,
           {PERIOD_END.format(col="day")} AS period_end,
           segment, channel, store, currency,
           sum(purchases)::bigint AS purchases, sum(refunds)::bigint AS refunds,
           sum(turnover) AS turnover, sum(profit) AS profit
    FROM (
        SELECT day, {", ".join(sales)} FROM {{rm}}.sales_daily
        WHERE day >= %(start)s AND day < %(end)s
          AND (day < %(months_from)s OR day >= %(months_to)s) {filters}
        UNION ALL
        SELECT month, {", ".join(sales)} FROM {{rm}}.sales_monthly
        WHERE month >= %(months_from)s AND month < %(months_to)s {filters}
    ) sales
    GROUP BY 1, 2, 3, 4, 5, 6
    ORDER BY 1, 3, 4, 5, 6
    """
    months = scope.period in ("month", "quarter")
    return _query(
        conn, sql, schema, params | _range(scope) | span_params(scope.start, scope.end, months)
    )


SERVICE_KPIS = (
    "inquiries",
    "first_response_hours_mean",
    "first_response_hours_p90",
    "complaints",
    "complaint_resolution_hours_mean",
    "complaint_resolution_hours_p90",
    "satisfaction",
)


def service_kpis_report(conn: Connection, schema: str, scope: ReportScope) -> Rows:
    """Per period (and segment or channel when split): the service KPIs of the design."""
    rows = []
    for kpis in service_kpis(conn, schema, scope):
        row = {
            "period_start": max(kpis["period_start"], scope.start),
            "period_end": kpis["period_end"],
        }
        if scope.split:
            row[scope.split] = kpis[scope.split]
        rows.append(row | {name: kpis[name] for name in SERVICE_KPIS})
    return rows


def staff_performance(conn: Connection, schema: str, scope: ReportScope) -> Rows:
    """Per staff member who answered inquiries or resolved complaints in the range.

    The staff member is the actor of the answer or resolution (the token
    subject); `satisfied_share` is the share of their resolved complaints whose
    customer was satisfied.
    """
    filters, params = _filters(scope)
    sql = f"""
    SELECT closed_by AS actor,
           count(*) FILTER (WHERE kind = 'inquiry') AS inquiries_answered,
           count(*) FILTER (WHERE kind = 'complaint') AS complaints_resolved,
           avg(hours) FILTER (WHERE kind = 'inquiry') AS first_response_hours_mean,
           avg(hours) FILTER (WHERE kind = 'complaint') AS complaint_resolution_hours_mean,
           (avg(CASE WHEN satisfied THEN 1 ELSE 0 END) FILTER (WHERE kind = 'complaint'))::float8
               AS satisfied_share
    FROM {{rm}}.cases
    WHERE closed_day >= %(start)s AND closed_day < %(end)s {filters}
    GROUP BY closed_by
    ORDER BY closed_by NULLS LAST
    """
    return _query(conn, sql, schema, params | _range(scope))


# ---- the registry ---------------------------------------------------------------------
