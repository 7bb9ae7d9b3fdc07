"""The hash chain: how an event's hash is computed and how a chain is verified.

An event's hash is SHA-256 over its predecessor's hash in the same account and
the canonical JSON of (account_id, version, type, occurred_at, metadata, data as
stored). Personal fields are ciphertext in the data, so erasing a key changes no
hash. The store's own timestamp is not covered: it is the store's, not the
event's.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

GENESIS_HASH = "0" * 64

# Keys of a stored event's state that are not its data: the store's own
# bookkeeping and the envelope fields hashed separately.
ENVELOPE_KEYS = frozenset(
    {
        "originator_id",
        "originator_version",
        "originator_topic",
        "timestamp",
        "class_version",
        "occurred_at",
        "metadata",
        "prev_hash",
        "hash",
    }
)


def json_default(o: object) -> str:
    if isinstance(o, Decimal | UUID):
        return str(o)
    if isinstance(o, datetime | date):
        return o.isoformat()
    raise TypeError(f"cannot hash a {type(o).__name__}")


def standard_canonical_json(value: object) -> bytes:
    """The definition of the canonical form: sorted keys, no spaces, UTF-8.

    A lone surrogate (which UTF-8 cannot carry) is encoded with surrogatepass.
    """
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=json_default
    ).encode("utf-8", "surrogatepass")


# The port: infra installs a faster encoder giving the same bytes (use_canonical_json).
_canonical: Callable[[object], bytes] = standard_canonical_json


def use_canonical_json(encoder: Callable[[object], bytes]) -> None:
    """Hash with `encoder`, which must give standard_canonical_json's bytes for every value."""
    global _canonical
    _canonical = encoder


def canonical_json(value: object) -> bytes:
    """Serialise `value` the same way every time (standard_canonical_json's bytes)."""
    return _canonical(value)


def event_hash(
    prev_hash: str,
    account_id: UUID,
    version: int,
    event_type: str,
    occurred_at: datetime,
    metadata: Mapping[str, Any],
    data: Mapping[str, Any],
) -> str:
    """The hash of one event, chained to its predecessor's."""
    body = canonical_json(
        {
            "account_id": account_id,
            "version": version,
            "type": event_type,
            "occurred_at": occurred_at,
            "metadata": metadata,
            "data": data,
        }
    )
    return hashlib.sha256(prev_hash.encode() + body).hexdigest()


def data_of(state: Mapping[str, Any]) -> dict[str, Any]:
    """The data part of an event's state: everything but the envelope."""
    return {k: v for k, v in state.items() if k not in ENVELOPE_KEYS}


@dataclass(frozen=True)
class StoredRecord:
    """One stored event as the verifier sees it: its row, and its decoded state."""

    position: int
    account_id: UUID
    version: int
    event_type: str
    state: Mapping[str, Any] | None  # None when the stored bytes could not be decoded


@dataclass(frozen=True)
class UnreadableEvent:
    """A stored event whose state cannot be read back into an event.

    Shown in its place in a history or the audit feed, so one bad row does not
    hide the others: its place, the hash its stored text names (when one can
    be found in it), and why it could not be read.
    """

    account_id: UUID
    version: int
    position: int | None
    stored_hash: str | None
    reason: str


# What every event shown to a caller carries, decoded; a state without them cannot be shown.
_ENVELOPE_TYPES: dict[str, type] = {
    "occurred_at": datetime,
    "timestamp": datetime,
    "metadata": dict,
    "prev_hash": str,
    "hash": str,
}


class IncompleteEvent(ValueError):
    """A decoded event state lacks a field every shown event carries."""


def check_envelope(state: Mapping[str, Any]) -> None:
    """Raise IncompleteEvent when a decoded state lacks an envelope field, or has a wrong one."""
    for name, kind in _ENVELOPE_TYPES.items():
        if not isinstance(state.get(name), kind):
            raise IncompleteEvent(f"its {name} is missing or not a {kind.__name__}")


@dataclass(frozen=True)
class Break:
    """The first place a chain is broken, and why."""

    account_id: UUID
    version: int
    position: int
    reason: str


@dataclass
class VerifyReport:
    """The outcome of a verification run, with the ledger digest at its last position."""

    events: int = 0
    accounts: int = 0
    first_break: Break | None = None
    position: int = 0
    digest: str = GENESIS_HASH

    @property
    def ok(self) -> bool:
        return self.first_break is None


def next_digest(digest: str, event_hash: str) -> str:
    """The ledger digest after one more event: SHA-256 over the digest so far and its hash.

    Chaining every event's stored hash in store order means an auditor who kept
    (position, digest) can detect any rewrite, reordering or deletion up to that
    position, even when the per-account hashes were recomputed to match.
    """
    return hashlib.sha256((digest + event_hash).encode()).hexdigest()


class ChainVerifier:
    """Recomputes every account's chain from records given in store order.

    Feed it records with `check`; it keeps only each account's last version and
    hash, so memory grows with accounts, not events. `breaks` holds the first
    break of each broken account (a continuous verifier needs them all).
    """

    def __init__(self) -> None:
        self._heads: dict[UUID, tuple[int, str]] = {}
        self.report = VerifyReport()
        self.breaks: dict[UUID, Break] = {}

    def check(self, record: StoredRecord) -> Break | None:
        """Check one record; the first break found is kept in the report.

        Returns the break when this record is the first one of its account to break.
        """
        self.report.events += 1
        stored_hash = record.state.get("hash") if record.state is not None else None
        self.report.digest = next_digest(self.report.digest, str(stored_hash or ""))
        self.report.position = record.position
        version, prev = self._heads.get(record.account_id, (0, GENESIS_HASH))
        reason = self._reason(record, version, prev)
        if reason is None and record.state is not None:
            self._heads[record.account_id] = (record.version, str(record.state["hash"]))
        else:
            # Keep walking so the report counts everything; a broken account
            # keeps its last good head so later events of it break too.
            self._heads.setdefault(record.account_id, (version, prev))
        if reason is None or record.account_id in self.breaks:
            return None
        broken = Break(record.account_id, record.version, record.position, reason)
        self.breaks[record.account_id] = broken
        if self.report.first_break is None:
            self.report.first_break = broken
        return broken

    def finish(self) -> VerifyReport:
        """Close the run and return its report."""
        self.report.accounts = len(self._heads)
        return self.report

    @staticmethod
    def _reason(record: StoredRecord, version: int, prev: str) -> str | None:
        if record.version != version + 1:
            return f"version {record.version} follows version {version}"
        state = record.state
        if state is None:
            return "stored state cannot be decoded"
        if state.get("prev_hash") != prev:
            return "prev_hash does not match the previous event's hash"
        try:
            expected = event_hash(
                prev,
                record.account_id,
                record.version,
                record.event_type,
                state["occurred_at"],
                state["metadata"],
                data_of(state),
            )
        except (KeyError, TypeError) as e:
            return f"stored state is incomplete: {e}"
        if state.get("hash") != expected:
            return "hash does not match the event's content"
        return None


def verify_records(records: Iterable[StoredRecord]) -> VerifyReport:
    """Verify every chain in `records` (store order) and return the report."""
    verifier = ChainVerifier()
    for record in records:
        verifier.check(record)
    return verifier.finish()
