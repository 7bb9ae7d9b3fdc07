"""The application service: one verb per use case, each load, call, save.

`Ledger` is an eventsourcing Application (its tables are `ledger_events` and
`ledger_snapshots`). Personal fields are encrypted through the vault before they
reach the aggregate; reading them back is a separate, explicit step
(`personal_data`) so callers decide when clear text is shown and logged.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import suppress
from copy import deepcopy
from datetime import datetime, timedelta
from typing import Any, cast
from uuid import UUID, uuid4

from eventsourcing.application import AggregateNotFoundError, Application, ProcessingEvent
from eventsourcing.domain import DomainEventProtocol
from eventsourcing.persistence import (
    IntegrityError,
    MapperDeserialisationError,
    Notification,
    StoredEvent,
)
from eventsourcing.utils import TopicError, get_topic

from domain.account import (
    DEFAULT_SEGMENTS,
    CustomerAccount,
    Metadata,
    account_id_for,
    event_type_of,
)
from domain.activities import Activity, apply_activity
from domain.errors import (
    AccountNotFound,
    ConflictingState,
    DuplicateAccount,
    LedgerError,
    LedgerIntegrityError,
    PositionNotFound,
    StaleVersion,
)
from domain.group_commit import GroupCommit
from domain.integrity import (
    GENESIS_HASH,
    ChainVerifier,
    StoredRecord,
    UnreadableEvent,
    VerifyReport,
    check_envelope,
    next_digest,
    plain_state,
    stored_hash_of,
    stored_record,
)
from domain.privacy import PersonalDataVault

AccountEvent = DomainEventProtocol[UUID]

log = logging.getLogger(__name__)

# A command retried this many times after a concurrent writer won the race.
_RETRIES = 5


class Ledger(Application[UUID]):
    """The customer account ledger."""

    env = {
        "AGGREGATE_CACHE_MAXSIZE": "10000",
        "AGGREGATE_CACHE_FASTFORWARD": "y",
        "DEEPCOPY_FROM_AGGREGATE_CACHE": "y",
    }
    snapshotting_intervals = {CustomerAccount: 100}

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
        self._group = GroupCommit(self.save)
        # Infra says when a save must run in the calling thread (an inbound
        # receipt is bound to it); otherwise commands are saved in groups.
        self.save_alone: Callable[[], bool] = lambda: False
        # Infra says where an event sits in the ledger (its notification id):
        # only a refusal naming an unreadable event asks.
        self.position_of: Callable[[UUID, int], int | None] = lambda account_id, version: None

    def _take_snapshots(self, processing_event: ProcessingEvent[UUID]) -> None:
        # eventsourcing reloads an aggregate from the store to snapshot it at the
        # interval's version. The saved aggregate is in hand: snapshot it as saved,
        # at its own version, when its new events crossed an interval (a fifth of
        # the inbound apply went to those reloads).
        if self.snapshots is None:
            return
        due = set()
        for event in processing_event.events:
            aggregate = processing_event.aggregates.get(event.originator_id)
            interval = self.snapshotting_intervals.get(type(aggregate)) if aggregate else None
            if interval and event.originator_version % interval == 0:
                due.add(event.originator_id)
        for aggregate_id in due:
            aggregate = processing_event.aggregates[aggregate_id]
            snapshot_class = getattr(type(aggregate), "Snapshot", None) or self.snapshot_class
            assert snapshot_class is not None  # an Aggregate has one
            self.snapshots.put([snapshot_class.take(aggregate)])

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
        try:
            self.save(account)
        except IntegrityError:
            raise DuplicateAccount(f"account {account.id} exists") from None
        return account

    def update_details(
        self,
        account_id: UUID,
        customer: Mapping[str, str],
        occurred_at: datetime,
        meta: Metadata,
        expected_version: int | None = None,
    ) -> CustomerAccount:
        """Change some personal fields of the customer."""

        def update(account: CustomerAccount) -> None:
            # Check before encrypting, so a refused update writes no key.
            account.check_details_changeable()
            account.update_details(self.vault.encrypt(account.id, customer), occurred_at, meta)

        return self._change(account_id, update, expected_version)

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
    ) -> CustomerAccount:
        """Close the account."""
        return self._change(
            account_id, lambda a: a.close(reason, note, occurred_at, meta), expected_version
        )

    def record_activity(
        self,
        account_id: UUID,
        activity: Activity,
        occurred_at: datetime,
        meta: Metadata,
        expected_version: int | None = None,
    ) -> CustomerAccount:
        """Record one service activity on the account."""
        return self._change(
            account_id, lambda a: apply_activity(a, activity, occurred_at, meta), expected_version
        )

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
            account: CustomerAccount = self.repository.get(account_id, version=version)
        except AggregateNotFoundError:
            raise AccountNotFound(f"no account {account_id}") from None
        except _UNREADABLE as e:
            account = self._replay(account_id, version, e)
        if version is not None and account.version != version:
            raise AccountNotFound(f"account {account_id} has no version {version}")
        return account

    def accounts(self, account_ids: Iterable[UUID]) -> dict[UUID, CustomerAccount]:
        """Several accounts as they are now, for a batch of commands; unknown ids left out.

        Accounts in the cache are brought up to date together, in one query
        when the recorder can (ours can), rather than one query each: a batch
        of inbound activities touches hundreds of accounts. The others are
        loaded one by one, and cached for the next batch.
        """
        wanted = set(account_ids)
        cache = self.repository.cache
        select_after: Callable[[dict[UUID, int]], dict[UUID, list[StoredEvent]]] | None
        select_after = getattr(self.recorder, "select_after", None)
        cached: dict[UUID, CustomerAccount] = {}
        if cache is not None and select_after is not None:
            for account_id in wanted:
                with suppress(KeyError):
                    cached[account_id] = cast(CustomerAccount, cache.get(account_id))
        found: dict[UUID, CustomerAccount] = {}
        if cached and select_after is not None:
            newer = select_after({i: a.version for i, a in cached.items()})
            for account_id, account in cached.items():
                with suppress(*_UNREADABLE):
                    found[account_id] = self._fast_forward(account, newer.get(account_id, ()))
        for account_id in wanted - found.keys():
            # An unreadable account is left out too: its command is refused alone.
            with suppress(AccountNotFound, LedgerIntegrityError):
                found[account_id] = self.account(account_id)
        return found

    def hand_over(self, saved: Iterable[CustomerAccount]) -> None:
        """Keep accounts just saved in the cache, so the next batch finds them current.

        Otherwise the cache holds them as they were loaded, and the next batch
        reads back and replays every event this one saved. The caller gives
        the objects away: it must not touch them again.
        """
        if self.repository.cache is not None:
            for account in saved:
                self.repository.cache.put(account.id, account)

    def history(self, account_id: UUID) -> list[AccountEvent | UnreadableEvent]:
        """Every event of the account, oldest first; one that cannot be read as UnreadableEvent.

        The others still show, so one bad row does not hide an account's history.
        """
        stored = self.recorder.select_events(account_id)
        if not stored:
            raise AccountNotFound(f"no account {account_id}")
        return [self._event_or_unreadable(s) for s in stored]

    def personal_data(self, account: CustomerAccount) -> dict[str, str] | None:
        """The account's personal fields in clear, or None once erased."""
        return self.decrypt(account.id, account.customer) if not account.erased else None

    def decrypt(self, account_id: UUID, fields: Mapping[str, str]) -> dict[str, str] | None:
        """Clear text of some ciphertext fields of the account, None once its key is gone."""
        return self.vault.decrypt(account_id, fields)

    def verify(
        self, account_id: UUID | None = None, *, up_to: int | None = None, page: int = 5000
    ) -> VerifyReport:
        """Recompute the hash chains of one account, or of the ledger up to a position.

        For the whole ledger the report also carries the ledger digest at its
        last position, for comparison with a digest an auditor kept.
        """
        if up_to is not None:
            self._check_position(up_to)
        verifier = ChainVerifier()
        for record in self._stored_records(account_id, page, up_to):
            verifier.check(record)
        return verifier.finish()

    def digest(self, up_to: int | None = None, page: int = 5000) -> tuple[int, str]:
        """The ledger digest (position, digest) now, or at a position of the past."""
        if up_to is not None:
            self._check_position(up_to)
        decode = plain_state
        position, digest = 0, GENESIS_HASH
        for n in self._notifications(page, up_to):
            state = _safe(decode, n.state) or {}
            position, digest = n.id, next_digest(digest, str(state.get("hash") or ""))
        return position, digest

    # ---- internals ------------------------------------------------------------

    def _change(
        self,
        account_id: UUID,
        command: Callable[[CustomerAccount], Any],
        expected_version: int | None,
    ) -> CustomerAccount:
        for _ in range(_RETRIES):
            account = self.account(account_id)
            if expected_version is not None and account.version != expected_version:
                raise StaleVersion(
                    f"account {account_id} is at version {account.version}, not {expected_version}"
                )
            command(account)
            if not account.pending_events:
                return account
            try:
                if self.save_alone():
                    self.save(account)
                else:
                    self._group.save(account)
            except IntegrityError:
                if expected_version is not None:
                    raise StaleVersion(f"account {account_id} changed meanwhile") from None
                continue  # someone else saved first: reload and try again
            return account
        raise ConflictingState(f"account {account_id} is changing too fast; retry")

    def _fast_forward(
        self, cached: CustomerAccount, stored: Iterable[StoredEvent]
    ) -> CustomerAccount:
        """A copy of the cached account with the stored events after it applied.

        The cached object is shared, so it is brought forward under the lock
        the repository itself takes for that (another thread may have moved it
        on since the query: its events already applied are skipped).
        """
        repository = self.repository
        lock = repository._use_fastforward_lock(cached.id)
        try:
            with lock:
                # Decode first: an unreadable event leaves the shared object as it was.
                events = [
                    cast(CustomerAccount.Event, self.mapper.to_domain_event(record))
                    for record in stored
                    if record.originator_version > cached.version
                ]
                for event in events:
                    event.mutate(cached)
                return deepcopy(cached)
        finally:
            repository._disuse_fastforward_lock(cached.id)

    def _exists(self, account_id: UUID) -> bool:
        return bool(self.recorder.select_events(account_id, limit=1))

    def _version_at(self, account_id: UUID, as_of: datetime) -> int:
        """The last version recorded at or before `as_of`.

        Recorded times grow with versions, so this is a search on versions:
        sixteen-way when the recorder can fetch several versions' times in one
        query (ours can), else binary. 10,000 versions cost four queries.
        """
        last = self.recorder.select_events(account_id, desc=True, limit=1)
        if not last:
            raise AccountNotFound(f"no account {account_id}")
        times = getattr(self.recorder, "recorded_at", None) or self._recorded_one_by_one
        lo, hi = 0, last[0].originator_version  # the answer is in [lo, hi]; 0 is "none"
        while lo < hi:
            step = max((hi - lo) // 16, 1)
            probes = list(range(lo + step, hi + 1, step))
            try:
                recorded = times(account_id, probes)
            except (ValueError, KeyError, TypeError):
                # A probed event's time cannot be read: the account is unreadable.
                raise self._first_unreadable(account_id) from None
            for version in probes:
                if recorded[version] <= as_of:
                    lo = version
                else:
                    hi = version - 1
                    break
        if lo == 0:
            raise AccountNotFound(f"account {account_id} did not exist at {as_of.isoformat()}")
        return lo

    def _recorded_one_by_one(self, account_id: UUID, versions: list[int]) -> dict[int, datetime]:
        out = {}
        for v in versions:
            (event,) = self.events.get(account_id, gt=v - 1, lte=v)
            out[v] = cast(CustomerAccount.Event, event).timestamp
        return out

    def _closed_accounts(self, page: int = 5000) -> Iterator[UUID]:
        topic = get_topic(getattr(CustomerAccount, "AccountClosed"))  # noqa: B009  (made by @event)
        start = 1
        while True:
            closed = self.recorder.select_notifications(start, page, topics=[topic])
            for n in closed:
                yield UUID(str(n.originator_id))
            if len(closed) < page:
                return
            start = closed[-1].id + 1

    def _check_position(self, position: int) -> None:
        found = self.recorder.select_notifications(position, 1, stop=position)
        if not found:
            raise PositionNotFound(f"no event is stored at position {position}")

    def _notifications(self, page: int, up_to: int | None) -> Iterator[Notification]:
        start = 1
        while True:
            notifications = self.recorder.select_notifications(start, page, stop=up_to)
            yield from notifications
            if len(notifications) < page:
                return
            start = notifications[-1].id + 1

    def _stored_records(
        self, account_id: UUID | None, page: int, up_to: int | None = None
    ) -> Iterator[StoredRecord]:
        if account_id is not None:
            stored = self.recorder.select_events(account_id)
            if not stored:
                raise AccountNotFound(f"no account {account_id}")
            for s in stored:
                yield stored_record(
                    0, account_id, s.originator_version, event_type_of(s.topic), s.state
                )
            return
        for n in self._notifications(page, up_to):
            account = n.originator_id
            yield stored_record(
                n.id,
                account if isinstance(account, UUID) else UUID(str(account)),
                n.originator_version,
                event_type_of(n.topic),
                n.state,
            )

    # ---- unreadable events ----------------------------------------------------

    def _replay(self, account_id: UUID, version: int | None, cause: Exception) -> CustomerAccount:
        """The account rebuilt from its events alone, after a load failed on `cause`.

        An event that cannot be read or applied is refused with
        LedgerIntegrityError. When every event reads, the snapshot was the
        unreadable part: it is only a shortcut, so the events answer.
        """
        if isinstance(cause, LedgerError):
            raise cause
        stored = self.recorder.select_events(account_id, lte=version)
        if not stored:
            raise AccountNotFound(f"no account {account_id}")
        account: Any = None
        for s in stored:
            try:
                event = cast(CustomerAccount.Event, self.mapper.to_domain_event(s))
                _check_envelope(event)
                account = event.mutate(account)
            except Exception as e:  # in memory only: whatever fails here is the row's fault
                raise self._unreadable_error(account_id, s.originator_version, e) from None
        log.warning(
            "account %s: snapshot unreadable (%s); rebuilt from its events", account_id, cause
        )
        return cast(CustomerAccount, account)

    def _event_or_unreadable(self, stored: StoredEvent) -> AccountEvent | UnreadableEvent:
        try:
            event = self.mapper.to_domain_event(stored)
            _check_envelope(event)
        except Exception as e:  # in memory only: whatever fails here is the row's fault
            account_id = UUID(str(stored.originator_id))
            version = stored.originator_version
            return UnreadableEvent(
                account_id,
                version,
                self.position_of(account_id, version),
                stored_hash_of(stored.state),
                _reason(e),
            )
        return event

    def _first_unreadable(self, account_id: UUID) -> LedgerIntegrityError:
        for entry in self.history(account_id):
            if isinstance(entry, UnreadableEvent):
                return self._unreadable_error(account_id, entry.version, entry.reason)
        return self._unreadable_error(account_id, 0, "the recorded times cannot be read")

    def _unreadable_error(
        self, account_id: UUID, version: int, why: Exception | str
    ) -> LedgerIntegrityError:
        position = self.position_of(account_id, version) if version else None
        where = f" at position {position}" if position is not None else ""
        reason = why if isinstance(why, str) else _reason(why)
        return LedgerIntegrityError(
            f"account {account_id} cannot be read: its event version {version}{where}"
            f" is unreadable ({reason})",
            account_id,
            version,
            position,
        )


# What loading an account raises when a stored row is not what was written:
# undecodable bytes, an unknown topic, or a decoded state missing what
# `apply` reads. Anything else (the database away) is not the row's fault.
_UNREADABLE = (
    MapperDeserialisationError,
    TopicError,
    AttributeError,
    KeyError,
    TypeError,
    ValueError,
)


def _check_envelope(event: object) -> None:
    check_envelope(vars(event))


def _reason(error: Exception) -> str:
    if isinstance(error, MapperDeserialisationError):
        return "its stored state cannot be decoded"
    if isinstance(error, TopicError):
        return "its stored type is unknown"
    return str(error) or type(error).__name__


def _safe(decode: Callable[[bytes], Any], state: bytes) -> dict[str, Any] | None:
    try:
        value = decode(state)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
