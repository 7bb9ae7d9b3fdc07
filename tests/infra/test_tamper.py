"""An altered stored event is found by verify, which names its account and version."""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import UTC, datetime
from uuid import UUID

import pytest
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from api.app import create_app
from api.auth import issue_token
from crmledger.cli import app as cli
from domain import activities as act
from infra.wiring import Services
from tests.support import JWT_SECRET, open_plain, own_ledger

NOW = datetime.now(UTC)
META = {"actor": "t"}


@pytest.fixture
def ledger_services() -> Iterator[Services]:
    """A ledger of its own: these tests corrupt it."""
    with own_ledger() as services:
        yield services


def open_with_visits(services: Services, ref: str, visits: int) -> UUID:
    account = open_plain(services.ledger, "Ann", ref)
    for i in range(visits):
        services.ledger.record_activity(account.id, act.Visit("store", f"s{i}"), NOW, META)
    return account.id


def tamper(services: Services, account_id: UUID, version: int, old: bytes, new: bytes) -> None:
    with services.pool.connection() as conn:
        changed = conn.execute(
            "UPDATE ledger_events"
            " SET state = convert_to(replace(convert_from(state, 'UTF8'), %s, %s), 'UTF8')"
            " WHERE originator_id = %s AND originator_version = %s"
            " AND position(%s in convert_from(state, 'UTF8')) > 0",
            (old.decode(), new.decode(), account_id, version, old.decode()),
        ).rowcount
    assert changed == 1, "the text to alter was not in the stored event"


def test_verify_names_the_altered_account_and_version(ledger_services: Services) -> None:
    services = ledger_services
    open_with_visits(services, "A", 3)
    victim = open_with_visits(services, "B", 3)
    open_with_visits(services, "C", 3)
    assert services.ledger.verify().ok

    tamper(services, victim, 3, b'"location":"s1"', b'"location":"sX"')

    report = services.ledger.verify()
    assert report.first_break is not None
    assert (report.first_break.account_id, report.first_break.version) == (victim, 3)
    assert report.events == 12 and report.accounts == 3

    token = issue_token(JWT_SECRET, "aud", ["auditor"])
    with TestClient(create_app(services)) as client:
        body = client.get("/v1/audit/verify", headers={"Authorization": f"Bearer {token}"}).json()
    assert body["ok"] is False
    assert body["broken_account_id"] == str(victim) and body["broken_version"] == 3


def test_a_deleted_event_is_found(ledger_services: Services) -> None:
    services = ledger_services
    victim = open_with_visits(services, "D", 3)
    with services.pool.connection() as conn:
        conn.execute(
            "DELETE FROM ledger_events WHERE originator_id = %s AND originator_version = 2",
            (victim,),
        )
    broken = services.ledger.verify(victim).first_break
    assert broken is not None and broken.version == 3 and "follows version 1" in broken.reason


def test_the_command_line_verify_fails_on_a_tampered_ledger(ledger_services: Services) -> None:
    services = ledger_services
    victim = open_with_visits(services, "E", 2)
    settings = services.settings
    env = {
        **os.environ,
        "CRMLEDGER_DATABASE_URL": settings.database_url or "",
        "CRMLEDGER_DATABASE_SCHEMA": settings.database_schema,
        "CRMLEDGER_JWT_SECRET": JWT_SECRET,
        "CRMLEDGER_SIGNING_KEY": settings.signing_key.get_secret_value()
        if settings.signing_key
        else "",
        "CRMLEDGER_MASTER_KEY": settings.master_key.get_secret_value()
        if settings.master_key
        else "",
    }
    runner = CliRunner()
    ok = runner.invoke(cli, ["verify"], env=env)
    assert ok.exit_code == 0 and "ok: 3 events in 1 accounts" in ok.output

    tamper(services, victim, 2, b'"channel":"store"', b'"channel":"phone"')
    broken = runner.invoke(cli, ["verify"], env=env)
    assert broken.exit_code == 1
    assert f"account {victim} version 2" in broken.output
