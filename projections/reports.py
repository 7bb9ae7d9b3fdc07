"""The department reports of the design: which there are, who reads them, their columns.

Every report (its SQL in projections/report_queries.py) reads the read models
only, takes a ReportScope checked here and returns flat rows (one dict per
row, keys as its columns), so the API and the command line can write any of
them as JSON, CSV or a table. Ranges are [start, end) in days
of the reporting time zone; a periodic report's first and last periods are
cut to the range, so each row says exactly which days it covers.

A report that can run to tens of thousands of rows (the accounts due for
review: one a due account) is also `paged`: read a Page at a time, by keyset
on its own order, DEFAULT_PAGE rows unless asked (at most MAX_PAGE), with the
count of all. Its `run` still gives every row, for the downloads that export it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from uuid import UUID
from zoneinfo import ZoneInfo

from psycopg import Connection

from domain.errors import InvalidCommand, NotFound
from domain.rules import CHANNELS
from projections.report_queries import (
    DEFAULT_REVIEW_DAYS,
    SALES_COLUMNS,
    SERVICE_KPIS,
    Page,
    Paged,
    ReportScope,
    Rows,
    accounts_due_for_review,
    accounts_due_page,
    accounts_summary,
    financial_summary,
    segment_analysis,
    service_kpis_report,
    staff_performance,
)
from projections.scheme_review import SCHEME_REVIEW_COLUMNS, scheme_review

PERIODS = ("day", "week", "month", "quarter")
SPLITS = ("segment", "channel")
DEFAULT_RANGE_DAYS = 90
# Guards against a range so long it is surely a typo (and a huge answer).
MAX_PERIODS = 3660
EARLIEST = date(1900, 1, 1)
LATEST = date(9000, 1, 1)
# A paged report's page: the rows a page holds unless asked, and the most it may hold. A
# page of 5,000 rows costs about what the slowest other report does (some 50 to 80 ms).
DEFAULT_PAGE = 500
MAX_PAGE = 5000


class UnknownReport(NotFound):
    """No report has this name."""

    code = "unknown_report"


@dataclass(frozen=True)
class Report:
    """A report: who reads it (the design's table), its query and its columns.

    `options` names the parameters only this report takes (`split`, `days`);
    `periodic` reports have a row per period; `paged` reads one Page of the
    rows (a report that has it is read a page at a time, `run` exports all).
    """

    name: str
    title: str
    departments: frozenset[str]
    run: Callable[[Connection, str, ReportScope], Rows]
    columns: tuple[str, ...]
    periodic: bool = False
    options: frozenset[str] = frozenset()
    paged: Callable[[Connection, str, ReportScope, Page], Paged] | None = None

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
            paged=accounts_due_page,
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
            (*PERIOD, *SALES_COLUMNS),
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
    """The rows of `report` for `scope`.

    `conn` is in a transaction; JIT compilation is off in it. PostgreSQL
    compiles a plan whose estimated cost passes jit_above_cost, which a report
    over a large read model soon does, and compiling took 30 to 700 ms where
    the query itself takes a few: reports are short queries, never worth it.
    """
    conn.execute("SET LOCAL jit = off")
    return report.run(conn, schema, scope)


class NotPaged(InvalidCommand):
    """A limit or a cursor given to a report that is not read a page at a time."""

    def __init__(self, report: Report) -> None:
        super().__init__(f"the {report.name} report is not paged: it takes no limit or cursor")


def run_page(
    conn: Connection, schema: str, report: Report, scope: ReportScope, page: Page
) -> Paged:
    """One page of a paged `report` for `scope` (JIT off, as run_report)."""
    if report.paged is None:
        raise NotPaged(report)
    conn.execute("SET LOCAL jit = off")
    return report.paged(conn, schema, scope, page)


def page_asked(
    report: Report, limit: int | None = None, after: tuple[datetime, UUID] | None = None
) -> Page:
    """The page of a paged `report` asked for: `limit` rows (DEFAULT_PAGE when None) after the
    row keyed `after` (from the first when None).

    NotPaged (an InvalidCommand) for a report that is not paged, InvalidCommand
    for a limit outside 1 to MAX_PAGE.
    """
    if report.paged is None:
        raise NotPaged(report)
    if limit is not None and not 1 <= limit <= MAX_PAGE:
        raise InvalidCommand(f"limit must be between 1 and {MAX_PAGE}; got {limit}")
    return Page(DEFAULT_PAGE if limit is None else limit, after)


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
