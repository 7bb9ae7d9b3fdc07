"""The FastAPI application: routers, error mapping, documented problems, metrics, body limit."""

from __future__ import annotations

from fastapi import Depends, FastAPI

from api import docs, errors, openapi
from api.inputs import clean_query
from api.metrics import Measured
from api.routers import accounts, admin, audit, guidelines, health, proofs, reports
from console.mount import install as install_console
from infra.wiring import Services


def create_app(services: Services) -> FastAPI:
    """The API over `services` (built by infra.wiring.bootstrap)."""
    app = FastAPI(
        title="crmledger",
        version="0.1.0",
        description="Event-sourced ledger of customer accounts for retail account services.",
        dependencies=[Depends(clean_query)],
        # /docs and /redoc from local assets (api/docs.py), not FastAPI's CDN pages.
        docs_url=None,
        redoc_url=None,
    )
    app.state.services = services
    errors.install(app)
    app.include_router(accounts.router)
    app.include_router(audit.router)
    app.include_router(proofs.router)
    app.include_router(admin.router)
    app.include_router(reports.router)
    app.include_router(guidelines.router)
    app.include_router(health.router)
    install_console(app, services)  # the staff console under /console (console/)

    openapi.install(app)
    docs.install(app)
    app.add_middleware(Measured)
    return app
