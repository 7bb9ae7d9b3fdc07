"""`crmledger token`: sign a bearer token from the settings and the secret alone.

Signing needs the JWT secret and nothing else, so no database and no broker
start (starting them could revive an embedded PostgreSQL a running `serve`
then no longer owns). The command says on stderr which home and which secret
it used (the CRMLEDGER_JWT_SECRET variable, or the home's generated file), so
a token signed with a secret the running service does not have shows at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from api.auth import ROLES, issue_token
from infra.secrets import ConfigError, jwt_secret
from infra.settings import Settings

# The file infra/secrets.py generates the embedded secret into, under the home.
SECRET_FILE = "jwt-secret"


class TokenRefused(Exception):
    """The token cannot be signed as asked: a usage error, said in one line."""


@dataclass(frozen=True)
class SigningSecret:
    """The secret tokens are signed with, and where it came from, in words."""

    value: str
    source: str


def signing_secret(settings: Settings) -> SigningSecret:
    """The configured secret, or the home's (generated now if no process made it yet)."""
    home = Path(settings.home).resolve()
    if settings.jwt_secret is not None:
        source = "the CRMLEDGER_JWT_SECRET variable"
    elif settings.jwt_public_key:
        raise TokenRefused(
            "only a public key is configured (CRMLEDGER_JWT_PUBLIC_KEY): "
            "tokens are signed by whoever holds its private key"
        )
    else:
        path = home / SECRET_FILE
        source = str(path)
        if not path.exists():
            source += " (created now: no service has run on this home yet)"
    try:
        value = jwt_secret(settings)
    except ConfigError as e:
        raise TokenRefused(str(e)) from None
    assert value is not None  # None only with a public key alone, refused above
    return SigningSecret(value, source)


def sign(
    settings: Settings,
    secret: SigningSecret,
    roles: list[str],
    sub: str,
    department: str | None,
    ttl: int,
) -> str:
    """A token for `sub` with `roles`, living `ttl` seconds, with the configured iss and aud."""
    unknown = [r for r in roles if r not in ROLES]
    if unknown:
        raise TokenRefused(
            f"unknown roles: {', '.join(unknown)}; the roles are: {', '.join(ROLES)}"
        )
    max_lifetime = settings.jwt_max_lifetime_hours * 3600
    if ttl <= 0:
        raise TokenRefused("--ttl must be a positive number of seconds")
    if ttl > max_lifetime:
        raise TokenRefused(
            f"--ttl {ttl}: a token lives at most {max_lifetime:g} seconds "
            "(CRMLEDGER_JWT_MAX_LIFETIME_HOURS)"
        )
    return issue_token(
        secret.value,
        sub,
        roles,
        department=department,
        ttl=ttl,
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        max_lifetime=max_lifetime,
    )
