"""Access tokens of a real OpenID provider (tests/oidc.py) on the API, beside its own HMAC tokens.

The provider runs in the test process and issues its tokens through the
authorization code flow; the API finds its keys through discovery and JWKS.
Every refusal is a 401 problem+json; a provider that cannot be reached is a 503.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
import json
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any
from uuid import uuid4

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from fastapi.testclient import TestClient

from api.app import create_app
from api.oidc_tokens import InvalidOidcToken, roles_in
from infra.wiring import Services
from tests.oidc import CLIENT_ID, OidcProvider, running_provider

Auth = Callable[..., dict[str, str]]


def api_for(services: Services, **settings: Any) -> TestClient:
    """The API over the session's ledger with these settings changed (cheap: no new schema)."""
    changed = services.settings.model_copy(update=settings)
    return TestClient(create_app(dataclasses.replace(services, settings=changed)))


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture(scope="module")
def api(services: Services, oidc_provider: OidcProvider) -> Iterator[TestClient]:
    """The API accepting the provider's tokens for client `crmledger`."""
    with api_for(services, oidc_issuer=oidc_provider.issuer, oidc_client_id=CLIENT_ID) as c:
        yield c


def assert_refused(response: Any, says: str) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["www-authenticate"] == "Bearer"
    assert says in response.json()["detail"], response.json()["detail"]


def test_a_providers_token_acts_with_its_roles_and_its_subject_is_the_actor(
    api: TestClient, oidc_provider: OidcProvider
) -> None:
    token = oidc_provider.access_token(
        "clerk.oidc@example.com", roles=["customer_service"], department="account-services"
    )
    body = {"segment": "gold", "channel": "store", "customer": {"name": "Ann Lee"}}
    opened = api.post("/v1/accounts", json=body, headers=bearer(token))
    assert opened.status_code == 201, opened.text
    history = api.get(f"/v1/accounts/{opened.json()['id']}/history", headers=bearer(token))
    assert history.status_code == 200, history.text
    metadata = history.json()["events"][0]["metadata"]
    assert metadata["actor"] == "clerk.oidc@example.com"
    assert metadata["department"] == "account-services"
    # customer_service may not audit: the roles are the token's, nothing more.
    assert api.get("/v1/audit/verify", headers=bearer(token)).status_code == 403


def test_roles_as_a_space_separated_string_unknown_ones_ignored(
    api: TestClient, oidc_provider: OidcProvider
) -> None:
    token = oidc_provider.access_token("audrey", roles="janitor auditor")
    assert api.get("/v1/admin/projections", headers=bearer(token)).status_code == 200
    rebuild = api.post("/v1/admin/projections/directory/rebuild", headers=bearer(token))
    assert rebuild.status_code == 403


@pytest.mark.parametrize("roles", [["janitor"], "", None], ids=["unknown", "empty", "no-claim"])
def test_a_providers_token_with_no_known_role_is_a_403(
    api: TestClient, oidc_provider: OidcProvider, roles: Any
) -> None:
    claims = {"email": "x@example.com"} if roles is None else {"roles": roles}
    token = oidc_provider.access_token(f"nobody-{uuid4().hex[:6]}", **claims)
    response = api.get(f"/v1/accounts/{uuid4()}", headers=bearer(token))
    assert response.status_code == 403, response.text
    assert "none of the roles" in response.json()["detail"]


def test_the_services_own_tokens_keep_working_beside_the_providers(
    api: TestClient, auth: Auth
) -> None:
    assert api.get("/v1/admin/projections", headers=auth("auditor")).status_code == 200


def test_a_token_for_another_audience_is_refused(
    api: TestClient, oidc_provider: OidcProvider
) -> None:
    token = oidc_provider.access_token("ann", client_id="another-app", roles=["auditor"])
    assert_refused(api.get("/v1/admin/projections", headers=bearer(token)), "Audience")


