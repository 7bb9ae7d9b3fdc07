"""Read models wired to the ledger: tokens of contact fields, replaying the store, rebuilding.

The projector (consumers/projector.py) turns an outbound CloudEvent into a
ProjectedEvent here; a rebuild reads the stored state into the same event
(projections/events.py holds both readings, and a test holds them equal).
Contact fields stay ciphertext in the event and in the directory; they are
decrypted here only to compute their blind-index tokens (domain.privacy), and
the clear text goes no further. The vault caches account keys, so a batch
reads each key at most once; the projector reads the keys of a poll's
accounts, and a rebuild those of a page of the store, in one query.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from itertools import islice
from typing import Any
from uuid import UUID
from zoneinfo import ZoneInfo

import orjson
from psycopg_pool import ConnectionPool

from domain.account import event_type_of
from domain.ledger import Ledger
from domain.privacy import SEARCHABLE_FIELDS, BlindIndex
from infra.event_store import EventLog, LogRow, plain_state
from infra.keys import PostgresKeyVault
from infra.settings import Settings
from projections.catalog import READ_MODELS
from projections.directory import DirectoryQuery, search_accounts
from projections.events import ProjectedEvent, from_cloudevent, from_stored
from projections.parking import FAILED, UNREADABLE, Unprojectable, is_transient, unprojectable
from projections.reports import (
    Page,
    Paged,
    Report,
    ReportScope,
    Rows,
    report_scope,
    run_page,
    run_report,
)
from projections.store import Outcome, ReadModelStore, Retried

# Account ids remembered as UUIDs by the projector's reading, before it starts over.
ACCOUNT_ID_CACHE = 50_000


class ReadModels:
    """The read-model store, and how the ledger's events reach it."""

    def __init__(
        self, ledger: Ledger, pool: ConnectionPool, settings: Settings, index: BlindIndex
    ) -> None:
        self.ledger = ledger
        self.index = index
        self.settings = settings
        self.zone = ZoneInfo(settings.timezone)
        self.store = ReadModelStore(pool, settings.readmodel_schema)
        self._pool = pool
        self._log = EventLog(ledger)
        self._account_ids: dict[str, UUID] = {}

    def projected(self, message: Mapping[str, Any]) -> ProjectedEvent:
        """The event of an outbound CloudEvent, with blind-index tokens of its contact fields."""
        subject = message["subject"]
        account_id = self._account_ids.get(subject)
        if account_id is None:
            # A poll brings each account's events in runs: its UUID is made once.
            if len(self._account_ids) >= ACCOUNT_ID_CACHE:
                self._account_ids.clear()
            account_id = self._account_ids[subject] = UUID(str(subject))
        cipher = (message.get("data") or {}).get("customer")
        tokens = None
        if isinstance(cipher, dict) and cipher:
            tokens = self._tokens(account_id, cipher)
        return from_cloudevent(message, self.zone, tokens, account_id)

    def prefetch_keys(self, messages: Iterable[bytes | None]) -> None:
        """Read in one query the keys of the accounts whose outbound messages carry personal data.

        The projector calls it with a poll's messages before it reads them one
        by one (`projected`), so their tokens take no key query each. Only the
        messages holding a "customer" field are decoded here; at most half the
        key cache is read, the accounts after that left to `projected`.
        """
        vault = self.ledger.vault
        if not isinstance(vault, PostgresKeyVault):
            return
        limit = max(1, vault.cache_size // 2)
        wanted: dict[UUID, None] = {}
        for value in messages:
            if not value or b'"customer"' not in value:
                continue
            try:
                message = orjson.loads(value)
                if message["data"]["customer"]:
                    wanted[UUID(str(message["subject"]))] = None
            except (ValueError, TypeError, KeyError):
                continue  # what is wrong with it is `projected`'s to say, for it alone
            if len(wanted) == limit:
                break
        if wanted:
            vault.prefetch(wanted)

    def replay(self, after: int = 0, page: int = 5000) -> Iterator[ProjectedEvent]:
        """Every stored event after `after`, in store order, as the projector sees it.

        Raises on an event it cannot read; `readings` gives what to park instead.
        """
        for event in self.readings(after, page):
            if isinstance(event, Unprojectable):
                raise ValueError(f"position {event.position}: {event.error_class}: {event.error}")
            yield event

    def readings(
        self, after: int = 0, page: int = 5000
    ) -> Iterator[ProjectedEvent | Unprojectable]:
        """Every stored event after `after` as the projector sees it, or what to park instead.

        Read straight from the stored JSON (no CloudEvent in between) through
        one server-side cursor, `page` rows a fetch, which gives the same
        events several times faster. The events are read a page at a time:
        the keys of the page's accounts whose events carry personal data come
        in one query (`PostgresKeyVault.prefetch`), not one an account, and a
        page holds at most half the key cache's rows, so its keys fit with
        room to spare. An event that cannot be read (its bytes do not decode,
        a value is out of range) comes as an Unprojectable, so a rebuild parks
        it and goes on; an outage is raised.
        """
        types: dict[str, str] = {}
        vault = self.ledger.vault
        prefetch = vault.prefetch if isinstance(vault, PostgresKeyVault) else None
        if prefetch is not None:
            page = max(1, min(page, vault.cache_size // 2))
        with self._pool.connection() as conn:
            rows = self._log.stream(conn, after, page)
            while chunk := list(islice(rows, page)):
                decoded = self._decoded(chunk, types)
                if prefetch is not None:
                    prefetch(d.account_id for d in decoded if isinstance(d, _Decoded) and d.cipher)
                for d in decoded:
                    yield self._projected(d) if isinstance(d, _Decoded) else d

    def _decoded(self, rows: list[LogRow], types: dict[str, str]) -> list[_Decoded | Unprojectable]:
        """Each stored row decoded, or what to park for a row that cannot be."""
        out: list[_Decoded | Unprojectable] = []
        # An account's events come in runs: build its UUID once per run, not per event.
        last_text, last_id = "", UUID(int=0)
        for position, account_text, version, topic, stored in rows:
            reason = UNREADABLE
            try:
                if account_text != last_text:
                    last_text, last_id = account_text, UUID(account_text)
                event_type = types.get(topic)
                if event_type is None:
                    event_type = types[topic] = event_type_of(topic)
                state = plain_state(stored)
                reason = FAILED
                cipher = state.get("customer")
            except Exception as e:
                if is_transient(e):
                    raise
                kind = topic.rsplit(".", 1)[-1]
                out.append(unprojectable(position, _uuid(account_text), kind, e, reason))
                continue
            out.append(_Decoded(position, last_id, version, topic, event_type, state, cipher))
        return out

    def _projected(self, d: _Decoded) -> ProjectedEvent | Unprojectable:
        """The decoded row as the projector sees it, or what to park if it cannot be."""
        try:
            tokens = self._tokens(d.account_id, d.cipher) if d.cipher else None
            return from_stored(
                d.position, d.account_id, d.version, d.event_type, d.state, self.zone, tokens
            )
        except Exception as e:
            if is_transient(e):
                raise
            kind = d.topic.rsplit(".", 1)[-1]
            return unprojectable(d.position, d.account_id, kind, e, FAILED)

    def event_at(self, position: int) -> ProjectedEvent | Unprojectable:
        """The stored event at `position` as the projector sees it, or what to park instead."""
        for event in self.readings(after=position - 1, page=1):
            if event.position == position:
                return event
            break
        return unprojectable(position, None, None, LookupError("no event at this position"))

    def retry(self, name: str | None = None, position: int | None = None) -> Retried:
        """Retry parked events (of one read model, at one position), read afresh from the store."""
        return self.store.retry(self.event_at, name, position)

    def report(self, report: Report, **filters: Any) -> tuple[ReportScope, Rows]:
        """A department report: its checked parameters (defaults filled in) and its rows.

        `filters` are report_scope's (start, end, period, segment, channel,
        split, days); the segments and time zone come from the settings.
        """
        settings = self.settings
        scope = report_scope(report, segments=settings.segments, zone=settings.timezone, **filters)
        with self._pool.connection() as conn:
            return scope, run_report(conn, settings.readmodel_schema, report, scope)

    def report_page(self, report: Report, page: Page, **filters: Any) -> tuple[ReportScope, Paged]:
        """One page of a paged report (accounts-due-for-review): its checked parameters and
        the page, as `report` checks and reads them."""
        settings = self.settings
        scope = report_scope(report, segments=settings.segments, zone=settings.timezone, **filters)
        with self._pool.connection() as conn:
            return scope, run_page(conn, settings.readmodel_schema, report, scope, page)

    def directory(self, q: str | None, *, personal: bool, **filters: Any) -> list[dict[str, Any]]:
        """Directory rows matching `q` and the filters (search_accounts'), contact fields sealed.

        `q` is an external reference, or with `personal` (a caller who may see
        contact fields) also a name's words, an email or a phone, each matched
        exactly through its blind-index tokens.
        """
        query = None
        if q:
            tokens = {f: self.index.tokens(f, q) for f in SEARCHABLE_FIELDS} if personal else {}
            query = DirectoryQuery(q.strip(), tokens)
        with self._pool.connection() as conn:
            return search_accounts(conn, self.settings.readmodel_schema, query=query, **filters)

    def _tokens(
        self, account_id: UUID, cipher: Mapping[str, str]
    ) -> dict[str, tuple[bytes, ...]] | None:
        # Decrypted only to be tokenised; None once the account's key is destroyed.
        wanted = {k: v for k, v in cipher.items() if k in SEARCHABLE_FIELDS}
        clear = self.ledger.decrypt(account_id, wanted)
        if clear is None:
            return None
        index = self.index
        return {field: index.tokens(field, value) for field, value in clear.items()}

    def status(self) -> list[dict[str, Any]]:
        """Each read model's positions per partition and how far it trails the ledger."""
        last = self.ledger.recorder.max_notification_id() or 0
        parked = self.store.parked_counts()
        out = []
        for name, partitions in self.store.positions().items():
            position = max(partitions.values(), default=0)
            out.append(
                {
                    "name": name,
                    "position": position,
                    "ledger_position": last,
                    "lag": max(last - position, 0),
                    "partitions": dict(sorted(partitions.items())),
                    "parked": parked.get(name, 0),
                }
            )
        return out

    def rebuild(self, *names: str, progress: Callable[[int], None] | None = None) -> Outcome:
        """Rebuild read models from the event store in one pass: the events replayed, and parked.

        An event a read model cannot take is parked (projections/parking.py), not a failure.
        """
        unknown = [n for n in names if n not in READ_MODELS]
        if unknown or not names:
            raise KeyError(", ".join(unknown) or "no read model named")

        def counted() -> Iterator[ProjectedEvent | Unprojectable]:
            for i, event in enumerate(self.readings(), start=1):
                yield event
                if progress and i % 1000 == 0:
                    progress(1000)

        outcome = self.store.rebuild(names, counted(), self.settings.kafka_partitions)
        if progress:
            progress(outcome.events % 1000)
        return outcome


@dataclass(slots=True)
class _Decoded:
    """A stored row decoded: what reading it into a ProjectedEvent needs."""

    position: int
    account_id: UUID
    version: int
    topic: str
    event_type: str
    state: dict[str, Any]
    cipher: Any  # the event's "customer" field, if any: ciphertext of personal fields


def _uuid(text: str) -> UUID | None:
    try:
        return UUID(text)
    except ValueError:
        return None
