"""Bearer tokens and the roles matrix of the design.

Tokens are JWTs with `sub`, `roles` and `exp` (and optionally `department`),
signed with HS256 by the configured secret or verified with RS256/ES256 against
the configured public key. Each route names the permission it needs; the matrix
below is the only place that says which role holds which permission.

A token is refused with 401 when it does not verify, has no `exp`, names
another issuer or audience than the configured ones (CRMLEDGER_JWT_ISSUER,
CRMLEDGER_JWT_AUDIENCE; unset: not checked, though PyJWT still refuses a token
carrying an `aud` when none is configured), or lives longer than
CRMLEDGER_JWT_MAX_LIFETIME_HOURS (default 12): `exp - iat` over it, or without
`iat` an `exp` further than that from now. A token holding no role this
service knows is refused with 403 on every route: it verifies, but may nothing.

With CRMLEDGER_OIDC_ISSUER set, a token whose `iss` is that issuer is an
OpenID Connect provider's access token and is verified by api/oidc_tokens.py
with the provider's published keys (its roles in CRMLEDGER_OIDC_ROLES_CLAIM, a
list or a space-separated string); every other token is verified as above. The
same maximum lifetime and the same 403 for no known role hold for both.

Auditors may read the projections' status (GET /v1/admin/projections): checking
that the read models trail the ledger is part of auditing them; rebuilding
stays with admins.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Annotated, Any

import jwt
from fastapi import Depends, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from api.oidc_tokens import (
    InvalidOidcToken,
    OidcRules,
    claims_issuer,
    oidc_rules,
    roles_in,
    verifier,
)
from infra.wiring import Services
from projections.reports import REPORTS

ROLES = (
    "customer_service",
    "marketing",
    "finance",
    "management",
    "auditor",
    "admin",
    "integration",
)


class Permission(StrEnum):
    MANAGE_ACCOUNTS = "manage accounts"
    RECORD_ACTIVITIES = "record activities"
    READ_UNMASKED = "read personal data unmasked"
    READ_MASKED = "read accounts masked"
    READ_HISTORY = "read account history"
    SEARCH_DIRECTORY = "search the account directory"
    AUDIT = "audit"
    ERASE = "erase personal data"
    DATA_ACCESS_REQUEST = "answer a data access request"
    OPERATE = "run operations"
    READ_PROJECTIONS = "read the projections' status"
    READ_GUIDELINES = "read service guidelines"
    WRITE_GUIDELINES = "set service guidelines"
    # One per report of projections/reports.py; report_permission() finds them by name.
    REPORT_ACCOUNTS_SUMMARY = "read the accounts-summary report"
    REPORT_ACCOUNTS_DUE_FOR_REVIEW = "read the accounts-due-for-review report"
    REPORT_SEGMENT_ANALYSIS = "read the segment-analysis report"
    REPORT_FINANCIAL_SUMMARY = "read the financial-summary report"
    REPORT_SERVICE_KPIS = "read the service-kpis report"
    REPORT_SCHEME_REVIEW = "read the scheme-review report"
    REPORT_STAFF_PERFORMANCE = "read the staff-performance report"


def report_permission(name: str) -> Permission:
    """The permission to read the report called `name`."""
    return Permission(f"read the {name} report")


MATRIX: dict[Permission, frozenset[str]] = {
    Permission.MANAGE_ACCOUNTS: frozenset({"customer_service", "admin", "integration"}),
    Permission.RECORD_ACTIVITIES: frozenset({"customer_service", "integration"}),
    Permission.READ_UNMASKED: frozenset({"customer_service", "auditor", "admin"}),
    Permission.READ_MASKED: frozenset({"marketing", "finance", "management"}),
    Permission.READ_HISTORY: frozenset({"customer_service", "auditor", "admin"}),
    Permission.SEARCH_DIRECTORY: frozenset(
        {"customer_service", "marketing", "management", "auditor", "admin"}
    ),
    Permission.AUDIT: frozenset({"auditor", "admin"}),
    Permission.ERASE: frozenset({"admin"}),
    Permission.DATA_ACCESS_REQUEST: frozenset({"admin"}),
    Permission.OPERATE: frozenset({"admin"}),
    Permission.READ_PROJECTIONS: frozenset({"auditor", "admin"}),
    Permission.READ_GUIDELINES: frozenset(
        {"customer_service", "marketing", "finance", "management", "auditor", "admin"}
    ),
    Permission.WRITE_GUIDELINES: frozenset({"management", "admin"}),
    # Reports: the departments of the design's report table, and auditors, who read all.
    **{
        report_permission(name): report.departments | {"auditor"}
        for name, report in REPORTS.items()
    },
}


class Unauthenticated(Exception):
    """No token, or one that does not verify."""


class Forbidden(Exception):
    """A valid token whose roles may not do this."""


@dataclass(frozen=True)
class Principal:
    """Who is calling: the token's subject, roles and department."""

    sub: str
    roles: frozenset[str]
    department: str

    def may(self, permission: Permission) -> bool:
        return bool(self.roles & MATRIX[permission])


