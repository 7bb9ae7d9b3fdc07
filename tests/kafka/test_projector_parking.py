"""No event stops a read model: the projector and the rebuilds park what they cannot apply.

The poison is written to the store as a buggy producer of the past would have
left it (tests.support.forge alters a stored event and keeps its hash chain
whole), then published by the real relay through the real broker; the relay's
EventUnreadable marker is published to the topic as the relay sends it.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal

import orjson
import psycopg
import pytest
from fastapi.testclient import TestClient
from kafka import KafkaProducer
from prometheus_client.parser import text_string_to_metric_families
from typer.testing import CliRunner

from api.app import create_app
from consumers.projector import Projector, read_message
from crmledger.cli import app as cli
from domain import activities as act
from domain.activities import apply_activity
from infra.event_store import EventLog, plain_state
from infra.outbound_events import stored_message
from infra.relay import Relay
from infra.topics import ACCOUNT_EVENTS, CLOUDEVENTS_JSON
from projections.events import ProjectedEvent
from tests.kafka.conftest import SESSION_TIMEOUT_MS, Stack, meta, open_account
from tests.support import env_for, forge

Auth = Callable[..., dict[str, str]]
VISIT = act.Visit("store", "central")
YEAR_ONE = datetime(1, 1, 1, tzinfo=timezone(timedelta(hours=14)))


def position(stack: Stack) -> int:
    return stack.services.ledger.recorder.max_notification_id() or 0


def figures(stack: Stack) -> tuple[int, int, int]:
    """Visits counted, directory rows, KPI accounts."""
    rm = stack.settings.readmodel_schema
    with psycopg.connect(stack.services.database_url) as conn:
        row = conn.execute(
            f"SELECT (SELECT coalesce(sum(visits), 0) FROM {rm}.daily_facts),"
            f" (SELECT count(*) FROM {rm}.accounts), (SELECT count(*) FROM {rm}.kpi_accounts)"
            "".encode()
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1]), int(row[2])


def purchases(stack: Stack) -> int:
    """Purchases counted in the financial read model."""
    rm = stack.settings.readmodel_schema
    with psycopg.connect(stack.services.database_url) as conn:
        row = conn.execute(f"SELECT count(*) FROM {rm}.sales_daily".encode()).fetchone()
    assert row is not None
    return int(row[0])


def parked_rows(stack: Stack) -> dict[tuple[str, int], tuple[str, str, int]]:
    """(read model, position) -> (reason, error class, attempts)."""
    return {
        (p.projection, p.position): (p.reason, p.error_class, p.attempts)
        for p in stack.services.readmodels.store.parked()
    }


def project_all(stack: Stack, projector: Projector) -> None:
    """Poll back to back until every read model has reached the ledger's position."""
    deadline = time.monotonic() + 60
    while any(s["lag"] for s in stack.services.readmodels.status()):
        assert time.monotonic() < deadline, stack.services.readmodels.status()
        projector.poll_once(200)


def publish_store(stack: Stack) -> None:
    relay = Relay(stack.services, stack.bootstrap)
    try:
        relay.publish_pending()
    finally:
        relay.close()


def scrape(client: TestClient) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    response = client.get("/metrics")
    assert response.status_code == 200
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def write_poison_then_good(stack: Stack) -> tuple[int, int, int]:
    """A NUL in a directory field, a year-1 time and a NUL in a KPI field, then 1,000 good visits.

    Returns the poisons' positions: the opening with a NUL in its external
    reference, the year-1 visit, the purchase with a NUL in its store.
    """
    services = stack.services
    ledger = services.ledger
    first = open_account(services, name="First Good")
    nul = open_account(services, name="Nul Ref")
    nul_at = position(stack)
    ledger.record_activity(first.id, VISIT, datetime.now(UTC), meta())
    year_one_at = position(stack)
    purchase = act.Purchase(Decimal("5"), Decimal("1"), "HKD", "web")
    ledger.record_activity(first.id, purchase, datetime.now(UTC), meta())
    store_at = position(stack)
    good = [open_account(services, name=f"Good {i}") for i in range(10)]
    for account in good:
        for _ in range(100):
            apply_activity(account, VISIT, datetime.now(UTC), meta())
    ledger.save(*good)
    # What a producer without today's checks could have stored.
    forge(services, nul.id, 1, {"external_ref": "C-\x00-ref"})
    forge(services, first.id, 2, {"occurred_at": YEAR_ONE})
    forge(services, first.id, 3, {"store": "web\x00"})
    return nul_at, year_one_at, store_at


