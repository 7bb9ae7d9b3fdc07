"""The application service: one verb per use case, each load, call, save.

`Ledger` is an eventsourcing Application (its tables are `ledger_events` and
`ledger_snapshots`). Personal fields are encrypted through the vault before they
reach the aggregate; reading them back is a separate, explicit step
(`personal_data`) so callers decide when clear text is shown and logged.

Inbound messages hand their (opaque) receipts to the save that applies them:
`receipts=` on a verb, or `record_batch`; eventsourcing forwards a save's
keyword arguments to its recorder, which stores them with the events. Storage,
cache, snapshots and damaged rows are infra's (infra/ledger_store.py).

On an event loop (the API), `command_async` runs a verb without a thread of
its own: the verb checks its rules on the account in memory and returns it
unsaved (`_UNSAVED`), and its save joins the group commit as an awaited
future. A verb whose account or key is not in memory runs in a thread, as
it may read the store.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar, cast
from uuid import UUID, uuid4

from eventsourcing.application import AggregateNotFoundError, Application
from eventsourcing.domain import DomainEventProtocol

from domain.account import DEFAULT_SEGMENTS, CustomerAccount, Metadata, account_id_for
from domain.activities import Activity, apply_activity
from domain.errors import (
    AccountNotFound,
    ConflictingState,
    DuplicateAccount,
    LedgerIntegrityError,
    StaleVersion,
)
from domain.group_commit import GroupCommit
from domain.integrity import UnreadableEvent
from domain.privacy import PersonalDataVault

AccountEvent = DomainEventProtocol[UUID]

log = logging.getLogger(__name__)

# A command retried this many times after a concurrent writer won the race.
_RETRIES = 5


@dataclass
class _Unsaved:
    """Set while `command_async` runs a verb: the verb returns its account unsaved."""

    fresh: bool  # load the account from the store, not from the cache
    cached: bool = False  # the verb's account came from the cache


_UNSAVED: ContextVar[_Unsaved | None] = ContextVar("unsaved", default=None)


class Ledger(Application[UUID]):
    """The customer account ledger."""

    # What the event store raises when another writer saved the same version
    # first (eventsourcing's IntegrityError); the store's module says so.
    conflicts: ClassVar[tuple[type[Exception], ...]] = ()

    def __init__(
        self,
        env: Mapping[str, str] | None = None,
        *,
        vault: PersonalDataVault,
        segments: frozenset[str] = DEFAULT_SEGMENTS,
    ) -> None:
        super().__init__(env)
        self.vault = vault
        self.segments = segments
        # Each job: an account, and what commits with its events (`command_async`'s `along`).
        self._group = GroupCommit(
            self._save_along, key=lambda job: job[0].id, conflicts=self.conflicts
        )

    # ---- commands -------------------------------------------------------------

    def open_account(
        self,
        *,
        external_ref: str | None,
        segment: str,
        service_plan: str,
        channel: str,
        customer: Mapping[str, str],
        occurred_at: datetime,
        meta: Metadata,
        account_id: UUID | None = None,
        receipts: Sequence[object] = (),
    ) -> CustomerAccount:
        """Open an account; a second open of the same external_ref is refused."""
        if external_ref:
            account_id = account_id_for(external_ref)
            if self._exists(account_id):
                raise DuplicateAccount(f"an account with external_ref {external_ref!r} exists")
        CustomerAccount.check_opening(segment, channel, occurred_at, self.segments)
        # The id is fixed before encrypting: the key belongs to the account.
        account_id = account_id or uuid4()
        account = CustomerAccount.open(
            external_ref=external_ref,
            segment=segment,
            service_plan=service_plan,
            channel=channel,
            customer=self.vault.encrypt(account_id, customer),
            occurred_at=occurred_at,
            metadata=meta,
            segments=self.segments,
            account_id=account_id,
        )
        if _UNSAVED.get() is not None:
            return account  # command_async saves it
        try:
            self.save(account, receipts=tuple(receipts))
        except self.conflicts:
            raise DuplicateAccount(f"account {account.id} exists") from None
        return account

    def update_details(
        self,
        account_id: UUID,
        customer: Mapping[str, str],
        occurred_at: datetime,
        meta: Metadata,
        expected_version: int | None = None,
        *,
        receipts: Sequence[object] = (),
    ) -> CustomerAccount:
        """Change some personal fields of the customer."""

        def update(account: CustomerAccount) -> None:
            # Check before encrypting, so a refused update writes no key.
            account.check_details_changeable()
            account.update_details(self.vault.encrypt(account.id, customer), occurred_at, meta)

        return self._change(account_id, update, expected_version, receipts)

    def confirm_details(
        self,
        account_id: UUID,
        occurred_at: datetime,
        meta: Metadata,
        expected_version: int | None = None,
    ) -> CustomerAccount:
        """Record the periodic confirmation that the details are still right."""
        return self._change(
            account_id, lambda a: a.confirm_details(occurred_at, meta), expected_version
        )

    def change_segment(
        self,
        account_id: UUID,
        segment: str,
        occurred_at: datetime,
        meta: Metadata,
        expected_version: int | None = None,
    ) -> CustomerAccount:
        """Move the account to another segment."""
        return self._change(
            account_id,
            lambda a: a.change_segment(segment, occurred_at, meta, self.segments),
            expected_version,
        )

    def change_plan(
        self,
        account_id: UUID,
        plan: str,
        occurred_at: datetime,
        meta: Metadata,
        expected_version: int | None = None,
    ) -> CustomerAccount:
        """Move the account to another service plan."""
        return self._change(
            account_id, lambda a: a.change_plan(plan, occurred_at, meta), expected_version
        )

    def close_account(
        self,
        account_id: UUID,
        reason: str,
        note: str,
        occurred_at: datetime,
        meta: Metadata,
        expected_version: int | None = None,
        *,
        receipts: Sequence[object] = (),
    ) -> CustomerAccount:
        """Close the account."""
        return self._change(
            account_id,
            lambda a: a.close(reason, note, occurred_at, meta),
            expected_version,
            receipts,
        )

    def record_activity(
        self,
        account_id: UUID,
        activity: Activity,
        occurred_at: datetime,
        meta: Metadata,
        expected_version: int | None = None,
        *,
        receipts: Sequence[object] = (),
    ) -> CustomerAccount:
        """Record one service activity on the account."""
        return self._change(
            account_id,
            lambda a: apply_activity(a, activity, occurred_at, meta),
            expected_version,
            receipts,
        )

    def record_batch(self, accounts: Iterable[CustomerAccount], receipts: Sequence[object]) -> None:
        """Save accounts changed together, with the receipts of what changed them, at once.

        One transaction for all: nothing is stored when one account was changed
        meanwhile by another writer (the event store's conflict error) or a
        receipt shows its message applied before. The caller gives the
        accounts away: it must not touch them again.
        """
        self.save(*accounts, receipts=tuple(receipts))

    def erase(
        self, account_id: UUID, reason: str, occurred_at: datetime, meta: Metadata
    ) -> tuple[CustomerAccount, bool]:
        """Crypto-shred the account's personal data; False when it was erased already.

        The key goes first: should the save fail, the data is unreadable anyway
        and a retry appends the event.
        """
        account = self.account(account_id)
        self.vault.destroy(account_id)
        erased = self._change(
            account_id, lambda a: a.erase_personal_data(reason, occurred_at, meta), None
        )
        return erased, not account.erased

    def erase_expired(
        self, retention_days: int, now: datetime, meta: Metadata, *, dry_run: bool = False
    ) -> list[UUID]:
        """Erase (reason retention) every account closed more than `retention_days` ago.

        Returns the accounts erased, or that would be with `dry_run`. Accounts
        erased before are skipped, so running it twice does nothing the second time.
        """
        cutoff = now - timedelta(days=retention_days)
        due = []
        for account_id in self._closed_accounts():
            try:
                account = self.account(account_id)
            except LedgerIntegrityError as e:
                # One unreadable account must not stop the job for every other
                # (the verifier flags it); it is erased once it is restored.
                log.warning("retention: skipped: %s", e.detail)
                continue
            closed_at = account.closed_at
            if account.erased or closed_at is None or closed_at > cutoff:
                continue
            due.append(account_id)
            if not dry_run:
                self.erase(account_id, "retention", now, meta)
        return due

    # ---- queries --------------------------------------------------------------

    def account(
        self, account_id: UUID, *, version: int | None = None, as_of: datetime | None = None
    ) -> CustomerAccount:
        """The account now, at a version, or as the ledger recorded it at a moment."""
        if as_of is not None:
            version = self._version_at(account_id, as_of)
        try:
            account: CustomerAccount = self._load(account_id, version)
        except AggregateNotFoundError:
            raise AccountNotFound(f"no account {account_id}") from None
        if version is not None and account.version != version:
            raise AccountNotFound(f"account {account_id} has no version {version}")
        return account

    def history(self, account_id: UUID) -> list[AccountEvent | UnreadableEvent]:
        """Every event of the account, oldest first."""
        events: list[AccountEvent | UnreadableEvent] = list(self.events.get(account_id))
        if not events:
            raise AccountNotFound(f"no account {account_id}")
        return events

    def personal_data(self, account: CustomerAccount) -> dict[str, str] | None:
        """The account's personal fields in clear, or None once erased."""
        return self.decrypt(account.id, account.customer) if not account.erased else None

    def decrypt(self, account_id: UUID, fields: Mapping[str, str]) -> dict[str, str] | None:
        """Clear text of some ciphertext fields of the account, None once its key is gone."""
        return self.vault.decrypt(account_id, fields)

    # ---- what the store may do faster ------------------------------------------

    def _for_command(
        self, account_id: UUID, expected_version: int | None, fresh: bool
    ) -> tuple[CustomerAccount, bool]:
        """The account a command runs on, and whether it came from a cache (not when `fresh`)."""
        return self.account(account_id), False

    def _in_memory(self, account_id: UUID | None) -> bool:
        """Whether a command on the account can run without reading the store."""
        return False

    def _saved(self, account: CustomerAccount) -> None:
        """A command's account was saved: a store with a cache keeps it."""

    def _load(self, account_id: UUID, version: int | None) -> CustomerAccount:
        """The account from the repository; raises AggregateNotFoundError."""
        account: CustomerAccount = self.repository.get(account_id, version=version)
        return account

    def _version_at(self, account_id: UUID, as_of: datetime) -> int:
        """The last version recorded at or before `as_of` (one event at a time here)."""
        found, seen = 0, False
        for event in self.events.get(account_id):
            seen = True
            if cast(CustomerAccount.Event, event).timestamp > as_of:
                break
            found = event.originator_version
        if not seen:
            raise AccountNotFound(f"no account {account_id}")
        if found == 0:
            raise AccountNotFound(f"account {account_id} did not exist at {as_of.isoformat()}")
        return found

    def _closed_accounts(self, page: int = 5000) -> Iterator[UUID]:
        closed = getattr(CustomerAccount, "AccountClosed")  # noqa: B009  (made by @event)
        topic = f"{closed.__module__}:{closed.__qualname__}"
        start = 1
        while True:
            notifications = self.recorder.select_notifications(start, page, topics=[topic])
            for n in notifications:
                yield UUID(str(n.originator_id))
            if len(notifications) < page:
                return
            start = notifications[-1].id + 1

    # ---- internals ------------------------------------------------------------

    def _change(
        self,
        account_id: UUID,
        command: Callable[[CustomerAccount], Any],
        expected_version: int | None,
        receipts: Sequence[object] = (),
    ) -> CustomerAccount:
        unsaved = _UNSAVED.get()
        if unsaved is not None:
            return self._attempt(account_id, command, expected_version, unsaved)
        fresh = False
        for _ in range(_RETRIES):
            attempt = _Unsaved(fresh)
            account = self._attempt(account_id, command, expected_version, attempt)
            if not account.pending_events:
                if attempt.cached:
                    fresh = True  # nothing to save proves nothing: answer the stored state
                    continue
                return account
            try:
                if receipts:
                    # The receipts belong to this one transaction: saved alone.
                    self.save(account, receipts=tuple(receipts))
                else:
                    self._group.save((account, ()))
            except self.conflicts:
                fresh = self._conflicted(account_id, expected_version)
                continue
            self._saved(account)
            return account
        raise ConflictingState(f"account {account_id} is changing too fast; retry")

    async def command_async(
        self,
        verb: Callable[[], CustomerAccount],
        account_id: UUID | None = None,
        expected_version: int | None = None,
        along: Callable[[CustomerAccount], Sequence[object]] | None = None,
    ) -> CustomerAccount:
        """Run `verb` (a call of one of the verbs above) on the running event loop.

        `account_id` is the account the verb changes (None for an open). The
        verb runs inline when that account and its key are in memory, else
        in a thread; its save is awaited, never waited for in a thread.
        `along(account)`, called on the account about to be saved, gives what
        the store commits in the same transaction (as a verb's `receipts`).
        """
        opening = account_id is None
        fresh = False
        for _ in range(_RETRIES):
            attempt = _Unsaved(fresh)
            token = _UNSAVED.set(attempt)
            try:
                if not opening and not fresh and self._in_memory(account_id):
                    account = verb()
                else:
                    account = await asyncio.to_thread(verb)  # may read the store
            finally:
                _UNSAVED.reset(token)
            if not account.pending_events:
                if attempt.cached:
                    fresh = True
                    continue
                return account
            try:
                await self._group.save_async((account, along(account) if along else ()))
            except self.conflicts:
                if opening:
                    raise DuplicateAccount(f"account {account.id} exists") from None
                fresh = self._conflicted(account_id, expected_version)
                continue
            self._saved(account)
            return account
        raise ConflictingState(f"account {account_id} is changing too fast; retry")

    def _save_along(self, *jobs: tuple[CustomerAccount, Sequence[object]]) -> None:
        # One transaction for the accounts of many commands and what goes with them.
        along = tuple(item for _, items in jobs for item in items)
        if along:
            self.save(*(account for account, _ in jobs), receipts=along)
        else:
            self.save(*(account for account, _ in jobs))

    def _attempt(
        self,
        account_id: UUID,
        command: Callable[[CustomerAccount], Any],
        expected_version: int | None,
        attempt: _Unsaved,
    ) -> CustomerAccount:
        """The account with the command's events pending, or the refusal."""
        account, attempt.cached = self._for_command(account_id, expected_version, attempt.fresh)
        if expected_version is not None and account.version != expected_version:
            raise StaleVersion(
                f"account {account_id} is at version {account.version}, not {expected_version}"
            )
        command(account)
        return account

    @staticmethod
    def _conflicted(account_id: UUID | None, expected_version: int | None) -> bool:
        """After a lost race: refuse a command that named its version, else retry fresh."""
        if expected_version is not None:
            raise StaleVersion(f"account {account_id} changed meanwhile") from None
        return True

    def _exists(self, account_id: UUID) -> bool:
        return bool(self.recorder.select_events(account_id, limit=1))
