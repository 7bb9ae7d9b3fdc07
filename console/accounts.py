"""The accounts pages: the directory search, and one account (now, at a version or at a
moment) with its timeline and the forms its state and the person's roles allow.

Every read goes through what the API's routes use: the directory route's own
function and api.views (masking per role, the access-log rows), so a person in
the console is shown, refused and logged exactly as a token would be. The
forms post to console/account_commands.py.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import RedirectResponse

from api.auth import MATRIX, Forbidden, Permission, Principal
from api.errors import BadRequest
from api.routers.accounts import directory as directory_route
from api.views import account_out, history_out
from console import forms as f
from console.moments import local_value, read_moment
from console.rendering import ConsoleRoute, PageNotFound, render, when
from console.staff import Staff, permit, services_of
from domain.errors import AccountNotFound

router = APIRouter(prefix="/console/accounts", route_class=ConsoleRoute, include_in_schema=False)

STATUSES = ("open", "closed")
CHANNELS = ("store", "online", "app", "phone")


@router.get("", name="console_accounts")
def accounts(
    request: Request,
    user: Staff,
    q: Annotated[str, Query(max_length=100)] = "",
    segment: Annotated[str, Query(max_length=100)] = "",
    status: Annotated[str, Query(max_length=10)] = "",
    cursor: Annotated[str, Query(max_length=200)] = "",
) -> Response:
    """Search the account directory (contact fields masked per role, as the API does).

    Roles that read accounts but may not search (finance) get only the box that
    opens an account by its ID.
    """
    permit(user, Permission.SEARCH_DIRECTORY, Permission.READ_UNMASKED, Permission.READ_MASKED)
    services = services_of(request)
    may_search = user.may(Permission.SEARCH_DIRECTORY)
    q = q.strip()
    problem = None
    if not may_search:
        if q or cursor:
            permit(user, Permission.SEARCH_DIRECTORY)
    elif q and len(q) < 2:
        problem = "Give at least 2 characters to search for."
    if status and status not in STATUSES:
        problem = f"Status must be one of: {', '.join(STATUSES)}."
    page = None
    if problem is None and may_search:
        page = directory_route(
            user=user,
            services=services,
            segment=segment or None,
            status=status or None,  # type: ignore[arg-type]
            channel=None,
            q=q or None,
            cursor=cursor or None,
            limit=25,
        )
    return render(
        request,
        "accounts.html",
        user,
        400 if problem else 200,
        q=q,
        segment=segment,
        status=status,
        segments=services.settings.segments,
        statuses=STATUSES,
        problem=problem,
        page=page,
        may_search=may_search,
        search_roles=", ".join(sorted(MATRIX[Permission.SEARCH_DIRECTORY])),
        unmasked=user.may(Permission.READ_UNMASKED),
        may_open=user.may(Permission.MANAGE_ACCOUNTS),
    )


@router.get("/open", name="console_open_account")
def open_by_id(
    request: Request, user: Staff, account_id: Annotated[str, Query(max_length=100)] = ""
) -> Response:
    """Go to the account whose ID was given (an ID from a ticket or a report)."""
    try:
        target = UUID(account_id.strip())
    except ValueError:
        raise PageNotFound(f"“{account_id}” is not an account ID (a UUID).") from None
    return RedirectResponse(f"/console/accounts/{target}", status_code=303)


# A form's state after it was sent and refused: what was typed, and the messages by field.
FormState = Mapping[str, Mapping[str, str]]
HISTORY_ROLES = ", ".join(sorted(MATRIX[Permission.READ_HISTORY]))


@router.get("/{account_id}", name="console_account")
def account(
    request: Request,
    user: Staff,
    account_id: UUID,
    version: Annotated[int | None, Query(ge=1)] = None,
    as_of: Annotated[str, Query(max_length=40)] = "",
) -> Response:
    """One account as the caller may see it (now, at a version, or as it stood at a moment,
    read in the ledger's time zone), its timeline, and the forms their roles allow."""
    asked = as_of.strip()
    if version is not None and asked:
        raise BadRequest("give version or as_of, not both")
    if (version is not None or asked) and not user.may(Permission.READ_HISTORY):
        raise Forbidden(f"point-in-time reads need one of the roles: {HISTORY_ROLES}")
    if not asked:
        return account_page(request, user, account_id, version=version)
    zone = services_of(request).settings.timezone
    try:
        moment = read_moment(asked, zone)
    except ValueError as e:
        return account_page(request, user, account_id, status=422, moment=(asked, str(e)))
    try:
        return account_page(request, user, account_id, as_of=moment)
    except AccountNotFound:
        # The account exists (else the page below is the 404 too) but not yet then.
        why = f"The account did not exist yet at {when(moment, seconds=True)}."
        return account_page(request, user, account_id, status=404, moment=(asked, why))


def account_page(
    request: Request,
    user: Principal,
    account_id: UUID,
    *,
    version: int | None = None,
    as_of: datetime | None = None,
    status: int = 200,
    forms: Mapping[str, FormState] | None = None,
    activity: str | None = None,
    moment: tuple[str, str] | None = None,
) -> Response:
    """The account page: `forms` holds the state of a form sent and refused (by its name),
    `moment` a moment typed and refused (what was typed, why)."""
    permit(user, Permission.READ_UNMASKED, Permission.READ_MASKED)
    services = services_of(request)
    zone = services.settings.timezone
    latest = services.ledger.account(account_id)
    past = version is not None or as_of is not None
    account = services.ledger.account(account_id, version=version, as_of=as_of) if past else latest
    shown = account_out(services, account, user, "read")
    timeline = None
    if user.may(Permission.READ_HISTORY):
        events = services.ledger.history(account_id)
        timeline = list(reversed(history_out(services, account_id, events, user)))
    current = account.version == latest.version
    offered = _offered(user, shown.status == "open" and current, shown.personal_data_erased)
    forms = forms or {}
    activity = activity or request.query_params.get("activity") or "purchase"
    return render(
        request,
        "account.html",
        user,
        status,
        account=shown,
        timeline=timeline,
        current=current,
        past=past,
        as_of=as_of,
        latest_version=latest.version,
        offered=offered,
        refusal=_refusal(forms, offered),
        may_history=user.may(Permission.READ_HISTORY),
        may_act=user.may(Permission.MANAGE_ACCOUNTS) or user.may(Permission.RECORD_ACTIVITIES),
        history_roles=HISTORY_ROLES,
        zone=zone,
        moment_value=moment[0] if moment else (local_value(as_of, zone) if as_of else ""),
        moment_error=moment[1] if moment else None,
        activities=f.ACTIVITIES,
        activity=activity if activity in f.ACTIVITIES else "purchase",
        inputs={
            "activity": f.ACTIVITY_INPUTS,
            "details": f.DETAIL_INPUTS,
            "confirm": f.confirm_inputs(),
            "segment": f.segment_inputs(services.settings.segments, shown.segment),
            "plan": f.plan_inputs(shown.service_plan),
            "close": f.close_inputs(),
        },
        forms=forms,
    )


def _offered(user: Principal, open_now: bool, erased: bool) -> frozenset[str]:
    # The forms the page shows: none on a closed account or a past state; the
    # details ones only while there are details to change or confirm.
    if not open_now:
        return frozenset()
    offered: set[str] = set()
    if user.may(Permission.RECORD_ACTIVITIES):
        offered.add("activity")
    if user.may(Permission.MANAGE_ACCOUNTS):
        offered |= {"segment", "plan", "close"}
        if not erased:
            offered |= {"details", "confirm"}
    return frozenset(offered)


# What did not happen, by form: the start of a refusal shown at the top of the page.
NOT_DONE = {
    "activity": "The activity was not recorded",
    "details": "The details were not updated",
    "confirm": "The details were not confirmed",
    "segment": "The segment was not changed",
    "plan": "The service plan was not changed",
    "close": "The account was not closed",
}


def _refusal(forms: Mapping[str, FormState], offered: frozenset[str]) -> str | None:
    # A form the page no longer shows (the account closed meanwhile, or it was
    # posted by hand) still gets its refusal in words, at the top of the page.
    for name, state in forms.items():
        errors = state.get("errors", {})
        if name not in offered and errors:
            why = errors.get("form") or "; ".join(
                f"{k.replace('_', ' ')}: {v}" for k, v in errors.items()
            )
            return f"{NOT_DONE.get(name, 'Refused')}. {why}"
    return None


def form_state(values: Mapping[str, Any], errors: Mapping[str, str]) -> FormState:
    """What a refused form shows again: the text typed (never a file), the messages by field."""
    typed = {k: v for k, v in values.items() if isinstance(v, str)}
    return {"values": typed, "errors": dict(errors)}
