"""Account commands and reads: /v1/accounts."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Response

from api.auth import Forbidden, Permission, Principal, require
from api.deps import (
    CommandContext,
    Context,
    ExpectedVersion,
    Idempotency,
    IdempotencyDep,
    ServicesDep,
)
from api.errors import BadRequest
from api.schemas import (
    AccountOut,
    ActivityIn,
    ChangePlan,
    ChangeSegment,
    CloseAccount,
    ConfirmDetails,
    DirectoryOut,
    EraseAccount,
    EraseOut,
    HistoryOut,
    OpenAccount,
    PersonalDataOut,
    UpdateDetails,
    to_activity,
)
from api.views import (
    account_out,
    decode_cursor,
    directory_entry,
    encode_cursor,
    history_out,
    personal_data_out,
)
from domain.account import CustomerAccount
from infra.wiring import Services
from projections.directory import search_accounts

router = APIRouter(prefix="/v1/accounts", tags=["accounts"])

Manager = Annotated[Principal, require(Permission.MANAGE_ACCOUNTS)]
Recorder = Annotated[Principal, require(Permission.RECORD_ACTIVITIES)]
Reader = Annotated[Principal, require(Permission.READ_UNMASKED, Permission.READ_MASKED)]
Historian = Annotated[Principal, require(Permission.READ_HISTORY)]
Searcher = Annotated[Principal, require(Permission.SEARCH_DIRECTORY)]
Eraser = Annotated[Principal, require(Permission.ERASE)]
PrivacyOfficer = Annotated[Principal, require(Permission.DATA_ACCESS_REQUEST)]


def _show(
    services: Services, account: CustomerAccount, user: Principal, response: Response, what: str
) -> AccountOut:
    response.headers["ETag"] = f'"{account.version}"'
    return account_out(services, account, user, what)


class Commands:
    """What every account command route shares: run once per Idempotency-Key, answer the account."""

    def __init__(
        self,
        services: Services,
        ctx: CommandContext,
        expected: int | None,
        idem: Idempotency,
        response: Response,
    ) -> None:
        self.services, self.ctx, self.expected = services, ctx, expected
        self.idem, self.response = idem, response
        self.ledger = services.ledger

    def run(
        self, user: Principal, what: str, act: Callable[[], CustomerAccount], status: int = 200
    ) -> Any:
        """Run `act` (once per key) and answer with the account as `user` may see it."""
        return self.idem.run(
            lambda: _show(self.services, act(), user, self.response, what), self.response, status
        )


async def commands(
    services: ServicesDep,
    ctx: Context,
    expected: ExpectedVersion,
    idem: IdempotencyDep,
    response: Response,
) -> Commands:
    """The shared part of a command route (async: no thread hop to build it)."""
    return Commands(services, ctx, expected, idem, response)


CommandsDep = Annotated[Commands, Depends(commands)]


@router.post("", response_model=AccountOut, status_code=201)
def open_account(
    body: OpenAccount,
    user: Manager,
    ctx: Context,
    services: ServicesDep,
    idem: IdempotencyDep,
    response: Response,
) -> Any:
    """Open an account for a customer."""

    def command() -> AccountOut:
        account = services.ledger.open_account(
            external_ref=body.external_ref,
            segment=body.segment,
            service_plan=body.service_plan,
            channel=body.channel,
            customer=body.customer.fields(),
            occurred_at=ctx.when(body.occurred_at),
            meta=ctx.meta(body.reason),
        )
        response.headers["Location"] = f"/v1/accounts/{account.id}"
        return _show(services, account, user, response, "open")

    return idem.run(command, response, 201)


@router.get("", response_model=DirectoryOut)
def directory(
    user: Searcher,
    services: ServicesDep,
    segment: Annotated[str | None, Query(max_length=100)] = None,
    status: Annotated[Literal["open", "closed"] | None, Query()] = None,
    channel: Annotated[Literal["store", "online", "app", "phone"] | None, Query()] = None,
    q: Annotated[str | None, Query(min_length=2, max_length=100)] = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> DirectoryOut:
    """Search the account directory; contact fields are masked for roles that may not see them."""
    unmasked = user.may(Permission.READ_UNMASKED)
    with services.pool.connection() as conn:
        rows = search_accounts(
            conn,
            services.settings.readmodel_schema,
            segment=segment,
            status=status,
            channel=channel,
            q=q,
            q_personal=unmasked,
            after=decode_cursor(cursor) if cursor else None,
            limit=limit,
        )
    items = [directory_entry(row, unmasked) for row in rows]
    if unmasked:
        shown = [(i.id, list(i.contact)) for i in items if i.contact]
        services.access_log.record_many(user.sub, user.roles, shown, "directory")
    last = rows[-1] if len(rows) == limit else None
    return DirectoryOut(
        items=items,
        next_cursor=encode_cursor(last["opened_at"], last["account_id"]) if last else None,
    )


@router.get("/{account_id}", response_model=AccountOut)
def read_account(
    account_id: UUID,
    user: Reader,
    services: ServicesDep,
    response: Response,
    version: Annotated[int | None, Query(ge=1, description="state at this version")] = None,
    as_of: Annotated[
        datetime | None, Query(description="state as recorded at this moment (ISO-8601)")
    ] = None,
) -> AccountOut:
    """Read an account now, at a version, or as it stood at a moment."""
    if version is not None and as_of is not None:
        raise BadRequest("give version or as_of, not both")
    if (version is not None or as_of is not None) and not user.may(Permission.READ_HISTORY):
        raise Forbidden(
            "point-in-time reads need one of the roles: admin, auditor, customer_service"
        )
    if as_of is not None and as_of.tzinfo is None:
        raise BadRequest("as_of needs a time zone offset")
    account = services.ledger.account(account_id, version=version, as_of=as_of)
    return _show(services, account, user, response, "read")


@router.patch("/{account_id}", response_model=AccountOut)
def update_details(
    account_id: UUID,
    body: UpdateDetails,
    user: Manager,
    ctx: Context,
    services: ServicesDep,
    expected: ExpectedVersion,
    response: Response,
) -> AccountOut:
    """Update the customer's personal details (If-Match: the version you read)."""
    account = services.ledger.update_details(
        account_id,
        body.customer.fields(),
        ctx.when(body.occurred_at),
        ctx.meta(body.reason),
        expected,
    )
    return _show(services, account, user, response, "update")


