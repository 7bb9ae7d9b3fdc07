"""Per-account data keys: AES-GCM, wrapped by the master key, kept in PostgreSQL.

Each personal field is encrypted on its own, with the account id and the field
name as associated data, so a ciphertext cannot be moved to another account or
field. Destroying a key (crypto-shredding) keeps its row with no key in it, so
no later command can quietly create a fresh key for an erased account.

Each process keeps the unwrapped keys it used last, at most
`CRMLEDGER_KEY_CACHE_SIZE`, least recently used going first; a key found
destroyed is kept as destroyed (None), since a destroyed key never comes back.
`prefetch` reads many accounts' keys in one query (a page of the directory, a
page of a rebuild).

Blind-index tokens (the directory's search) are HMAC-SHA256 under a key derived
from the master key with HKDF (info "crmledger blind index v1"), over the field
name and one normalised search term (domain.privacy.search_terms), truncated to
16 bytes: 128 bits leave no practical collision, and half the index. The key
is one for the whole ledger, not one per account, or a search would have to
try every account's key; so equal terms of two accounts share a token (two
customers named Chan are seen to share a word, never which). Erasure deletes
an account's tokens with its directory row. Rotating the master key changes
every token: rebuild the directory after it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import os
import threading
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from uuid import UUID

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from psycopg_pool import ConnectionPool

from domain.errors import ConflictingState
from domain.privacy import search_terms

PREFIX = "v1:"
_NONCE = 12
BLIND_INDEX_INFO = b"crmledger blind index v1"
TOKEN_BYTES = 16


class PostgresKeyVault:
    """The PersonalDataVault of the ledger, backed by the account_keys table."""

    def __init__(self, pool: ConnectionPool, master_key: bytes, cache_size: int = 10_000) -> None:
        self._pool = pool
        self._master = AESGCM(master_key)
        # None: the key was found destroyed, which is for good.
        self._cache: OrderedDict[UUID, AESGCM | None] = OrderedDict()
        self._cache_size = cache_size
        self._lock = threading.Lock()

    @property
    def cache_size(self) -> int:
        """The most keys this vault keeps in memory."""
        return self._cache_size

    def encrypt(self, account_id: UUID, fields: Mapping[str, str]) -> dict[str, str]:
        """Ciphertext of each field, creating the account's key if it has none."""
        if not fields:
            return {}
        key = self._key(account_id, create=True)
        if key is None:
            raise ConflictingState(f"the personal data of account {account_id} was erased")
        return {name: _seal(key, account_id, name, value) for name, value in fields.items()}

    def decrypt(self, account_id: UUID, fields: Mapping[str, str]) -> dict[str, str] | None:
        """Clear text of each field, or None once the account's key is destroyed."""
        key = self._key(account_id, create=False)
        if key is None:
            return None
        return {name: _open(key, account_id, name, value) for name, value in fields.items()}

    def holds(self, account_id: UUID) -> bool:
        """Whether the account's key (or the fact it is gone) is in memory: no query to use it."""
        return account_id in self._cache

    def destroy(self, account_id: UUID) -> None:
        """Destroy the key; the row stays, empty, as the record that it was destroyed."""
        with self._pool.connection() as conn:
            conn.execute(
                "INSERT INTO account_keys (account_id, wrapped_key, destroyed_at)"
                " VALUES (%s, NULL, now())"
                " ON CONFLICT (account_id) DO UPDATE SET wrapped_key = NULL,"
                " destroyed_at = coalesce(account_keys.destroyed_at, now())",
                (account_id,),
            )
        with self._lock:
            self._cache.pop(account_id, None)

    def prefetch(self, account_ids: Iterable[UUID]) -> None:
        """Cache the keys of these accounts in one query (a page of the directory, say).

        The keys asked for that are cached already become the most recently
        used, so what the query adds evicts other keys before them; ask for at
        most `cache_size` at a time, or the first ones are gone again before
        they are used. A destroyed key is cached as destroyed; an account with
        no key, or a wrapped key that does not open, is left to `decrypt`,
        which says so for that account alone.
        """
        with self._lock:
            missing = []
            for account_id in dict.fromkeys(account_ids):
                if account_id in self._cache:
                    self._cache.move_to_end(account_id)
                else:
                    missing.append(account_id)
        if not missing:
            return
        with self._pool.connection() as conn:
            rows = conn.execute(
                "SELECT account_id, wrapped_key FROM account_keys WHERE account_id = ANY(%s)",
                (missing,),
            ).fetchall()
        keys: dict[UUID, AESGCM | None] = {}
        for account_id, wrapped in rows:
            try:
                keys[account_id] = (
                    None if wrapped is None else AESGCM(self._unwrap(account_id, bytes(wrapped)))
                )
            except (InvalidTag, ValueError):
                continue  # a damaged row: decrypt raises for this account, not for the page
        with self._lock:
            for account_id, key in keys.items():
                self._cache[account_id] = key
            while len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)

    def _key(self, account_id: UUID, *, create: bool) -> AESGCM | None:
        with self._lock:
            if account_id in self._cache:
                self._cache.move_to_end(account_id)
                return self._cache[account_id]
        with self._pool.connection() as conn:
            row = None
            if create:
                data_key = AESGCM.generate_key(bit_length=256)
                # One round trip for a new key; one more when a key (or its
                # destruction) was there already, to read it.
                row = conn.execute(
                    "INSERT INTO account_keys (account_id, wrapped_key) VALUES (%s, %s)"
                    " ON CONFLICT (account_id) DO NOTHING RETURNING wrapped_key",
                    (account_id, self._wrap(account_id, data_key)),
                ).fetchone()
            if row is None:
                row = conn.execute(
                    "SELECT wrapped_key FROM account_keys WHERE account_id = %s", (account_id,)
                ).fetchone()
        if row is None:
            return None
        key = None if row[0] is None else AESGCM(self._unwrap(account_id, bytes(row[0])))
        with self._lock:
            self._cache[account_id] = key
            if len(self._cache) > self._cache_size:
                self._cache.popitem(last=False)
        return key

    def _wrap(self, account_id: UUID, data_key: bytes) -> bytes:
        nonce = os.urandom(_NONCE)
        return nonce + self._master.encrypt(nonce, data_key, account_id.bytes)

    def _unwrap(self, account_id: UUID, wrapped: bytes) -> bytes:
        return self._master.decrypt(wrapped[:_NONCE], wrapped[_NONCE:], account_id.bytes)


