"""The one dependency of every account command route.

Each command route (open, update, confirm, segment, plan, close, activities,
erase) asks for a `Commands` made for its permission, and it does for all of
them what they share: the permission check, the command metadata, If-Match,
the Idempotency-Key, the ETag (and Location for an open), and the account
rendered for the caller with its access-log row (and integrity warning).

A replay (a key used before for the same request) reads the account again at
the version the first run produced and renders it for the caller who asks now:
masked by their roles, logged when shown in clear (access-log `what` is the
route's word with `-replay`, so the log tells a replay from the command), with
`Idempotent-Replayed: true`. Only the outcome is stored (infra/idempotency.py).
"""

from __future__ import annotations

import hashlib
from asyncio import to_thread
from collections.abc import Awaitable, Callable, Sequence
from datetime import datetime
from typing import Annotated, Any, Protocol, TypeVar
from uuid import UUID

from fastapi import Depends, Header, Request, Response

from api.auth import Permission, Principal, require
from api.deps import CommandContext, command_context, expected_version, get_services
from api.schemas import AccountOut, EraseOut
from api.views import account_view, flag
from domain.account import CustomerAccount
from domain.errors import StaleVersion
from domain.ledger import Ledger
from infra.access_log import read_row
from infra.idempotency import Outcome
from infra.wiring import Services

REPLAYED = "Idempotent-Replayed"
T = TypeVar("T")


class Stamped(Protocol):
    """A command body: when it happened (now if unset) and why."""

    occurred_at: datetime | None
    reason: str | None


class Commands:
    """Runs one account command for one caller: once per Idempotency-Key."""

    def __init__(
        self,
        services: Services,
        user: Principal,
        ctx: CommandContext,
        expected: int | None,
        key: str | None,
        digest: str,
        response: Response,
    ) -> None:
        self.services, self.user, self.ctx, self.expected = services, user, ctx, expected
        self._key, self._digest, self._response = key, digest, response
        self._store = services.idempotency

    @property
    def ledger(self) -> Ledger:
        """The ledger the command runs on."""
        return self.services.ledger

    def when(self, occurred_at: datetime | None) -> datetime:
        """Business time: as given, or now."""
        return self.ctx.when(occurred_at)

    def meta(self, reason: str | None) -> dict[str, Any]:
        """The metadata of the event: who, why, in which chain of causes."""
        return self.ctx.meta(reason)

    async def account(
        self,
        what: str,
        act: Callable[[], CustomerAccount],
        status: int = 200,
        *,
        located: bool = False,
        account_id: UUID | None = None,
    ) -> AccountOut:
        """Run `act`, a ledger verb's call on `account_id` (None: an open), once per key.

        It runs on the event loop (Ledger.command_async) and answers the
        account as the caller may see it.
        """
        stored = await self._claim()
        if stored is not None:
            account = await to_thread(
                self.ledger.account, stored.account_id, version=stored.version
            )
            self._answer(stored, replayed=True)
            return await self._show(account, f"{what}-replay")
        shown: list[tuple[CustomerAccount, AccountOut]] = []

        def logged(account: CustomerAccount) -> Sequence[object]:
            # The answer is rendered before the save, and its access-log row
            # commits with the command's events: one commit for both.
            out, fields = account_view(self.services, account, self.user)
            shown[:] = [(account, out)]
            user = self.user
            return (read_row(user.sub, user.roles, account.id, what, fields),) if fields else ()

        running = self.ledger.command_async(act, account_id, self.expected, logged)
        account = await self._run(running)
        headers = {"ETag": f'"{account.version}"'}
        if located:
            headers["Location"] = f"/v1/accounts/{account.id}"
        self._answer(await self._complete(Outcome(status, account.id, account.version, headers)))
        if not shown or shown[0][0] is not account:  # nothing saved: it changed nothing
            return await self._show(account, what)
        out = shown[0][1]
        flag(self._response, out.integrity_warning)
        return out

    async def apply(
        self,
        what: str,
        verb: Callable[..., CustomerAccount],
        account_id: UUID,
        *args: Any,
        body: Stamped,
        status: int = 200,
    ) -> AccountOut:
        """Call a ledger verb as every account command does (see `account`).

        The verb takes the account id and `args`, then the body's business
        time, the event metadata with the body's reason, and If-Match's version.
        """
        when, meta = self.when(body.occurred_at), self.meta(body.reason)

        def act() -> CustomerAccount:
            return verb(account_id, *args, when, meta, self.expected)

        return await self.account(what, act, status, account_id=account_id)

    async def _show(self, account: CustomerAccount, what: str) -> AccountOut:
        # As every read of an account: its integrity warning in a header too.
        out, shown = account_view(self.services, account, self.user)
        if shown:
            await self.services.access_log.record_async(
                self.user.sub, self.user.roles, account.id, what, shown
            )
        flag(self._response, out.integrity_warning)
        return out

    async def erase(
        self, account_id: UUID, act: Callable[[], tuple[CustomerAccount, bool]]
    ) -> EraseOut:
        """Run an erase once per key (If-Match checked first); its answer holds nothing personal."""
        stored = await self._claim()
        if stored is not None:
            self._answer(stored, replayed=True)
        else:
            erasing = to_thread(self._at_expected, account_id, act)
            account, erased = await self._run(erasing)
            headers = {"ETag": f'"{account.version}"'}
            stored = await self._complete(
                Outcome(200, account.id, account.version, headers, erased)
            )
            self._answer(stored)
        return EraseOut(
            account_id=stored.account_id, erased=bool(stored.erased), version=stored.version
        )

    def _at_expected(self, account_id: UUID, act: Callable[[], T]) -> T:
        # An erase destroys the key before it appends its event, so a stale
        # If-Match is refused before anything happens, not by the append.
        if self.expected is not None:
            version = self.ledger.account(account_id).version
            if version != self.expected:
                raise StaleVersion(
                    f"account {account_id} is at version {version}, not {self.expected}"
                )
        return act()

    # Without an Idempotency-Key nothing is stored: no thread, no query.

    async def _claim(self) -> Outcome | None:
        if self._key is None:
            return None
        return await to_thread(self._store.claim, self.user.sub, self._key, self._digest)

    async def _run(self, running: Awaitable[T]) -> T:
        try:
            return await running
        except BaseException:
            if self._key is not None:
                await to_thread(self._store.release, self.user.sub, self._key)
            raise

    async def _complete(self, outcome: Outcome) -> Outcome:
        if self._key is not None:
            await to_thread(self._store.complete, self.user.sub, self._key, outcome)
        return outcome

    def _answer(self, outcome: Outcome, *, replayed: bool = False) -> None:
        self._response.status_code = outcome.status
        self._response.headers.update(outcome.headers)
        if replayed:
            self._response.headers[REPLAYED] = "true"


