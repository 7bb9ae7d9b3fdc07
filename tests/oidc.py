"""A real OpenID Connect provider in the test process: oidc-provider-mock on a loopback port.

The mock serves discovery, JWKS, the authorization form and the token endpoint
(Authlib underneath). Its access tokens would be opaque strings; production
providers that protect an API issue JWT access tokens (RFC 9068), so the
provider here is built with a token generator that signs them with its own
key, the one its JWKS publishes. The API then verifies them exactly as it
would a production provider's, and the console's sign-in runs the same
provider's redirect flow. The `oidc_provider` fixture of conftest.py shares one
provider per test session; a test that rotates the key starts its own
(`running_provider()`), so the shared one keeps one key for everyone.
"""

from __future__ import annotations

import secrets
import threading
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, quote, urlsplit
from uuid import uuid4

import flask
import httpx
import jwt
import werkzeug.serving

# Authlib turns its deprecation warnings on for good when imported; the mock
# imports its older modules. Quiet them here, where they are the mock's business.
with warnings.catch_warnings():
    import authlib.deprecate  # noqa: F401  (adds its filter first, so ours comes before it)

    warnings.simplefilter("ignore", DeprecationWarning)
    import oidc_provider_mock
    from authlib import jose

# The client the tests register as: the mock accepts any id and secret.
CLIENT_ID = "crmledger"
CLIENT_SECRET = "crmledger-test-secret"
REDIRECT_URI = "http://127.0.0.1/callback"


@dataclass
class Issuing:
    """How the next access token is made: its lifetime, and how long ago it was issued."""

    lifetime: timedelta = timedelta(hours=1)
    age: timedelta = timedelta(0)
    lock: threading.Lock = field(default_factory=threading.Lock)


def _jwt_access_token(client: Any, grant_type: str, user: Any, scope: str) -> str:
    """An RFC 9068 access token: the user's claims, signed with the provider's key."""
    key = flask.g.oidc_provider_mock_storage.jwk
    issuing: Issuing = flask.current_app.config["CRMLEDGER_ISSUING"]
    issued = int(time.time() - issuing.age.total_seconds())
    claims = {
        **user.claims,
        "iss": flask.request.host_url.rstrip("/"),
        "sub": user.sub,
        "aud": client.get_client_id(),
        "client_id": client.get_client_id(),
        "scope": scope,
        "iat": issued,
        "exp": issued + int(issuing.lifetime.total_seconds()),
        "jti": uuid4().hex,
    }
    headers = {"kid": key.as_dict()["kid"], "typ": "at+jwt"}
    return jwt.encode(claims, key.get_private_key(), algorithm="RS256", headers=headers)


@dataclass
class OidcProvider:
    """The running provider: its issuer URL, its users, its tokens, its signing key."""

    app: flask.Flask
    issuer: str

    @property
    def issuing(self) -> Issuing:
        return self.app.config["CRMLEDGER_ISSUING"]  # type: ignore[no-any-return]

    def add_user(self, sub: str, **claims: Any) -> None:
        """Create or replace the user `sub` with these claims (roles, department, email...)."""
        response = httpx.put(f"{self.issuer}/users/{quote(sub, safe='')}", json=claims)
        response.raise_for_status()

    def authorization_code(
        self, sub: str, client_id: str = CLIENT_ID, redirect_uri: str = REDIRECT_URI
    ) -> str:
        """The code the provider's authorization form gives when `sub` signs in."""
        state = secrets.token_urlsafe(8)
        params = {
            "response_type": "code",
            "client_id": client_id,
            "redirect_uri": redirect_uri,
            "scope": "openid profile email",
            "state": state,
        }
        response = httpx.post(f"{self.issuer}/oauth2/authorize", params=params, data={"sub": sub})
        assert response.status_code == 302, response.text
        query = parse_qs(urlsplit(response.headers["location"]).query)
        assert query["state"] == [state]
        return query["code"][0]

    def access_token(
        self,
        sub: str,
        *,
        client_id: str = CLIENT_ID,
        host: str | None = None,
        lifetime: timedelta = timedelta(hours=1),
        age: timedelta = timedelta(0),
        **claims: Any,
    ) -> str:
        """An access token for `sub` through the authorization code flow.

        With `claims`, the user is (re)created with them first. `host` is the Host
        the token endpoint is called by (its `iss` follows it); `lifetime` and
        `age` make a token that lives that long, issued that long ago.
        """
        if claims:
            self.add_user(sub, **claims)
        code = self.authorization_code(sub, client_id)
        with self.issuing.lock:
            self.issuing.lifetime, self.issuing.age = lifetime, age
            try:
                response = httpx.post(
                    f"{self.issuer}/oauth2/token",
                    data={
                        "grant_type": "authorization_code",
                        "code": code,
                        "redirect_uri": REDIRECT_URI,
                    },
                    auth=(client_id, CLIENT_SECRET),
                    headers={"Host": host} if host else None,
                )
            finally:
                self.issuing.lifetime, self.issuing.age = Issuing().lifetime, Issuing().age
        response.raise_for_status()
        return response.json()["access_token"]  # type: ignore[no-any-return]

    def rotate_key(self) -> None:
        """Sign with a fresh key from now on; the JWKS publishes only the new one."""
        with self.app.test_request_context():
            self.app.preprocess_request()
            storage = flask.g.oidc_provider_mock_storage
        storage.jwk = jose.RSAKey.generate_key(is_private=True)


class _QuietHandler(werkzeug.serving.WSGIRequestHandler):
    """No line per request on the test output."""

    def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
        pass


@contextmanager
def running_provider() -> Iterator[OidcProvider]:
    """Start the provider on a free loopback port in a thread; stop it after the block."""
    app = flask.Flask(oidc_provider_mock.__name__ + "._app")  # finds the mock's templates
    app.config["OAUTH2_ACCESS_TOKEN_GENERATOR"] = _jwt_access_token
    app.config["CRMLEDGER_ISSUING"] = Issuing()
    oidc_provider_mock.init_app(app)
    app.secret_key = secrets.token_bytes(16)
    server = werkzeug.serving.make_server(
        "127.0.0.1", 0, app, threaded=True, request_handler=_QuietHandler
    )
    thread = threading.Thread(target=server.serve_forever, args=(0.1,), daemon=True)
    thread.start()
    try:
        yield OidcProvider(app, f"http://127.0.0.1:{server.server_port}")
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)
