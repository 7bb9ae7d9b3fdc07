"""Auditor and privacy-officer routes: replay feed, digests, access log, data access, retention."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID

import pytest
from fastapi.testclient import TestClient

from infra.wiring import Services
from tests.support import forge

Auth = Callable[..., dict[str, str]]
Opener = Callable[..., dict[str, Any]]


def feed(client: TestClient, auth: Auth, **params: Any) -> dict[str, Any]:
    response = client.get("/v1/audit/events", params=params, headers=auth("auditor"))
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def test_the_feed_pages_through_every_event_without_gaps_or_repeats(
    client: TestClient, auth: Auth, open_account: Opener, services: Services
) -> None:
    for _ in range(3):
        open_account()
    positions: list[int] = []
    after = 0
    while True:
        page = feed(client, auth, after=after, limit=7)
        positions += [e["position"] for e in page["events"]]
        if page["next_after"] == after:
            break
        after = page["next_after"]
    stored = [n.id for n in services.ledger.recorder.select_notifications(1, 100_000)]
    assert positions == stored


def test_the_feed_filters_by_account_type_and_time(
    client: TestClient, auth: Auth, open_account: Opener
) -> None:
    account = open_account()
    visit = {"type": "visit", "channel": "store", "location": "central"}
    client.post(
        f"/v1/accounts/{account['id']}/activities", json=visit, headers=auth("customer_service")
    )
    mine = feed(client, auth, account_id=account["id"])["events"]
    assert [(e["version"], e["type"]) for e in mine] == [(1, "AccountOpened"), (2, "VisitRecorded")]
    assert mine[0]["data"]["customer"]["name"] == "Ann Lee"  # auditors read unmasked

    visits = feed(client, auth, account_id=account["id"], type="VisitRecorded")["events"]
    assert [e["version"] for e in visits] == [2]
    opened_at = mine[1]["recorded_at"]
    later = feed(client, auth, account_id=account["id"], **{"from": opened_at})["events"]
    assert [e["version"] for e in later] == [2]
    earlier = feed(client, auth, account_id=account["id"], to=opened_at)["events"]
    assert [e["version"] for e in earlier] == [1]


def test_the_feed_refuses_unknown_types_and_other_roles(client: TestClient, auth: Auth) -> None:
    response = client.get("/v1/audit/events?type=Teleported", headers=auth("auditor"))
    assert response.status_code == 422 and "Teleported" in response.json()["detail"]
    for role in ("customer_service", "marketing", "management", "integration"):
        assert client.get("/v1/audit/events", headers=auth(role)).status_code == 403


def test_a_kept_digest_proves_history_and_catches_a_recomputed_forgery(
    client: TestClient, auth: Auth, open_account: Opener, services: Services
) -> None:
    victim = open_account()
    url = f"/v1/accounts/{victim['id']}"
    client.post(url + "/segment", json={"segment": "vip"}, headers=auth("customer_service"))
    kept = client.get("/v1/audit/digest", headers=auth("auditor")).json()
    open_account()  # history goes on after the digest was taken

    def check(kept: dict[str, Any]) -> dict[str, Any]:
        response = client.get("/v1/audit/verify", params=kept, headers=auth("auditor"))
        assert response.status_code == 200
        return response.json()  # type: ignore[no-any-return]

    assert check(kept)["ok"] is True and check(kept)["digest_matches"] is True

    # Erasure changes no digest.
    client.post(url + "/erase", headers=auth("admin"))
    assert check(kept)["digest_matches"] is True

    forge(services, UUID(victim["id"]), 2, {"to_segment": "corporate"})
    assert services.ledger.verify(UUID(victim["id"])).ok, "the forged chain recomputes"
    result = check(kept)
    assert result["ok"] is False and result["digest_matches"] is False


def test_a_digest_for_a_position_that_does_not_exist_is_a_404(
    client: TestClient, auth: Auth
) -> None:
    response = client.get("/v1/audit/digest?position=999999999", headers=auth("auditor"))
    assert response.status_code == 404 and "position 999999999" in response.json()["detail"]
    response = client.get(
        "/v1/audit/verify",
        params={"digest": "a" * 64, "position": 999999999},
        headers=auth("admin"),
    )
    assert response.status_code == 404


@pytest.mark.parametrize(
    "params", [{"digest": "a" * 64}, {"position": 1}, {"digest": "xyz", "position": 1}]
)
def test_a_digest_check_needs_a_well_formed_digest_and_its_position(
    client: TestClient, auth: Auth, params: dict[str, Any]
) -> None:
    response = client.get("/v1/audit/verify", params=params, headers=auth("auditor"))
    assert response.status_code in (400, 422)
    assert response.headers["content-type"] == "application/problem+json"


def test_the_access_log_answers_who_read_what(
    client: TestClient, auth: Auth, open_account: Opener
) -> None:
    account = open_account()
    client.get(f"/v1/accounts/{account['id']}", headers=auth("customer_service", sub="cs-99"))
    client.get(f"/v1/accounts/{account['id']}", headers=auth("marketing", sub="mk-1"))
    log = client.get(
        "/v1/audit/access-log", params={"account_id": account["id"]}, headers=auth("auditor")
    ).json()
    actors = [(e["actor"], e["what"]) for e in log["entries"]]
    assert ("cs-99", "read") in actors
    assert all(actor != "mk-1" for actor, _ in actors), "masked reads disclose nothing"
    by_actor = client.get(
        "/v1/audit/access-log", params={"actor": "cs-99"}, headers=auth("admin")
    ).json()
    assert by_actor["entries"] and all(e["actor"] == "cs-99" for e in by_actor["entries"])
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    none = client.get(
        "/v1/audit/access-log", params={"from": future}, headers=auth("auditor")
    ).json()
    assert none["entries"] == []
    assert client.get("/v1/audit/access-log", headers=auth("customer_service")).status_code == 403


def test_a_data_access_request_returns_everything_held_and_is_logged(
    client: TestClient, auth: Auth, open_account: Opener
) -> None:
    account = open_account()
    url = f"/v1/accounts/{account['id']}"
    client.patch(
        url, json={"customer": {"phone": "+852 2222 3333"}}, headers=auth("customer_service")
    )
    held = client.get(url + "/personal-data", headers=auth("admin", sub="dpo")).json()
    assert held["current"]["phone"] == "+852 2222 3333"
    assert [(r["version"], r["type"]) for r in held["records"]] == [
        (1, "AccountOpened"),
        (2, "DetailsUpdated"),
    ]
    assert held["records"][0]["fields"]["phone"] == "+852 1234 5678"
    log = client.get(
        "/v1/audit/access-log", params={"actor": "dpo"}, headers=auth("auditor")
    ).json()
    assert [e["what"] for e in log["entries"]] == ["personal-data"]
    for role in ("auditor", "customer_service", "management"):
        assert client.get(url + "/personal-data", headers=auth(role)).status_code == 403


def test_retention_erases_only_accounts_closed_longer_than_the_period(
    client: TestClient, auth: Auth, open_account: Opener
) -> None:
    long_ago = (datetime.now(UTC) - timedelta(days=2600)).isoformat()
    old = open_account(occurred_at=long_ago)
    recent = open_account()
    for account, when in ((old, long_ago), (recent, None)):
        body = {"reason": "customer_request", **({"occurred_at": when} if when else {})}
        closed = client.post(
            f"/v1/accounts/{account['id']}/close", json=body, headers=auth("customer_service")
        )
        assert closed.status_code == 200

    dry = client.post("/v1/admin/retention/run?dry_run=true", headers=auth("admin")).json()
    assert old["id"] in dry["erased"] and recent["id"] not in dry["erased"]
    assert client.get(f"/v1/accounts/{old['id']}", headers=auth("auditor")).json()["customer"]

    run = client.post("/v1/admin/retention/run", headers=auth("admin")).json()
    assert old["id"] in run["erased"] and run["retention_days"] == 2555
    shown = client.get(f"/v1/accounts/{old['id']}", headers=auth("auditor")).json()
    assert shown["customer"] is None and shown["personal_data_erased"] is True
    history = client.get(f"/v1/accounts/{old['id']}/history", headers=auth("auditor")).json()
    assert history["events"][-1]["data"] == {"reason": "retention"}

    again = client.post("/v1/admin/retention/run", headers=auth("admin")).json()
    assert old["id"] not in again["erased"]
    assert client.post("/v1/admin/retention/run", headers=auth("management")).status_code == 403


def test_the_audit_export_streams_the_feed_to_json_lines(
    services: Services, tmp_path: Any, open_account: Opener
) -> None:
    from typer.testing import CliRunner

    from crmledger.cli import app
    from tests.support import JWT_SECRET

    open_account()
    settings = services.settings
    assert settings.master_key is not None
    env = {
        "CRMLEDGER_DATABASE_URL": settings.database_url or "",
        "CRMLEDGER_DATABASE_SCHEMA": settings.database_schema,
        "CRMLEDGER_JWT_SECRET": JWT_SECRET,
        "CRMLEDGER_SIGNING_KEY": settings.signing_key.get_secret_value()
        if settings.signing_key
        else "",
        "CRMLEDGER_MASTER_KEY": settings.master_key.get_secret_value(),
    }
    out = tmp_path / "feed.jsonl"
    result = CliRunner().invoke(app, ["audit", "export", "--out", str(out)], env=env)
    assert result.exit_code == 0, result.output
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    stored = [n.id for n in services.ledger.recorder.select_notifications(1, 100_000)]
    assert [e["position"] for e in lines] == stored
    digest = CliRunner().invoke(app, ["digest"], env=env)
    position, value = digest.output.split()
    assert int(position) == stored[-1] and len(value) == 64
    proved = CliRunner().invoke(app, ["verify", "--digest", value, "--position", position], env=env)
    assert proved.exit_code == 0 and "still holds" in proved.output
    forged = CliRunner().invoke(
        app, ["verify", "--digest", "0" * 64, "--position", position], env=env
    )
    assert forged.exit_code == 1 and "changed since the digest" in forged.output