def commands_for(permission: Permission) -> Any:
    """The command dependency of routes that need `permission`.

    One dependency reads every header a command takes: FastAPI solves each
    dependency of a request anew, at a cost that shows on every command.
    """
    checked = require(permission)

    async def build(
        *,
        # First, so a caller who may not gets 403 before any other check.
        user: Principal = checked,
        request: Request,
        response: Response,
        if_match: Annotated[
            str | None, Header(description="the account version (its ETag)")
        ] = None,
        x_correlation_id: Annotated[str | None, Header(max_length=128)] = None,
        x_causation_id: Annotated[str | None, Header(max_length=128)] = None,
        idempotency_key: Annotated[
            str | None,
            Header(
                min_length=1,
                max_length=200,
                description="run the command once; a repeat gets the first outcome",
            ),
        ] = None,
    ) -> Commands:
        digest = ""
        if idempotency_key is not None:
            # What the request asks: the same key for another request is refused.
            body = await request.body()
            what = request.method.encode() + request.url.path.encode() + body
            digest = hashlib.sha256(what).hexdigest()
        return Commands(
            await get_services(request),
            user,
            await command_context(user, x_correlation_id, x_causation_id),
            await expected_version(if_match),
            idempotency_key,
            digest,
            response,
        )

    return Depends(build)


Manage = Annotated[Commands, commands_for(Permission.MANAGE_ACCOUNTS)]
Record = Annotated[Commands, commands_for(Permission.RECORD_ACTIVITIES)]
Erase = Annotated[Commands, commands_for(Permission.ERASE)]
