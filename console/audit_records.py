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

from dataclasses import dataclass
from datetime import datetime
from urllib.parse import urlencode
from uuid import UUID

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse

from api.auth import Permission, Principal
from api.routers.accounts import personal_data as personal_data_route
from api.routers.audit import access_log as access_log_route
from api.routers.audit import events as events_route
from console.audit import audit_page
from console.audit_inputs import MAX_LIMIT, Inputs
from console.rendering import ConsoleRoute, status_of
from console.staff import CheckedForm, Staff, permit, services_of
from domain.errors import LedgerError
from infra.audit_feed import EVENT_TOPICS

router = APIRouter(prefix="/console/audit", route_class=ConsoleRoute, include_in_schema=False)

PAGE_SIZE = 50
EVENT_FILTERS = ("after", "account_id", "type", "from", "to", "limit")
ACCESS_FILTERS = ("account_id", "actor", "from", "to", "after", "limit")
PERSONAL_DATA = "audit_personal_data.html"


@dataclass(frozen=True)
class Filters:
    """The filters both feeds take, as read from the page's query string.

    A filter that did not read has its message in `inputs.errors` (and its default here).
    """

    inputs: Inputs
    after: int
    limit: int
    account: UUID | None
    since: datetime | None
    until: datetime | None


def filters(request: Request, names: tuple[str, ...]) -> Filters:
    """The feed filters `names` from the query string, each cut to a length no right value has."""
    zone = services_of(request).settings.timezone
    inputs = Inputs({n: request.query_params.get(n, "")[:200] for n in names}, zone)
    return Filters(
        inputs,
        after=inputs.count("after", 0, 0),
        limit=inputs.count("limit", PAGE_SIZE, 1, MAX_LIMIT),
        account=inputs.account(),
        since=inputs.moment("from"),
        until=inputs.moment("to"),
    )


def _query(inputs: Inputs, **changes: object) -> str:
    """The query string of this page with some filters changed (for "next" and "first")."""
    values: dict[str, object] = {k: v for k, v in inputs.raw.items() if v}
    for name, value in changes.items():
        if value:
            values[name] = value
        else:
            values.pop(name, None)
    return urlencode(values)


def _feed_page(
    request: Request,
    user: Principal,
    template: str,
    given: Filters,
    next_after: int | None,
    **context: object,
) -> Response:
    """A feed page: its filters as typed, and links to the first page and (at `next_after`) on."""
    inputs = given.inputs
    return audit_page(
        request,
        user,
        template,
        422 if inputs.errors else 200,
        values=inputs.raw,
        errors=inputs.errors,
        after=given.after,
        next_query=_query(inputs, after=next_after) if next_after is not None else None,
        first_query=_query(inputs, after="") if given.after else None,
        zone=services_of(request).settings.timezone,
        **context,
    )


@router.get("/events", name="console_audit_events")
def events(request: Request, user: Staff) -> Response:
    """Every event of every account in store order, filtered as GET /v1/audit/events filters."""
    permit(user, Permission.AUDIT)
    services = services_of(request)
    given = filters(request, EVENT_FILTERS)
    kind = given.inputs.choice("type", tuple(EVENT_TOPICS))
    page, next_after = None, None
    if not given.inputs.errors:
        page = events_route(
            user=user,
            services=services,
            after=given.after,
            limit=given.limit,
            account_id=given.account,
            type=[kind] if kind else None,
            since=given.since,
            until=given.until,
        )
        # A filtered page may hold fewer events than asked and still have more after it.
        if page.next_after < (services.ledger.recorder.max_notification_id() or 0):
            next_after = page.next_after
    return _feed_page(
        request, user, "audit_events.html", given, next_after, types=tuple(EVENT_TOPICS), page=page
    )


@router.get("/access-log", name="console_audit_access_log")
def access_log(request: Request, user: Staff) -> Response:
    """Who read which account's personal data in clear, and when, filtered as the API's route."""
    permit(user, Permission.AUDIT)
    given = filters(request, ACCESS_FILTERS)
    actor = given.inputs.text("actor") or None
    log, next_after = None, None
    if not given.inputs.errors:
        log = access_log_route(
            user=user,
            services=services_of(request),
            account_id=given.account,
            actor=actor,
            since=given.since,
            until=given.until,
            after=given.after,
            limit=given.limit,
        )
        # The log is filtered in its query: a page short of the limit is the last.
        if len(log.entries) == given.limit:
            next_after = log.next_after
    return _feed_page(request, user, "audit_access_log.html", given, next_after, log=log)


@router.get("/personal-data", name="console_audit_personal_data")
def personal_data(request: Request, user: Staff) -> Response:
    """The form of a data access request: which account's personal data to export."""
    permit(user, Permission.DATA_ACCESS_REQUEST)
    return audit_page(request, user, PERSONAL_DATA)


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
        return audit_page(
            request, user, PERSONAL_DATA, 422, values=inputs.raw, errors=inputs.errors
        )
    try:
        out = personal_data_route(account_id=account, user=user, services=services_of(request))
    except LedgerError as e:
        errors = {"account_id": str(e)}
        return audit_page(
            request, user, PERSONAL_DATA, status_of(e), values=inputs.raw, errors=errors
        )
    # The bytes the API's route sends: its response model as JSON, by alias, nothing left out.
    response = JSONResponse(out.model_dump(mode="json", by_alias=True))
    response.headers["Content-Disposition"] = f'attachment; filename="personal-data-{account}.json"'
    response.headers["Cache-Control"] = "no-store"
    return response
