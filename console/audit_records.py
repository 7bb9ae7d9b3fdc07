"""The audit pages' second part: the global event feed, the access log, a personal-data export.

Each page calls the API route's own function (api/routers/audit.py and the
personal-data route of api/routers/accounts.py) with the filters read from
the page, so an auditor in the console is shown, masked and access-logged
exactly as their token would be: a feed page that shows personal fields in
clear logs one `audit-feed` row per account, an export one `personal-data` row.

The export is a POST carrying the session's CSRF token, though it changes
nothing in the ledger: it writes an access-log row in the person's name, which
another site must not be able to cause with a link.
"""

from __future__ import annotations

from urllib.parse import urlencode
from uuid import UUID

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from api.auth import Permission, Principal
from api.routers.accounts import personal_data as personal_data_route
from api.routers.audit import access_log as access_log_route
from api.routers.audit import events as events_route
from console.audit import audit_tabs
from console.audit_inputs import MAX_LIMIT, Inputs
from console.rendering import ConsoleRoute, render, status_of
from console.staff import CheckedForm, Staff, permit, services_of
from domain.errors import LedgerError
from infra.audit_feed import EVENT_TOPICS

router = APIRouter(prefix="/console/audit", route_class=ConsoleRoute, include_in_schema=False)

PAGE_SIZE = 50
EVENT_FILTERS = ("after", "account_id", "type", "from", "to", "limit")
ACCESS_FILTERS = ("account_id", "actor", "from", "to", "after", "limit")


def _inputs(request: Request, names: tuple[str, ...]) -> Inputs:
    zone = services_of(request).settings.timezone
    given = {n: request.query_params.get(n, "")[:200] for n in names}
    return Inputs(given, zone)


def _query(inputs: Inputs, **changes: object) -> str:
    """The query string of this page with some filters changed (for "next" and "first")."""
    values: dict[str, object] = {k: v for k, v in inputs.raw.items() if v}
    for name, value in changes.items():
        if value:
            values[name] = value
        else:
            values.pop(name, None)
    return urlencode(values)


@router.get("/events", name="console_audit_events")
def events(request: Request, user: Staff) -> Response:
    """Every event of every account in store order, filtered as GET /v1/audit/events filters."""
    permit(user, Permission.AUDIT)
    services = services_of(request)
    inputs = _inputs(request, EVENT_FILTERS)
    after = inputs.count("after", 0, 0)
    limit = inputs.count("limit", PAGE_SIZE, 1, MAX_LIMIT)
    account = inputs.account()
    kind = inputs.choice("type", tuple(EVENT_TOPICS))
    since, until = inputs.moment("from"), inputs.moment("to")
    page, more = None, False
    if not inputs.errors:
        page = events_route(
            user=user,
            services=services,
            after=after,
            limit=limit,
            account_id=account,
            type=[kind] if kind else None,
            since=since,
            until=until,
        )
        # A filtered page may hold fewer events than asked and still have more after it.
        more = page.next_after < (services.ledger.recorder.max_notification_id() or 0)
    return render(
        request,
        "audit_events.html",
        user,
        422 if inputs.errors else 200,
        tabs=audit_tabs(user),
        values=inputs.raw,
        errors=inputs.errors,
        types=tuple(EVENT_TOPICS),
        page=page,
        after=after,
        next_query=_query(inputs, after=page.next_after) if page and more else None,
        first_query=_query(inputs, after="") if after else None,
        zone=services.settings.timezone,
    )


@router.get("/access-log", name="console_audit_access_log")
def access_log(request: Request, user: Staff) -> Response:
    """Who read which account's personal data in clear, and when, filtered as the API's route."""
    permit(user, Permission.AUDIT)
    services = services_of(request)
    inputs = _inputs(request, ACCESS_FILTERS)
    after = inputs.count("after", 0, 0)
    limit = inputs.count("limit", PAGE_SIZE, 1, MAX_LIMIT)
    account = inputs.account()
    actor = inputs.text("actor") or None
    since, until = inputs.moment("from"), inputs.moment("to")
    log = None
    if not inputs.errors:
        log = access_log_route(
            user=user,
            services=services,
            account_id=account,
            actor=actor,
            since=since,
            until=until,
            after=after,
            limit=limit,
        )
    full = log is not None and len(log.entries) == limit
    return render(
        request,
        "audit_access_log.html",
        user,
        422 if inputs.errors else 200,
        tabs=audit_tabs(user),
        values=inputs.raw,
        errors=inputs.errors,
        log=log,
        after=after,
        next_query=_query(inputs, after=log.next_after) if log and full else None,
        first_query=_query(inputs, after="") if after else None,
        zone=services.settings.timezone,
    )


def _export_page(
    request: Request, user: Principal, status: int = 200, **context: object
) -> Response:
    return render(
        request,
        "audit_personal_data.html",
        user,
        status,
        tabs=audit_tabs(user),
        values=context.pop("values", {}),
        errors=context.pop("errors", {}),
    )


@router.get("/personal-data", name="console_audit_personal_data")
def personal_data(request: Request, user: Staff) -> Response:
    """The form of a data access request: which account's personal data to export."""
    permit(user, Permission.DATA_ACCESS_REQUEST)
    return _export_page(request, user)


@router.post("/personal-data", name="console_audit_personal_data_export")
def export_personal_data(request: Request, user: Staff, form: CheckedForm) -> Response:
    """The download of GET /v1/accounts/{id}/personal-data's JSON, logged as that route logs it."""
    permit(user, Permission.DATA_ACCESS_REQUEST)
    raw = form.get("account_id")
    inputs = Inputs({"account_id": raw[:200] if isinstance(raw, str) else ""}, "UTC")
    account: UUID | None = inputs.account()
    if account is None and "account_id" not in inputs.errors:
        inputs.errors["account_id"] = "give the account ID of the customer who asked"
    if account is None:
        return _export_page(request, user, 422, values=inputs.raw, errors=inputs.errors)
    try:
        out = personal_data_route(account_id=account, user=user, services=services_of(request))
    except LedgerError as e:
        errors = {"account_id": str(e)}
        return _export_page(request, user, status_of(e), values=inputs.raw, errors=errors)
    # The bytes the API's route sends: its response model as JSON, by alias, nothing left out.
    response = JSONResponse(out.model_dump(mode="json", by_alias=True))
    response.headers["Content-Disposition"] = f'attachment; filename="personal-data-{account}.json"'
    response.headers["Cache-Control"] = "no-store"
    return response