def test_a_configured_audience_replaces_the_client_id(
    services: Services, oidc_provider: OidcProvider
) -> None:
    token = oidc_provider.access_token("ann", client_id="ledger-api", roles=["auditor"])
    with api_for(
        services,
        oidc_issuer=oidc_provider.issuer,
        oidc_client_id=CLIENT_ID,
        oidc_audience="ledger-api",
    ) as c:
        assert c.get("/v1/admin/projections", headers=bearer(token)).status_code == 200
        own = oidc_provider.access_token("ann", roles=["auditor"])  # aud: the client id
        assert_refused(c.get("/v1/admin/projections", headers=bearer(own)), "Audience")


def test_a_token_of_another_issuer_is_refused(api: TestClient, oidc_provider: OidcProvider) -> None:
    # The same provider reached under another name signs with the same key, but
    # names itself differently: not the configured issuer, so not its token.
    other_name = oidc_provider.issuer.replace("127.0.0.1", "localhost").removeprefix("http://")
    token = oidc_provider.access_token("ann", host=other_name, roles=["auditor"])
    assert jwt.decode(token, options={"verify_signature": False})["iss"] != oidc_provider.issuer
    assert_refused(api.get("/v1/admin/projections", headers=bearer(token)), "invalid token")


def test_an_expired_token_is_refused(api: TestClient, oidc_provider: OidcProvider) -> None:
    token = oidc_provider.access_token("ann", age=timedelta(hours=2), roles=["auditor"])
    assert_refused(api.get("/v1/admin/projections", headers=bearer(token)), "expired")


def test_a_token_living_longer_than_the_maximum_is_refused(
    api: TestClient, oidc_provider: OidcProvider
) -> None:
    token = oidc_provider.access_token("ann", lifetime=timedelta(hours=13), roles=["auditor"])
    assert_refused(api.get("/v1/admin/projections", headers=bearer(token)), "longer than")


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def test_a_tampered_signature_or_payload_is_refused(
    api: TestClient, oidc_provider: OidcProvider
) -> None:
    token = oidc_provider.access_token("ann", roles=["customer_service"])
    head, payload, signature = token.split(".")
    flipped = signature[:10] + ("A" if signature[10] != "A" else "B") + signature[11:]
    url = "/v1/admin/projections"
    assert_refused(api.get(url, headers=bearer(f"{head}.{payload}.{flipped}")), "invalid token")
    claims = jwt.decode(token, options={"verify_signature": False})
    raised = _b64(json.dumps({**claims, "roles": ["admin"]}).encode())
    assert_refused(api.get(url, headers=bearer(f"{head}.{raised}.{signature}")), "invalid token")


