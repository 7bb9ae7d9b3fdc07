"""Department reports: /v1/reports.

Each report is read by the departments of the design's report table and by
auditors (api/auth.py MATRIX). The report is found and the caller checked
before its parameters, so a caller who may not read it learns nothing more.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Query, Response

from api.auth import MATRIX, CurrentUser, Forbidden, report_permission
from api.deps import ServicesDep
from api.params import Day
from api.report_schemas import ReportInfoOut, ReportListOut, ReportOut
from projections.report_output import csv_text, report_document
from projections.reports import REPORTS, Report, report_named

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
                options=sorted(r.options),
            )
            for r in REPORTS.values()
            if user.may(report_permission(r.name))
        ]
    )


@router.get(
    "/{name}",
    response_model=ReportOut,
    responses={200: {"content": {CSV: {"schema": {"type": "string"}}}}},
)
def read_report(
    report: Readable,
    services: ServicesDep,
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
    format: Literal["json", "csv"] = "json",
) -> Any:
    """One department report for a date range, as JSON or CSV (`format=csv`)."""
    scope, rows = services.readmodels.report(
        report,
        start=start,
        end=end,
        period=period,
        segment=segment,
        channel=channel,
        split=split,
        days=days,
    )
    if format == "csv":
        filename = f"{report.name}_{scope.start}_{scope.end}.csv"
        return Response(
            csv_text(report.columns_for(scope), rows),
            media_type=CSV,
            headers={"Content-Disposition": f'attachment; filename="{filename}"'},
        )
    return report_document(report, scope, rows)
