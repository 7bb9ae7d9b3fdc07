"""The account page's command forms: record an activity, update or confirm the details,
change the segment or the plan, close the account.

Each form is checked by the API's own body model (console/forms.py) and run by
the API's own command runner, api.commands.Commands, so the event's metadata
(actor, department, reason, correlation id), If-Match and the access-log row
are those of the API's routes. If-Match is the version the page showed (a
hidden field): a page gone stale is refused with the 412 in words. A refused
form comes back with what was typed and each message next to its field, and
nothing is saved; a command done redirects to the account (so a reload does
not send it twice), with a message saying what was done.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Mapping
from typing import Any
from uuid import UUID, uuid4

from anyio import from_thread
from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import ValidationError
from starlette.datastructures import FormData

from api.auth import Permission, Principal
from api.commands import Commands
from api.deps import CommandContext
from api.schemas import (
    AccountOut,
    ChangePlan,
    ChangeSegment,
    CloseAccount,
    ConfirmDetails,
    to_activity,
)
from console import forms as f
from console.accounts import account_page, form_state
from console.rendering import ConsoleRoute, flash, status_of
from console.staff import CheckedForm, Staff, permit, services_of
from domain.errors import LedgerError, StaleVersion
from infra.wiring import Services

router = APIRouter(prefix="/console/accounts", route_class=ConsoleRoute, include_in_schema=False)

Act = Callable[[Commands], Coroutine[Any, Any, AccountOut]]


def commands(
    services: Services,
    user: Principal,
    expected: int | None,
    key: str | None = None,
    digest: str = "",
) -> Commands:
    """The API's command runner for a console form (If-Match `expected`, Idempotency-Key `key`)."""
    # A fresh correlation id per form sent, as the API makes one when none is given.
    ctx = CommandContext(user, str(uuid4()), None)
    return Commands(services, user, ctx, expected, key, digest, Response())


def version_of(form: FormData) -> int | None:
    """The version the page showed (the form's If-Match); None when the field is absent."""
    raw = str(form.get("version") or "").strip()
    return int(raw) if raw.isdigit() else None


def in_words(e: LedgerError) -> str:
    """The ledger's refusal as a sentence, with what to do about a stale page."""
    text = str(e)
    text = text[:1].upper() + text[1:] + "."
    if isinstance(e, StaleVersion):
        # The page sent back shows the account as it is now, the form keeping what was typed.
        text += (
            " Someone changed the account since this page was loaded: it shows the account"
            " as it is now; check it and send the form again."
        )
    return text


def submit(
    request: Request,
    user: Principal,
    account_id: UUID,
    form: FormData,
    name: str,
    act: Act,
    done: Callable[[AccountOut], str],
    *,
    errors_of: Callable[[ValidationError], dict[str, str]] = f.field_errors,
    permission: Permission = Permission.MANAGE_ACCOUNTS,
    activity: str | None = None,
) -> Response:
    """Run the command of the form `name`; the account again with its refusal, or a redirect."""
    permit(user, permission)
    cmd = commands(services_of(request), user, version_of(form))
    try:
        shown = from_thread.run(act, cmd)  # on the event loop, as the API runs it
    except ValidationError as e:
        return _again(request, user, account_id, form, name, errors_of(e), 422, activity)
    except LedgerError as e:
        errors = {"form": in_words(e)}
        return _again(request, user, account_id, form, name, errors, status_of(e), activity)
    flash(request, f"{done(shown)} (now version {shown.version}).")
    return RedirectResponse(f"/console/accounts/{account_id}", status_code=303)


def _again(
    request: Request,
    user: Principal,
    account_id: UUID,
    form: FormData,
    name: str,
    errors: Mapping[str, str],
    status: int,
    activity: str | None,
) -> Response:
    state = {name: form_state(form, errors)}
    return account_page(request, user, account_id, status=status, forms=state, activity=activity)


