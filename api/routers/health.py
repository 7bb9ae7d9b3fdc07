"""Liveness, readiness and metrics.

/healthz answers as long as the process serves HTTP: it touches nothing.
/readyz answers 200 when the database answers `SELECT 1` within READY_TIMEOUT
seconds, and otherwise a 503 problem (`urn:crmledger:problem:unavailable`)
whose detail says why ("database unreachable: ..."), with Retry-After.
Its body also names each background role of the process that is failing now
and why ("broker unreachable: ..."): the API serves without the broker (the
relay publishes later), so a failing role makes the process degraded, not
unready.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response
from fastapi.responses import PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.deps import ServicesDep
from infra.database import INFRASTRUCTURE_ERRORS, as_unavailable
from infra.metrics import refresh
from infra.worker import live_workers

router = APIRouter(tags=["operations"])

# Seconds /readyz waits for a connection and for its statement.
READY_TIMEOUT = 1.0


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is alive."""
    return {"status": "ok"}


@router.get("/readyz")
def readyz(services: ServicesDep) -> dict[str, Any]:
    """The process can reach its database; failing background roles are named."""
    try:
        with services.pool.connection(timeout=READY_TIMEOUT) as conn, conn.transaction():
            conn.execute(f"SET LOCAL statement_timeout = {int(READY_TIMEOUT * 1000)}".encode())
            conn.execute("SELECT 1")
    except INFRASTRUCTURE_ERRORS as e:
        raise as_unavailable(e) from e
    roles = {w.name: w.problem or "ok" for w in live_workers()}
    degraded = any(state != "ok" for state in roles.values())
    return {"status": "degraded" if degraded else "ready", "database": "ok", "roles": roles}


@router.get("/metrics", response_class=PlainTextResponse)
def metrics(services: ServicesDep) -> Response:
    """Prometheus metrics."""
    # Positions kept in PostgreSQL (relay, read models) are read at each scrape.
    refresh(services)
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
