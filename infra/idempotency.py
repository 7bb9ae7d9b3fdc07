"""Idempotency-Key: a repeated command gets the first outcome, not a second effect.

The key is claimed before the command runs (an insert that only one request can
win), and the command's outcome is stored once it succeeded. A failed command
releases its claim, so the client may retry with the same key.

What is stored is the outcome, not the response body: the status, the account
and the version the command produced, the headers set from them (ETag,
Location), and for an erase whether it erased. A replay reads the account at
that version again and renders it for the caller who asks (masked by their
roles, logged when shown in clear), and no table holds personal data in clear.

Keys expire after `ttl_hours` (CRMLEDGER_IDEMPOTENCY_TTL_HOURS, default 24): an
expired key counts as new. Expired rows are pruned by the claims themselves, a
bounded delete in the claim's own statement (at most PRUNE_BATCH rows each, the
oldest first, skipping rows another claim holds), so the table stays about one
TTL of keys deep with no job to schedule.

The table holds a SHA-256 of each key, not the key: a key is the client's own
text, and an integrator may well build it from a customer's email or name.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from uuid import UUID

from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool

# Expired rows one claim deletes at most: keeps a claim's cost bounded after a
# long pause, and many claims clear any backlog.
PRUNE_BATCH = 100

_CLAIM = """
WITH pruned AS (
    DELETE FROM idempotency_keys WHERE (actor, key) IN (
        SELECT actor, key FROM idempotency_keys
        WHERE created_at < now() - make_interval(secs => %(ttl)s)
          AND NOT (actor = %(actor)s AND key = %(key)s)
        ORDER BY created_at LIMIT %(batch)s
        FOR UPDATE SKIP LOCKED
    )
)
INSERT INTO idempotency_keys AS k (actor, key, request_hash) VALUES (%(actor)s, %(key)s, %(hash)s)
ON CONFLICT (actor, key) DO UPDATE SET
    request_hash = EXCLUDED.request_hash, status = NULL, account_id = NULL, version = NULL,
    erased = NULL, headers = NULL, created_at = now()
WHERE k.created_at < now() - make_interval(secs => %(ttl)s)
RETURNING 1
"""


@dataclass(frozen=True)
class Outcome:
    """What a command produced: enough to answer it again, and nothing personal."""

    status: int
    account_id: UUID
    version: int
    headers: dict[str, str]
    # The erase command's answer; None for every other command.
    erased: bool | None = None


def stored_key(key: str) -> str:
    """What the table keeps of a client's key: its SHA-256, never the text."""
    return hashlib.sha256(key.encode()).hexdigest()


class KeyReused(Exception):
    """The key was used before for a different request."""


class KeyInFlight(Exception):
    """The first request with this key has not finished yet."""


class IdempotencyStore:
    """Claims, completes and releases idempotency keys per actor."""

    def __init__(self, pool: ConnectionPool, ttl_hours: float = 24) -> None:
        self._pool = pool
        self.ttl_seconds = ttl_hours * 3600

    def claim(self, actor: str, key: str, request_hash: str) -> Outcome | None:
        """None when this request may run; the stored outcome when it ran before."""
        args = {
            "actor": actor,
            "key": stored_key(key),
            "hash": request_hash,
            "ttl": self.ttl_seconds,
            "batch": PRUNE_BATCH,
        }
        with self._pool.connection() as conn:
            if conn.execute(_CLAIM, args).fetchone():
                return None
            row = conn.execute(
                "SELECT request_hash, status, account_id, version, erased, headers"
                " FROM idempotency_keys WHERE actor = %s AND key = %s",
                (actor, args["key"]),
            ).fetchone()
        if row is None:  # released or pruned between our insert and select: run
            return self.claim(actor, key, request_hash)
        stored_hash, status, account_id, version, erased, headers = row
        if stored_hash != request_hash:
            raise KeyReused(key)
        if status is None:
            raise KeyInFlight(key)
        return Outcome(status, account_id, version, headers or {}, erased)

    def complete(self, actor: str, key: str, outcome: Outcome) -> None:
        """Store the outcome of the request that holds the claim."""
        with self._pool.connection() as conn:
            conn.execute(
                "UPDATE idempotency_keys SET status = %s, account_id = %s, version = %s,"
                " erased = %s, headers = %s WHERE actor = %s AND key = %s",
                (
                    outcome.status,
                    outcome.account_id,
                    outcome.version,
                    outcome.erased,
                    Jsonb(outcome.headers),
                    actor,
                    stored_key(key),
                ),
            )

    def release(self, actor: str, key: str) -> None:
        """Give the claim up after a failure, so a retry can run."""
        with self._pool.connection() as conn:
            conn.execute(
                "DELETE FROM idempotency_keys WHERE actor = %s AND key = %s AND status IS NULL",
                (actor, stored_key(key)),
            )
