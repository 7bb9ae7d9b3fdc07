"""The projection runner over the real broker: the relay's messages into the read models."""

from __future__ import annotations

import time

import psycopg
import pytest

from consumers.projector import Projector, projector_factory
from domain import activities as act
from infra.broker import kafka_bootstrap, stop_embedded_broker
from infra.relay import Relay
from tests.kafka.conftest import SESSION_TIMEOUT_MS, Stack, meta, open_account


def facts(stack: Stack) -> tuple[int, int, int]:
    schema = stack.settings.readmodel_schema
    with psycopg.connect(stack.services.database_url) as conn:
        row = conn.execute(
            f"SELECT coalesce(sum(new_customers), 0), coalesce(sum(visits), 0),"
            f" (SELECT count(*) FROM {schema}.accounts) FROM {schema}.daily_facts".encode()
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1]), int(row[2])


def publish_all(stack: Stack) -> None:
    relay = Relay(stack.services, stack.bootstrap)
    try:
        relay.publish_pending()
    finally:
        relay.close()


@pytest.mark.slow
def test_the_projector_applies_each_event_once_even_when_redelivered(stack: Stack) -> None:
    ledger = stack.services.ledger
    accounts = [open_account(stack.services, name=f"P{i}") for i in range(4)]
    for account in accounts:
        for _ in range(3):
            ledger.record_activity(account.id, act.Visit("store", "x"), account.opened_at, meta())
    publish_all(stack)

    first = Projector(stack.services, stack.bootstrap, session_timeout_ms=SESSION_TIMEOUT_MS)
    try:
        # Poll back to back: kafka-python drops a group join that completes between polls.
        deadline = time.monotonic() + 20
        while first.applied < 16 and time.monotonic() < deadline:
            first.poll_once(200)
        assert facts(stack) == (4, 12, 4)
    finally:
        # Leave without committing offsets: the next consumer gets everything again.
        first.close()

    second = Projector(
        stack.services,
        stack.bootstrap,
        group="crmledger-projections-2",
        session_timeout_ms=SESSION_TIMEOUT_MS,
    )
    try:
        seen = 0
        for _ in range(40):
            seen += second.poll_once(200)
            if seen >= 16:
                break
        assert seen == 16, "the whole topic was delivered again"
    finally:
        second.close()
    assert facts(stack) == (4, 12, 4), "redelivered events were skipped by position"
    status = {s["name"]: s for s in stack.services.readmodels.status()}
    assert status["kpis"]["lag"] == 0 and status["directory"]["lag"] == 0


@pytest.mark.slow
def test_the_projector_finds_a_restarted_embedded_broker_at_its_next_build(stack: Stack) -> None:
    open_account(stack.services, name="Restart")
    build = projector_factory(stack.services, session_timeout_ms=SESSION_TIMEOUT_MS)
    first = build()
    first.close()
    assert first.bootstrap == stack.bootstrap

    stop_embedded_broker(stack.home)
    second = build()  # what the worker does when it restarts the role
    try:
        assert second.bootstrap == kafka_bootstrap(stack.settings) != stack.bootstrap
        relay = Relay(stack.services, second.bootstrap)
        try:
            assert relay.publish_pending() == 1  # the new broker is empty: all again
        finally:
            relay.close()
        deadline = time.monotonic() + 20
        while second.applied < 1 and time.monotonic() < deadline:
            second.poll_once(200)
        assert facts(stack) == (1, 0, 1)
    finally:
        second.close()
