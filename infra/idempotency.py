"""Idempotency-Key: a repeated POST gets the first response, not a second effect.

The key is claimed before the command runs (an insert that only one request can
win), and the response is stored once the command succeeded. A failed command
releases its claim, so the client may retry with the same key.
"""

from __future__ import annotations

from dataclasses import dataclass

from psycopg.types.json import Jsonb
from psycopg_pool import ConnectionPool


@dataclass(frozen=True)
class StoredResponse:
    """The response given the first time a key was used."""

    status: int
    body: bytes
    headers: dict[str, str]


class KeyReused(Exception):
    """The key was used before for a different request."""


class KeyInFlight(Exception):
    """The first request with this key has not finished yet."""


class IdempotencyStore:
    """Claims, completes and releases idempotency keys per actor."""

    def __init__(self, pool: ConnectionPool) -> None:
        self._pool = pool

    def claim(self, actor: str, key: str, request_hash: str) -> StoredResponse | None:
        """None when this request may run; the stored response when it ran before."""
        with self._pool.connection() as conn:
            won = conn.execute(
                "INSERT INTO idempotency_keys (actor, key, request_hash) VALUES (%s, %s, %s)"
                " ON CONFLICT DO NOTHING RETURNING 1",
                (actor, key, request_hash),
            ).fetchone()
            if won:
                return None
            row = conn.execute(
                "SELECT request_hash, status, body, headers FROM idempotency_keys"
                " WHERE actor = %s AND key = %s",
                (actor, key),
            ).fetchone()
        if row is None:  # released between our insert and select: let this one run
            return self.claim(actor, key, request_hash)
        stored_hash, status, body, headers = row
        if stored_hash != request_hash:
            raise KeyReused(key)
        if status is None:
            raise KeyInFlight(key)
        return StoredResponse(status, bytes(body), headers or {})

    def complete(
        self, actor: str, key: str, status: int, body: bytes, headers: dict[str, str]
    ) -> None:
        """Store the response of the request that holds the claim."""
        with self._pool.connection() as conn:
            conn.execute(
                "UPDATE idempotency_keys SET status = %s, body = %s, headers = %s"
                " WHERE actor = %s AND key = %s",
                (status, body, Jsonb(headers), actor, key),
            )

    def release(self, actor: str, key: str) -> None:
        """Give the claim up after a failure, so a retry can run."""
        with self._pool.connection() as conn:
            conn.execute(
                "DELETE FROM idempotency_keys WHERE actor = %s AND key = %s AND status IS NULL",
                (actor, key),
            )
