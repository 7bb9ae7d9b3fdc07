"""The report pages: the reports a person may read, each with its choices, table, charts
and downloads (CSV and Excel).

A report is found and the person checked before its parameters are read, as
the API's route does (api/routers/reports.py): the same permission of the roles
matrix (`report_permission`), the same parameters checked by the same function
(`ReadModels.report`), so the page shows what `/v1/reports/{name}` answers.
Figures are written by projections/report_format.py, as in the downloads and
the command line. A paged report (the accounts due for review) shows a page of
PAGE_ROWS at a time, as the API pages it (its cursor, `cursor`), with "Next
page"; its downloads, like every report's, hold every row.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlencode

from fastapi import APIRouter, Query, Request, Response

from api.auth import MATRIX, Principal, report_permission
from api.views import decode_page_cursor, encode_page_cursor
from console.rendering import ConsoleRoute, render
from console.report_charts import charts
from console.staff import Staff, permit, services_of
from domain.errors import InvalidCommand
from domain.rules import CHANNELS
from projections.report_format import is_numeric, kind_of, label, shown
from projections.report_output import readable_csv
from projections.report_queries import Page, ReportScope, Rows
from projections.report_workbook import XLSX, report_workbook
from projections.reports import PERIODS, REPORTS, SPLITS, Report, report_named

router = APIRouter(prefix="/console/reports", route_class=ConsoleRoute, include_in_schema=False)

# A page shows this many rows at most (a paged report: a page of them); the downloads hold all.
PAGE_ROWS = 500


@dataclass(frozen=True)
class Choice:
    """The report's parameters as the person gave them (text, so a wrong one can be shown)."""

    start: str = ""
    end: str = ""
    period: str = ""
    segment: str = ""
    channel: str = ""
    split: str = ""
    days: str = ""

    @classmethod
    def of(cls, query: Mapping[str, str]) -> Choice:
        """The choice in a page's query string (`from` and `to` as the API names them)."""
        names = {"start": "from", "end": "to"}
        return cls(**{f: query.get(names.get(f, f), "").strip() for f in cls.__dataclass_fields__})

    @classmethod
    def made(cls, report: Report, scope: ReportScope) -> Choice:
        """The choice that gives `scope` again, defaults filled in (for the form and links)."""
        return cls(
            start=scope.start.isoformat(),
            end=scope.end.isoformat(),
            period=scope.period if report.periodic else "",
            segment=scope.segment or "",
            channel=scope.channel or "",
            split=scope.split or "",
            days=str(scope.days) if "days" in report.options else "",
        )

    def filters(self, report: Report) -> dict[str, Any]:
        """ReadModels.report's parameters; InvalidCommand names one that is not readable."""
        return {
            "start": _day(self.start, "from"),
            "end": _day(self.end, "to"),
            "period": (self.period or None) if report.periodic else None,
            "segment": self.segment or None,
            "channel": self.channel or None,
            "split": self.split or None,
            "days": _whole(self.days, "days"),
        }

    def query(self) -> str:
        """The choice as a query string, empty parameters left out."""
        names = {"start": "from", "end": "to"}
        return urlencode({names.get(k, k): v for k, v in asdict(self).items() if v})


def _day(text: str, name: str) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise InvalidCommand(f"{name} must be a day as YYYY-MM-DD; got {text!r}") from None


def _whole(text: str, name: str) -> int | None:
    if not text:
        return None
    if not text.isdigit():
        raise InvalidCommand(f"{name} must be a whole number; got {text!r}")
    return int(text)


# Which field a refusal is about, from how report_scope words it.
_FIELD_OF = (
    ("from", "from"),
    ("to ", "to"),
    ("period", "period"),
    ("the range spans", "period"),
    ("segment", "segment"),
    ("channel", "channel"),
    ("split", "split"),
    ("days", "days"),
)


def field_of(problem: str) -> str | None:
    """The form field a refusal names (so it is marked invalid), or None."""
    if problem.endswith("cannot be split"):
        return "split"
    if problem.endswith("takes no days"):
        return "days"
    return next((field for start, field in _FIELD_OF if problem.startswith(start)), None)


def readable(user: Principal, name: str) -> Report:
    """The report called `name`, if `user` may read it: 404, then 403 (as the API)."""
    report = report_named(name)
    permit(user, report_permission(name))
    return report


def run(request: Request, report: Report, choice: Choice) -> tuple[ReportScope, Rows]:
    """The report for `choice`: its checked scope and rows (InvalidCommand when refused)."""
    return services_of(request).readmodels.report(report, **choice.filters(report))


@dataclass(frozen=True)
class Shown:
    """A report page's scope and rows (a paged report's page; every row of another report,
    whose table shows the first PAGE_ROWS), how many rows there are in all, and for a paged
    report the cursor of the page after (None on the last) and whether it is a later page."""

    scope: ReportScope
    rows: Rows
    total: int
    next_cursor: str | None = None
    later: bool = False


