"""Department reports: /v1/reports.

Each report is read by the departments of the design's report table and by
auditors (api/auth.py MATRIX). The report is found and the caller checked
before its parameters, so a caller who may not read it learns nothing more.

A paged report (accounts-due-for-review) answers a page at a time, JSON and
CSV alike: `limit` rows (default 500, at most 5,000) after `cursor`, oldest
first; the JSON carries `limit`, `total` and `next_cursor`, and both formats
name the next page in a `Link: <...>; rel="next"` header (none on the last).
The other reports answer whole and take no `limit` or `cursor` (422).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response

from api.auth import MATRIX, CurrentUser, Forbidden, report_permission
from api.deps import ServicesDep
from api.params import Day
from api.report_schemas import ReportInfoOut, ReportListOut, ReportOut
from api.views import MAX_CURSOR, decode_page_cursor, encode_page_cursor
from projections.report_output import csv_text, report_document
from projections.report_queries import ReportScope
from projections.reports import MAX_PAGE, REPORTS, Report, page_asked, report_named

router = APIRouter(prefix="/v1/reports", tags=["reports"])


async def readable_report(name: str, user: CurrentUser) -> Report:
    """The report named in the path, if the caller may read it: 404, then 403."""
    report = report_named(name)
    permission = report_permission(name)
    if not user.may(permission):
        allowed = ", ".join(sorted(MATRIX[permission]))
        raise Forbidden(f"the {name} report needs one of the roles: {allowed}")
    return report


Readable = Annotated[Report, Depends(readable_report)]
CSV = "text/csv"
# The parameters a paged report takes besides its options (the list names them).
PAGING = frozenset({"limit", "cursor"})


@router.get("", response_model=ReportListOut)
def list_reports(user: CurrentUser) -> ReportListOut:
    """The reports the caller may read, with their columns and parameters."""
    return ReportListOut(
        reports=[
            ReportInfoOut(
                name=r.name,
                title=r.title,
                departments=sorted(r.departments),
                columns=list(r.columns),
                periodic=r.periodic,
                options=sorted(r.options | PAGING if r.paged else r.options),
            )
            for r in REPORTS.values()
            if user.may(report_permission(r.name))
        ]
    )


@router.get(
    "/{name}",
    response_model=ReportOut,
    # The paging fields are the paged report's only: every other report answers as before.
    response_model_exclude_unset=True,
    responses={200: {"content": {CSV: {"schema": {"type": "string"}}}}},
)
def read_report(
    report: Readable,
    services: ServicesDep,
    request: Request,
    response: Response,
    start: Annotated[
        Day | None, Query(alias="from", description="first day; default 90 days before to")
    ] = None,
    end: Annotated[
        Day | None, Query(alias="to", description="day after the last; default tomorrow")
    ] = None,
    period: Literal["day", "week", "month", "quarter"] = "month",
    segment: Annotated[str | None, Query(max_length=100)] = None,
    channel: Annotated[str | None, Query(max_length=100)] = None,
    split: Annotated[
        Literal["segment", "channel"] | None, Query(description="service-kpis only")
    ] = None,
    days: Annotated[
        int | None, Query(description="accounts-due-for-review only; default 365")
    ] = None,
    limit: Annotated[
        int | None,
        Query(ge=1, le=MAX_PAGE, description="accounts-due-for-review only: rows a page; 500"),
    ] = None,
    cursor: Annotated[
        str | None,
        Query(
            max_length=MAX_CURSOR,
            description="accounts-due-for-review only: the `next_cursor` of the page before",
        ),
    ] = None,
    format: Literal["json", "csv"] = "json",
) -> Any:
    """One department report for a date range, as JSON or CSV (`format=csv`).

    accounts-due-for-review is paged, oldest first (details_current_at, then
    account id): `limit` rows (default 500, at most 5,000) after `cursor`,
    read by keyset from where the page before stopped. The JSON adds `limit`,
    `total` (every account due) and `next_cursor` (null on the last page). CSV
    is the same page, not the whole list: one request's cost stays bounded
    whatever the ledger's size, and both formats mean the same by the same
    parameters; the next page's address is in a `Link: <...>; rel="next"`
    header (absent on the last page), in both formats. A cursor this API did
    not give for this report is a 400. The whole list is an export: the
    console's CSV and Excel downloads, or `crmledger report --all`.
    """
    filters: dict[str, Any] = {
        "start": start,
        "end": end,
        "period": period,
        "segment": segment,
        "channel": channel,
        "split": split,
        "days": days,
    }
    if report.paged is None and limit is None and cursor is None:
        scope, rows = services.readmodels.report(report, **filters)
        if format == "csv":
            return _csv(report, csv_text(report.columns_for(scope), rows), scope)
        return report_document(report, scope, rows)
    # A report that is not paged refuses the limit and cursor (422) before reading either.
    after = decode_page_cursor(report.name, cursor) if cursor and report.paged else None
    page = page_asked(report, limit, after)
    scope, paged = services.readmodels.report_page(report, page, **filters)
    next_cursor = encode_page_cursor(report.name, paged.next_key) if paged.next_key else None
    headers = {"Link": _next_link(request, next_cursor)} if next_cursor else {}
    if format == "csv":
        return _csv(report, csv_text(report.columns_for(scope), paged.rows), scope, headers)
    response.headers.update(headers)
    return report_document(report, scope, paged.rows) | {
        "limit": page.limit,
        "total": paged.total,
        "next_cursor": next_cursor,
    }


def _csv(
    report: Report, text: str, scope: ReportScope, headers: dict[str, str] | None = None
) -> Response:
    filename = f"{report.name}_{scope.start}_{scope.end}.csv"
    disposition = {"Content-Disposition": f'attachment; filename="{filename}"'}
    return Response(text, media_type=CSV, headers=disposition | (headers or {}))


def _next_link(request: Request, cursor: str) -> str:
    """The Link header naming the next page: this request's path and query, the cursor moved
    on (a reference relative to the request, so a proxy in front changes nothing)."""
    query = request.url.include_query_params(cursor=cursor).query
    return f'<{request.url.path}?{query}>; rel="next"'