# The longest lifetime of a token, when the settings say nothing else.
DEFAULT_MAX_LIFETIME = 12 * 3600


def issue_token(
    secret: str,
    sub: str,
    roles: list[str],
    *,
    department: str | None = None,
    ttl: int = DEFAULT_MAX_LIFETIME,
    issuer: str | None = None,
    audience: str | None = None,
    max_lifetime: float = DEFAULT_MAX_LIFETIME,
) -> str:
    """Sign a token for `sub` with `roles`, valid for `ttl` seconds (at most `max_lifetime`)."""
    unknown = set(roles) - set(ROLES)
    if unknown:
        raise ValueError(f"unknown roles: {', '.join(sorted(unknown))}")
    if ttl > max_lifetime:
        raise ValueError(f"a token lives at most {max_lifetime:g} seconds, not {ttl}")
    now = int(time.time())
    claims: dict[str, object] = {"sub": sub, "roles": roles, "iat": now, "exp": now + ttl}
    if department:
        claims["department"] = department
    if issuer:
        claims["iss"] = issuer
    if audience:
        claims["aud"] = audience
    return jwt.encode(claims, secret, algorithm="HS256")


@dataclass(frozen=True)
class TokenRules:
    """What a token must satisfy besides its signature."""

    key: str
    algorithms: tuple[str, ...]
    issuer: str | None
    audience: str | None
    max_lifetime: float
    # How many verified tokens are remembered (CRMLEDGER_TOKEN_CACHE_SIZE).
    remember: int = 10_000
    # The OpenID Connect provider whose tokens are accepted too, if one is configured.
    oidc: OidcRules | None = None


# Tokens verified before, with their expiry: a client sends the same token on
# every request, and verifying it again costs more than the rest of the routing.
# Keyed by the rules too: a token verified under one configuration says nothing
# about another.
_VERIFIED: dict[tuple[TokenRules, str], tuple[Principal, float]] = {}


def token_rules(services: Services) -> TokenRules:
    """The rules a token must satisfy in this service's configuration."""
    settings = services.settings
    if settings.jwt_public_key:
        key, algorithms = settings.jwt_public_key, ("RS256", "ES256")
    else:
        key, algorithms = services.jwt_secret or "", ("HS256",)
    return TokenRules(
        key,
        algorithms,
        settings.jwt_issuer,
        settings.jwt_audience,
        settings.jwt_max_lifetime_hours * 3600,
        settings.token_cache_size,
        oidc_rules(settings),
    )


def remembered(rules: TokenRules, token: str) -> Principal | None:
    """The principal of a token verified before under these rules and not expired yet."""
    known = _VERIFIED.get((rules, token))
    if known is not None and time.time() < known[1]:
        return known[0]
    return None


