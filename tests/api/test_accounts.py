"""Account commands and reads over HTTP: the paths a staff tool takes."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient

Auth = Callable[..., dict[str, str]]
Opener = Callable[..., dict[str, Any]]


def test_open_answers_with_location_etag_and_masked_data_for_integrations(
    client: TestClient, auth: Auth
) -> None:
    response = client.post(
        "/v1/accounts",
        json={"segment": "vip", "channel": "online", "customer": {"name": "Bo Chan"}},
        headers=auth("integration"),
    )
    assert response.status_code == 201
    account = response.json()
    assert response.headers["location"] == f"/v1/accounts/{account['id']}"
    assert response.headers["etag"] == '"1"'
    assert account["status"] == "open" and account["segment"] == "vip"
    # The integration role may write but not read personal data: it gets it back masked.
    assert account["customer"] == {"name": "B*** C***"} and account["customer_masked"] is True


def test_every_command_is_recorded_with_its_metadata(
    client: TestClient, auth: Auth, open_account: Opener
) -> None:
    account = open_account()
    url = f"/v1/accounts/{account['id']}"
    headers = auth("customer_service", sub="clerk-7", **{"X-Correlation-ID": "corr-1"})
    steps = [
        ("POST", "/confirm-details", {"reason": "annual check"}),
        ("POST", "/segment", {"segment": "vip"}),
        ("POST", "/plan", {"service_plan": "premium"}),
        ("POST", "/activities", {"type": "visit", "channel": "app", "location": "home"}),
        ("POST", "/close", {"reason": "customer_request", "note": "moving"}),
    ]
    for method, suffix, body in steps:
        response = client.request(method, url + suffix, json=body, headers=headers)
        assert response.status_code in (200, 201), response.text
    events = client.get(url + "/history", headers=headers).json()["events"]
    assert [e["type"] for e in events] == [
        "AccountOpened",
        "DetailsConfirmed",
        "SegmentChanged",
        "ServicePlanChanged",
        "VisitRecorded",
        "AccountClosed",
    ]
    confirmed = events[1]["metadata"]
    assert confirmed == {
        "actor": "clerk-7",
        "department": "customer_service",
        "reason": "annual check",
        "correlation_id": "corr-1",
        "causation_id": None,
        "source": "api",
    }
    assert events[2]["data"] == {"from_segment": "gold", "to_segment": "vip"}
    assert events[5]["data"] == {"reason": "customer_request", "note": "moving"}
    assert [e["version"] for e in events] == [1, 2, 3, 4, 5, 6]
    assert all(e["prev_hash"] == p["hash"] for p, e in itertools.pairwise(events))


def test_business_time_is_kept_apart_from_recorded_time(
    client: TestClient, auth: Auth, open_account: Opener
) -> None:
    account = open_account()
    last_week = (datetime.now(UTC) - timedelta(days=7)).replace(microsecond=0)
    response = client.post(
        f"/v1/accounts/{account['id']}/activities",
        json={
            "type": "purchase",
            "amount": "120.50",
            "cost": "80",
            "currency": "HKD",
            "store": "central",
            "occurred_at": last_week.isoformat(),
        },
        headers=auth("customer_service"),
    )
    assert response.status_code == 201
    event = client.get(f"/v1/accounts/{account['id']}/history", headers=auth("auditor")).json()[
        "events"
    ][-1]
    assert datetime.fromisoformat(event["occurred_at"]) == last_week
    assert datetime.fromisoformat(event["recorded_at"]) > last_week + timedelta(days=6)
    assert event["data"]["amount"] == "120.50"


def test_an_idempotency_key_replays_the_first_response(
    client: TestClient, auth: Auth, open_account: Opener, services: Any
) -> None:
    account = open_account()
    url = f"/v1/accounts/{account['id']}/activities"
    headers = auth("customer_service", **{"Idempotency-Key": "visit-42"})
    body = {"type": "visit", "channel": "store", "location": "central"}
    first = client.post(url, json=body, headers=headers)
    second = client.post(url, json=body, headers=headers)
    assert first.status_code == second.status_code == 201
    assert second.headers["idempotent-replayed"] == "true"
    assert first.json() == second.json()
    assert services.ledger.account(account["id"]).version == 2
    reused = client.post(url, json={**body, "location": "elsewhere"}, headers=headers)
    assert reused.status_code == 422 and "different request" in reused.json()["detail"]


def test_an_idempotent_open_opens_once(client: TestClient, auth: Auth) -> None:
    headers = auth("integration", **{"Idempotency-Key": f"open-{time.time_ns()}"})
    body = {"segment": "silver", "channel": "phone", "customer": {"name": "Kit Ho"}}
    first = client.post("/v1/accounts", json=body, headers=headers)
    second = client.post("/v1/accounts", json=body, headers=headers)
    assert first.status_code == second.status_code == 201
    assert first.json()["id"] == second.json()["id"]
    assert second.headers["location"] == first.headers["location"]
    assert second.headers["etag"] == '"1"'


def test_a_failed_command_releases_its_idempotency_key(
    client: TestClient, auth: Auth, open_account: Opener
) -> None:
    account = open_account()
    url = f"/v1/accounts/{account['id']}/activities"
    headers = auth("customer_service", **{"Idempotency-Key": "answer-1"})
    answer = {"type": "inquiry_answered", "inquiry_id": "Q1", "channel": "phone"}
    assert client.post(url, json=answer, headers=headers).status_code == 409
    client.post(
        url,
        json={"type": "inquiry_opened", "inquiry_id": "Q1", "channel": "phone", "topic": "bill"},
        headers=auth("customer_service"),
    )
    assert client.post(url, json=answer, headers=headers).status_code == 201


def test_an_account_reads_as_it_stood_at_a_version_and_a_moment(
    client: TestClient, auth: Auth, open_account: Opener
) -> None:
    account = open_account(segment="standard")
    url = f"/v1/accounts/{account['id']}"
    cs = auth("customer_service")
    client.post(url + "/segment", json={"segment": "silver"}, headers=cs)
    between = datetime.now(UTC)
    time.sleep(0.01)
    client.post(url + "/segment", json={"segment": "gold"}, headers=cs)

    def segment(**params: Any) -> str:
        response = client.get(url, params=params, headers=auth("auditor"))
        assert response.status_code == 200, response.text
        assert response.headers["etag"] == f'"{response.json()["version"]}"'
        return str(response.json()["segment"])

    assert segment() == "gold"
    assert segment(version=1) == "standard"
    assert segment(version=2) == "silver"
    assert segment(as_of=between.isoformat()) == "silver"
    before = (datetime.now(UTC) - timedelta(days=1)).isoformat()
    assert client.get(url, params={"as_of": before}, headers=auth("auditor")).status_code == 404


def test_health_readiness_and_metrics(client: TestClient, auth: Auth, open_account: Opener) -> None:
    open_account()
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json()["status"] == "ready"
    metrics = client.get("/metrics").text
    assert (
        'crmledger_http_requests_total{method="POST",route="/v1/accounts",status="201"}' in metrics
    )


def test_every_route_has_a_one_line_summary_in_openapi(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            assert operation.get("description"), f"{method.upper()} {path} has no docstring"
