"""The customer-service work queue page: open cases, oldest first, against their guideline;
then the accounts due for their periodic details review, oldest first.

Both are read models (projections/), so a case recorded or details confirmed a
moment ago show once the projector has applied them. The accounts due are the
`accounts-due-for-review` report's rows, run exactly as the API's report route
runs it (the same rule, the same default age, the reporting time zone), a page
of DUE_SHOWN at a time with the count of all: "Next page" carries the API's
cursor for the report (`due_cursor`), so a page starts where the last stopped.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any
from urllib.parse import urlencode
from zoneinfo import ZoneInfo

from fastapi import APIRouter, Query, Request, Response

from api.auth import Permission, Principal, report_permission
from api.views import MAX_CURSOR, decode_page_cursor, encode_page_cursor
from console.rendering import ConsoleRoute, render
from console.staff import Staff, permit, services_of
from infra.wiring import Services
from projections.guidelines import read_guidelines
from projections.report_queries import Page
from projections.reports import report_named
from projections.work_queue import TARGET_KPI, open_cases

router = APIRouter(prefix="/console/work-queue", route_class=ConsoleRoute, include_in_schema=False)

DUE_REPORT = "accounts-due-for-review"
# The page lists this many of the accounts due, oldest first; "Next page" goes on.
DUE_SHOWN = 100


@router.get("", name="console_work_queue")
def work_queue(
    request: Request,
    user: Staff,
    due_cursor: Annotated[str, Query(max_length=MAX_CURSOR)] = "",
) -> Response:
    """Open inquiries and complaints across accounts, oldest first, with their age; then the
    accounts due for their periodic details review (for the roles that read that report), a
    page at a time after `due_cursor`."""
    permit(user, Permission.RECORD_ACTIVITIES)
    services = services_of(request)
    with services.pool.connection() as conn:
        guidelines = read_guidelines(conn)
        rows = open_cases(conn, services.settings.readmodel_schema, datetime.now(UTC))
    cases = []
    for row in rows:
        guideline = guidelines.get(TARGET_KPI[row["kind"]])
        age = float(row["age_hours"])
        target = guideline.target if guideline else None
        cases.append(
            {
                **row,
                "age_hours": age,
                "target_hours": target,
                "over": target is not None and age > target,
            }
        )
    due = _due(services, user, due_cursor)
    return render(request, "work_queue.html", user, cases=cases, due=due)


def _due(services: Services, user: Principal, cursor: str) -> dict[str, Any] | None:
    # None for a role that may work the queue but not read the report (integration).
    if not user.may(report_permission(DUE_REPORT)):
        return None
    after = decode_page_cursor(DUE_REPORT, cursor) if cursor else None  # else a 400 page
    report = report_named(DUE_REPORT)
    scope, page = services.readmodels.report_page(report, Page(DUE_SHOWN, after))
    # The report's cutoff: details last updated or confirmed before this day are due.
    cutoff: date = scope.end - timedelta(days=scope.days)
    today = scope.end - timedelta(days=1)
    accounts = [
        {**row, "days": (today - _day(row["details_current_at"], scope.zone)).days}
        for row in page.rows
    ]
    next_page = None
    if page.next_key is not None:
        next_cursor = encode_page_cursor(DUE_REPORT, page.next_key)
        next_page = f"?{urlencode({'due_cursor': next_cursor})}#due"
    return {
        "accounts": accounts,
        "total": page.total,
        "days": scope.days,
        "cutoff": cutoff,
        "later": after is not None,  # not the first page: offer the way back to it
        "next_page": next_page,
    }


def _day(moment: datetime, zone: str) -> date:
    return moment.astimezone(ZoneInfo(zone)).date()
