"""Access tokens of an OpenID Connect provider, verified with the keys the provider publishes.

Staff who sign in with the company's provider call the API with its access
tokens; those are signed with the provider's private key, never with this
service's secret. The keys come from the provider's JWKS, found through its
discovery document (`<issuer>/.well-known/openid-configuration` → `jwks_uri`),
held for five minutes and fetched again when a token names a `kid` they do not
hold (a key rotation), at most once per CRMLEDGER_OIDC_JWKS_COOLDOWN_SECONDS.

Only tokens whose `iss` is the configured issuer come here (api/auth.py picks
the verifier), and only asymmetric algorithms are accepted: a token claiming
the provider's issuer but signed with HMAC (say, with the public key as the
secret) or with `none` is refused before any key is fetched. `aud` must be
CRMLEDGER_OIDC_AUDIENCE, or the client id when that is unset; `exp` and `sub`
are required. The contract is in docs/design.md (Roles).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import httpx
import jwt

from infra.settings import Settings

# Signatures of a key pair: what a provider signs with. HMAC and `none` are not here.
ASYMMETRIC = ("RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA")
# How long a fetched key set is used before it is fetched again, and a fetch may take.
KEYS_LIFESPAN_S = 300
FETCH_TIMEOUT_S = 5
# Seconds a client should wait before retrying while the provider cannot be reached.
RETRY_AFTER_S = 5


class InvalidOidcToken(Exception):
    """The token claims the provider as its issuer but does not verify."""


class IssuerUnavailable(Exception):
    """The provider's discovery document or keys cannot be fetched now; retry later."""

    code = "issuer_unavailable"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail
        # api/errors.py adds these to the problem response.
        self.headers = {"Retry-After": str(RETRY_AFTER_S)}


@dataclass(frozen=True)
class OidcRules:
    """What a provider's access token must satisfy: its issuer, audience and claims."""

    issuer: str
    audience: str
    roles_claim: str
    cooldown_s: float


def oidc_rules(settings: Settings) -> OidcRules | None:
    """The provider's rules in these settings, or None when no issuer is configured."""
    if not settings.oidc_issuer:
        return None
    return OidcRules(
        # As the provider names itself, trailing slash and all (Auth0's has one):
        # `iss` is compared with it exactly.
        settings.oidc_issuer,
        # Settings refuse an issuer with neither of the two.
        settings.oidc_audience or settings.oidc_client_id or "",
        settings.oidc_roles_claim,
        settings.oidc_jwks_cooldown_seconds,
    )


def claims_issuer(token: str) -> str | None:
    """The `iss` a token claims, unverified (to pick its verifier), or None."""
    try:
        issuer = jwt.decode(token, options={"verify_signature": False}).get("iss")
    except jwt.PyJWTError:
        return None
    return issuer if isinstance(issuer, str) else None


class OidcVerifier:
    """Verifies one provider's tokens; finds and holds its keys."""

    def __init__(self, rules: OidcRules) -> None:
        self.rules = rules
        self._keys: jwt.PyJWKClient | None = None
        self._lock = threading.Lock()

    def verify(self, token: str) -> dict[str, Any]:
        """The token's claims once its signature, `iss`, `aud` and `exp` hold."""
        try:
            algorithm = jwt.get_unverified_header(token).get("alg")
        except jwt.PyJWTError as e:
            raise InvalidOidcToken(str(e)) from None
        if algorithm not in ASYMMETRIC:
            raise InvalidOidcToken(
                f"the provider's tokens are signed with a key pair, not with {algorithm}"
            )
        try:
            key = self._client().get_signing_key_from_jwt(token)
        except jwt.PyJWKClientConnectionError as e:
            raise IssuerUnavailable(f"the provider's keys cannot be fetched: {e}") from None
        except jwt.PyJWTError as e:
            raise InvalidOidcToken(str(e)) from None
        try:
            return jwt.decode(  # type: ignore[no-any-return]
                token,
                key.key,
                algorithms=list(ASYMMETRIC),
                issuer=self.rules.issuer,
                audience=self.rules.audience,
                options={"require": ["exp", "iss", "aud", "sub"]},
            )
        except jwt.PyJWTError as e:
            raise InvalidOidcToken(str(e)) from None

    def _client(self) -> jwt.PyJWKClient:
        with self._lock:
            if self._keys is None:
                self._keys = jwt.PyJWKClient(
                    self._jwks_uri(),
                    lifespan=KEYS_LIFESPAN_S,
                    timeout=FETCH_TIMEOUT_S,
                    cooldown_duration=self.rules.cooldown_s,
                )
            return self._keys

    def _jwks_uri(self) -> str:
        url = f"{self.rules.issuer.rstrip('/')}/.well-known/openid-configuration"
        try:
            response = httpx.get(url, timeout=FETCH_TIMEOUT_S)
            response.raise_for_status()
            discovery = response.json()
        except (httpx.HTTPError, ValueError) as e:
            raise IssuerUnavailable(f"the provider's discovery document {url}: {e}") from None
        # OpenID Connect Discovery 1.0, 4.3: the document names exactly the issuer asked for.
        named = discovery.get("issuer") if isinstance(discovery, dict) else None
        if named != self.rules.issuer:
            raise IssuerUnavailable(f"{url} names another issuer: {named!r}")
        jwks_uri = discovery.get("jwks_uri")
        if not isinstance(jwks_uri, str):
            raise IssuerUnavailable(f"{url} names no jwks_uri")
        return jwks_uri


_VERIFIERS: dict[OidcRules, OidcVerifier] = {}
_VERIFIERS_LOCK = threading.Lock()


def verifier(rules: OidcRules) -> OidcVerifier:
    """The one verifier of these rules in this process (its keys are fetched once)."""
    with _VERIFIERS_LOCK:
        return _VERIFIERS.setdefault(rules, OidcVerifier(rules))


def roles_in(claims: dict[str, Any], claim: str) -> list[str]:
    """The roles a provider's token names in `claim`: a list or a space-separated string.

    A dotted name reaches into objects (Keycloak's `realm_access.roles`) when no
    claim has that name itself. No such claim: no roles.
    """
    value: Any = claims.get(claim)
    if value is None and "." in claim:
        value = claims
        for part in claim.split("."):
            value = value.get(part) if isinstance(value, dict) else None
    if value is None:
        return []
    if isinstance(value, str):
        return value.split()
    if isinstance(value, list) and all(isinstance(r, str) for r in value):
        return value
    raise InvalidOidcToken(f"the {claim} claim must be a list of strings or a string")
