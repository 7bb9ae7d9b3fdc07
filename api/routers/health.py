"""Liveness, readiness and metrics."""

from __future__ import annotations

from fastapi import APIRouter, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.deps import ServicesDep
from infra.metrics import refresh

router = APIRouter(tags=["operations"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    """The process is alive."""
    return {"status": "ok"}


@router.get("/readyz")
def readyz(services: ServicesDep, response: Response) -> dict[str, str]:
    """The process can reach its database."""
    try:
        with services.pool.connection(timeout=2) as conn:
            conn.execute("SELECT 1")
    except Exception as e:  # any failure to reach the database means not ready
        response.status_code = 503
        return {"status": "unavailable", "detail": type(e).__name__}
    return {"status": "ready"}


@router.get("/metrics")
def metrics(services: ServicesDep) -> Response:
    """Prometheus metrics."""
    # Positions kept in PostgreSQL (relay, read models) are read at each scrape.
    refresh(services)
    return Response(generate_latest(), media_type=CONTENT_TYPE_LATEST)