@pytest.mark.slow
def test_a_poison_is_parked_and_the_thousand_good_events_behind_it_arrive(
    stack: Stack, auth: Auth
) -> None:
    nul_at, year_one_at, store_at = write_poison_then_good(stack)
    publish_store(stack)
    client = TestClient(create_app(stack.services))
    before = scrape(client)

    projector = Projector(stack.services, stack.bootstrap, session_timeout_ms=SESSION_TIMEOUT_MS)
    try:
        project_all(stack, projector)
    finally:
        projector.close()

    # Every good event arrived: 1,000 visits; 11 accounts in the directory (the
    # NUL one parked there), 12 in the KPIs (which keep no external_ref).
    assert figures(stack) == (1000, 11, 12)
    assert purchases(stack) == 0
    assert parked_rows(stack) == {
        ("directory", nul_at): ("cannot_apply", "DataError", 1),
        ("directory", year_one_at): ("cannot_apply", "OverflowError", 1),
        ("kpis", year_one_at): ("cannot_apply", "OverflowError", 1),
        ("kpis", store_at): ("cannot_apply", "DataError", 1),
    }
    status = {s["name"]: s for s in stack.services.readmodels.status()}
    assert (status["directory"]["parked"], status["kpis"]["parked"]) == (2, 2)
    assert status["directory"]["lag"] == status["kpis"]["lag"] == 0

    after = scrape(client)
    gauge = "crmledger_projection_parked_events"
    assert after[(gauge, frozenset({("read_model", "directory")}))] == 2
    assert after[(gauge, frozenset({("read_model", "kpis")}))] == 2
    counter = (
        "crmledger_projection_parked_total",
        frozenset({("read_model", "directory"), ("reason", "cannot_apply")}),
    )
    assert after[counter] - before.get(counter, 0) == 2

    # Listed over HTTP, with the status; an auditor reads, customer service may not.
    listed = client.get("/v1/admin/projections/parked", headers=auth("admin"))
    assert listed.status_code == 200, listed.text
    items = listed.json()["items"]
    assert [(i["read_model"], i["position"]) for i in items] == [
        ("directory", nul_at),
        ("directory", year_one_at),
        ("kpis", year_one_at),
        ("kpis", store_at),
    ]
    assert "NUL" in items[0]["error"] and items[0]["event_type"] == "AccountOpened"
    assert client.get("/v1/admin/projections/parked", headers=auth("auditor")).status_code == 200
    only = client.get("/v1/admin/projections/parked?read_model=kpis", headers=auth("admin"))
    assert [i["position"] for i in only.json()["items"]] == [year_one_at, store_at]
    unknown = client.get("/v1/admin/projections/parked?read_model=nope", headers=auth("admin"))
    assert unknown.status_code == 422
    forbidden = client.get("/v1/admin/projections/parked", headers=auth("customer_service"))
    assert forbidden.status_code == 403
    statuses = client.get("/v1/admin/projections", headers=auth("admin")).json()
    assert {s["name"]: s["parked"] for s in statuses} == {"directory": 2, "kpis": 2}

    # A retry with nothing fixed keeps them parked, an attempt more each.
    retried = client.post(
        f"/v1/admin/projections/parked/{year_one_at}/retry", headers=auth("admin")
    )
    assert retried.status_code == 200, retried.text
    assert retried.json()["applied"] == []
    assert [(i["read_model"], i["attempts"]) for i in retried.json()["still_parked"]] == [
        ("directory", 2),
        ("kpis", 2),
    ]
    assert (
        client.post("/v1/admin/projections/parked/1/retry", headers=auth("admin")).status_code
        == 404
    )
    refused = client.post("/v1/admin/projections/parked/retry", headers=auth("auditor"))
    assert refused.status_code == 403

    # And from the command line.
    env = env_for(stack.settings)
    shown = CliRunner().invoke(cli, ["projections", "parked"], env=env)
    assert shown.exit_code == 0, shown.output
    assert f"directory position {nul_at} " in shown.output
    assert f"kpis position {year_one_at} " in shown.output
    assert f"kpis position {store_at} " in shown.output
    assert "4 parked events" in shown.output
    again = CliRunner().invoke(cli, ["projections", "retry"], env=env)
    assert again.exit_code == 1, again.output
    assert "0 applied, 4 still parked" in again.output
    assert parked_rows(stack)[("kpis", year_one_at)] == ("cannot_apply", "OverflowError", 3)
    status_out = CliRunner().invoke(cli, ["projections", "status"], env=env)
    assert status_out.exit_code == 0 and "parked" in status_out.output
    assert figures(stack) == (1000, 11, 12), "failed retries changed nothing"

    # A rebuild with the poison in the store answers 200 and reports it.
    rebuilt = client.post("/v1/admin/projections/kpis/rebuild", headers=auth("admin"))
    assert rebuilt.status_code == 200, rebuilt.text
    assert rebuilt.json()["parked"] == 2
    assert rebuilt.json()["parked_positions"] == [year_one_at, store_at]
    cli_rebuilt = CliRunner().invoke(cli, ["projections", "rebuild", "--all"], env=env)
    assert cli_rebuilt.exit_code == 0, cli_rebuilt.output
    assert (
        f"parked 3 events it could not apply, at positions {nul_at}, {year_one_at}, {store_at}"
        in cli_rebuilt.output
    )
    assert figures(stack) == (1000, 11, 12)
    assert purchases(stack) == 0
    assert parked_rows(stack)[("kpis", year_one_at)] == ("cannot_apply", "OverflowError", 5)


