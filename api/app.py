"""The FastAPI application: routers, error mapping, metrics, a body size limit."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response

from api import errors
from api.metrics import measure
from api.routers import accounts, admin, audit, guidelines, health, reports
from infra.wiring import Services

MAX_BODY = 64 * 1024


def create_app(services: Services) -> FastAPI:
    """The API over `services` (built by infra.wiring.bootstrap)."""
    app = FastAPI(
        title="crmledger",
        version="0.1.0",
        description="Event-sourced ledger of customer accounts for retail account services.",
    )
    app.state.services = services
    errors.install(app)
    app.include_router(accounts.router)
    app.include_router(audit.router)
    app.include_router(admin.router)
    app.include_router(reports.router)
    app.include_router(guidelines.router)
    app.include_router(health.router)

    @app.middleware("http")
    async def limit_body(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        # Refuse oversized bodies before anything parses them.
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > MAX_BODY):
            return errors.problem(
                413, "Body too large", f"bodies are limited to {MAX_BODY} bytes", request.url.path
            )
        return await measure(request, call_next)

    return app
