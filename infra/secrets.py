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
    return _key(settings, "master_key", "master-key", "CRMLEDGER_MASTER_KEY", "32 bytes")


def signing_key(settings: Settings) -> bytes:
    """The 32-byte Ed25519 seed that signs the Merkle tree's checkpoints."""
    return _key(
        settings, "signing_key", "signing-key", "CRMLEDGER_SIGNING_KEY", "a 32-byte Ed25519 seed"
    )


def _key(settings: Settings, field: str, name: str, variable: str, what: str) -> bytes:
    """32 random bytes, base64 in `variable` (or generated into the home file `name`)."""
    given = getattr(settings, field)
    if given is not None:
        raw = given.get_secret_value()
    else:
        raw = _generated(settings, name, variable, base64.b64encode(os.urandom(32)).decode())
    try:
        key = base64.b64decode(raw, validate=True)
    except ValueError:
        raise ConfigError(f"{variable} must be base64") from None
    if len(key) != 32:
        raise ConfigError(f"{variable} must be the base64 of {what}")
    return key


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