def _public_pem(oidc_provider: OidcProvider) -> bytes:
    token = oidc_provider.access_token("ann")
    key = jwt.PyJWKClient(f"{oidc_provider.issuer}/jwks").get_signing_key_from_jwt(token)
    return key.key.public_bytes(  # type: ignore[no-any-return]
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


@pytest.mark.parametrize("alg", ["HS256", "none"])
def test_a_token_claiming_the_provider_but_signed_with_hmac_or_nothing_is_refused(
    api: TestClient, oidc_provider: OidcProvider, alg: str
) -> None:
    now = int(time.time())
    claims = {
        "iss": oidc_provider.issuer,
        "aud": CLIENT_ID,
        "sub": "mallory",
        "roles": ["admin"],
        "iat": now,
        "exp": now + 600,
    }
    signing_input = f"{_b64(json.dumps({'alg': alg, 'typ': 'JWT'}).encode())}."
    signing_input += _b64(json.dumps(claims).encode())
    # The classic confusion: the provider's public key used as an HMAC secret.
    secret = _public_pem(oidc_provider)
    mac = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    signature = _b64(mac) if alg == "HS256" else ""
    response = api.get("/v1/admin/projections", headers=bearer(f"{signing_input}.{signature}"))
    assert_refused(response, f"not with {alg}")


def test_keys_are_fetched_again_for_an_unknown_kid_after_a_rotation(
    services: Services,
) -> None:
    url = "/v1/admin/projections"
    with (
        running_provider() as provider,
        api_for(
            services,
            oidc_issuer=provider.issuer,
            oidc_client_id=CLIENT_ID,
            oidc_jwks_cooldown_seconds=0,
        ) as api,
    ):
        before = provider.access_token("ann", roles=["auditor"])
        unused_old = provider.access_token("ann", roles=["admin"])
        assert api.get(url, headers=bearer(before)).status_code == 200
        provider.rotate_key()
        after = provider.access_token("ann", roles=["auditor"])
        assert jwt.get_unverified_header(after)["kid"] != jwt.get_unverified_header(before)["kid"]
        # The new kid is unknown to the keys held: they are fetched again, and it verifies.
        assert api.get(url, headers=bearer(after)).status_code == 200
        # The rotated-out key is no longer published: its tokens no longer verify.
        assert_refused(api.get(url, headers=bearer(unused_old)), "signing key")
        # Nor does a token with a kid the provider never published.
        forged_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        claims = jwt.decode(after, options={"verify_signature": False})
        forged = jwt.encode(claims, forged_key, algorithm="RS256", headers={"kid": "forged"})
        assert_refused(api.get(url, headers=bearer(forged)), "signing key")


def test_within_the_cooldown_an_unknown_kid_does_not_fetch_the_keys_again(
    services: Services,
) -> None:
    url = "/v1/admin/projections"
    with (
        running_provider() as provider,
        api_for(services, oidc_issuer=provider.issuer, oidc_client_id=CLIENT_ID) as api,
    ):
        assert api.get(
            url, headers=bearer(provider.access_token("a", roles=["auditor"]))
        ).is_success
        provider.rotate_key()
        # Default cooldown (30 s): the set fetched moments ago is not fetched again.
        response = api.get(url, headers=bearer(provider.access_token("a", roles=["auditor"])))
        assert_refused(response, "signing key")


def test_a_provider_that_cannot_be_reached_is_a_503_not_a_401(services: Services) -> None:
    with running_provider() as provider:
        issuer = provider.issuer
        token = provider.access_token("ann", roles=["auditor"])
    # The provider has stopped: its discovery document cannot be fetched.
    with api_for(services, oidc_issuer=issuer, oidc_client_id=CLIENT_ID) as api:
        response = api.get("/v1/admin/projections", headers=bearer(token))
    assert response.status_code == 503, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["retry-after"] == "5"
    assert "discovery document" in response.json()["detail"]


@pytest.mark.parametrize(
    "claims, claim, roles",
    [
        ({"roles": ["auditor", "admin"]}, "roles", ["auditor", "admin"]),
        ({"roles": "auditor admin"}, "roles", ["auditor", "admin"]),
        ({"groups": "finance"}, "groups", ["finance"]),
        ({"realm_access": {"roles": ["finance"]}}, "realm_access.roles", ["finance"]),
        ({"email": "x"}, "roles", []),
    ],
)
def test_roles_are_read_from_the_configured_claim(
    claims: dict[str, Any], claim: str, roles: list[str]
) -> None:
    assert roles_in(claims, claim) == roles


@pytest.mark.parametrize("value", [42, ["auditor", 7], {"auditor": True}])
def test_a_roles_claim_of_another_shape_is_invalid(value: Any) -> None:
    with pytest.raises(InvalidOidcToken, match="list of strings or a string"):
        roles_in({"roles": value}, "roles")


def test_a_discovery_document_naming_another_issuer_is_not_trusted(
    services: Services, oidc_provider: OidcProvider
) -> None:
    # Configured with a trailing slash the provider does not write: `iss` is compared
    # exactly, and the discovery document must name exactly the issuer configured.
    configured = f"{oidc_provider.issuer}/"
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = int(time.time())
    claims = {"iss": configured, "aud": CLIENT_ID, "sub": "x", "iat": now, "exp": now + 60}
    token = jwt.encode(claims, key, algorithm="RS256", headers={"kid": "k"})
    with api_for(services, oidc_issuer=configured, oidc_client_id=CLIENT_ID) as api:
        response = api.get("/v1/admin/projections", headers=bearer(token))
    assert response.status_code == 503, response.text
    assert "names another issuer" in response.json()["detail"]
