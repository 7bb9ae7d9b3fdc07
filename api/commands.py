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
from collections.abc import Callable
from datetime import datetime
from typing import Annotated, Any, Protocol, TypeVar
from uuid import UUID

from fastapi import Depends, Header, Request, Response

from api.auth import Permission, Principal, require
from api.deps import CommandContext, Context, ExpectedVersion, ServicesDep
from api.schemas import AccountOut, EraseOut
from api.views import account_out, flag
from domain.account import CustomerAccount
from domain.errors import StaleVersion
from domain.ledger import Ledger
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

    def account(
        self,
        what: str,
        act: Callable[[], CustomerAccount],
        status: int = 200,
        *,
        located: bool = False,
    ) -> AccountOut:
        """Run `act` once per key; answer the account as the caller may see it."""
        stored = self._claim()
        if stored is not None:
            account = self.ledger.account(stored.account_id, version=stored.version)
            self._answer(stored, replayed=True)
            return self._show(account, f"{what}-replay")
        account = self._run(act)
        headers = {"ETag": f'"{account.version}"'}
        if located:
            headers["Location"] = f"/v1/accounts/{account.id}"
        self._answer(self._complete(Outcome(status, account.id, account.version, headers)))
        return self._show(account, what)

    def apply(
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

        def act() -> CustomerAccount:
            when, meta = self.when(body.occurred_at), self.meta(body.reason)
            return verb(account_id, *args, when, meta, self.expected)

        return self.account(what, act, status)

    def _show(self, account: CustomerAccount, what: str) -> AccountOut:
        # As every read of an account: its integrity warning in a header too.
        out = account_out(self.services, account, self.user, what)
        flag(self._response, out.integrity_warning)
        return out

    def erase(self, account_id: UUID, act: Callable[[], tuple[CustomerAccount, bool]]) -> EraseOut:
        """Run an erase once per key (If-Match checked first); its answer holds nothing personal."""
        stored = self._claim()
        if stored is not None:
            self._answer(stored, replayed=True)
        else:
            account, erased = self._run(lambda: self._at_expected(account_id, act))
            headers = {"ETag": f'"{account.version}"'}
            stored = self._complete(Outcome(200, account.id, account.version, headers, erased))
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

    def _claim(self) -> Outcome | None:
        if self._key is None:
            return None
        return self._store.claim(self.user.sub, self._key, self._digest)

    def _run(self, act: Callable[[], T]) -> T:
        try:
            return act()
        except BaseException:
            if self._key is not None:
                self._store.release(self.user.sub, self._key)
            raise

    def _complete(self, outcome: Outcome) -> Outcome:
        if self._key is not None:
            self._store.complete(self.user.sub, self._key, outcome)
        return outcome

    def _answer(self, outcome: Outcome, *, replayed: bool = False) -> None:
        self._response.status_code = outcome.status
        self._response.headers.update(outcome.headers)
        if replayed:
            self._response.headers[REPLAYED] = "true"


def commands_for(permission: Permission) -> Any:
    """The command dependency of routes that need `permission`."""
    checked = require(permission)

    async def build(
        *,
        # First, so a caller who may not gets 403 before any other check.
        user: Principal = checked,
        request: Request,
        services: ServicesDep,
        ctx: Context,
        expected: ExpectedVersion,
        response: Response,
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
        return Commands(services, user, ctx, expected, idempotency_key, digest, response)

    return Depends(build)


Manage = Annotated[Commands, commands_for(Permission.MANAGE_ACCOUNTS)]
Record = Annotated[Commands, commands_for(Permission.RECORD_ACTIVITIES)]
Erase = Annotated[Commands, commands_for(Permission.ERASE)]
