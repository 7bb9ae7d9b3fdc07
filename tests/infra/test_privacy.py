"""Personal data: ciphertext at rest, masked for some roles, logged when shown, shredded."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any
from uuid import UUID, uuid4

import psycopg
import pytest
from fastapi.testclient import TestClient

from infra.wiring import Services
from tests.support import key_destroyed

Auth = Callable[..., dict[str, str]]

SECRET_NAME = "Zebulon Quartzfeather"
SECRET_EMAIL = "zebulon.q@example.com"


def open_secret_account(client: TestClient, auth: Auth) -> dict[str, Any]:
    response = client.post(
        "/v1/accounts",
        json={
            "segment": "vip",
            "channel": "store",
            "external_ref": f"P-{uuid4().hex[:8]}",
            "customer": {"name": SECRET_NAME, "email": SECRET_EMAIL, "id_document": "K1234567"},
        },
        headers=auth("customer_service"),
    )
    assert response.status_code == 201
    return response.json()  # type: ignore[no-any-return]


def raw_rows(services: Services, table: str, account_id: str) -> list[bytes]:
    with services.pool.connection() as conn:
        rows = conn.execute(
            f"SELECT state FROM {table} WHERE originator_id = %s".encode(), (UUID(account_id),)
        ).fetchall()
    return [bytes(r[0]) for r in rows]


def test_stored_events_hold_ciphertext_only(
    client: TestClient, auth: Auth, services: Services
) -> None:
    account = open_secret_account(client, auth)
    client.patch(
        f"/v1/accounts/{account['id']}",
        json={"customer": {"phone": "+852 5555 0101"}},
        headers=auth("customer_service"),
    )
    rows = raw_rows(services, "ledger_events", account["id"])
    assert len(rows) == 2
    for row in rows:
        for clear in (SECRET_NAME, SECRET_EMAIL, "K1234567", "5555 0101", "Zebulon"):
            assert clear.encode() not in row
        assert b'"v1:' in row


def test_a_ciphertext_only_opens_for_its_own_account_and_field(services: Services) -> None:
    a, b = uuid4(), uuid4()
    sealed = services.vault.encrypt(a, {"name": "Ann"})
    assert services.vault.decrypt(a, sealed) == {"name": "Ann"}
    with pytest.raises(ValueError):
        services.vault.decrypt(b, {"name": services.vault.encrypt(b, {"x": "y"})["x"]})
    with pytest.raises(ValueError):
        services.vault.decrypt(a, {"email": sealed["name"]})


def test_masked_roles_see_masked_values_and_leave_no_access_log(
    client: TestClient, auth: Auth, services: Services
) -> None:
    account = open_secret_account(client, auth)
    account_id = UUID(account["id"])
    before = len(services.access_log.query(account_id=account_id))
    for role in ("marketing", "finance", "management"):
        shown = client.get(f"/v1/accounts/{account_id}", headers=auth(role)).json()
        assert shown["customer_masked"] is True
        assert shown["customer"] == {
            "name": "Z*** Q***",
            "email": "z***@example.com",
            "id_document": "****4567",
        }
    assert len(services.access_log.query(account_id=account_id)) == before


def test_every_unmasked_read_is_logged(client: TestClient, auth: Auth, services: Services) -> None:
    account = open_secret_account(client, auth)
    account_id = UUID(account["id"])
    client.get(f"/v1/accounts/{account_id}", headers=auth("auditor", sub="audrey"))
    client.get(f"/v1/accounts/{account_id}/history", headers=auth("admin", sub="root"))
    entries = services.access_log.query(account_id=account_id)
    reads = [(e.actor, e.roles, e.what, e.fields) for e in entries if e.actor != "tester"]
    assert reads == [
        ("audrey", ["auditor"], "read", ["email", "id_document", "name"]),
        ("root", ["admin"], "history", ["email", "id_document", "name"]),
    ]
    assert services.access_log.query(actor="audrey", account_id=account_id)[0].what == "read"


def test_the_access_log_refuses_edits(services: Services) -> None:
    services.access_log.record("someone", ["auditor"], uuid4(), "read", ["name"])
    with services.pool.connection() as conn, pytest.raises(psycopg.errors.RaiseException):
        conn.execute("UPDATE access_log SET actor = 'nobody'")
    with services.pool.connection() as conn, pytest.raises(psycopg.errors.RaiseException):
        conn.execute("DELETE FROM access_log")


def test_concurrent_reads_are_each_logged_once(services: Services) -> None:
    account_id = uuid4()
    threads = [
        threading.Thread(
            target=services.access_log.record,
            args=(f"reader-{i}", ["customer_service"], account_id, "read", ["name"]),
        )
        for i in range(40)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join(10)
    logged = services.access_log.query(account_id=account_id, limit=100)
    assert sorted(e.actor for e in logged) == sorted(f"reader-{i}" for i in range(40))


def test_erasure_shreds_the_data_everywhere_and_keeps_the_history_verifiable(
    client: TestClient, auth: Auth, services: Services
) -> None:
    account = open_secret_account(client, auth)
    url = f"/v1/accounts/{account['id']}"
    client.post(
        url + "/close", json={"reason": "customer_request"}, headers=auth("customer_service")
    )
    erased = client.post(url + "/erase", json={"reason": "request"}, headers=auth("admin"))
    assert erased.status_code == 200 and erased.json()["erased"] is True

    shown = client.get(url, headers=auth("customer_service")).json()
    assert shown["customer"] is None and shown["personal_data_erased"] is True
    events = client.get(url + "/history", headers=auth("auditor")).json()["events"]
    assert [e["type"] for e in events] == ["AccountOpened", "AccountClosed", "PersonalDataErased"]
    assert events[0]["data"]["customer"] is None
    assert key_destroyed(services, UUID(account["id"]))
    # The ciphertext is still in the store, but no key can open it any more.
    assert services.ledger.decrypt(UUID(account["id"]), {"name": "v1:AAAA"}) is None
    verify = client.get(f"/v1/audit/verify?account_id={account['id']}", headers=auth("auditor"))
    assert verify.json()["ok"] is True and verify.json()["events"] == 3

    again = client.post(url + "/erase", json={"reason": "request"}, headers=auth("admin"))
    assert again.status_code == 200 and again.json()["erased"] is False
    assert again.json()["version"] == 3


def test_an_erased_open_account_takes_no_new_personal_data(client: TestClient, auth: Auth) -> None:
    account = open_secret_account(client, auth)
    url = f"/v1/accounts/{account['id']}"
    client.post(url + "/erase", headers=auth("admin"))
    response = client.patch(
        url, json={"customer": {"name": "New"}}, headers=auth("customer_service")
    )
    assert response.status_code == 409 and "erased" in response.json()["detail"]
    visit = {"type": "visit", "channel": "store", "location": "x"}
    assert (
        client.post(url + "/activities", json=visit, headers=auth("customer_service")).status_code
        == 201
    )
