"""Operations for administrators: /v1/admin."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated

from fastapi import APIRouter, Query

from api.auth import Permission, Principal, require
from api.deps import Context, ServicesDep
from api.schemas import RetentionOut

router = APIRouter(prefix="/v1/admin", tags=["admin"])

Admin = Annotated[Principal, require(Permission.OPERATE)]


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
