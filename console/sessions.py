"""Console sessions: who is signed in, for how long, and the CSRF token of their forms.

A session is a signed cookie (Starlette's SessionMiddleware over itsdangerous),
HttpOnly, SameSite=Lax, Secure when the request came over https, sent only to
/console. Its key is derived from the master key (HKDF), so every process of a
deployment accepts the sessions of the others and no new secret is needed. The
cookie is signed, not encrypted: it holds the staff member's subject, name,
roles and department, never a token or personal data of a customer.

A session ends after CRMLEDGER_CONSOLE_IDLE_MINUTES without a request (every
request re-signs it), at the latest CRMLEDGER_JWT_MAX_LIFETIME_HOURS after
sign-in, and at sign-out. Every state-changing form carries the session's CSRF
token, compared in constant time; signing in starts a new session (and token).
"""

from __future__ import annotations

import hmac
import secrets
import time
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from starlette.middleware.sessions import SessionMiddleware
from starlette.requests import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from api.auth import Principal
from infra.settings import Settings

COOKIE = "crmledger_console"
PREFIX = "/console"
SESSION_KEY_INFO = b"crmledger console session v1"
CSRF_FIELD = "csrf_token"


def session_key(master_key: bytes) -> str:
    """The key that signs console cookies: HKDF-SHA256 of the master key, for this use only."""
    derived = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=SESSION_KEY_INFO)
    return derived.derive(master_key).hex()


class ConsoleSessions:
    """Session cookies for /console only; the API's own routes never see or send one."""

    def __init__(self, app: ASGIApp, key: str, idle_seconds: int) -> None:
        self.app = app
        options: dict[str, Any] = {
            "secret_key": key,
            "session_cookie": COOKIE,
            "max_age": idle_seconds,
            "path": PREFIX,
            "same_site": "lax",
        }
        self._plain = SessionMiddleware(app, https_only=False, **options)
        self._secure = SessionMiddleware(app, https_only=True, **options)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] != "http" or not (path == PREFIX or path.startswith(PREFIX + "/")):
            await self.app(scope, receive, send)
            return
        # Secure whenever the browser reached us over https (uvicorn reads a proxy's headers).
        sessions = self._secure if scope.get("scheme") == "https" else self._plain
        await sessions(scope, receive, send)


class SignInRequired(Exception):
    """No session, or one that ended: the browser goes to the sign-in page."""


def start(request: Request, user: Principal, name: str, via: str) -> None:
    """Begin a fresh session for `user` (nothing of an earlier one is kept)."""
    request.session.clear()
    request.session.update(
        {
            "sub": user.sub,
            "name": name,
            "roles": sorted(user.roles),
            "department": user.department,
            "via": via,
            "since": int(time.time()),
            "seen": int(time.time()),
            "csrf": secrets.token_urlsafe(32),
        }
    )


def end(request: Request) -> None:
    """Sign out: the session is emptied and its cookie expires."""
    request.session.clear()


def signed_in(request: Request, settings: Settings) -> Principal | None:
    """The staff member of this session, or None when nobody is signed in (or it ended)."""
    session = request.session
    if "sub" not in session:
        return None
    now = time.time()
    idle = now - float(session.get("seen", 0)) > settings.console_idle_minutes * 60
    old = now - float(session.get("since", 0)) > settings.jwt_max_lifetime_hours * 3600
    if idle or old:
        session.clear()
        return None
    session["seen"] = int(now)  # re-signs the cookie: the idle time starts again
    return Principal(str(session["sub"]), frozenset(session["roles"]), str(session["department"]))


def staff_name(request: Request) -> str:
    """The signed-in staff member's name as the provider (or the dev sign-in) gave it."""
    return str(request.session.get("name") or request.session.get("sub") or "")


def csrf_token(request: Request) -> str:
    """The token every form of this session carries (made on first use, signed-in or not)."""
    token = request.session.get("csrf")
    if not token:
        token = request.session["csrf"] = secrets.token_urlsafe(32)
    return str(token)


def csrf_ok(request: Request, sent: object) -> bool:
    """Whether a form's token is this session's own."""
    expected = request.session.get("csrf")
    return bool(expected) and isinstance(sent, str) and hmac.compare_digest(sent, str(expected))
