"""Integrity, replay and access for auditors: /v1/audit."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query

from api.auth import Permission, Principal, require
from api.deps import ServicesDep
from api.errors import BadRequest
from api.params import Instant
from api.schemas import (
    AccessLogOut,
    AuditEventOut,
    AuditPageOut,
    DigestOut,
    VerifyOut,
)
from api.views import audit_events_out

router = APIRouter(prefix="/v1/audit", tags=["audit"])

Auditor = Annotated[Principal, require(Permission.AUDIT)]
Position = Annotated[int | None, Query(ge=1, description="a position in the ledger")]


@router.get("/verify", response_model=VerifyOut)
def verify(
    user: Auditor,
    services: ServicesDep,
    account_id: Annotated[UUID | None, Query(description="verify this account only")] = None,
    digest: Annotated[
        str | None, Query(pattern="^[0-9a-f]{64}$", description="a digest you kept")
    ] = None,
    position: Position = None,
) -> VerifyOut:
    """Recompute the hash chains (and a kept digest) and name the first break."""
    if (digest is None) != (position is None):
        raise BadRequest("give digest and position together")
    if account_id is not None and digest is not None:
        raise BadRequest("a digest covers the whole ledger: leave out account_id")
    report = services.ledger.verify(account_id, up_to=position)
    broken = report.first_break
    whole = account_id is None
    return VerifyOut(
        ok=report.ok and (digest is None or report.digest == digest),
        events=report.events,
        accounts=report.accounts,
        position=report.position if whole else None,
        digest=report.digest if whole else None,
        digest_matches=None if digest is None else report.digest == digest,
        broken_account_id=broken.account_id if broken else None,
        broken_version=broken.version if broken else None,
        broken_position=broken.position if broken else None,
        reason=broken.reason if broken else None,
    )


@router.get("/digest", response_model=DigestOut)
def digest(user: Auditor, services: ServicesDep, position: Position = None) -> DigestOut:
    """The ledger digest now, or at a past position: keep it to prove history later."""
    at, value = services.ledger.digest(position)
    return DigestOut(position=at, digest=value)


@router.get("/events", response_model=AuditPageOut)
def events(
    user: Auditor,
    services: ServicesDep,
    after: Annotated[int, Query(ge=0, description="read events after this position")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
    account_id: UUID | None = None,
    type: Annotated[list[str] | None, Query(description="event types, e.g. AccountOpened")] = None,
    since: Annotated[
        Instant | None, Query(alias="from", description="recorded at or after (with an offset)")
    ] = None,
    until: Annotated[
        Instant | None, Query(alias="to", description="recorded before (with an offset)")
    ] = None,
) -> AuditPageOut:
    """Every event of every account in store order: the replay feed."""
    page = services.audit_feed.page(
        after, limit, account_id=account_id, types=type or (), since=since, until=until
    )
    out: list[AuditEventOut] = audit_events_out(services, page.events, user)
    return AuditPageOut(events=out, next_after=page.next_after)


@router.get("/access-log", response_model=AccessLogOut)
def access_log(
    user: Auditor,
    services: ServicesDep,
    account_id: UUID | None = None,
    actor: Annotated[str | None, Query(max_length=200)] = None,
    since: Annotated[Instant | None, Query(alias="from", description="read at or after")] = None,
    until: Annotated[Instant | None, Query(alias="to", description="read before")] = None,
    after: Annotated[int, Query(ge=0)] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> AccessLogOut:
    """Who read which account's personal data unmasked, and when."""
    entries = services.access_log.query(
        account_id=account_id, actor=actor, since=since, until=until, after_id=after, limit=limit
    )
    return AccessLogOut(
        entries=entries,
        next_after=entries[-1].id if entries else after,
    )