def test_a_retry_that_now_succeeds_applies_the_event_exactly_once(stack: Stack, auth: Auth) -> None:
    services = stack.services
    account = open_account(services)
    services.ledger.record_activity(account.id, VISIT, datetime.now(UTC), meta())
    poison_at = position(stack)
    forge(services, account.id, 2, {"occurred_at": YEAR_ONE})
    services.ledger.record_activity(account.id, VISIT, datetime.now(UTC), meta())
    outcome = services.readmodels.rebuild("directory", "kpis")
    assert outcome.positions() == [poison_at]
    assert figures(stack)[0] == 1

    # The cause goes away (here: the stored time is mended), and the retry applies it.
    forge(services, account.id, 2, {"occurred_at": datetime.now(UTC)})
    client = TestClient(create_app(services))
    retried = client.post("/v1/admin/projections/parked/retry", headers=auth("admin"))
    assert retried.status_code == 200, retried.text
    assert sorted(i["read_model"] for i in retried.json()["applied"]) == ["directory", "kpis"]
    assert retried.json()["still_parked"] == []
    assert parked_rows(stack) == {}
    assert figures(stack)[0] == 2
    # Once: a second retry finds nothing, and the projector skips it by position.
    again = client.post(f"/v1/admin/projections/parked/{poison_at}/retry", headers=auth("admin"))
    assert again.status_code == 404
    publish_store(stack)
    projector = Projector(services, stack.bootstrap, session_timeout_ms=SESSION_TIMEOUT_MS)
    try:
        seen, deadline = 0, time.monotonic() + 20
        while seen < 3:
            assert time.monotonic() < deadline
            seen += projector.poll_once(200)
    finally:
        projector.close()
    assert figures(stack)[0] == 2


