"""The Ledger as the processes run it: on PostgreSQL, cached, batch-loaded, snapshotted.

`PostgresLedger` adds to the domain's Ledger (domain/ledger.py) what depends
on how events are stored:

- its recorder, built directly (infra/event_store.py's `LedgerRecorder`,
  which also writes inbound receipts), and eventsourcing's IntegrityError as
  the store's conflict;
- an aggregate cache with fast-forward, and batch loading (`accounts`): the
  cached accounts of a batch are brought up to date in one query, and a batch
  saved with `record_batch` stays in the cache as saved (`hand_over`);
- snapshots every 100 events, taken of the saved aggregate in hand;
- the search of versions by recorded time, sixteen-way in one query per step;
- damaged rows (infra/unreadable.py): an account whose event cannot be read
  is refused with LedgerIntegrityError, a history shows the row's marker;
- verification and digests (infra/verification.py), for the callers that
  hold only the ledger.

Overrides of eventsourcing internals, and the tests that hold them:
- `Application._take_snapshots`: eventsourcing reloads the aggregate from the
  store to snapshot it; the saved one is in hand
  (tests/infra/test_ledger_batches.py::test_a_save_across_the_interval_snapshots_the_saved_aggregate,
  tests/infra/test_snapshots.py);
- `Repository._use_fastforward_lock` / `_disuse_fastforward_lock`, the lock
  the repository itself takes to fast-forward a cached aggregate, taken by
  `accounts` for the same
  (tests/infra/test_ledger_batches.py::test_accounts_loads_many_at_their_current_versions),
  and by `_for_command` to copy a cached account for a command;
- the repository cache's `cache` dict, read by `_in_memory`
  (tests/infra/test_event_store_contract.py).
- `Application.name` is set back to "Ledger" (a subclass would take its class
  name): it names the tables and the environment's prefix (every test).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from contextlib import suppress
from copy import deepcopy
from datetime import datetime
from functools import cached_property
from typing import Any, ClassVar, cast
from uuid import UUID

from eventsourcing.application import ProcessingEvent
from eventsourcing.persistence import ApplicationRecorder, IntegrityError, StoredEvent
from eventsourcing.postgres import PostgresFactory

from domain.account import CustomerAccount
from domain.errors import AccountNotFound, LedgerIntegrityError
from domain.integrity import UnreadableEvent, VerifyReport
from domain.ledger import AccountEvent, Ledger
from infra import unreadable, verification
from infra.event_store import EventLog, LedgerRecorder


class PostgresLedger(Ledger):
    """The customer account ledger on PostgreSQL."""

    # The domain's name: it names the tables (ledger_events, ledger_snapshots)
    # and the environment's prefix; eventsourcing would take the class's.
    name = "Ledger"
    env: ClassVar[dict[str, str]] = {
        # Its size is CRMLEDGER_ACCOUNT_CACHE_SIZE (infra/database.py event_store_env).
        "AGGREGATE_CACHE_FASTFORWARD": "y",
        "DEEPCOPY_FROM_AGGREGATE_CACHE": "y",
    }
    snapshotting_intervals: ClassVar[dict[type[Any], int]] = {CustomerAccount: 100}
    conflicts: ClassVar[tuple[type[Exception], ...]] = (IntegrityError,)
    recorder: LedgerRecorder

    def construct_recorder(self) -> ApplicationRecorder:
        """The Ledger's recorder, which also writes inbound receipts."""
        factory = self.factory
        if not isinstance(factory, PostgresFactory):
            raise TypeError("the ledger stores its events in PostgreSQL")
        recorder = LedgerRecorder(
            factory.datastore, events_table_name=f"{self.name.lower()}_events"
        )
        if factory.env_create_table():
            recorder.create_table()
        return recorder

    # ---- batches ----------------------------------------------------------------

    def accounts(self, account_ids: Iterable[UUID]) -> dict[UUID, CustomerAccount]:
        """Several accounts as they are now, for a batch of commands; unknown ids left out.

        Accounts in the cache are brought up to date together, in one query,
        rather than one query each: a batch of inbound activities touches
        hundreds of accounts. The others are loaded one by one, and cached for
        the next batch.
        """
        wanted = set(account_ids)
        cache = self.repository.cache
        cached: dict[UUID, CustomerAccount] = {}
        if cache is not None:
            for account_id in wanted:
                with suppress(KeyError):
                    cached[account_id] = cast(CustomerAccount, cache.get(account_id))
        found: dict[UUID, CustomerAccount] = {}
        if cached:
            newer = self.recorder.select_after({i: a.version for i, a in cached.items()})
            for account_id, account in cached.items():
                with suppress(*unreadable.ERRORS):
                    found[account_id] = self._fast_forward(account, newer.get(account_id, ()))
        for account_id in wanted - found.keys():
            # An unreadable account is left out too: its command is refused alone.
            with suppress(AccountNotFound, LedgerIntegrityError):
                found[account_id] = self.account(account_id)
        return found

    def record_batch(self, accounts: Iterable[CustomerAccount], receipts: Sequence[object]) -> None:
        """Save the batch with its receipts (Ledger.record_batch), then keep it in the cache."""
        saved = list(accounts)
        super().record_batch(saved, receipts)
        self.hand_over(saved)

    def hand_over(self, saved: Iterable[CustomerAccount]) -> None:
        """Keep accounts just saved in the cache, so the next batch finds them current.

        Otherwise the cache holds them as they were loaded, and the next batch
        reads back and replays every event this one saved. The caller gives
        the objects away: it must not touch them again.
        """
        if self.repository.cache is not None:
            for account in saved:
                self.repository.cache.put(account.id, account)

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

    def _for_command(
        self, account_id: UUID, expected_version: int | None, fresh: bool
    ) -> tuple[CustomerAccount, bool]:
        # Optimistic: a command runs on the cached account as this process last
        # saved or loaded it, without asking the store for newer events. If
        # another process wrote since, the save conflicts on the version and
        # the command runs again on the account as stored (`fresh`), so a rule
        # is never judged on a stale state that gets saved. An If-Match ahead
        # of the cache reads the store before saying "stale".
        repository = self.repository
        if not fresh and repository.cache is not None:
            with suppress(KeyError):
                cached = cast(CustomerAccount, repository.cache.get(account_id))
                if expected_version is None or cached.version == expected_version:
                    # Under the lock a read's fast-forward takes to move it on in place.
                    lock = repository._use_fastforward_lock(account_id)
                    try:
                        with lock:
                            return deepcopy(cached), True
                    finally:
                        repository._disuse_fastforward_lock(account_id)
        return self.account(account_id), False

    def _in_memory(self, account_id: UUID | None) -> bool:
        # A look at the cache's dict, not a get: the command's own get follows
        # (a get takes the cache's lock and moves the entry to the front).
        cache = self.repository.cache
        if account_id is None or cache is None:
            return False
        return account_id in cache.cache and self.vault.holds(account_id)

    def _saved(self, account: CustomerAccount) -> None:
        # A copy: the caller goes on reading its own while other threads copy this one.
        self.hand_over([deepcopy(account)])

    def _take_snapshots(self, processing_event: ProcessingEvent[UUID]) -> None:
        # eventsourcing reloads an aggregate from the store to snapshot it at the
        # interval's version. The saved aggregate is in hand: snapshot it as saved,
        # at its own version, when its new events crossed an interval.
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

    # ---- reads --------------------------------------------------------------------

    def _load(self, account_id: UUID, version: int | None) -> CustomerAccount:
        try:
            return super()._load(account_id, version)
        except unreadable.ERRORS as e:
            return unreadable.replay(self, account_id, version, e)

    def history(self, account_id: UUID) -> list[AccountEvent | UnreadableEvent]:
        """Every event of the account, oldest first; one that cannot be read as UnreadableEvent.

        The others still show, so one bad row does not hide an account's history.
        """
        stored = self.recorder.select_events(account_id)
        if not stored:
            raise AccountNotFound(f"no account {account_id}")
        return [unreadable.event_or_marker(self, s) for s in stored]

    def position_of(self, account_id: UUID, version: int) -> int | None:
        """Where this version of the account sits in the ledger; None when it is not stored."""
        return self._event_log.position_of(account_id, version)

    @cached_property
    def _event_log(self) -> EventLog:
        return EventLog(self)

    def _version_at(self, account_id: UUID, as_of: datetime) -> int:
        """The last version recorded at or before `as_of`.

        Recorded times grow with versions, so this is a sixteen-way search on
        versions, each step one query: 10,000 versions cost four queries.
        """
        last = self.recorder.select_events(account_id, desc=True, limit=1)
        if not last:
            raise AccountNotFound(f"no account {account_id}")
        lo, hi = 0, last[0].originator_version  # the answer is in [lo, hi]; 0 is "none"
        while lo < hi:
            step = max((hi - lo) // 16, 1)
            probes = list(range(lo + step, hi + 1, step))
            try:
                recorded = self.recorder.recorded_at(account_id, probes)
            except (ValueError, KeyError, TypeError):
                # A probed event's time cannot be read: the account is unreadable.
                raise unreadable.first_unreadable(self, account_id) from None
            for version in probes:
                if recorded[version] <= as_of:
                    lo = version
                else:
                    hi = version - 1
                    break
        if lo == 0:
            raise AccountNotFound(f"account {account_id} did not exist at {as_of.isoformat()}")
        return lo

    # ---- audit --------------------------------------------------------------------

    def verify(
        self, account_id: UUID | None = None, *, up_to: int | None = None, page: int = 5000
    ) -> VerifyReport:
        """Recompute the hash chains of one account, or of the ledger (infra/verification.py)."""
        return verification.verify(self.recorder, account_id, up_to=up_to, page=page)

    def digest(self, up_to: int | None = None, page: int = 5000) -> tuple[int, str]:
        """The ledger digest (position, digest) now, or at a position (infra/verification.py)."""
        return verification.digest(self.recorder, up_to, page)