def blind_index_key(master_key: bytes) -> bytes:
    """The blind index's HMAC key: HKDF-SHA256 of the master key, for this use only."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=BLIND_INDEX_INFO).derive(
        master_key
    )


class HmacBlindIndex:
    """The BlindIndex of the ledger: truncated HMAC-SHA256 of each normalised search term."""

    def __init__(self, key: bytes) -> None:
        # Keyed once: copying a keyed HMAC skips hashing the padded key at every token.
        self._keyed = hmac.new(key, digestmod=hashlib.sha256)

    def tokens(self, field: str, value: str) -> tuple[bytes, ...]:
        """One token per normalised search term of the field's value."""
        return tuple(self._token(field, term) for term in search_terms(field, value))

    def _token(self, field: str, term: str) -> bytes:
        mac = self._keyed.copy()
        # The field is part of the message: the same text as a name and as an email differs.
        mac.update(field.encode() + b"\0" + term.encode())
        return mac.digest()[:TOKEN_BYTES]


def _aad(account_id: UUID, field: str) -> bytes:
    return account_id.bytes + field.encode()


def _seal(key: AESGCM, account_id: UUID, field: str, value: str) -> str:
    nonce = os.urandom(_NONCE)
    sealed = nonce + key.encrypt(nonce, value.encode(), _aad(account_id, field))
    return PREFIX + base64.urlsafe_b64encode(sealed).decode()


def _open(key: AESGCM, account_id: UUID, field: str, value: str) -> str:
    if not value.startswith(PREFIX):
        raise ValueError(f"field {field} is not a ciphertext of this ledger")
    sealed = base64.urlsafe_b64decode(value[len(PREFIX) :])
    try:
        return key.decrypt(sealed[:_NONCE], sealed[_NONCE:], _aad(account_id, field)).decode()
    except InvalidTag:
        raise ValueError(f"field {field} does not decrypt with the account's key") from None
