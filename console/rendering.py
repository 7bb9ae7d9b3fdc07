"""Pages and refusals: the templates, and every error turned into a page a person can read.

The API answers problem+json (api/errors.py); a browser gets the same status
with the same words as an HTML page instead, through `ConsoleRoute`, the route
class of every console router. An unexpected error is logged once with its
traceback and shown as a page with a correlation id, never a stack trace.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Coroutine
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit
from uuid import uuid4
from zoneinfo import ZoneInfo

from fastapi import Request, Response
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse
from fastapi.routing import APIRoute
from fastapi.templating import Jinja2Templates

from api.auth import ROLES, Forbidden, Permission, Principal, report_permission
from api.errors import STATUS, code_of, title_of
from console.sessions import CSRF_FIELD, PREFIX, SignInRequired, csrf_token, staff_name
from infra.database import INFRASTRUCTURE_ERRORS
from projections.reports import REPORTS

log = logging.getLogger("crmledger.console")

templates = Jinja2Templates(directory=Path(__file__).parent / "templates")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def when(value: datetime | None, seconds: bool = False) -> str:
    """A moment as staff read it: in the ledger's time zone (CRMLEDGER_TIMEZONE), to the minute
    (to the second with `seconds`, where a moment is compared with recording times)."""
    if value is None:
        return ""
    zone = ZoneInfo(templates.env.globals.get("zone", "UTC"))  # type: ignore[arg-type]
    return value.astimezone(zone).strftime(f"%Y-%m-%d %H:%M{':%S' if seconds else ''} %Z")


def words(name: str) -> str:
    """An event's name in words: `PurchaseRecorded` is `Purchase recorded`."""
    return _CAMEL.sub(" ", name).capitalize()


def shown(value: Any) -> str:
    """An event field's value in words: a mapping as `name: value` pairs, None as a dash."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, datetime):
        return when(value)
    if isinstance(value, dict):
        return "; ".join(f"{k.replace('_', ' ')}: {shown(v)}" for k, v in value.items())
    return str(value)


templates.env.filters.update(when=when, words=words, shown=shown)

# The navigation: a page, its label, and the permissions that show it.
NAV: tuple[tuple[str, str, tuple[Permission, ...]], ...] = (
    (
        "/console/accounts",
        "Accounts",
        (Permission.SEARCH_DIRECTORY, Permission.READ_UNMASKED, Permission.READ_MASKED),
    ),
    ("/console/work-queue", "Work queue", (Permission.RECORD_ACTIVITIES,)),
    ("/console/reports", "Reports", tuple(report_permission(name) for name in REPORTS)),
    ("/console/audit", "Audit", (Permission.AUDIT,)),
    # Management sets guidelines and reads no projection: its admin page is the guidelines.
    (
        "/console/admin",
        "Admin",
        (Permission.READ_PROJECTIONS, Permission.OPERATE, Permission.WRITE_GUIDELINES),
    ),
)


class PageNotFound(Exception):
    """Nothing of the console is at this address."""


class CsrfRefused(Exception):
    """A state-changing form without this session's CSRF token."""


def render(
    request: Request,
    template: str,
    user: Principal | None,
    status_code: int = 200,
    **context: Any,
) -> Response:
    """A page of the console, with what every page shows (who is signed in, the navigation)."""
    nav = [(href, label) for href, label, perms in NAV if user and any(user.may(p) for p in perms)]
    response = templates.TemplateResponse(
        request,
        template,
        {
            "user": user,
            "staff_name": staff_name(request) if user else "",
            "csrf_field": CSRF_FIELD,
            "csrf_token": csrf_token(request),
            "nav": nav,
            "flash": request.session.pop("flash", None),
            "role_names": ROLES,
            **context,
        },
        status_code=status_code,
    )
    # Pages show personal data: no shared cache keeps them, and none is framed elsewhere.
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    return response


def fragment(
    request: Request, template: str, context: dict[str, Any], status_code: int = 200
) -> Response:
    """A piece of a page that htmx swaps in (a job's progress, the digest), without the frame."""
    response = templates.TemplateResponse(request, template, context, status_code=status_code)
    # It shows the state now: a cached one would stop a progress bar moving.
    response.headers["Cache-Control"] = "no-store"
    return response


def flash(request: Request, message: str) -> None:
    """A message shown once, on the next page (after a form's redirect)."""
    request.session["flash"] = message


def safe_next(target: str | None) -> str:
    """Where to go after sign-in: a console path only, never another site."""
    if target and target.startswith(PREFIX) and not target.startswith("//"):
        return target
    return f"{PREFIX}/accounts"


def status_of(exc: Exception) -> int:
    """The HTTP status the API gives this exception (500 for one it does not know)."""
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


def error_page(request: Request, exc: Exception) -> Response:
    """The page for a refusal or a failure, with the status the API would give."""
    user = getattr(request.state, "staff", None)
    if isinstance(exc, SignInRequired):
        target = quote(request.url.path + (f"?{request.url.query}" if request.url.query else ""))
        if request.headers.get("HX-Request") == "true":
            # A fragment polled by htmx (a job's progress) would get the sign-in page
            # swapped into it: send the whole window there, back to the page after.
            page = urlsplit(request.headers.get("HX-Current-URL", ""))
            back = quote(page.path + (f"?{page.query}" if page.query else "")) or target
            answer = Response(status_code=204)
            answer.headers["HX-Redirect"] = f"{PREFIX}/sign-in?next={back}"
            return answer
        return RedirectResponse(f"{PREFIX}/sign-in?next={target}", status_code=303)
    if isinstance(exc, PageNotFound):
        return _problem(request, user, 404, "Not found", str(exc) or "Nothing is at this address.")
    if isinstance(exc, CsrfRefused):
        detail = "The form did not come from this session. Reload the page and send it again."
        return _problem(request, user, 403, "Refused", detail)
    if isinstance(exc, Forbidden):
        return _problem(request, user, 403, "Refused", f"Your roles may not do this: {exc}.")
    if isinstance(exc, RequestValidationError):
        detail = "; ".join(str(e.get("msg", "")) for e in exc.errors())
        return _problem(request, user, 400, "This address is not valid", detail)
    if isinstance(exc, INFRASTRUCTURE_ERRORS):
        detail = "The ledger's database cannot be reached. Try again in a moment."
        return _problem(request, user, 503, "Service unavailable", detail)
    status = status_of(exc)
    if status == 500:
        correlation_id = str(uuid4())
        log.error(
            "unexpected error on %s %s, correlation id %s",
            request.method,
            request.url.path,
            correlation_id,
            exc_info=exc,
        )
        detail = f"Something went wrong on our side. Quote this reference: {correlation_id}."
        return _problem(request, user, 500, "Internal error", detail)
    return _problem(request, user, status, title_of(code_of(exc)), str(exc))


def _problem(
    request: Request, user: Principal | None, status: int, title: str, detail: str
) -> Response:
    return render(request, "error.html", user, status, title=title, detail=detail)


class ConsoleRoute(APIRoute):
    """A console route: whatever it raises becomes a page, not problem+json."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def paged(request: Request) -> Response:
            try:
                return await handler(request)
            except Exception as exc:
                return error_page(request, exc)

        return paged
