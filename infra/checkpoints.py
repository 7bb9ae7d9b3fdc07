"""Signed checkpoints of the Merkle tree: the ledger's identity, the signer, the kept notes.

A checkpoint (C2SP tlog-checkpoint, signed as a C2SP signed-note with Ed25519:
infra/signed_note.py) is what an auditor keeps: origin, tree size and root in
a few lines, and a signature checked with the verifier key alone. The origin is
`crmledger/<ledger id>` (a UUID the ledger makes once, `ledger_identity`) unless
CRMLEDGER_LEDGER_ORIGIN says otherwise, and it also names the key. Every
checkpoint is kept by tree size, so a past size can be cited, with whether the
broker has acknowledged it on `crmledger.checkpoints` (infra/notary.py).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from psycopg.rows import class_row
from psycopg_pool import ConnectionPool

from infra.settings import Settings
from infra.signed_note import sign_checkpoint, signing_key_from_seed, verifier_key


@dataclass(frozen=True)
class Checkpoint:
    """One kept checkpoint."""

    tree_size: int
    root_hash: bytes
    note: str
    signed_at: datetime
    published: bool


def ledger_id(pool: ConnectionPool, schema: str) -> UUID:
    """The ledger's own id, made once when its tables were first created."""
    with pool.connection() as conn:
        row = conn.execute(f"SELECT ledger_id FROM {schema}.ledger_identity").fetchone()
    if row is None:
        raise RuntimeError("the ledger has no identity: its tables were not created")
    return UUID(str(row[0]))


def origin_of(settings: Settings, ledger: UUID) -> str:
    """The checkpoints' origin line: CRMLEDGER_LEDGER_ORIGIN, else `crmledger/<ledger id>`."""
    return settings.ledger_origin or f"crmledger/{ledger}"


class Signer:
    """Signs checkpoints for one origin with the ledger's Ed25519 key."""

    def __init__(self, origin: str, seed: bytes) -> None:
        self.origin = origin
        self._key = signing_key_from_seed(seed)
        # The note format's key line: `<name>+<8 hex key hash>+<base64 0x01 || public key>`.
        self.verifier_key = verifier_key(origin, self._key.public_key())

    def sign(self, tree_size: int, root: bytes) -> str:
        """The signed note of the tree of `tree_size` leaves whose root is `root`."""
        return sign_checkpoint(self.origin, tree_size, root, self._key)


class CheckpointStore:
    """The kept checkpoints, by tree size."""

    def __init__(self, pool: ConnectionPool, schema: str) -> None:
        self._pool = pool
        self._table = f"{schema}.checkpoints"
        self._columns = (
            "SELECT tree_size, root_hash, note, signed_at, published_at IS NOT NULL AS published"
            f" FROM {self._table}"
        )

    def latest(self) -> str | None:
        """The note of the largest kept checkpoint; None before the first."""
        last = self.last()
        return last.note if last else None

    def at(self, size: int) -> str | None:
        """The note of the checkpoint kept for this tree size; None when none was."""
        with self._pool.connection() as conn:
            row = conn.execute(
                f"SELECT note FROM {self._table} WHERE tree_size = %s", (size,)
            ).fetchone()
        return str(row[0]) if row else None

    def last(self) -> Checkpoint | None:
        """The largest kept checkpoint; None before the first."""
        with self._pool.connection() as conn, conn.cursor(row_factory=class_row(Checkpoint)) as cur:
            cur.execute(self._columns + " ORDER BY tree_size DESC LIMIT 1")
            return cur.fetchone()

    def keep(self, tree_size: int, root: bytes, note: str) -> bool:
        """Keep a signed checkpoint; False when one of this size was kept before (it stays)."""
        with self._pool.connection() as conn:
            kept = conn.execute(
                f"INSERT INTO {self._table} (tree_size, root_hash, note) VALUES (%s, %s, %s)"
                " ON CONFLICT (tree_size) DO NOTHING",
                (tree_size, root, note),
            ).rowcount
        return kept == 1

    def unpublished(self, limit: int = 100) -> list[Checkpoint]:
        """Checkpoints the broker has not acknowledged yet, oldest first."""
        with self._pool.connection() as conn, conn.cursor(row_factory=class_row(Checkpoint)) as cur:
            cur.execute(
                self._columns + " WHERE published_at IS NULL ORDER BY tree_size LIMIT %s",
                (limit,),
            )
            return cur.fetchall()

    def mark_published(self, sizes: Iterable[int]) -> None:
        """Note that the broker acknowledged these checkpoints."""
        with self._pool.connection() as conn:
            conn.execute(
                f"UPDATE {self._table} SET published_at = now()"
                " WHERE tree_size = ANY(%s) AND published_at IS NULL",
                (list(sizes),),
            )
