"""Operations for administrators: /v1/admin."""

from __future__ import annotations

import time
from dataclasses import asdict
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated

from fastapi import APIRouter, Path, Query

from api.auth import Permission, Principal, require
from api.deps import Context, ServicesDep
from api.schemas import (
    ParkedEventOut,
    ParkedOut,
    ProjectionOut,
    RebuildOut,
    RetentionOut,
    RetryOut,
)
from domain.errors import NotFound
from projections.catalog import READ_MODELS
from projections.parking import ParkedEvent

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
    outcome = services.readmodels.rebuild(name)
    positions = outcome.positions()
    return RebuildOut(
        name=name,
        events=outcome.events,
        seconds=time.perf_counter() - started,
        parked=len(positions),
        parked_positions=positions[:1000],
    )


# An unknown read model is a 422 like any parameter out of its values.
ReadModel = StrEnum("ReadModel", {name: name for name in READ_MODELS})  # type: ignore[misc]
ReadModelName = Annotated[
    ReadModel | None, Query(description="only this read model's parked events")
]


@router.get("/projections/parked", response_model=ParkedOut)
def parked(
    user: ProjectionReader,
    services: ServicesDep,
    read_model: ReadModelName = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> ParkedOut:
    """Events the read models set aside because they could not apply them, oldest first."""
    rows = services.readmodels.store.parked(_name(read_model), limit=limit)
    return ParkedOut(items=[_parked_out(r) for r in rows])


@router.post("/projections/parked/retry", response_model=RetryOut)
def retry_all(user: Admin, services: ServicesDep, read_model: ReadModelName = None) -> RetryOut:
    """Apply every parked event again; what fails again stays parked."""
    return _retry_out(services.readmodels.retry(_name(read_model)))


@router.post("/projections/parked/{position}/retry", response_model=RetryOut)
def retry(
    user: Admin,
    services: ServicesDep,
    position: Annotated[int, Path(ge=1, le=2**63 - 1)],
    read_model: ReadModelName = None,
) -> RetryOut:
    """Apply the parked event at this ledger position again; it stays parked if it fails again."""
    name = _name(read_model)
    if not services.readmodels.store.parked(name, position):
        raise NotFound(f"no parked event at position {position}")
    return _retry_out(services.readmodels.retry(name, position))


def _name(read_model: ReadModel | None) -> str | None:
    return None if read_model is None else str(read_model.value)


def _parked_out(row: ParkedEvent) -> ParkedEventOut:
    fields = asdict(row)
    return ParkedEventOut(read_model=fields.pop("projection"), **fields)


def _retry_out(retried: tuple[list[ParkedEvent], list[ParkedEvent]]) -> RetryOut:
    applied, still = retried
    return RetryOut(
        applied=[_parked_out(r) for r in applied], still_parked=[_parked_out(r) for r in still]
    )
