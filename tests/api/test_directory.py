"""The account directory and read-model operations over HTTP."""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import psycopg
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from crmledger.cli import app
from infra.wiring import Services
from tests.support import env_for

Auth = Callable[..., dict[str, str]]
Opener = Callable[..., dict[str, Any]]


def tagged_accounts(open_account: Opener, services: Services, n: int) -> str:
    """Open `n` accounts whose external refs share a fresh tag; project them."""
    tag = uuid.uuid4().hex[:8]
    for i in range(n):
        open_account(
            external_ref=f"DIR-{tag}-{i}",
            segment="vip" if i % 2 else "standard",
            customer={"name": f"Dora {tag} {i}", "email": f"dora{i}.{tag}@example.com"},
        )
    services.readmodels.rebuild("directory")
    return tag


def test_the_directory_pages_with_a_cursor_without_gaps_or_repeats(
    client: TestClient, auth: Auth, open_account: Opener, services: Services
) -> None:
    tag = tagged_accounts(open_account, services, 5)
    seen: list[str] = []
    cursor = None
    while True:
        # The tag is a word of every one of the five names.
        params: dict[str, Any] = {"q": tag, "limit": 2}
        if cursor:
            params["cursor"] = cursor
        page = client.get("/v1/accounts", params=params, headers=auth("customer_service")).json()
        seen += [item["external_ref"] for item in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert sorted(seen) == [f"DIR-{tag}-{i}" for i in range(5)]


def test_the_directory_filters_and_masks_per_role(
    client: TestClient, auth: Auth, open_account: Opener, services: Services
) -> None:
    tag = tagged_accounts(open_account, services, 4)
    # A masked reader finds an account by its whole external reference only.
    vip = [
        item
        for i in range(4)
        for item in client.get(
            "/v1/accounts",
            params={"q": f"DIR-{tag}-{i}", "segment": "vip"},
            headers=auth("marketing"),
        ).json()["items"]
    ]
    assert len(vip) == 2 and all(i["segment"] == "vip" for i in vip)
    assert vip[0]["contact"]["email"].startswith("d***@")
    assert vip[0]["contact"]["name"] == f"D*** {tag[0]}*** {vip[0]['external_ref'][-1]}***"

    by_name = client.get(
        "/v1/accounts", params={"q": f"Dora {tag} 3"}, headers=auth("customer_service", sub="cs-d")
    ).json()["items"]
    assert [i["contact"]["name"] for i in by_name] == [f"Dora {tag} 3"]
    # A masked reader cannot probe for a person by name.
    probe = client.get("/v1/accounts", params={"q": f"Dora {tag}"}, headers=auth("marketing"))
    assert probe.json()["items"] == []
    logged = services.access_log.query(actor="cs-d")
    assert [e.what for e in logged] == ["directory"]


def test_the_directory_refuses_bad_input_and_other_roles(client: TestClient, auth: Auth) -> None:
    headers = auth("customer_service")
    bad = client.get("/v1/accounts", params={"cursor": "not-ours"}, headers=headers)
    assert bad.status_code == 400 and "cursor" in bad.json()["detail"]
    assert client.get("/v1/accounts?status=dormant", headers=headers).status_code == 422
    assert client.get("/v1/accounts?limit=0", headers=headers).status_code == 422
    for role in ("finance", "integration"):
        assert client.get("/v1/accounts", headers=auth(role)).status_code == 403


def test_the_directory_matches_whole_normalised_terms_not_substrings(
    client: TestClient, auth: Auth, open_account: Opener, services: Services
) -> None:
    tag = tagged_accounts(open_account, services, 2)
    cs = auth("customer_service")

    def refs(q: str) -> list[str]:
        items = client.get("/v1/accounts", params={"q": q}, headers=cs).json()["items"]
        return [i["external_ref"] for i in items]

    assert refs(f"DORA {tag.upper()} 1") == [f"DIR-{tag}-1"]  # words in any case
    assert refs(f"  Dora1.{tag.upper()}@Example.COM ") == [f"DIR-{tag}-1"]  # the whole email
    assert refs(f"DIR-{tag}-0") == [f"DIR-{tag}-0"]
    # Parts of a reference, of a word or of an address find nothing.
    assert refs(f"DIR-{tag}") == []
    assert refs(tag[:6]) == []
    assert refs(f"dora1.{tag}@example") == []


def test_erasure_drops_contact_fields_and_tokens_from_the_directory(
    client: TestClient, auth: Auth, open_account: Opener, services: Services
) -> None:
    tag = tagged_accounts(open_account, services, 1)
    by_name = {"q": f"Dora {tag}"}
    (item,) = client.get("/v1/accounts", params=by_name, headers=auth("auditor")).json()["items"]
    account_id = uuid.UUID(item["id"])
    assert item["contact"]["name"] == f"Dora {tag} 0"
    client.post(f"/v1/accounts/{item['id']}/erase", headers=auth("admin"))
    services.readmodels.rebuild("directory")
    (after,) = client.get(
        "/v1/accounts", params={"q": f"DIR-{tag}-0"}, headers=auth("auditor")
    ).json()["items"]
    assert after["contact"] is None and after["personal_data_erased"] is True
    assert client.get("/v1/accounts", params=by_name, headers=auth("auditor")).json()["items"] == []
    schema = services.settings.readmodel_schema
    with psycopg.connect(services.database_url) as conn:
        row = conn.execute(
            f"SELECT name_sealed, email_sealed, phone_sealed FROM {schema}.accounts"
            f" WHERE account_id = %s".encode(),
            (account_id,),
        ).fetchone()
        (tokens,) = conn.execute(
            f"SELECT count(*) FROM {schema}.account_tokens WHERE account_id = %s".encode(),
            (account_id,),
        ).fetchone() or (None,)
    assert row == (None, None, None)
    assert tokens == 0


def test_the_directory_holds_contact_fields_sealed_and_rebuilds_give_the_same_tokens(
    client: TestClient, auth: Auth, open_account: Opener, services: Services
) -> None:
    tag = tagged_accounts(open_account, services, 1)
    schema = services.settings.readmodel_schema

    def stored() -> tuple[Any, list[Any]]:
        with psycopg.connect(services.database_url) as conn:
            row = conn.execute(
                f"SELECT account_id, name_sealed, email_sealed FROM {schema}.accounts"
                f" WHERE external_ref = %s".encode(),
                (f"DIR-{tag}-0",),
            ).fetchone()
            assert row is not None
            tokens = conn.execute(
                f"SELECT kind, token FROM {schema}.account_tokens WHERE account_id = %s"
                f" ORDER BY kind, token".encode(),
                (row[0],),
            ).fetchall()
        return row, tokens

    row, tokens = stored()
    assert row[1].startswith("v1:") and tag not in row[1]
    assert services.ledger.decrypt(row[0], {"name": row[1]}) == {"name": f"Dora {tag} 0"}
    # Three name words and an email, each a 16-byte token.
    assert [k for k, _ in tokens] == ["email", "name", "name", "name"]
    assert all(len(t) == 16 for _, t in tokens)
    rebuilt = client.post("/v1/admin/projections/directory/rebuild", headers=auth("admin"))
    assert rebuilt.status_code == 200, rebuilt.text
    assert stored()[1] == tokens
    # The command line's rebuild, in a process of its own, derives the same index key.
    cli = CliRunner().invoke(
        app, ["projections", "rebuild", "directory"], env=env_for(services.settings)
    )
    assert cli.exit_code == 0, cli.output
    assert stored()[1] == tokens


def test_projection_status_and_rebuild(
    client: TestClient, auth: Auth, open_account: Opener, services: Services
) -> None:
    open_account()
    rebuilt = client.post("/v1/admin/projections/kpis/rebuild", headers=auth("admin"))
    assert rebuilt.status_code == 200 and rebuilt.json()["events"] > 0
    status = {
        s["name"]: s for s in client.get("/v1/admin/projections", headers=auth("admin")).json()
    }
    assert status["kpis"]["lag"] == 0
    assert status["kpis"]["position"] == status["kpis"]["ledger_position"]
    unknown = client.post("/v1/admin/projections/nope/rebuild", headers=auth("admin"))
    assert unknown.status_code == 404 and "directory" in unknown.json()["detail"]
    forbidden = client.post("/v1/admin/projections/kpis/rebuild", headers=auth("auditor"))
    assert forbidden.status_code == 403


def test_a_rebuild_gives_identical_figures(open_account: Opener, services: Services) -> None:
    open_account()
    schema = services.settings.readmodel_schema

    def dump() -> list[Any]:
        with psycopg.connect(services.database_url) as conn:
            return [
                conn.execute(f"SELECT * FROM {schema}.{t} ORDER BY 1, 2, 3".encode()).fetchall()
                for t in ("daily_facts", "sales_daily", "cases", "kpi_accounts", "accounts")
            ]

    for name in ("directory", "kpis"):
        services.readmodels.rebuild(name)
    first = dump()
    for name in ("directory", "kpis"):
        services.readmodels.rebuild(name)
    assert dump() == first and any(first)
