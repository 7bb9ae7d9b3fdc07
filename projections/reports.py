"""The department reports of the design: their queries, who reads them, and their columns.

Every report reads the read models only, takes a ReportScope and returns flat
rows (one dict per row, keys as its columns), so the API and the command line
can write any of them as JSON, CSV or a table. Ranges are [start, end) in days
of the reporting time zone; a periodic report's first and last periods are
cut to the range, so each row says exactly which days it covers.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from psycopg import Connection
from psycopg.rows import dict_row

from domain.errors import InvalidCommand, NotFound
from domain.rules import CHANNELS
from projections.kpis import STEPS, Scope, service_kpis
from projections.scheme_review import SCHEME_REVIEW_COLUMNS, scheme_review

PERIODS = ("day", "week", "month", "quarter")
SPLITS = ("segment", "channel")
DEFAULT_RANGE_DAYS = 90
DEFAULT_REVIEW_DAYS = 365
# Guards against a range so long it is surely a typo (and a huge answer).
MAX_PERIODS = 3660
EARLIEST = date(1900, 1, 1)
LATEST = date(9000, 1, 1)


@dataclass(frozen=True)
class ReportScope(Scope):
    """A report's parameters: the KPI scope, plus the review age and the time zone."""

    days: int = DEFAULT_REVIEW_DAYS
    zone: str = "UTC"


Rows = list[dict[str, Any]]


class UnknownReport(NotFound):
    """No report has this name."""

    code = "unknown_report"


