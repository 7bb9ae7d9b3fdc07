"""Signing in and out: OpenID Connect (authorization code with PKCE), or the dev sign-in.

The provider is any OpenID Connect issuer (CRMLEDGER_OIDC_ISSUER, with this
service's client id and secret); Authlib's Starlette client discovers its
endpoints, sends PKCE (S256), state and nonce, and checks the ID token. The
staff member's roles are the claim CRMLEDGER_OIDC_ROLES_CLAIM, read by the
API's own `roles_in` (a list or a space-separated string, dotted for a nested
claim; from the ID token, else from the userinfo endpoint), their department
the `department` claim, else the first role: as the API reads a token. Only roles this service knows
count; a person holding none is refused.

The development sign-in (pick a role and a name) exists only on the embedded
default, with no database URL: anywhere else its address is a 404.
"""

from __future__ import annotations

import warnings
from typing import Any

from authlib.deprecate import AuthlibDeprecationWarning

# Authlib warns, at import, that its httpx module will move to httpx2: a note for
# Authlib's own next release, not something a person running the service can act on.
with warnings.catch_warnings():
    warnings.simplefilter("ignore", AuthlibDeprecationWarning)
    from authlib.integrations.starlette_client import OAuth, OAuthError
from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import RedirectResponse

from api.auth import ROLES, Principal
from api.oidc_tokens import InvalidOidcToken, roles_in
from console import sessions
from console.rendering import ConsoleRoute, PageNotFound, flash, render, safe_next
from console.staff import CheckedForm, services_of
from infra.inputs import control_character
from infra.settings import Settings

router = APIRouter(prefix="/console", route_class=ConsoleRoute, include_in_schema=False)

PROVIDER = "staff"


def register_provider(settings: Settings) -> OAuth | None:
    """The OpenID Connect client of the settings' provider; None when none is configured."""
    if not (settings.oidc_issuer and settings.oidc_client_id):
        return None
    oauth = OAuth()
    secret = settings.oidc_client_secret
    oauth.register(
        PROVIDER,
        client_id=settings.oidc_client_id,
        client_secret=secret.get_secret_value() if secret else None,
        server_metadata_url=settings.oidc_issuer.rstrip("/") + "/.well-known/openid-configuration",
        client_kwargs={"scope": "openid profile email", "code_challenge_method": "S256"},
    )
    return oauth


def _provider(request: Request) -> Any:
    oauth: OAuth | None = request.app.state.console_oauth
    return oauth.create_client(PROVIDER) if oauth is not None else None


def principal_of(claims: dict[str, Any], roles_claim: str) -> Principal:
    """The staff member the claims name, with the roles this service knows."""
    try:
        roles = roles_in(claims, roles_claim)
    except InvalidOidcToken:
        roles = []  # a claim of another shape grants nothing
    known = [r for r in roles if r in ROLES]
    department = claims.get("department")
    if not isinstance(department, str) or not department:
        department = known[0] if known else ""
    return Principal(str(claims["sub"]), frozenset(known), department)


@router.get("", name="console_home")
async def home(request: Request) -> Response:
    """The console's front door."""
    return RedirectResponse(f"{sessions.PREFIX}/accounts", status_code=303)


@router.get("/sign-in", name="console_sign_in")
async def sign_in(request: Request, next: str | None = None) -> Response:
    """The sign-in page: the provider's button, and the dev sign-in where it exists."""
    settings = services_of(request).settings
    return render(
        request,
        "sign_in.html",
        None,
        next=safe_next(next),
        provider=settings.oidc_issuer if _provider(request) else None,
        dev=settings.embedded,
    )


@router.get("/sign-in/oidc", name="console_oidc_start")
async def oidc_start(request: Request, next: str | None = None) -> Response:
    """Send the browser to the provider (authorization code flow with PKCE)."""
    client = _provider(request)
    if client is None:
        raise PageNotFound("No OpenID Connect provider is configured.")
    request.session["next"] = safe_next(next)
    redirect_uri = request.url_for("console_oidc_callback")
    response: Response = await client.authorize_redirect(request, redirect_uri)
    return response


@router.get("/auth/callback", name="console_oidc_callback")
async def oidc_callback(request: Request) -> Response:
    """The provider's answer: exchange the code, read the claims, start the session."""
    client = _provider(request)
    if client is None:
        raise PageNotFound("No OpenID Connect provider is configured.")
    settings = services_of(request).settings
    try:
        token = await client.authorize_access_token(request)
        claims = dict(token.get("userinfo") or {})
        if not principal_of(claims, settings.oidc_roles_claim).roles:
            claims.update(await client.userinfo(token=token))
    except OAuthError as e:
        detail = f"The provider did not sign you in: {e.description or e.error}."
        return render(request, "error.html", None, 401, title="Sign-in failed", detail=detail)
    user = principal_of(claims, settings.oidc_roles_claim)
    if not user.roles:
        detail = (
            f"Your account at the provider holds none of this service's roles"
            f" ({', '.join(ROLES)}) in its '{settings.oidc_roles_claim}' claim."
        )
        return render(request, "error.html", None, 403, title="Refused", detail=detail)
    target = safe_next(request.session.get("next"))
    name = claims.get("name") or claims.get("preferred_username") or claims.get("email")
    sessions.start(request, user, str(name or user.sub), "oidc")
    return RedirectResponse(target, status_code=303)


@router.post("/sign-out", name="console_sign_out")
async def sign_out(request: Request, form: CheckedForm) -> Response:
    """End the session (the provider's own session is the provider's)."""
    sessions.end(request)
    flash(request, "You are signed out.")
    return RedirectResponse(f"{sessions.PREFIX}/sign-in", status_code=303)


async def _dev_only(request: Request) -> None:
    if not services_of(request).settings.embedded:
        raise PageNotFound


# The dev sign-in's check runs first: with a database URL its address is a 404, form or not.
@router.get("/dev-sign-in", name="console_dev_sign_in", dependencies=[Depends(_dev_only)])
async def dev_sign_in(request: Request, next: str | None = None) -> Response:
    """Development sign-in (embedded default only): choose a role and a name."""
    return render(request, "dev_sign_in.html", None, next=safe_next(next), errors={})


@router.post("/dev-sign-in", dependencies=[Depends(_dev_only)])
async def dev_sign_in_post(request: Request, form: CheckedForm) -> Response:
    """Start a development session as the chosen role and name."""
    name = str(form.get("name") or "").strip()
    role = str(form.get("role") or "")
    errors: dict[str, str] = {}
    if not name or len(name) > 100 or control_character(name):
        errors["name"] = "give a name of 1 to 100 characters"
    if role not in ROLES:
        errors["role"] = f"choose one of: {', '.join(ROLES)}"
    if errors:
        page = render(
            request,
            "dev_sign_in.html",
            None,
            422,
            next=safe_next(str(form.get("next") or "")),
            errors=errors,
            name=name,
        )
        return page
    user = Principal(f"dev:{name}", frozenset({role}), role)
    sessions.start(request, user, name, "dev")
    return RedirectResponse(safe_next(str(form.get("next") or "")), status_code=303)
