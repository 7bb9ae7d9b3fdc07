"""Account commands and reads: /v1/accounts."""

from __future__ import annotations

from typing import Annotated, Literal
from uuid import UUID

from fastapi import APIRouter, Query, Response

from api.auth import Forbidden, Permission, Principal, require
from api.commands import Erase, Manage, Record
from api.deps import ServicesDep
from api.errors import BadRequest
from api.inputs import ExactJSONRoute
from api.params import Instant
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
    flag,
    history_out,
    integrity_warning,
    personal_data_out,
)
from domain.account import CustomerAccount
from domain.errors import LedgerIntegrityError
from infra.wiring import Services

router = APIRouter(prefix="/v1/accounts", tags=["accounts"], route_class=ExactJSONRoute)

Reader = Annotated[Principal, require(Permission.READ_UNMASKED, Permission.READ_MASKED)]
Historian = Annotated[Principal, require(Permission.READ_HISTORY)]
Searcher = Annotated[Principal, require(Permission.SEARCH_DIRECTORY)]
PrivacyOfficer = Annotated[Principal, require(Permission.DATA_ACCESS_REQUEST)]


def _show(
    services: Services, account: CustomerAccount, user: Principal, response: Response, what: str
) -> AccountOut:
    response.headers["ETag"] = f'"{account.version}"'
    return account_out(services, account, user, what)


@router.post("", response_model=AccountOut, status_code=201)
async def open_account(body: OpenAccount, cmd: Manage) -> AccountOut:
    """Open an account for a customer."""
    return await cmd.account(
        "open",
        lambda: cmd.ledger.open_account(
            external_ref=body.external_ref,
            segment=body.segment,
            service_plan=body.service_plan,
            channel=body.channel,
            customer=body.customer.fields(),
            occurred_at=cmd.when(body.occurred_at),
            meta=cmd.meta(body.reason),
        ),
        201,
        located=True,
    )


@router.get("", response_model=DirectoryOut)
def directory(
    user: Searcher,
    services: ServicesDep,
    segment: Annotated[str | None, Query(max_length=100)] = None,
    status: Annotated[Literal["open", "closed"] | None, Query()] = None,
    channel: Annotated[Literal["store", "online", "app", "phone"] | None, Query()] = None,
    q: Annotated[
        str | None,
        Query(
            min_length=2,
            max_length=100,
            description=(
                "exact match, not a substring: an external reference; for roles that see"
                " contact fields unmasked also a name (every word given must be one of the"
                " name's words, in any case), a whole email address (any case), or a phone"
                " number (all its digits: +852 9137 4682 is 85291374682)"
            ),
        ),
    ] = None,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> DirectoryOut:
    """Search the account directory; contact fields are masked for roles that may not see them.

    Contact fields are searched by exact match of whole words, emails and
    phone numbers through keyed blind indexes (the directory holds them only
    as ciphertext), and only for roles that may see them unmasked, so a
    masked reader cannot probe for a person.
    """
    unmasked = user.may(Permission.READ_UNMASKED)
    rows = services.readmodels.directory(
        q,
        personal=unmasked,
        segment=segment,
        status=status,
        channel=channel,
        after=decode_cursor(cursor) if cursor else None,
        limit=limit,
    )
    services.vault.prefetch(row["account_id"] for row in rows)  # one query, not one a row
    items = [directory_entry(services, row, unmasked) for row in rows]
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
        Instant | None, Query(description="state as recorded at this moment (with an offset)")
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
    out = _show(services, account, user, response, "read")
    flag(response, out.integrity_warning)
    return out


@router.patch("/{account_id}", response_model=AccountOut)
async def update_details(account_id: UUID, body: UpdateDetails, cmd: Manage) -> AccountOut:
    """Update the customer's personal details (If-Match: the version you read)."""
    return await cmd.apply(
        "update", cmd.ledger.update_details, account_id, body.customer.fields(), body=body
    )


@router.post("/{account_id}/confirm-details", response_model=AccountOut)
async def confirm_details(
    account_id: UUID, cmd: Manage, body: ConfirmDetails | None = None
) -> AccountOut:
    """Record that the customer confirmed their details are still right."""
    b = body or ConfirmDetails()
    return await cmd.apply("confirm-details", cmd.ledger.confirm_details, account_id, body=b)


@router.post("/{account_id}/segment", response_model=AccountOut)
async def change_segment(account_id: UUID, body: ChangeSegment, cmd: Manage) -> AccountOut:
    """Move the account to another customer segment."""
    return await cmd.apply(
        "segment", cmd.ledger.change_segment, account_id, body.segment, body=body
    )


@router.post("/{account_id}/plan", response_model=AccountOut)
async def change_plan(account_id: UUID, body: ChangePlan, cmd: Manage) -> AccountOut:
    """Move the account to another service plan."""
    return await cmd.apply("plan", cmd.ledger.change_plan, account_id, body.service_plan, body=body)


@router.post("/{account_id}/close", response_model=AccountOut)
async def close_account(account_id: UUID, body: CloseAccount, cmd: Manage) -> AccountOut:
    """Close the account; afterwards it takes no command except erase."""
    # The close reason is also the event's metadata reason: one reason, given once.
    return await cmd.apply(
        "close", cmd.ledger.close_account, account_id, body.reason, body.note, body=body
    )


@router.post("/{account_id}/activities", response_model=AccountOut, status_code=201)
async def record_activity(account_id: UUID, body: ActivityIn, cmd: Record) -> AccountOut:
    """Record one service activity: purchase, refund, visit, inquiry, complaint, feedback."""
    activity = to_activity(body)
    return await cmd.apply(
        "activity", cmd.ledger.record_activity, account_id, activity, body=body, status=201
    )


@router.get("/{account_id}/history", response_model=HistoryOut)
def history(
    account_id: UUID, user: Historian, services: ServicesDep, response: Response
) -> HistoryOut:
    """Every event of the account with its metadata and hashes (an unreadable one as such)."""
    events = services.ledger.history(account_id)
    warning = integrity_warning(services, account_id, events)
    flag(response, warning)
    return HistoryOut(
        account_id=account_id,
        events=history_out(services, account_id, events, user),
        integrity_warning=warning,
    )


@router.get("/{account_id}/personal-data", response_model=PersonalDataOut)
def personal_data(account_id: UUID, user: PrivacyOfficer, services: ServicesDep) -> PersonalDataOut:
    """Everything held on the customer, now and in each event (a data access request)."""
    events = services.ledger.history(account_id)
    try:
        account: CustomerAccount | None = services.ledger.account(account_id)
    except LedgerIntegrityError:
        account = None  # the readable records are still owed to the customer
    return personal_data_out(services, account_id, account, events, user)


@router.post("/{account_id}/erase", response_model=EraseOut)
async def erase(account_id: UUID, cmd: Erase, body: EraseAccount | None = None) -> EraseOut:
    """Erase the customer's personal data (crypto-shredding); the history stays."""
    b = body or EraseAccount()
    return await cmd.erase(
        account_id,
        lambda: cmd.ledger.erase(account_id, b.reason, cmd.when(b.occurred_at), cmd.meta(b.reason)),
    )
