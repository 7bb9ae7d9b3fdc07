"""Every refusal becomes application/problem+json (RFC 9457), mapped here and only here."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from api.auth import Forbidden, Unauthenticated
from domain.errors import (
    ConflictingState,
    InvalidCommand,
    LedgerError,
    NotFound,
    StaleVersion,
)
from infra.idempotency import KeyInFlight, KeyReused

PROBLEM = "application/problem+json"

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


STATUS[BadRequest] = 400


def problem(status: int, title: str, detail: str, instance: str, **extra: Any) -> JSONResponse:
    """A problem+json response."""
    body = {
        "type": f"urn:crmledger:problem:{title.lower().replace(' ', '-')}",
        "title": title,
        "status": status,
        "detail": detail,
        "instance": instance,
        **extra,
    }
    headers = {"WWW-Authenticate": "Bearer"} if status == 401 else None
    return JSONResponse(body, status_code=status, media_type=PROBLEM, headers=headers)


def _status_of(exc: Exception) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 500


async def _known(request: Request, exc: Exception) -> JSONResponse:
    status = _status_of(exc)
    code = exc.code if isinstance(exc, LedgerError) else type(exc).__name__
    detail = exc.detail if isinstance(exc, LedgerError) else str(exc)
    if isinstance(exc, KeyReused):
        detail = "this Idempotency-Key was used before with a different request"
    elif isinstance(exc, KeyInFlight):
        detail = "the first request with this Idempotency-Key is still running"
    return problem(status, _title(code), detail, request.url.path)


async def _invalid(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [
        {"loc": [str(p) for p in e.get("loc", ())], "msg": e.get("msg", ""), "type": e["type"]}
        for e in exc.errors()
    ]
    if any(e["type"] == "json_invalid" for e in errors):
        return problem(400, "Malformed JSON", "the body is not valid JSON", request.url.path)
    detail = "; ".join(f"{'.'.join(e['loc'][1:]) or e['loc'][0]}: {e['msg']}" for e in errors)
    return problem(422, "Invalid request", detail, request.url.path, errors=errors)


async def _http(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, HTTPException)
    return problem(exc.status_code, _title(str(exc.detail)), str(exc.detail), request.url.path)


def _title(code: str) -> str:
    return code.replace("_", " ").capitalize()


def install(app: FastAPI) -> None:
    """Register the handlers on the app."""
    for exc_class in STATUS:
        app.add_exception_handler(exc_class, _known)
    app.add_exception_handler(RequestValidationError, _invalid)
    app.add_exception_handler(HTTPException, _http)