@router.post("/{account_id}/confirm-details", response_model=AccountOut)
def confirm_details(
    account_id: UUID, user: Manager, run: CommandsDep, body: ConfirmDetails | None = None
) -> Any:
    """Record that the customer confirmed their details are still right."""
    b = body or ConfirmDetails()
    return run.run(
        user,
        "confirm-details",
        lambda: run.ledger.confirm_details(
            account_id, run.ctx.when(b.occurred_at), run.ctx.meta(b.reason), run.expected
        ),
    )


@router.post("/{account_id}/segment", response_model=AccountOut)
def change_segment(account_id: UUID, body: ChangeSegment, user: Manager, run: CommandsDep) -> Any:
    """Move the account to another customer segment."""
    return run.run(
        user,
        "segment",
        lambda: run.ledger.change_segment(
            account_id,
            body.segment,
            run.ctx.when(body.occurred_at),
            run.ctx.meta(body.reason),
            run.expected,
        ),
    )


@router.post("/{account_id}/plan", response_model=AccountOut)
def change_plan(account_id: UUID, body: ChangePlan, user: Manager, run: CommandsDep) -> Any:
    """Move the account to another service plan."""
    return run.run(
        user,
        "plan",
        lambda: run.ledger.change_plan(
            account_id,
            body.service_plan,
            run.ctx.when(body.occurred_at),
            run.ctx.meta(body.reason),
            run.expected,
        ),
    )


@router.post("/{account_id}/close", response_model=AccountOut)
def close_account(account_id: UUID, body: CloseAccount, user: Manager, run: CommandsDep) -> Any:
    """Close the account; afterwards it takes no command except erase."""
    return run.run(
        user,
        "close",
        lambda: run.ledger.close_account(
            account_id,
            body.reason,
            body.note,
            run.ctx.when(body.occurred_at),
            run.ctx.meta(body.reason),
            run.expected,
        ),
    )


@router.post("/{account_id}/activities", response_model=AccountOut, status_code=201)
def record_activity(account_id: UUID, body: ActivityIn, user: Recorder, run: CommandsDep) -> Any:
    """Record one service activity: purchase, refund, visit, inquiry, complaint, feedback."""
    return run.run(
        user,
        "activity",
        lambda: run.ledger.record_activity(
            account_id,
            to_activity(body),
            run.ctx.when(body.occurred_at),
            run.ctx.meta(body.reason),
            run.expected,
        ),
        status=201,
    )


@router.get("/{account_id}/history", response_model=HistoryOut)
def history(account_id: UUID, user: Historian, services: ServicesDep) -> HistoryOut:
    """Every event of the account with its metadata and hashes."""
    events = services.ledger.history(account_id)
    account = services.ledger.account(account_id)
    return HistoryOut(account_id=account_id, events=history_out(services, account, events, user))


@router.get("/{account_id}/personal-data", response_model=PersonalDataOut)
def personal_data(account_id: UUID, user: PrivacyOfficer, services: ServicesDep) -> PersonalDataOut:
    """Everything held on the customer, now and in each event (a data access request)."""
    events = services.ledger.history(account_id)
    account = services.ledger.account(account_id)
    return personal_data_out(services, account, events, user)


@router.post("/{account_id}/erase", response_model=EraseOut)
def erase(
    account_id: UUID,
    user: Eraser,
    ctx: Context,
    services: ServicesDep,
    body: EraseAccount | None = None,
) -> EraseOut:
    """Erase the customer's personal data (crypto-shredding); the history stays."""
    body = body or EraseAccount()
    account, erased = services.ledger.erase(
        account_id, body.reason, ctx.when(body.occurred_at), ctx.meta(body.reason)
    )
    return EraseOut(account_id=account_id, erased=erased, version=account.version)
