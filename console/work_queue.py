"""The customer-service work queue page: open cases, oldest first, against their guideline.

The queue is a read model (projections/work_queue.py), so a case recorded a
moment ago appears once the projector has applied it.
"""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import APIRouter, Request, Response

from api.auth import Permission
from console.rendering import ConsoleRoute, render
from console.staff import Staff, permit, services_of
from projections.guidelines import read_guidelines
from projections.work_queue import TARGET_KPI, open_cases

router = APIRouter(prefix="/console/work-queue", route_class=ConsoleRoute, include_in_schema=False)


@router.get("", name="console_work_queue")
def work_queue(request: Request, user: Staff) -> Response:
    """Open inquiries and complaints across accounts, oldest first, with their age."""
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
    return render(request, "work_queue.html", user, cases=cases)