def _verify_and_remember(rules: TokenRules, token: str) -> Principal:
    principal, expires = _verify(token, rules)
    if len(_VERIFIED) >= rules.remember:
        # Wholesale: a client re-verifies once, and nothing is kept per entry.
        _VERIFIED.clear()
    _VERIFIED[(rules, token)] = (principal, expires)
    return principal


def _verify(token: str, rules: TokenRules) -> tuple[Principal, float]:
    if rules.oidc is not None and claims_issuer(token) == rules.oidc.issuer:
        try:
            claims = verifier(rules.oidc).verify(token)
            roles = roles_in(claims, rules.oidc.roles_claim)
        except InvalidOidcToken as e:
            raise Unauthenticated(f"invalid token: {e}") from None
    else:
        claims = _own_claims(token, rules)
        roles = claims.get("roles")
        if not isinstance(roles, list) or not all(isinstance(r, str) for r in roles):
            raise Unauthenticated("invalid token: roles must be a list of strings")
    exp = float(claims["exp"])
    iat = claims.get("iat")
    # PyJWT has checked that iat, when present, is a number not in the future.
    lifetime = exp - float(iat) if iat is not None else exp - time.time()
    if lifetime > rules.max_lifetime:
        hours = rules.max_lifetime / 3600
        raise Unauthenticated(f"invalid token: it lives longer than the maximum of {hours:g} h")
    known = frozenset(roles) & frozenset(ROLES)
    department = claims.get("department")
    if not isinstance(department, str):
        # Without a department claim, the first known role names the department.
        department = next((r for r in roles if r in known), "")
    return Principal(str(claims["sub"]), known, department), exp


def _own_claims(token: str, rules: TokenRules) -> dict[str, Any]:
    """The claims of a token this service's secret (or configured public key) signed."""
    required = ["exp", "sub"]
    required += ["iss"] if rules.issuer else []
    required += ["aud"] if rules.audience else []
    try:
        return jwt.decode(  # type: ignore[no-any-return]
            token,
            rules.key,
            algorithms=list(rules.algorithms),
            issuer=rules.issuer,
            audience=rules.audience,
            options={"require": required},
        )
    except jwt.PyJWTError as e:
        raise Unauthenticated(f"invalid token: {e}") from None


# The "Authorize" of /docs: a token of `crmledger token` or an OpenID provider's access token.
bearer = HTTPBearer(
    auto_error=False,
    bearerFormat="JWT",
    description="A token of `crmledger token`, or an access token of the configured OpenID"
    " provider; paste it without the word Bearer.",
)


Bearer = Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)]


async def current_user(request: Request, creds: Bearer) -> Principal:
    """The caller, from the bearer token; 401 without a valid one, 403 with no known role."""
    if creds is None:
        raise Unauthenticated("a bearer token is required")
    rules = token_rules(request.app.state.services)
    user = remembered(rules, creds.credentials)
    if user is None and rules.oidc is not None:
        # May fetch the provider's keys: not on the event loop.
        user = await run_in_threadpool(_verify_and_remember, rules, creds.credentials)
    elif user is None:
        user = _verify_and_remember(rules, creds.credentials)
    if not user.roles:
        raise Forbidden(f"the token holds none of the roles: {', '.join(ROLES)}")
    return user


CurrentUser = Annotated[Principal, Depends(current_user)]


def require(*permissions: Permission) -> Any:
    """A dependency that lets through callers holding any of `permissions`."""

    # The caller's checks in this one dependency, not one that depends on
    # current_user: FastAPI solves each dependency anew on every request.
    async def check(request: Request, creds: Bearer) -> Principal:
        user = await current_user(request, creds)
        if not any(user.may(p) for p in permissions):
            allowed = sorted(set().union(*(MATRIX[p] for p in permissions)))
            raise Forbidden(f"this needs one of the roles: {', '.join(allowed)}")
        return user

    return Depends(check)
