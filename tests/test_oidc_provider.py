"""The shared OpenID provider of the tests (tests/oidc.py) issues what a production one does."""

from __future__ import annotations

import time
from datetime import timedelta

import httpx
import jwt

from tests.oidc import CLIENT_ID, OidcProvider, running_provider


def test_its_access_tokens_verify_with_the_keys_its_discovery_names(
    oidc_provider: OidcProvider,
) -> None:
    discovery = httpx.get(f"{oidc_provider.issuer}/.well-known/openid-configuration").json()
    assert discovery["issuer"] == oidc_provider.issuer
    token = oidc_provider.access_token("ann", roles=["auditor"], department="audit")
    key = jwt.PyJWKClient(discovery["jwks_uri"]).get_signing_key_from_jwt(token)
    claims = jwt.decode(
        token, key.key, algorithms=["RS256"], audience=CLIENT_ID, issuer=oidc_provider.issuer
    )
    assert (claims["sub"], claims["roles"], claims["department"]) == ("ann", ["auditor"], "audit")
    assert claims["exp"] - claims["iat"] == 3600


def test_a_token_can_be_made_old(oidc_provider: OidcProvider) -> None:
    old = oidc_provider.access_token("ann", age=timedelta(hours=2))
    claims = jwt.decode(old, options={"verify_signature": False})
    assert claims["exp"] < time.time() and claims["exp"] - claims["iat"] == 3600


def test_after_a_key_rotation_the_provider_signs_and_publishes_the_new_key_only() -> None:
    # A provider of its own: the session's stays on one key for every other test.
    with running_provider() as provider:
        before = jwt.get_unverified_header(provider.access_token("ann"))["kid"]
        provider.rotate_key()
        after = jwt.get_unverified_header(provider.access_token("ann"))["kid"]
        published = httpx.get(f"{provider.issuer}/jwks").json()["keys"]
    assert after != before and [k["kid"] for k in published] == [after]
