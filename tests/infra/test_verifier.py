"""The continuous verifier flags a broken account in its table, the metric and the next read."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from decimal import Decimal
from uuid import UUID

import pytest
from fastapi.testclient import TestClient
from prometheus_client import REGISTRY

from api.app import create_app
from domain import activities as act
from infra.metrics import refresh
from infra.verifier import ContinuousVerifier, start_verifier
from infra.wiring import Services
from tests.infra.test_corrupt_events import garble
from tests.support import open_plain, own_ledger

META = {"actor": "t"}


@pytest.fixture
def ledger_services() -> Iterator[Services]:
    """A ledger of its own: these tests corrupt it."""
    with own_ledger() as services:
        yield services


def with_purchases(services: Services, name: str, amounts: list[str]) -> UUID:
    account = open_plain(services.ledger, name)
    for amount in amounts:
        services.ledger.record_activity(
            account.id,
            act.Purchase(Decimal(amount), Decimal("1.00"), "HKD", "web"),
            datetime.now(UTC),
            META,
        )
    return account.id


def set_amount(services: Services, account_id: UUID, version: int, old: str, new: str) -> None:
    """Change an amount inside the event's valid JSON, leaving its hash as it was."""
    with services.pool.connection() as conn:
        changed = conn.execute(
            "UPDATE ledger_events"
            " SET state = convert_to(replace(convert_from(state, 'UTF8'), %s, %s), 'UTF8')"
            " WHERE originator_id = %s AND originator_version = %s",
            (f'"{old}"', f'"{new}"', account_id, version),
        ).rowcount
    assert changed == 1


def broken(services: Services) -> dict[UUID, tuple[int, int, str]]:
    return {b.account_id: (b.version, b.position, b.reason) for b in services.integrity.all()}


def position_of(services: Services, account_id: UUID, version: int) -> int | None:
    return services.ledger.position_of(account_id, version)


def wait_until(check: Callable[[], bool], timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "not within the bounded wait"
        time.sleep(0.05)


def catch_up(verifier: ContinuousVerifier) -> None:
    while not verifier.step():
        pass


def test_an_altered_amount_is_flagged_in_the_table_the_metric_and_the_next_read(
    ledger_services: Services, auth: Callable[..., dict[str, str]]
) -> None:
    services = ledger_services
    good = with_purchases(services, "Bea", ["5.00", "6.00"])
    altered = with_purchases(services, "Ann", ["10.00", "11.00"])
    garbled = with_purchases(services, "Cy", ["7.00"])
    set_amount(services, altered, 2, "10.00", "99.00")
    garble(services, garbled, 2)

    worker = start_verifier(services)  # the whole ledger on start, in the background
    try:
        wait_until(lambda: len(broken(services)) == 2)
    finally:
        worker.stop()

    assert broken(services) == {
        altered: (2, position_of(services, altered, 2), "hash does not match the event's content"),
        garbled: (2, position_of(services, garbled, 2), "stored state cannot be decoded"),
    }
    assert refresh(services)
    assert REGISTRY.get_sample_value("crmledger_broken_accounts") == 2

    with TestClient(create_app(services)) as client:
        read = client.get(f"/v1/accounts/{altered}", headers=auth("auditor"))
        history = client.get(f"/v1/accounts/{altered}/history", headers=auth("auditor"))
        fine = client.get(f"/v1/accounts/{good}", headers=auth("auditor"))
    position = position_of(services, altered, 2)
    for response in (read, history):
        assert response.status_code == 200, response.text
        warning = response.json()["integrity_warning"]
        assert (warning["version"], warning["position"]) == (2, position)
        assert "hash does not match" in warning["reason"]
        assert response.headers["Crmledger-Integrity"] == f"broken; version=2; position={position}"
    assert fine.json()["integrity_warning"] is None and "Crmledger-Integrity" not in fine.headers


def test_each_new_event_is_checked_as_it_is_appended(ledger_services: Services) -> None:
    services = ledger_services
    account = with_purchases(services, "Ann", ["5.00"])
    verifier = ContinuousVerifier(services.ledger, services.pool, services.integrity, sweep_s=3600)
    catch_up(verifier)
    assert broken(services) == {}

    # An event appended behind the ledger's back, with no valid hash.
    with services.pool.connection() as conn:
        conn.execute(
            "INSERT INTO ledger_events (originator_id, originator_version, topic, state)"
            " VALUES (%s, 3, 'domain.account:CustomerAccount.VisitRecorded', %s)",
            (account, b'{"hash": "forged"}'),
        )
    catch_up(verifier)

    assert broken(services)[account][0] == 3
    assert broken(services)[account][1] == position_of(services, account, 3)


def test_a_later_sweep_finds_a_row_altered_after_it_was_checked_and_clears_it_once_restored(
    ledger_services: Services,
) -> None:
    services = ledger_services
    account = with_purchases(services, "Ann", ["10.00"])
    verifier = ContinuousVerifier(services.ledger, services.pool, services.integrity, sweep_s=0)
    catch_up(verifier)
    assert broken(services) == {}

    set_amount(services, account, 2, "10.00", "99.00")
    catch_up(verifier)  # the next sweep reads the whole ledger again
    assert broken(services)[account][0] == 2

    set_amount(services, account, 2, "99.00", "10.00")
    catch_up(verifier)
    assert broken(services) == {}


def test_the_verifier_keeps_going_through_a_database_failure(ledger_services: Services) -> None:
    services = ledger_services
    account = with_purchases(services, "Ann", ["10.00"])
    garble(services, account, 2)
    with services.pool.connection() as conn:
        conn.execute("DROP TABLE broken_accounts")
    verifier = ContinuousVerifier(services.ledger, services.pool, services.integrity, sweep_s=3600)
    stop = threading.Event()
    thread = threading.Thread(target=verifier.run, args=(stop,), daemon=True)
    thread.start()
    try:
        wait_until(lambda: verifier.outages >= 1)
        assert thread.is_alive()
        services.integrity.create()  # the database answers again
        wait_until(lambda: account in broken(services))
    finally:
        stop.set()
        thread.join(10)
    assert not thread.is_alive()
