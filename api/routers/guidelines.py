"""Service performance guidelines, the targets the scheme review checks: /v1/guidelines."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter

from api.auth import Permission, Principal, require
from api.deps import ServicesDep
from api.report_schemas import GuidelineOut, GuidelinesIn, GuidelinesOut
from infra.wiring import Services
from projections.guidelines import read_guidelines, set_guidelines

router = APIRouter(prefix="/v1/guidelines", tags=["guidelines"])

Reader = Annotated[Principal, require(Permission.READ_GUIDELINES)]
Writer = Annotated[Principal, require(Permission.WRITE_GUIDELINES)]


@router.get("", response_model=GuidelinesOut)
def get_guidelines(user: Reader, services: ServicesDep) -> GuidelinesOut:
    """Every KPI's target, as set by management or by default."""
    return _guidelines(services)


@router.put("", response_model=GuidelinesOut)
def put_guidelines(user: Writer, body: GuidelinesIn, services: ServicesDep) -> GuidelinesOut:
    """Set the targets of the KPIs given (null returns one to its default); others stay."""
    changes = {kpi: None if g is None else (g.comparison, g.target) for kpi, g in body.root.items()}
    with services.pool.connection() as conn:
        set_guidelines(conn, changes, user.sub)
    return _guidelines(services)


def _guidelines(services: Services) -> GuidelinesOut:
    with services.pool.connection() as conn:
        guidelines = read_guidelines(conn)
    return GuidelinesOut(
        {
            kpi: GuidelineOut(
                comparison=g.comparison,
                target=g.target,
                source="default" if g.updated_by is None else "set",
                updated_at=g.updated_at,
                updated_by=g.updated_by,
            )
            for kpi, g in guidelines.items()
        }
    )