@router.post("/{account_id}/details", name="console_update_details")
def update_details(request: Request, user: Staff, account_id: UUID, form: CheckedForm) -> Response:
    """Update the customer's details."""

    async def act(cmd: Commands) -> AccountOut:
        body = f.details_body(form)
        fields = body.customer.fields()
        return await cmd.apply("update", cmd.ledger.update_details, account_id, fields, body=body)

    return submit(
        request,
        user,
        account_id,
        form,
        "details",
        act,
        lambda _: "Details updated",
        errors_of=f.detail_errors,
    )


@router.post("/{account_id}/confirm-details", name="console_confirm_details")
def confirm_details(request: Request, user: Staff, account_id: UUID, form: CheckedForm) -> Response:
    """Record that the customer confirmed their details are still right (the periodic review)."""

    async def act(cmd: Commands) -> AccountOut:
        body = f.command_body(ConfirmDetails, form, f.confirm_inputs())
        return await cmd.apply("confirm-details", cmd.ledger.confirm_details, account_id, body=body)

    return submit(request, user, account_id, form, "confirm", act, lambda _: "Details confirmed")


@router.post("/{account_id}/segment", name="console_change_segment")
def change_segment(request: Request, user: Staff, account_id: UUID, form: CheckedForm) -> Response:
    """Move the account to another customer segment."""
    segments = services_of(request).settings.segments

    async def act(cmd: Commands) -> AccountOut:
        # Every configured segment is accepted here; the ledger refuses the one it is in.
        body = f.command_body(ChangeSegment, form, f.segment_inputs(segments, ""))
        return await cmd.apply(
            "segment", cmd.ledger.change_segment, account_id, body.segment, body=body
        )

    return submit(
        request,
        user,
        account_id,
        form,
        "segment",
        act,
        lambda shown: f"Segment changed to {shown.segment}",
    )


@router.post("/{account_id}/plan", name="console_change_plan")
def change_plan(request: Request, user: Staff, account_id: UUID, form: CheckedForm) -> Response:
    """Move the account to another service plan."""

    async def act(cmd: Commands) -> AccountOut:
        body = f.command_body(ChangePlan, form, f.plan_inputs(""))
        plan = body.service_plan
        return await cmd.apply("plan", cmd.ledger.change_plan, account_id, plan, body=body)

    return submit(
        request,
        user,
        account_id,
        form,
        "plan",
        act,
        lambda shown: f"Service plan changed to {shown.service_plan}",
    )


@router.post("/{account_id}/close", name="console_close_account")
def close_account(request: Request, user: Staff, account_id: UUID, form: CheckedForm) -> Response:
    """Close the account; afterwards it takes no command except erase."""

    async def act(cmd: Commands) -> AccountOut:
        body = f.command_body(CloseAccount, form, f.close_inputs())
        # The close reason is the event's metadata reason too, as in the API's route.
        verb = cmd.ledger.close_account
        return await cmd.apply("close", verb, account_id, body.reason, body.note, body=body)

    return submit(request, user, account_id, form, "close", act, lambda _: "Account closed")


@router.post("/{account_id}/activities", name="console_record_activity")
def record_activity(request: Request, user: Staff, account_id: UUID, form: CheckedForm) -> Response:
    """Record one service activity on the account (activities take no If-Match, as in the API)."""
    alias = str(form.get("type") or "")
    if alias not in f.ACTIVITIES:
        permit(user, Permission.RECORD_ACTIVITIES)
        errors = {"type": f"choose one of: {', '.join(f.ACTIVITIES)}"}
        return _again(request, user, account_id, form, "activity", errors, 422, None)

    async def act(cmd: Commands) -> AccountOut:
        body = f.activity_body(alias, form)
        activity = to_activity(body)
        verb = cmd.ledger.record_activity
        return await cmd.apply("activity", verb, account_id, activity, body=body, status=201)  # type: ignore[arg-type]

    return submit(
        request,
        user,
        account_id,
        form,
        "activity",
        act,
        lambda _: f"{f.ACTIVITIES[alias]} recorded",
        permission=Permission.RECORD_ACTIVITIES,
        activity=alias,
    )
