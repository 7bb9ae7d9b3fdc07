"""The JWT secret, the master key and the signing key: given, or generated for local use.

A generated secret lives in a file under CRMLEDGER_HOME (mode 0600). Generation
happens only in embedded mode; with a database URL set, a missing secret stops
the service at start, so no production deployment runs on a default secret.
"""

from __future__ import annotations

import base64
import os
import secrets
from pathlib import Path

from infra.settings import Settings

MIN_SECRET_LENGTH = 32


class ConfigError(Exception):
    """The configuration cannot run: a required secret is missing or weak."""


def jwt_secret(settings: Settings) -> str | None:
    """The HMAC secret that signs tokens, or None when only a public key is configured."""
    if settings.jwt_secret is not None:
        value = settings.jwt_secret.get_secret_value()
        if len(value) < MIN_SECRET_LENGTH:
            raise ConfigError(f"CRMLEDGER_JWT_SECRET must be at least {MIN_SECRET_LENGTH} chars")
        return value
    if settings.jwt_public_key:
        return None
    return _generated(settings, "jwt-secret", "CRMLEDGER_JWT_SECRET", secrets.token_urlsafe(48))


def master_key(settings: Settings) -> bytes:
    """The 32-byte key that wraps every account's data key."""
    if settings.master_key is not None:
        raw = settings.master_key.get_secret_value()
    else:
        fresh = base64.b64encode(os.urandom(32)).decode()
        raw = _generated(settings, "master-key", "CRMLEDGER_MASTER_KEY", fresh)
    try:
        key = base64.b64decode(raw, validate=True)
    except ValueError:
        raise ConfigError("CRMLEDGER_MASTER_KEY must be base64") from None
    if len(key) != 32:
        raise ConfigError("CRMLEDGER_MASTER_KEY must be the base64 of 32 bytes")
    return key


def signing_key(settings: Settings) -> bytes:
    """The 32-byte Ed25519 seed that signs the Merkle tree's checkpoints."""
    if settings.signing_key is not None:
        raw = settings.signing_key.get_secret_value()
    else:
        fresh = base64.b64encode(os.urandom(32)).decode()
        raw = _generated(settings, "signing-key", "CRMLEDGER_SIGNING_KEY", fresh)
    try:
        seed = base64.b64decode(raw, validate=True)
    except ValueError:
        raise ConfigError("CRMLEDGER_SIGNING_KEY must be base64") from None
    if len(seed) != 32:
        raise ConfigError("CRMLEDGER_SIGNING_KEY must be the base64 of a 32-byte Ed25519 seed")
    return seed


def _generated(settings: Settings, name: str, variable: str, fresh: str) -> str:
    if not settings.embedded:
        raise ConfigError(f"{variable} is required when CRMLEDGER_DATABASE_URL is set")
    path = Path(settings.home) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return path.read_text().strip()
    with os.fdopen(fd, "w") as f:
        f.write(fresh)
    return fresh
