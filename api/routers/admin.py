"""Operations for administrators: /v1/admin."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query

from api.auth import Permission, Principal, require
from api.deps import Context, ServicesDep
from api.schemas import ProjectionOut, RebuildOut, RetentionOut
from domain.errors import NotFound
from projections.catalog import READ_MODELS

router = APIRouter(prefix="/v1/admin", tags=["admin"])

Admin = Annotated[Principal, require(Permission.OPERATE)]
Operator = Annotated[Principal, require(Permission.OPERATE, Permission.AUDIT)]
# Auditors read the projections' status too (api/auth.py says why).
ProjectionReader = Annotated[Principal, require(Permission.READ_PROJECTIONS)]


@router.post("/retention/run", response_model=RetentionOut)
def run_retention(
    user: Admin,
    ctx: Context,
    services: ServicesDep,
    dry_run: Annotated[bool, Query(description="list what would be erased, erase nothing")] = False,
) -> RetentionOut:
    """Erase the personal data of accounts closed longer than the retention period."""
    days = services.settings.retention_days
    erased = services.ledger.erase_expired(
        days, datetime.now(UTC), ctx.meta("retention"), dry_run=dry_run
    )
    return RetentionOut(dry_run=dry_run, retention_days=days, erased=erased)


@router.get("/projections", response_model=list[ProjectionOut])
def projections(user: ProjectionReader, services: ServicesDep) -> list[ProjectionOut]:
    """Each read model's position and lag behind the ledger."""
    return [ProjectionOut(**s) for s in services.readmodels.status()]


@router.post("/projections/{name}/rebuild", response_model=RebuildOut)
def rebuild(name: str, user: Admin, services: ServicesDep) -> RebuildOut:
    """Rebuild one read model from the event store (the others keep running)."""
    if name not in READ_MODELS:
        raise NotFound(f"no read model {name!r}; known: {', '.join(READ_MODELS)}")
    started = time.perf_counter()
    events = services.readmodels.rebuild(name)
    return RebuildOut(name=name, events=events, seconds=time.perf_counter() - started)
