"""Every refusal becomes application/problem+json (RFC 9457), mapped here and only here.

A problem's `type` is `urn:crmledger:problem:<code>` with the code's `_` as
`-`, and stays stable: clients branch on it. The code is the exception's own
`code` (every LedgerError has one), else the one CODES gives its class; an
HTTP error of the framework (404, 405, 413) takes the code of its status.
The `title` is the code in words (TITLES where plain capitalising reads
badly), the `detail` says what was wrong with this request.

An exception class may also carry `headers` (added to the response, e.g. a
Retry-After) and `extra` (fields added to the problem body, e.g. the account
and position of an integrity failure).

Unexpected errors (500, `internal-error`) are answered by api/metrics.py's
middleware, which sees every exception the routes let through.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from api.auth import Forbidden, Unauthenticated
from api.oidc_tokens import IssuerUnavailable
from domain.errors import (
    ConflictingState,
    InvalidCommand,
    NotFound,
    StaleVersion,
)
from infra.database import INFRASTRUCTURE_ERRORS, DatabaseUnavailable, as_unavailable
from infra.idempotency import KeyInFlight, KeyReused

PROBLEM = "application/problem+json"
TYPE_PREFIX = "urn:crmledger:problem:"

STATUS: dict[type[Exception], int] = {
    InvalidCommand: 422,
    NotFound: 404,
    ConflictingState: 409,
    StaleVersion: 412,
    KeyReused: 422,
    KeyInFlight: 409,
    Unauthenticated: 401,
    Forbidden: 403,
}


class BadRequest(Exception):
    """Input that is wrong in a way the schemas cannot say (a malformed header, say)."""

    code = "bad_request"


STATUS[BadRequest] = 400
# The database away or saturated: retry after the Retry-After the error carries.
STATUS[DatabaseUnavailable] = 503
# The OpenID provider's keys cannot be fetched: the token is not known bad, so no 401.
STATUS[IssuerUnavailable] = 503

# Codes of the errors that do not carry their own.
CODES: dict[type[Exception], str] = {
    KeyReused: "idempotency_key_reused",
    KeyInFlight: "idempotency_key_in_flight",
    Unauthenticated: "unauthenticated",
    Forbidden: "forbidden",
}

# Titles where the code in words would read badly.
TITLES: dict[str, str] = {
    "invalid": "Invalid request",
    "idempotency_key_in_flight": "Idempotency key in use",
    "internal_error": "Internal server error",
    "malformed_json": "Malformed JSON",
    "unavailable": "Service unavailable",
}

_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def problem(
    status: int,
    code: str,
    detail: str,
    instance: str,
    headers: dict[str, str] | None = None,
    **extra: Any,
) -> JSONResponse:
    """A problem+json response for `code` (a snake_case code; a title in words works too)."""
    slug = code.strip().lower().replace(" ", "_")
    body = {
        "type": TYPE_PREFIX + slug.replace("_", "-"),
        "title": title_of(slug),
        "status": status,
        "detail": detail,
        "instance": instance,
        **extra,
    }
    if status == 401:
        headers = {"WWW-Authenticate": "Bearer", **(headers or {})}
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def title_of(code: str) -> str:
    """The title of a problem code: words, first one capitalised."""
    return TITLES.get(code) or code.replace("_", " ").capitalize()


def code_of(exc: Exception) -> str:
    """The problem code of an exception: its own, the mapped one, or its class name in words."""
    own = getattr(exc, "code", None)
    if isinstance(own, str):
        return own
    for cls in type(exc).__mro__:
        if cls in CODES:
            return CODES[cls]
    return _CAMEL.sub("_", type(exc).__name__).lower()


def _status_of(exc: Exception) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


async def _known(request: Request, exc: Exception) -> JSONResponse:
    detail = getattr(exc, "detail", None)
    if not isinstance(detail, str):
        detail = str(exc)
    if isinstance(exc, KeyReused):
        detail = "this Idempotency-Key was used before with a different request"
    elif isinstance(exc, KeyInFlight):
        detail = "the first request with this Idempotency-Key is still running"
    headers = getattr(exc, "headers", None)
    extra = getattr(exc, "extra", None)
    return problem(
        _status_of(exc),
        code_of(exc),
        detail,
        request.url.path,
        headers=dict(headers) if isinstance(headers, dict) else None,
        **(extra if isinstance(extra, dict) else {}),
    )


async def _unavailable(request: Request, exc: Exception) -> JSONResponse:
    # psycopg's and eventsourcing's errors of a lost or saturated database (infra/database.py).
    return await _known(request, as_unavailable(exc))


async def _invalid(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"loc": [str(p) for p in e.get("loc", ())], "msg": e.get("msg", ""), "type": e["type"]}
        for e in exc.errors()
    ]
    if any(e["type"] == "json_invalid" for e in errors):
        return problem(400, "malformed_json", "the body is not valid JSON", request.url.path)
    detail = "; ".join(f"{'.'.join(e['loc'][1:]) or e['loc'][0]}: {e['msg']}" for e in errors)
    return problem(422, "invalid_request", detail, request.url.path, errors=errors)


async def _http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    status = exc.status_code
    try:
        phrase = HTTPStatus(status).phrase
    except ValueError:
        phrase = "Error"
    code = getattr(exc, "code", None) or phrase.lower().replace(" ", "_").replace("-", "_")
    detail = str(exc.detail)
    headers = dict(exc.headers or {})
    if detail == phrase:
        # The framework's own refusals say only their phrase: say what was asked.
        if status == 404:
            detail = f"nothing is at {request.url.path}"
        elif status == 405:
            headers["Allow"] = ", ".join(allowed_methods(request.app, request.url.path))
            allowed = headers["Allow"]
            detail = f"{request.method} is not allowed on {request.url.path}; allowed: {allowed}"
    return problem(status, code, detail, request.url.path, headers=headers or None)


def allowed_methods(app: Any, path: str) -> list[str]:
    """Every method some route of `app` answers on `path`, for a 405's Allow header.

    The router names only the methods of the first route that matched the
    path, and GET /v1/accounts and POST /v1/accounts are two routes.
    """
    methods: set[str] = set()
    for route in routes_of(app):
        if getattr(route, "methods", None) and route.path_regex.match(path):
            methods |= route.methods
    return sorted(methods)


def routes_of(app: Any) -> Iterator[Any]:
    """Every route of `app`, those of included routers too."""
    pending = list(app.routes)
    while pending:
        route = pending.pop()
        # An included router (FastAPI's private _IncludedRouter) holds its routes inside.
        inner = getattr(route, "original_router", None)
        if inner is not None:
            pending.extend(inner.routes)
        else:
            yield route


def install(app: FastAPI) -> None:
    """Register the handlers on the app."""
    for exc_class in STATUS:
        app.add_exception_handler(exc_class, _known)
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(HTTPException, _http)
    for infra_error in INFRASTRUCTURE_ERRORS:
        app.add_exception_handler(infra_error, _unavailable)
