"""The admin pages' guidelines: every KPI's target, edited in a form.

Reading and saving are `GET` and `PUT /v1/guidelines`' own functions: the form
becomes the PUT's body (`GuidelinesIn`, so the same validation), and the
route's function stores it (`set_guidelines`, one transaction). Roles that read
guidelines see the table; management and admins (who set them) get the form.

The API has no If-Match on guidelines: a PUT sets the KPIs it names and leaves
the others. So the form sends only the KPIs the person changed against what
the page showed them (each row carries what it showed), and two people
editing different KPIs at the same time do not undo each other's change.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import ValidationError
from starlette.datastructures import FormData

from api.auth import Permission, Principal
from api.report_schemas import GuidelineOut, GuidelinesIn
from api.routers.guidelines import get_guidelines, put_guidelines
from console.admin import admin_tabs
from console.rendering import ConsoleRoute, flash, render, status_of
from console.staff import CheckedForm, Staff, permit, services_of
from domain.errors import LedgerError
from projections.guidelines import COMPARISONS, DEFAULTS
from projections.kpis import KPI_NAMES

router = APIRouter(
    prefix="/console/admin/guidelines", route_class=ConsoleRoute, include_in_schema=False
)


def target_text(target: float | None) -> str:
    """A target as the form shows it: 24, not 24.0; 0.05 as it is."""
    if target is None:
        return ""
    return str(int(target)) if target.is_integer() and abs(target) < 1e15 else repr(target)


def shown(current: dict[str, GuidelineOut], kpi: str) -> str:
    """What a row showed, `comparison|target`: a change is a difference from it."""
    g = current.get(kpi)
    return f"{g.comparison}|{target_text(g.target)}" if g else "|"


def changes_of(form: FormData) -> tuple[dict[str, Any], dict[str, str]]:
    """The PUT body of what the person changed, and the messages of rows that cannot be sent."""
    body: dict[str, Any] = {}
    errors: dict[str, str] = {}
    for kpi in KPI_NAMES:
        comparison = str(form.get(f"{kpi}-comparison") or "").strip()
        target = str(form.get(f"{kpi}-target") or "").strip()[:100]
        if form.get(f"{kpi}-reset") == "yes":
            body[kpi] = None  # null: back to the default, as the API has it
        elif f"{comparison}|{target}" == str(form.get(f"{kpi}-was") or "|"):
            continue
        elif not comparison and not target:
            body[kpi] = None  # emptied: no target (only KPIs without a default offer that)
        elif not comparison:
            errors[f"{kpi}-comparison"] = "choose at least or at most"
        else:
            body[kpi] = {"comparison": comparison, "target": target}
    return body, errors


def _page(request: Request, user: Principal, status: int = 200, **context: Any) -> Response:
    current = get_guidelines(user, services_of(request)).root
    values = context.pop("values", None) or {
        **{f"{k}-comparison": g.comparison for k, g in current.items()},
        **{f"{k}-target": target_text(g.target) for k, g in current.items()},
    }
    return render(
        request,
        "admin_guidelines.html",
        user,
        status,
        tabs=admin_tabs(user),
        kpis=KPI_NAMES,
        current=current,
        defaults=DEFAULTS,
        was={kpi: shown(current, kpi) for kpi in KPI_NAMES},
        comparisons=COMPARISONS,
        may_set=user.may(Permission.WRITE_GUIDELINES),
        values=values,
        errors=context.pop("errors", {}),
        target_text=target_text,
    )


@router.get("", name="console_admin_guidelines")
def guidelines(request: Request, user: Staff) -> Response:
    """Every KPI's target, set or default; a form for the roles that set them."""
    permit(user, Permission.READ_GUIDELINES)
    return _page(request, user)


@router.post("", name="console_admin_set_guidelines")
def set_guidelines(request: Request, user: Staff, form: CheckedForm) -> Response:
    """Save the targets changed in the form, through PUT /v1/guidelines' validation and storage."""
    permit(user, Permission.WRITE_GUIDELINES)
    services = services_of(request)
    values = {k: v[:100] for k, v in form.items() if isinstance(v, str)}
    body, errors = changes_of(form)
    if not body and not errors:
        errors["form"] = "Nothing was changed: change a target, or return one to its default."
    checked = None
    try:
        checked = GuidelinesIn.model_validate(body)
    except ValidationError as e:
        for error in e.errors():
            kpi, *field = (str(p) for p in error["loc"])
            errors.setdefault(f"{kpi}-{field[0] if field else 'target'}", str(error["msg"]))
    if errors or checked is None:
        return _page(request, user, 422, values=values, errors=errors)
    try:
        put_guidelines(user, checked, services)
    except LedgerError as e:
        errors["form"] = str(e)[:1].upper() + str(e)[1:] + "."
        return _page(request, user, status_of(e), values=values, errors=errors)
    names = ", ".join(k.replace("_", " ") for k in body)
    flash(request, f"Guidelines saved: {names}.")
    return RedirectResponse("/console/admin/guidelines", status_code=303)
