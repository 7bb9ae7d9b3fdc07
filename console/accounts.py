"""The accounts pages: the directory search, one account with its timeline, and its forms.

Every read and command goes through what the API's routes use: the directory
route's own function, api.views (masking per role, the access-log rows) and
api.commands.Commands (metadata, If-Match, the account shown back), so a
person in the console is shown, refused and logged exactly as a token would be.
"""

from __future__ import annotations

from typing import Annotated, Any
from uuid import UUID, uuid4

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import ValidationError

from api.auth import MATRIX, Forbidden, Permission, Principal
from api.commands import Commands
from api.deps import CommandContext
from api.routers.accounts import directory as directory_route
from api.schemas import to_activity
from api.views import account_out, history_out
from console.forms import (
    ACTIVITIES,
    ACTIVITY_INPUTS,
    DETAIL_INPUTS,
    activity_body,
    detail_errors,
    details_body,
    field_errors,
)
from console.rendering import ConsoleRoute, PageNotFound, flash, render, status_of
from console.staff import CheckedForm, Staff, permit, services_of
from domain.errors import LedgerError, StaleVersion
from infra.wiring import Services

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


def _account_page(
    request: Request,
    user: Principal,
    account_id: UUID,
    *,
    version: int | None = None,
    status: int = 200,
    **forms: Any,
) -> Response:
    permit(user, Permission.READ_UNMASKED, Permission.READ_MASKED)
    if version is not None and not user.may(Permission.READ_HISTORY):
        raise Forbidden(
            "point-in-time reads need one of the roles: admin, auditor, customer_service"
        )
    services = services_of(request)
    account = services.ledger.account(account_id, version=version)
    shown = account_out(services, account, user, "read")
    timeline = None
    if user.may(Permission.READ_HISTORY):
        events = services.ledger.history(account_id)
        timeline = list(reversed(history_out(services, account_id, events, user)))
    current = version is None or version == services.ledger.account(account_id).version
    activity = forms.pop("activity", None) or request.query_params.get("activity") or "purchase"
    return render(
        request,
        "account.html",
        user,
        status,
        account=shown,
        timeline=timeline,
        current=current,
        may_manage=user.may(Permission.MANAGE_ACCOUNTS) and current,
        may_record=user.may(Permission.RECORD_ACTIVITIES) and current,
        may_history=user.may(Permission.READ_HISTORY),
        activities=ACTIVITIES,
        activity=activity if activity in ACTIVITIES else "purchase",
        activity_inputs=ACTIVITY_INPUTS,
        detail_inputs=DETAIL_INPUTS,
        details=forms.get("details", {}),
        recorded=forms.get("recorded", {}),
    )


@router.get("/{account_id}", name="console_account")
def account(
    request: Request,
    user: Staff,
    account_id: UUID,
    version: Annotated[int | None, Query(ge=1)] = None,
) -> Response:
    """One account as the caller may see it, its timeline, and the forms their roles allow."""
    return _account_page(request, user, account_id, version=version)


def _commands(services: Services, user: Principal, expected: int | None) -> Commands:
    # The same command runner as the API's routes; a console form has no Idempotency-Key
    # (the redirect after a command means a reload does not send it twice).
    ctx = CommandContext(user, str(uuid4()), None)
    return Commands(services, user, ctx, expected, None, "", Response())


def _form_state(form: CheckedForm, errors: dict[str, str]) -> dict[str, Any]:
    values = {k: v for k, v in form.items() if isinstance(v, str)}
    return {"values": values, "errors": errors}


@router.post("/{account_id}/details", name="console_update_details")
def update_details(request: Request, user: Staff, account_id: UUID, form: CheckedForm) -> Response:
    """Update the customer's details; If-Match is the version the page showed."""
    permit(user, Permission.MANAGE_ACCOUNTS)
    services = services_of(request)
    raw_version = str(form.get("version") or "")
    expected = int(raw_version) if raw_version.isdigit() else None
    try:
        body = details_body(form)
        cmd = _commands(services, user, expected)
        done = cmd.apply(
            "update", cmd.ledger.update_details, account_id, body.customer.fields(), body=body
        )
    except ValidationError as e:
        state = _form_state(form, detail_errors(e))
        return _account_page(request, user, account_id, status=422, details=state)
    except LedgerError as e:
        state = _form_state(form, {"form": _in_words(e)})
        return _account_page(request, user, account_id, status=status_of(e), details=state)
    flash(request, f"Details updated (now version {done.version}).")
    return RedirectResponse(f"/console/accounts/{account_id}", status_code=303)


@router.post("/{account_id}/activities", name="console_record_activity")
def record_activity(request: Request, user: Staff, account_id: UUID, form: CheckedForm) -> Response:
    """Record one service activity on the account."""
    permit(user, Permission.RECORD_ACTIVITIES)
    services = services_of(request)
    alias = str(form.get("type") or "")
    if alias not in ACTIVITIES:
        state = _form_state(form, {"type": f"choose one of: {', '.join(ACTIVITIES)}"})
        return _account_page(request, user, account_id, status=422, recorded=state)
    try:
        body = activity_body(alias, form)
        cmd = _commands(services, user, None)
        done = cmd.apply(
            "activity",
            cmd.ledger.record_activity,
            account_id,
            to_activity(body),
            body=body,  # type: ignore[arg-type]
            status=201,
        )
    except ValidationError as e:
        state = _form_state(form, field_errors(e))
        return _account_page(request, user, account_id, status=422, recorded=state, activity=alias)
    except LedgerError as e:
        state = _form_state(form, {"form": _in_words(e)})
        return _account_page(
            request, user, account_id, status=status_of(e), recorded=state, activity=alias
        )
    flash(request, f"{ACTIVITIES[alias]} recorded (now version {done.version}).")
    return RedirectResponse(f"/console/accounts/{account_id}", status_code=303)


def _in_words(e: LedgerError) -> str:
    text = str(e)
    text = text[:1].upper() + text[1:] + "."
    if isinstance(e, StaleVersion):
        text += " Someone changed the account since this page was loaded: reload it and try again."
    return text