def shown_rows(request: Request, report: Report, choice: Choice) -> Shown:
    """The rows of a report page for `choice`: a paged report's page after the page's
    `cursor` (a 400 page for one the console did not give), else every row."""
    if report.paged is None:
        scope, rows = run(request, report, choice)
        return Shown(scope, rows, len(rows))
    cursor = request.query_params.get("cursor", "")
    after = decode_page_cursor(report.name, cursor) if cursor else None
    readmodels = services_of(request).readmodels
    scope, page = readmodels.report_page(report, Page(PAGE_ROWS, after), **choice.filters(report))
    key = page.next_key
    next_cursor = encode_page_cursor(report.name, key) if key else None
    return Shown(scope, page.rows, page.total, next_cursor, after is not None)


def readers(report: Report) -> str:
    """Who reads `report`, in words."""
    roles = sorted(MATRIX[report_permission(report.name)])
    return ", ".join(r.replace("_", " ") for r in roles)


@router.get("", name="console_reports")
def index(request: Request, user: Staff) -> Response:
    """The reports the signed-in person may read."""
    mine = [r for r in REPORTS.values() if user.may(report_permission(r.name))]
    listed = [{"report": r, "readers": readers(r)} for r in mine]
    return render(request, "reports.html", user, reports=listed)


@router.get("/{name}", name="console_report")
def report_page(request: Request, name: str, user: Staff) -> Response:
    """One report: the form of its choices, its charts and table, links to download it."""
    report = readable(user, name)
    services = services_of(request)
    zone = services.settings.timezone
    asked = Choice.of(request.query_params)
    context: dict[str, Any] = {
        "report": report,
        "readers": readers(report),
        "periods": PERIODS,
        "splits": SPLITS,
        "segments": sorted(services.settings.segments),
        "channels": sorted(CHANNELS),
        "zone": zone,
    }
    try:
        got = shown_rows(request, report, asked)
    except InvalidCommand as refused:
        problem = str(refused).rstrip(".")
        return render(
            request,
            "report.html",
            user,
            422,
            choice=asked,
            problem=problem,
            invalid=field_of(problem),
            **context,
        )
    scope, rows = got.scope, got.rows
    columns = report.columns_for(scope)
    made = Choice.made(report, scope)
    here = f"/console/reports/{report.name}?{made.query()}"
    return render(
        request,
        "report.html",
        user,
        choice=made,
        scope=scope,
        columns=[(c, label(c)) for c in columns],
        cells=table_cells(columns, rows[:PAGE_ROWS], zone),
        total=got.total,
        paged=report.paged is not None,
        first_page=here if got.later else None,
        next_page=f"{here}&{urlencode({'cursor': got.next_cursor})}" if got.next_cursor else None,
        charts=charts(report, scope, rows),
        verdict=verdict(rows),
        # A list of KPIs reads best as a card each on a phone; wider reports scroll.
        stacked=report.name == "scheme-review",
        download=f"/console/reports/{report.name}/download?{made.query()}",
        **context,
    )


def table_cells(columns: Sequence[str], rows: Rows, zone: str) -> list[list[dict[str, Any]]]:
    """The table's cells: each its text, whether it is a figure, and a link or a mark."""
    lines = []
    for row in rows:
        line = []
        for column in columns:
            cell: dict[str, Any] = {
                "text": shown(column, row, zone),
                "num": is_numeric(column, row),
            }
            if column == "account_id" and row.get(column):
                cell["href"] = f"/console/accounts/{row[column]}"
            if kind_of(column, row) == "met" and row.get(column) is not None:
                cell["mark"] = cell["text"]  # met or missed: words first, colour too
            line.append(cell)
        lines.append(line)
    return lines


def verdict(rows: Rows) -> dict[str, int] | None:
    """How many guidelines were met and missed (the scheme review); None for other reports."""
    judged = [row["met"] for row in rows if row.get("met") is not None]
    if not rows or "met" not in rows[0]:
        return None
    return {"met": sum(1 for m in judged if m), "missed": sum(1 for m in judged if not m)}


@router.get("/{name}/download", name="console_report_download")
def download(
    request: Request,
    name: str,
    user: Staff,
    format: Annotated[Literal["csv", "xlsx"], Query()] = "csv",
) -> Response:
    """The report as a CSV or an Excel file, for the same choices as its page."""
    report = readable(user, name)
    scope, rows = run(request, report, Choice.of(request.query_params))
    filename = f"{report.name}_{scope.start}_{scope.end}.{format}"
    if format == "csv":
        body: bytes | str = readable_csv(report, scope, rows)
        media = "text/csv; charset=utf-8"
    else:
        zone = services_of(request).settings.timezone
        body = report_workbook(report, scope, rows, zone, written_at=datetime.now(UTC))
        media = XLSX
    return Response(
        body,
        media_type=media,
        headers={
            "Content-Disposition": f'attachment; filename="{filename}"',
            # A download may name customers (accounts due for review): no shared cache keeps it.
            "Cache-Control": "no-store",
        },
    )