# ---- the queries -----------------------------------------------------------------


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

    From the directory, which holds each account's current segment and plan:
    an account that moved since is counted where it is now.
    """
    filters, params = _filters(scope)
    sql = f"""
    SELECT segment, service_plan, channel, opened, closed, active_at_end FROM (
        SELECT segment, service_plan, channel,
               count(*) FILTER (WHERE opened_day >= %(start)s) AS opened,
               count(*) FILTER (WHERE closed_day >= %(start)s AND closed_day < %(end)s) AS closed,
               count(*) FILTER (WHERE closed_day IS NULL OR closed_day >= %(end)s) AS active_at_end
        FROM {{rm}}.accounts
        WHERE opened_day < %(end)s {filters}
        GROUP BY segment, service_plan, channel
    ) s
    WHERE opened + closed + active_at_end > 0
    ORDER BY segment, service_plan, channel
    """
    return _query(conn, sql, schema, params | _range(scope))


def accounts_due_for_review(conn: Connection, schema: str, scope: ReportScope) -> Rows:
    """Open accounts whose details were last updated or confirmed `days` or more before `end`.

    Only what staff need to follow up; no personal field. Erased accounts are
    left out: they have no details left to confirm.
    """
    filters, params = _filters(scope)
    sql = f"""
    SELECT account_id, external_ref, segment, channel, details_current_at
    FROM {{rm}}.accounts
    WHERE status = 'open' AND NOT erased
      AND (details_current_at AT TIME ZONE %(zone)s)::date < %(cutoff)s {filters}
    ORDER BY details_current_at, account_id
    """
    cutoff = scope.end - timedelta(days=scope.days)
    return _query(conn, sql, schema, params | {"zone": scope.zone, "cutoff": cutoff})


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


def financial_summary(conn: Connection, schema: str, scope: ReportScope) -> Rows:
    """Per period: purchases, refunds, turnover and profit by segment, channel, store, currency.

    Amounts stay in their own currency (no conversion); the channel is the one
    the account was opened through.
    """
    filters, params = _filters(scope)
    sql = f"""
    SELECT {PERIOD_START.format(col="day")} AS period_start,
           {PERIOD_END.format(col="day")} AS period_end,
           segment, channel, store, currency,
           sum(purchases)::bigint AS purchases, sum(refunds)::bigint AS refunds,
           sum(turnover) AS turnover, sum(profit) AS profit
    FROM {{rm}}.sales_daily
    WHERE day >= %(start)s AND day < %(end)s {filters}
    GROUP BY 1, 2, 3, 4, 5, 6
    ORDER BY 1, 3, 4, 5, 6
    """
    return _query(conn, sql, schema, params | _range(scope))


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


@dataclass(frozen=True)
class Report:
    """A report: who reads it (the design's table), its query and its columns.

    `options` names the parameters only this report takes (`split`, `days`);
    `periodic` reports have a row per period.
    """

    name: str
    title: str
    departments: frozenset[str]
    run: Callable[[Connection, str, ReportScope], Rows]
    columns: tuple[str, ...]
    periodic: bool = False
    options: frozenset[str] = frozenset()

    def columns_for(self, scope: ReportScope) -> tuple[str, ...]:
        """The columns of this report's rows for `scope` (a split adds its own)."""
        if self.periodic and scope.split:
            return (*self.columns[:2], scope.split, *self.columns[2:])
        return self.columns


PERIOD = ("period_start", "period_end")

REPORTS: dict[str, Report] = {
    r.name: r
    for r in (
        Report(
            "accounts-summary",
            "Accounts opened, closed and active by segment, plan and channel",
            frozenset({"customer_service", "marketing", "management"}),
            accounts_summary,
            ("segment", "service_plan", "channel", "opened", "closed", "active_at_end"),
        ),
        Report(
            "accounts-due-for-review",
            "Open accounts whose details were not updated or confirmed for N days",
            frozenset({"customer_service"}),
            accounts_due_for_review,
            ("account_id", "external_ref", "segment", "channel", "details_current_at"),
            options=frozenset({"days"}),
        ),
        Report(
            "segment-analysis",
            "Segment sizes, migrations, churn, new against lost, per period",
            frozenset({"marketing", "management"}),
            segment_analysis,
            (
                *PERIOD,
                "segment",
                "size_at_start",
                "size_at_end",
                "new_customers",
                "lost_customers",
                "migrations_in",
                "migrations_out",
                "new_to_lost_ratio",
                "churn_rate",
            ),
            periodic=True,
        ),
        Report(
            "financial-summary",
            "Turnover and profit by segment, channel, store and currency, per period",
            frozenset({"finance", "management"}),
            financial_summary,
            (
                *PERIOD,
                "segment",
                "channel",
                "store",
                "currency",
                "purchases",
                "refunds",
                "turnover",
                "profit",
            ),
            periodic=True,
        ),
        Report(
            "service-kpis",
            "Inquiries, complaints, response and resolution times, satisfaction, per period",
            frozenset({"customer_service", "management"}),
            service_kpis_report,
            (*PERIOD, *SERVICE_KPIS),
            periodic=True,
            options=frozenset({"split"}),
        ),
        Report(
            "scheme-review",
            "Every KPI of the range against its guideline and the previous period",
            frozenset({"management"}),
            scheme_review,
            SCHEME_REVIEW_COLUMNS,
        ),
        Report(
            "staff-performance",
            "Inquiries answered and complaints resolved per staff member",
            frozenset({"management"}),
            staff_performance,
            (
                "actor",
                "inquiries_answered",
                "complaints_resolved",
                "first_response_hours_mean",
                "complaint_resolution_hours_mean",
                "satisfied_share",
            ),
        ),
    )
}


def report_named(name: str) -> Report:
    """The report called `name`; UnknownReport (a NotFound) when there is none."""
    try:
        return REPORTS[name]
    except KeyError:
        raise UnknownReport(
            f"no report is named {name!r}; the reports are {', '.join(REPORTS)}"
        ) from None


def run_report(conn: Connection, schema: str, report: Report, scope: ReportScope) -> Rows:
    """The rows of `report` for `scope`."""
    return report.run(conn, schema, scope)


# ---- parameters -------------------------------------------------------------------------


def report_scope(
    report: Report,
    *,
    start: date | None = None,
    end: date | None = None,
    period: str | None = None,
    segment: str | None = None,
    channel: str | None = None,
    split: str | None = None,
    days: int | None = None,
    segments: Iterable[str],
    zone: str = "UTC",
    today: date | None = None,
) -> ReportScope:
    """Check a report's parameters and fill in the defaults; InvalidCommand names what is wrong.

    Without dates the range is the last 90 days up to and including today (in
    `zone`); with one date, 90 days from or up to it. `end` is exclusive.
    """
    period = period or "month"
    if period not in PERIODS:
        raise InvalidCommand(f"period must be one of {', '.join(PERIODS)}; got {period!r}")
    if segment is not None and segment not in set(segments):
        raise InvalidCommand(
            f"segment must be one of {', '.join(sorted(segments))}; got {segment!r}"
        )
    if channel is not None and channel not in CHANNELS:
        raise InvalidCommand(
            f"channel must be one of {', '.join(sorted(CHANNELS))}; got {channel!r}"
        )
    if split is not None:
        if "split" not in report.options:
            raise InvalidCommand(f"the {report.name} report cannot be split")
        if split not in SPLITS:
            raise InvalidCommand(f"split must be one of {', '.join(SPLITS)}; got {split!r}")
    if days is not None:
        if "days" not in report.options:
            raise InvalidCommand(f"the {report.name} report takes no days")
        if not 1 <= days <= 36500:
            raise InvalidCommand("days must be between 1 and 36500")
    start, end = _dates(start, end, zone, today)
    if _periods(start, end, period) > MAX_PERIODS:
        raise InvalidCommand(
            f"the range spans more than {MAX_PERIODS} periods of a {period}: "
            "choose a longer period or a shorter range"
        )
    return ReportScope(
        start=start,
        end=end,
        period=period,  # type: ignore[arg-type]  # checked against PERIODS above
        segment=segment,
        channel=channel,
        split=split,  # type: ignore[arg-type]  # checked against SPLITS above
        days=days or DEFAULT_REVIEW_DAYS,
        zone=zone,
    )


def _dates(
    start: date | None, end: date | None, zone: str, today: date | None
) -> tuple[date, date]:
    span = timedelta(days=DEFAULT_RANGE_DAYS)
    if start is None and end is None:
        end = (today or datetime.now(ZoneInfo(zone)).date()) + timedelta(days=1)
    if start is not None and not EARLIEST <= start < LATEST:
        raise InvalidCommand(f"from must lie between {EARLIEST} and {LATEST}")
    if end is not None and not EARLIEST < end <= LATEST:
        raise InvalidCommand(f"to must lie between {EARLIEST} and {LATEST}")
    if start is None:
        assert end is not None
        start = max(end - span, EARLIEST)
    if end is None:
        end = min(start + span, LATEST)
    if start >= end:
        raise InvalidCommand(f"from ({start}) must be before to ({end}); to is not included")
    return start, end


def _periods(start: date, end: date, period: str) -> int:
    # Roughly how many periods the range covers, on the generous side.
    days = (end - start).days
    return {"day": days, "week": days // 7, "month": days // 28, "quarter": days // 89}[period]
