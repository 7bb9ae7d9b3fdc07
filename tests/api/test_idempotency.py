"""Idempotency-Key on every account command: replays rendered for the caller, keys that expire."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from domain.integrity import Break
from infra.idempotency import IdempotencyStore, stored_key
from infra.wiring import Services
from tests.support import open_plain, own_ledger

Auth = Callable[..., dict[str, str]]
Opener = Callable[..., dict[str, Any]]


def _key() -> str:
    return f"key-{uuid.uuid4().hex}"


def _reads(services: Services, account_id: str) -> list[str]:
    return [e.what for e in services.access_log.query(account_id=uuid.UUID(account_id))]


def _backdate(services: Services, key: str, hours: float) -> None:
    with services.pool.connection() as conn:
        conn.execute(
            "UPDATE idempotency_keys SET created_at = now() - make_interval(secs => %s)"
            " WHERE key = %s",
            (hours * 3600, stored_key(key)),
        )


def test_a_replay_is_rendered_for_the_caller_who_asks_and_logged_when_unmasked(
    client: TestClient, auth: Auth, services: Services
) -> None:
    key = _key()
    body = {
        "segment": "gold",
        "channel": "store",
        "customer": {"name": "Replay Person", "email": "replay.person@example.com"},
    }
    first = client.post(
        "/v1/accounts",
        json=body,
        headers=auth("customer_service", sub="desk-9", **{"Idempotency-Key": key}),
    )
    assert first.status_code == 201 and first.json()["customer_masked"] is False
    account_id = first.json()["id"]
    assert _reads(services, account_id) == ["open"]

    # The same subject, now holding only the integration role: masked, nothing logged.
    masked = client.post(
        "/v1/accounts",
        json=body,
        headers=auth("integration", sub="desk-9", **{"Idempotency-Key": key}),
    )
    assert masked.status_code == 201
    assert masked.headers["idempotent-replayed"] == "true"
    assert masked.headers["location"] == first.headers["location"]
    assert masked.headers["etag"] == '"1"'
    assert masked.json()["id"] == account_id
    assert masked.json()["customer"] == {"name": "R*** P***", "email": "r***@example.com"}
    assert masked.json()["customer_masked"] is True
    assert _reads(services, account_id) == ["open"]

    # Customer service again: in clear, and the disclosure is logged as a replay.
    clear = client.post(
        "/v1/accounts",
        json=body,
        headers=auth("customer_service", sub="desk-9", **{"Idempotency-Key": key}),
    )
    assert clear.headers["idempotent-replayed"] == "true"
    assert clear.json() == first.json()
    assert _reads(services, account_id) == ["open", "open-replay"]
    assert services.ledger.account(uuid.UUID(account_id)).version == 1


def test_a_replay_shows_the_version_the_command_produced(
    client: TestClient, auth: Auth, open_account: Opener
) -> None:
    account = open_account()
    url = f"/v1/accounts/{account['id']}"
    headers = auth("customer_service", **{"Idempotency-Key": _key()})
    first = client.post(url + "/segment", json={"segment": "vip"}, headers=headers)
    client.post(url + "/plan", json={"service_plan": "premium"}, headers=auth("admin"))
    again = client.post(url + "/segment", json={"segment": "vip"}, headers=headers)
    assert again.status_code == 200 and again.headers["etag"] == '"2"'
    assert again.json() == first.json() and again.json()["service_plan"] == "standard"


def test_idempotency_keys_hold_no_personal_data(
    client: TestClient, auth: Auth, services: Services
) -> None:
    name, email, phone = "Quill Nakamura", "quill.nakamura@example.com", "+852 9876 1234"
    # An integrator may build its keys from what it knows of the customer.
    key = f"open-{email}-{uuid.uuid4().hex[:6]}"
    body = {
        "segment": "gold",
        "channel": "store",
        "customer": {"name": name, "email": email, "phone": phone},
    }
    opened = client.post(
        "/v1/accounts", json=body, headers=auth("customer_service", **{"Idempotency-Key": key})
    )
    assert opened.status_code == 201
    update = {"customer": {"email": "quill.n@example.org"}}
    updated = client.patch(
        f"/v1/accounts/{opened.json()['id']}",
        json=update,
        headers=auth("customer_service", **{"Idempotency-Key": _key()}),
    )
    assert updated.status_code == 200
    with services.pool.connection() as conn:
        rows = [r[0] for r in conn.execute("SELECT t::text FROM idempotency_keys t").fetchall()]
    assert any(opened.json()["id"] in row for row in rows)
    for clear in (name, "Quill", "Nakamura", email, "quill.n@example.org", phone, "9876"):
        assert not any(clear in row for row in rows), clear


@pytest.mark.parametrize(
    "suffix, body, status",
    [
        ("/confirm-details", {"reason": "call"}, 200),
        ("/segment", {"segment": "vip"}, 200),
        ("/plan", {"service_plan": "premium"}, 200),
        ("/activities", {"type": "visit", "channel": "app", "location": "home"}, 201),
        ("/close", {"reason": "customer_request"}, 200),
    ],
)
def test_every_post_command_runs_once_per_key(
    client: TestClient,
    auth: Auth,
    open_account: Opener,
    services: Services,
    suffix: str,
    body: dict[str, Any],
    status: int,
) -> None:
    account = open_account()
    headers = auth("customer_service", **{"Idempotency-Key": _key()})
    url = f"/v1/accounts/{account['id']}{suffix}"
    first = client.post(url, json=body, headers=headers)
    again = client.post(url, json=body, headers=headers)
    assert first.status_code == again.status_code == status, again.text
    assert again.headers["idempotent-replayed"] == "true" and again.json() == first.json()
    assert services.ledger.account(uuid.UUID(account["id"])).version == 2


def test_update_details_honours_the_idempotency_key(
    client: TestClient, auth: Auth, open_account: Opener, services: Services
) -> None:
    account = open_account()
    headers = auth("customer_service", **{"Idempotency-Key": _key(), "If-Match": '"1"'})
    url = f"/v1/accounts/{account['id']}"
    body = {"customer": {"phone": "+852 5555 0000"}}
    first = client.patch(url, json=body, headers=headers)
    # Without the key the repeat would be a 412: the If-Match names version 1.
    again = client.patch(url, json=body, headers=headers)
    assert first.status_code == again.status_code == 200
    assert again.headers["idempotent-replayed"] == "true" and again.headers["etag"] == '"2"'
    assert again.json() == first.json()
    assert services.ledger.account(uuid.UUID(account["id"])).version == 2
    reused = client.patch(url, json={"customer": {"phone": "+852 5555 0001"}}, headers=headers)
    assert reused.status_code == 422


def test_erase_honours_the_idempotency_key_and_if_match(
    client: TestClient, auth: Auth, open_account: Opener, services: Services
) -> None:
    account = open_account()
    url = f"/v1/accounts/{account['id']}/erase"
    stale = client.post(url, json={}, headers=auth("admin", **{"If-Match": '"7"'}))
    assert stale.status_code == 412
    assert services.ledger.personal_data(services.ledger.account(uuid.UUID(account["id"])))
    headers = auth("admin", **{"Idempotency-Key": _key(), "If-Match": '"1"'})
    first = client.post(url, json={"reason": "request"}, headers=headers)
    again = client.post(url, json={"reason": "request"}, headers=headers)
    assert first.status_code == again.status_code == 200
    # The replay is the first answer (erased: true), not a second erase's (false).
    assert (
        first.json()
        == again.json()
        == {
            "account_id": account["id"],
            "erased": True,
            "version": 2,
        }
    )
    assert again.headers["idempotent-replayed"] == "true" and again.headers["etag"] == '"2"'
    assert services.ledger.account(uuid.UUID(account["id"])).version == 2


def test_an_expired_key_counts_as_new(
    client: TestClient, auth: Auth, open_account: Opener, services: Services
) -> None:
    account = open_account()
    key = _key()
    headers = auth("customer_service", **{"Idempotency-Key": key})
    url = f"/v1/accounts/{account['id']}/activities"
    body = {"type": "visit", "channel": "store", "location": "central"}
    assert client.post(url, json=body, headers=headers).status_code == 201
    _backdate(services, key, hours=23)
    kept = client.post(url, json=body, headers=headers)
    assert kept.headers.get("idempotent-replayed") == "true"
    _backdate(services, key, hours=25)
    anew = client.post(url, json=body, headers=headers)
    assert anew.status_code == 201 and "idempotent-replayed" not in anew.headers
    assert anew.json()["version"] == 3
    # Claimed afresh: the next repeat replays the new outcome.
    assert client.post(url, json=body, headers=headers).json()["version"] == 3


def test_the_time_to_live_is_configurable_and_claims_prune_expired_keys(
    services: Services,
) -> None:
    short = IdempotencyStore(services.pool, ttl_hours=1)
    old, kept = [_key() for _ in range(3)], _key()
    for key in [*old, kept]:
        assert short.claim("pruner", key, "h") is None
    for key in old:
        _backdate(services, key, hours=2)
    _backdate(services, kept, hours=0.5)

    def left() -> set[str]:
        with services.pool.connection() as conn:
            sql = "SELECT key FROM idempotency_keys WHERE actor = 'pruner'"
            return {r[0] for r in conn.execute(sql).fetchall()}

    # Two hours old: expired for a store that keeps keys one hour, not for the default.
    assert services.idempotency.claim("other", _key(), "h") is None
    assert left() == {stored_key(k) for k in [*old, kept]}
    assert short.claim("other", _key(), "h") is None
    assert left() == {stored_key(kept)}
    # Once expired, a key counts as new even for another request (no KeyReused).
    _backdate(services, kept, hours=2)
    assert short.claim("pruner", kept, "another request") is None


def test_a_command_on_a_flagged_account_and_its_replay_carry_the_integrity_warning(
    auth: Auth,
) -> None:
    with own_ledger() as services, TestClient(create_app(services)) as client:
        account = open_plain(services.ledger, "Flag Holder")
        services.integrity.record([Break(account.id, 1, 1, "hash does not match")])
        headers = auth("customer_service", **{"Idempotency-Key": _key()})
        url = f"/v1/accounts/{account.id}/segment"
        for response in (
            client.post(url, json={"segment": "vip"}, headers=headers),
            client.post(url, json={"segment": "vip"}, headers=headers),
        ):
            assert response.status_code == 200, response.text
            assert response.json()["integrity_warning"]["version"] == 1
            assert response.headers["crmledger-integrity"] == "broken; version=1; position=1"
        assert response.headers["idempotent-replayed"] == "true"
