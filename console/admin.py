"""The admin pages' first part: the read models' status, and a rebuild of each with progress.

The status is `GET /v1/admin/projections`' own function (auditors read it too:
checking that the read models trail the ledger is part of an audit). A rebuild
is the one `POST /v1/admin/projections/{name}/rebuild` and `crmledger
projections rebuild` run, `ReadModels.rebuild`, in a background job
(console/jobs.py) fed the progress callback the command line's bar uses.

No table records when a read model was last rebuilt; the page shows the last
rebuild this API process ran (the job runner keeps finished jobs), and says
so when it knows of none.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse

from api.auth import Permission, Principal
from api.routers.admin import projections as projections_route
from console.jobs import Job, JobsBusy, job_page, jobs_of
from console.rendering import ConsoleRoute, flash, render
from console.staff import CheckedForm, Staff, permit, services_of
from domain.errors import NotFound
from infra.wiring import Services
from projections.catalog import READ_MODELS

router = APIRouter(prefix="/console/admin", route_class=ConsoleRoute, include_in_schema=False)

KIND = "rebuild"
# Parked positions a finished rebuild lists, as the API's rebuild answer does.
SHOWN_PARKED = 1000


def admin_tabs(user: Principal) -> list[tuple[str, str]]:
    """The admin pages this person may open: (address, label)."""
    tabs = []
    if user.may(Permission.READ_PROJECTIONS):
        tabs.append(("/console/admin", "Read models"))
    if user.may(Permission.OPERATE):
        tabs.append(("/console/admin/dead-letters", "Dead letters"))
    if user.may(Permission.READ_GUIDELINES):
        tabs.append(("/console/admin/guidelines", "Guidelines"))
    return tabs


@dataclass(frozen=True)
class Rebuilt:
    """What a rebuild did: the events replayed, and where it parked what it could not apply."""

    events: int
    parked: list[int]


def rebuilding(services: Services, name: str) -> Callable[[Job], Rebuilt]:
    """The work of one rebuild job: the API's rebuild, counting events as they are replayed."""

    def work(job: Job) -> Rebuilt:
        outcome = services.readmodels.rebuild(name, progress=job.add)
        return Rebuilt(outcome.events, outcome.positions())

    return work


@router.get("", name="console_admin")
def read_models(request: Request, user: Staff) -> Response:
    """Each read model's position, lag, parked count and last rebuild; a rebuild button each."""
    permit(user, Permission.READ_PROJECTIONS, Permission.OPERATE, Permission.WRITE_GUIDELINES)
    if not user.may(Permission.READ_PROJECTIONS):
        # Management sets guidelines but reads no projection: its admin page is the guidelines.
        return RedirectResponse("/console/admin/guidelines", status_code=303)
    services = services_of(request)
    runner = jobs_of(request.app)
    rows = [(s, runner.latest(KIND, s.name)) for s in projections_route(user, services)]
    return render(
        request,
        "admin.html",
        user,
        tabs=admin_tabs(user),
        rows=rows,
        may_rebuild=user.may(Permission.OPERATE),
    )


@router.post("/read-models/{name}/rebuild", name="console_admin_rebuild")
def rebuild(request: Request, user: Staff, name: str, form: CheckedForm) -> Response:
    """Start rebuilding one read model from the event store (a running rebuild of it is joined)."""
    permit(user, Permission.OPERATE)
    if name not in READ_MODELS:
        raise NotFound(f"no read model {name!r}; known: {', '.join(READ_MODELS)}")
    services = services_of(request)
    total = services.ledger.recorder.max_notification_id() or 0
    try:
        job = jobs_of(request.app).start(
            KIND, name, user.sub, total, rebuilding(services, name), f"read model {name}"
        )
    except JobsBusy as e:
        flash(request, f"The rebuild of {name} did not start: {e}.")
        return RedirectResponse("/console/admin", status_code=303)
    return RedirectResponse(f"/console/admin/rebuilds/{job.id}", status_code=303)


@router.get("/rebuilds/{job_id}", name="console_admin_rebuild_job")
def rebuild_page(request: Request, user: Staff, job_id: str) -> Response:
    """A rebuild's progress, then what it did; htmx polls the fragment every second."""
    permit(user, Permission.READ_PROJECTIONS)
    return job_page(
        request,
        user,
        job_id,
        kind=KIND,
        progress="admin_progress.html",
        page="admin_rebuild.html",
        tabs=admin_tabs(user),
        shown_parked=SHOWN_PARKED,
    )
