"""Puts the console into the API's app: its sessions, static files, sign-in and pages."""

from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.staticfiles import StaticFiles

from console import accounts, signin, work_queue
from console.account_commands import router as account_commands_router
from console.account_open import router as account_open_router
from console.admin import router as admin_router
from console.admin_dead_letters import router as dead_letters_router
from console.admin_guidelines import router as guidelines_router
from console.audit import router as audit_router
from console.audit_records import router as audit_records_router
from console.rendering import ConsoleRoute, PageNotFound, templates
from console.reports import router as reports_router
from console.sessions import PREFIX, ConsoleSessions, session_key
from infra.secrets import master_key
from infra.wiring import Services

STATIC = Path(__file__).parent / "static"

# Last: any other /console address is a page saying nothing is there, not problem+json.
unknown = APIRouter(prefix=PREFIX, route_class=ConsoleRoute, include_in_schema=False)


@unknown.api_route("/{rest:path}", methods=["GET", "POST"])
async def not_found(request: Request, rest: str) -> Response:
    """Nothing of the console is here."""
    raise PageNotFound


def install(app: FastAPI, services: Services) -> None:
    """Serve the console under /console on `app`, signing its sessions with the master key."""
    settings = services.settings
    app.state.console_oauth = signin.register_provider(settings)
    templates.env.globals["zone"] = settings.timezone
    app.mount(f"{PREFIX}/static", StaticFiles(directory=STATIC), name="console_static")
    app.include_router(signin.router)
    app.include_router(account_open_router)  # before accounts': /new is not an account's ID
    app.include_router(accounts.router)
    app.include_router(account_commands_router)
    app.include_router(work_queue.router)
    app.include_router(reports_router)
    app.include_router(audit_router)
    app.include_router(audit_records_router)
    app.include_router(admin_router)
    app.include_router(dead_letters_router)
    app.include_router(guidelines_router)
    app.include_router(unknown)
    idle = max(60, int(settings.console_idle_minutes * 60))
    app.add_middleware(ConsoleSessions, key=session_key(master_key(settings)), idle_seconds=idle)
