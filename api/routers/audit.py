"""Integrity checks for auditors: /v1/audit."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query

from api.auth import Permission, Principal, require
from api.deps import ServicesDep
from api.schemas import VerifyOut

router = APIRouter(prefix="/v1/audit", tags=["audit"])

Auditor = Annotated[Principal, require(Permission.AUDIT)]


@router.get("/verify", response_model=VerifyOut)
def verify(
    user: Auditor,
    services: ServicesDep,
    account_id: Annotated[UUID | None, Query(description="verify this account only")] = None,
) -> VerifyOut:
    """Recompute the hash chains and name the first account and version that break."""
    report = services.ledger.verify(account_id)
    broken = report.first_break
    return VerifyOut(
        ok=report.ok,
        events=report.events,
        accounts=report.accounts,
        broken_account_id=broken.account_id if broken else None,
        broken_version=broken.version if broken else None,
        broken_position=broken.position if broken else None,
        reason=broken.reason if broken else None,
    )
