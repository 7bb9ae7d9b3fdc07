"""Opening an account from the console: /console/accounts/new.

The form is the API's open-account body (api/schemas.py OpenAccount, through
console/forms.py), run by the API's command runner, so the AccountOpened
event carries the same metadata as one opened over HTTP. Done, it goes to
the new account's page.

Each form shown carries an Idempotency-Key of its own: unlike the other
commands an open has no version to hold it to, so a form sent twice (a double
click, a resend after a slow answer) would open two accounts for a customer
without a customer number. With the key the second sending gets the first
one's account, as the API's Idempotency-Key gives an integrator.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping
from uuid import uuid4

from anyio import from_thread
from fastapi import APIRouter, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import ValidationError
from starlette.datastructures import FormData

from api.auth import Permission, Principal
from api.routers import accounts as routes
from api.schemas import AccountOut
from console import forms as f
from console.account_commands import commands, in_words
from console.accounts import form_state
from console.rendering import ConsoleRoute, flash, render, status_of
from console.sessions import CSRF_FIELD
from console.staff import CheckedForm, Staff, permit, services_of
from domain.errors import DuplicateAccount, LedgerError
from domain.rules import account_id_for
from infra.idempotency import KeyInFlight, KeyReused

router = APIRouter(prefix="/console/accounts", route_class=ConsoleRoute, include_in_schema=False)

KEY_FIELD = "form_key"
# How long a second sending waits for the first one's outcome before refusing.
IN_FLIGHT_WAIT_SECONDS = 5.0


@router.get("/new", name="console_new_account")
def new_account(request: Request, user: Staff) -> Response:
    """The open-account form."""
    permit(user, Permission.MANAGE_ACCOUNTS)
    return _page(request, user, {})


@router.post("/new", name="console_open_new_account")
def open_account(request: Request, user: Staff, form: CheckedForm) -> Response:
    """Open the account; on success go to its page."""
    permit(user, Permission.MANAGE_ACCOUNTS)
    services = services_of(request)
    segments = services.settings.segments
    key = str(form.get(KEY_FIELD) or "").strip()[:200] or None
    try:
        body = f.open_body(form, segments)
    except ValidationError as e:
        return _page(request, user, form_state(form, f.nested_errors(e)), 422, key)
    cmd = commands(services, user, None, key, form_digest(form))

    def act() -> AccountOut:
        # The API route's own function, run on the event loop as the API runs it.
        return from_thread.run(routes.open_account, body, cmd)

    try:
        shown = _once(act)
    except KeyReused:
        why = "This form opened an account before, with other values. Open the form again."
        return _page(request, user, form_state(form, {"form": why}), 422)
    except DuplicateAccount as e:
        ref = body.external_ref or ""
        errors = {"external_ref": "An account with this customer number exists already."}
        state = {**form_state(form, errors), "existing": {"id": str(account_id_for(ref))}}
        return _page(request, user, state, status_of(e), key)
    except LedgerError as e:
        return _page(request, user, form_state(form, {"form": in_words(e)}), status_of(e), key)
    flash(request, f"Account opened (version {shown.version}).")
    return RedirectResponse(f"/console/accounts/{shown.id}", status_code=303)


def _once(act: Callable[[], AccountOut]) -> AccountOut:
    # The first sending is still running: wait for its account rather than
    # show a refusal for what is, to the person, one click.
    deadline = time.monotonic() + IN_FLIGHT_WAIT_SECONDS
    while True:
        try:
            return act()
        except KeyInFlight:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def form_digest(form: FormData) -> str:
    """What the form asks, hashed: the key sent again with other values is told apart."""
    asked = sorted((k, v) for k, v in form.multi_items() if k not in {CSRF_FIELD, KEY_FIELD})
    return hashlib.sha256(repr(asked).encode()).hexdigest()


def _page(
    request: Request,
    user: Principal,
    state: Mapping[str, object],
    status: int = 200,
    key: str | None = None,
) -> Response:
    # A refused form keeps its key (nothing was opened with it); a new form gets a new one.
    segments = services_of(request).settings.segments
    return render(
        request,
        "account_new.html",
        user,
        status,
        inputs=f.open_inputs(segments),
        form=state,
        form_key=key or str(uuid4()),
        key_field=KEY_FIELD,
    )