def test_the_relays_unreadable_marker_is_parked_and_the_events_behind_it_flow(
    stack: Stack,
) -> None:
    services = stack.services
    account = open_account(services)
    for _ in range(3):
        services.ledger.record_activity(account.id, VISIT, datetime.now(UTC), meta())
    with services.pool.connection() as conn:
        rows = EventLog(services.ledger).page(conn, 0, 10)
    (_, account_text, _, _, bad_state) = rows[1]
    bad_at = rows[1][0]
    stored_hash = plain_state(bad_state)["hash"]
    # The stored event at bad_at no longer decodes.
    with services.pool.connection() as conn:
        conn.execute(
            "UPDATE ledger_events SET state = %s WHERE notification_id = %s",
            (b"\xff not json", bad_at),
        )
    # The relay's marker for it, the other events as it publishes them.
    marker = {
        "specversion": "1.0",
        "id": f"unreadable-{bad_at}",
        "source": "crmledger",
        "type": "crmledger.EventUnreadable",
        "subject": account_text,
        "datacontenttype": "application/json",
        "position": bad_at,
        "hash": stored_hash,
        "data": {
            "position": bad_at,
            "account_id": account_text,
            "stored_hash": stored_hash,
            "error": "the stored event does not decode",
        },
    }
    producer = KafkaProducer(bootstrap_servers=stack.bootstrap, linger_ms=0)
    try:
        for at, text, version, topic, stored in rows:
            kind = topic.rsplit(".", 1)[-1]
            value = (
                orjson.dumps(marker)
                if at == bad_at
                else stored_message(at, text, version, kind, stored)
            )
            headers = [("content-type", CLOUDEVENTS_JSON)]
            producer.send(ACCOUNT_EVENTS, key=text.encode(), value=value, headers=headers)
        producer.flush()
    finally:
        producer.close()

    projector = Projector(services, stack.bootstrap, session_timeout_ms=SESSION_TIMEOUT_MS)
    try:
        project_all(stack, projector)
    finally:
        projector.close()

    assert figures(stack) == (2, 1, 1)
    parked = services.readmodels.store.parked()
    assert [(p.projection, p.position, p.reason, p.account_id) for p in parked] == [
        ("directory", bad_at, "unreadable_in_store", account.id),
        ("kpis", bad_at, "unreadable_in_store", account.id),
    ]
    assert stored_hash in parked[0].error
    # A retry reads the store again: still unreadable, still parked; so does a rebuild.
    retried = services.readmodels.retry()
    assert retried.applied == [] and len(retried.still_parked) == 2
    assert retried.still_parked[0].reason == "unreadable_in_store"
    outcome = services.readmodels.rebuild("kpis")
    assert outcome.positions() == [bad_at] and outcome.events == 4
    assert figures(stack) == (2, 1, 1)


def test_an_event_the_relay_cannot_read_is_parked_by_the_projector(
    stack: Stack, auth: Auth
) -> None:
    services = stack.services
    account = open_account(services)
    for _ in range(3):
        services.ledger.record_activity(account.id, VISIT, datetime.now(UTC), meta())
    with services.pool.connection() as conn:
        (_, (bad_at, _, _, _, state), *_) = EventLog(services.ledger).page(conn, 0, 10)
        stored_hash = plain_state(state)["hash"]
        conn.execute(
            "UPDATE ledger_events SET state = %s WHERE notification_id = %s",
            (b'{"hash": "' + stored_hash.encode() + b'", "cut": ', bad_at),
        )
    publish_store(stack)  # the real relay: its marker in place of the event

    projector = Projector(services, stack.bootstrap, session_timeout_ms=SESSION_TIMEOUT_MS)
    try:
        project_all(stack, projector)
    finally:
        projector.close()

    assert figures(stack) == (2, 1, 1)
    parked = services.readmodels.store.parked()
    assert [(p.projection, p.position, p.reason, p.account_id) for p in parked] == [
        ("directory", bad_at, "unreadable_in_store", account.id),
        ("kpis", bad_at, "unreadable_in_store", account.id),
    ]
    assert stored_hash in parked[0].error
    # The HTTP rebuild of a ledger holding it answers 200 and names it.
    client = TestClient(create_app(services))
    rebuilt = client.post("/v1/admin/projections/directory/rebuild", headers=auth("admin"))
    assert rebuilt.status_code == 200, rebuilt.text
    assert (rebuilt.json()["events"], rebuilt.json()["parked_positions"]) == (4, [bad_at])


def test_a_message_that_cannot_be_read_is_parked_at_its_position() -> None:
    def projected(message: object) -> ProjectedEvent:
        raise OverflowError("date value out of range")

    body = b'{"type": "crmledger.VisitRecorded", "position": 9, "subject": "x\\u0000"}'
    parked = read_message(body, projected)
    assert parked is not None and not isinstance(parked, ProjectedEvent)
    assert (parked.position, parked.event_type, parked.error_class) == (
        9,
        "VisitRecorded",
        "OverflowError",
    )
    assert read_message(b"not json", projected) is None
    assert read_message(b'{"type": "crmledger.VisitRecorded"}', projected) is None

    def down(message: object) -> ProjectedEvent:
        raise psycopg.OperationalError("the server is away")

    with pytest.raises(psycopg.OperationalError):
        read_message(body, down)
