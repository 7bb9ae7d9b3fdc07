"""A stored event that cannot be read back is an answer, not a crash.

One account's event is overwritten with bytes that are not JSON: reads of that
account answer the ledger-integrity problem (naming account, version and
position), commands on it are refused and append nothing, its history, its
personal data and the audit feed show the event as unreadable in its place,
and every other account reads as ever.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any
from uuid import UUID

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from consumers.dead_letters import dead_letter_reason
from domain import activities as act
from domain.errors import LedgerIntegrityError
from domain.integrity import UnreadableEvent
from infra.wiring import Services
from tests.support import open_plain, own_ledger

PROBLEM_TYPE = "urn:crmledger:problem:ledger-integrity"
META = {"actor": "t"}


@dataclass
class Corrupt:
    services: Services
    client: TestClient
    auth: Callable[..., dict[str, str]]
    good: UUID
    victim: UUID
    position: int  # of the victim's version 3
    stored_hash: str  # the hash version 3 was stored with


def stored(services: Services, account_id: UUID, version: int) -> tuple[int, bytes]:
    with services.pool.connection() as conn:
        row = conn.execute(
            "SELECT notification_id, state FROM ledger_events"
            " WHERE originator_id = %s AND originator_version = %s",
            (account_id, version),
        ).fetchone()
    assert row is not None
    return row[0], bytes(row[1])


def garble(services: Services, account_id: UUID, version: int) -> None:
    """Overwrite an event's stored state with bytes that are not JSON (the hash still in them)."""
    _, state = stored(services, account_id, version)
    with services.pool.connection() as conn:
        conn.execute(
            "UPDATE ledger_events SET state = %s"
            " WHERE originator_id = %s AND originator_version = %s",
            (b"\xff\x00garbled " + state[5:], account_id, version),
        )


def with_activities(services: Services, name: str, count: int) -> UUID:
    account = open_plain(services.ledger, name)
    for i in range(count):
        services.ledger.record_activity(
            account.id,
            act.Purchase(Decimal("10.00"), Decimal("4.00"), "HKD", f"s{i}"),
            datetime.now(UTC),
            META,
        )
    return account.id


@pytest.fixture(scope="module")
def corrupt(auth: Callable[..., dict[str, str]]) -> Iterator[Corrupt]:
    """A ledger of its own with one account whose version 3 is garbled, and one intact."""
    with own_ledger() as services:
        good = with_activities(services, "Bea", 3)
        victim = with_activities(services, "Ann", 3)
        position, state = stored(services, victim, 3)
        stored_hash = services.ledger.mapper.transcoder.decode(state)["hash"]
        garble(services, victim, 3)
        # Loaded fresh, as after a restart: nothing of the victim is cached.
        services.ledger.repository.cache = None
        with TestClient(create_app(services)) as client:
            yield Corrupt(services, client, auth, good, victim, position, stored_hash)


def assert_integrity_problem(c: Corrupt, response: Any) -> None:
    assert response.status_code == 409, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body = response.json()
    assert body["type"] == PROBLEM_TYPE
    assert (body["account_id"], body["version"], body["position"]) == (
        str(c.victim),
        3,
        c.position,
    )


@pytest.mark.parametrize(
    "query", ["", "?as_of=2999-01-01T00:00:00Z", "?version=4"], ids=["now", "as_of", "version"]
)
def test_reads_of_an_account_with_an_unreadable_event_answer_the_integrity_problem(
    corrupt: Corrupt, query: str
) -> None:
    c = corrupt
    response = c.client.get(f"/v1/accounts/{c.victim}{query}", headers=c.auth("auditor"))
    assert_integrity_problem(c, response)


def test_a_version_before_the_unreadable_event_still_reads(corrupt: Corrupt) -> None:
    c = corrupt
    response = c.client.get(f"/v1/accounts/{c.victim}?version=2", headers=c.auth("auditor"))
    assert response.status_code == 200 and response.json()["version"] == 2


def test_commands_on_it_are_refused_and_append_nothing(corrupt: Corrupt) -> None:
    c = corrupt
    before = c.services.ledger.recorder.max_notification_id()
    response = c.client.post(
        f"/v1/accounts/{c.victim}/activities",
        json={"type": "visit", "channel": "store", "location": "x"},
        headers=c.auth("customer_service"),
    )
    assert_integrity_problem(c, response)
    response = c.client.post(
        f"/v1/accounts/{c.victim}/segment",
        json={"segment": "vip"},
        headers=c.auth("customer_service"),
    )
    assert_integrity_problem(c, response)
    assert c.services.ledger.recorder.max_notification_id() == before


def test_the_history_shows_the_event_as_unreadable_in_its_place(corrupt: Corrupt) -> None:
    c = corrupt
    response = c.client.get(f"/v1/accounts/{c.victim}/history", headers=c.auth("auditor"))
    assert response.status_code == 200, response.text
    events = response.json()["events"]
    assert [e["type"] for e in events] == [
        "AccountOpened",
        "PurchaseRecorded",
        "Unreadable",
        "PurchaseRecorded",
    ]
    assert events[2] == {
        "version": 3,
        "type": "Unreadable",
        "unreadable": True,
        "position": c.position,
        "hash": c.stored_hash,
        "reason": "its stored state cannot be decoded",
    }
    assert events[0]["data"]["customer"] == {"name": "Ann"} and not events[0]["unreadable"]
    assert response.json()["integrity_warning"]["version"] == 3
    assert response.headers["Crmledger-Integrity"] == f"broken; version=3; position={c.position}"


def test_personal_data_lists_the_readable_records_and_names_the_unreadable_one(
    corrupt: Corrupt,
) -> None:
    c = corrupt
    response = c.client.get(f"/v1/accounts/{c.victim}/personal-data", headers=c.auth("admin"))
    assert response.status_code == 200, response.text
    body = response.json()
    assert [r["fields"] for r in body["records"]] == [{"name": "Ann"}]
    assert [(u["version"], u["position"]) for u in body["unreadable"]] == [(3, c.position)]
    assert body["current"] is None and body["integrity_warning"]["version"] == 3


def test_the_audit_feed_from_the_start_shows_it_unreadable(corrupt: Corrupt) -> None:
    c = corrupt
    response = c.client.get("/v1/audit/events?after=0&limit=1000", headers=c.auth("auditor"))
    assert response.status_code == 200, response.text
    events = response.json()["events"]
    assert len(events) == 8
    unreadable = [e for e in events if e["unreadable"]]
    assert unreadable == [
        {
            "version": 3,
            "type": "Unreadable",
            "unreadable": True,
            "position": c.position,
            "hash": c.stored_hash,
            "reason": "its stored state cannot be decoded",
            "account_id": str(c.victim),
        }
    ]
    # A time filter keeps it too: its recorded time cannot be read.
    since = c.client.get(
        "/v1/audit/events?from=2000-01-01T00:00:00Z&limit=1000", headers=c.auth("auditor")
    )
    assert [e["position"] for e in since.json()["events"] if e["unreadable"]] == [c.position]


def test_other_accounts_read_and_take_commands_as_ever(corrupt: Corrupt) -> None:
    c = corrupt
    read = c.client.get(f"/v1/accounts/{c.good}", headers=c.auth("auditor"))
    assert read.status_code == 200 and read.json()["integrity_warning"] is None
    assert "Crmledger-Integrity" not in read.headers
    history = c.client.get(f"/v1/accounts/{c.good}/history", headers=c.auth("auditor"))
    assert history.status_code == 200 and not any(e["unreadable"] for e in history.json()["events"])
    command = c.client.post(
        f"/v1/accounts/{c.good}/activities",
        json={"type": "visit", "channel": "store", "location": "x"},
        headers=c.auth("customer_service"),
    )
    assert command.status_code == 201, command.text


def test_the_ledger_names_the_unreadable_event(corrupt: Corrupt) -> None:
    c = corrupt
    ledger = c.services.ledger
    with pytest.raises(LedgerIntegrityError) as refused:
        ledger.account(c.victim)
    assert (refused.value.account_id, refused.value.version) == (c.victim, 3)
    entries = ledger.history(c.victim)
    assert isinstance(entries[2], UnreadableEvent) and entries[2].position == c.position
    # A batch of inbound activities leaves the account out; its message is dead-lettered
    # with the reason code, while the others of the batch go on.
    assert set(ledger.accounts([c.victim, c.good])) == {c.good}
    assert dead_letter_reason(refused.value) == "ledger_integrity"


def test_retention_skips_the_unreadable_account_and_erases_the_others() -> None:
    with own_ledger() as services:
        ledger = services.ledger
        long_ago = datetime(2000, 1, 1, tzinfo=UTC)
        ids = []
        for name in ("Ann", "Bea"):
            account = ledger.open_account(
                external_ref=None,
                segment="gold",
                service_plan="standard",
                channel="store",
                customer={"name": name},
                occurred_at=long_ago,
                meta=META,
            )
            ledger.close_account(account.id, "other", "", long_ago, META)
            ids.append(account.id)
        garble(services, ids[0], 1)
        ledger.repository.cache = None

        erased = ledger.erase_expired(30, datetime.now(UTC), META)

    assert erased == [ids[1]]


def test_an_unreadable_snapshot_is_passed_over_for_the_events() -> None:
    with own_ledger() as services:
        account = with_activities(services, "Ann", 99)  # version 100: a snapshot is taken
        with services.pool.connection() as conn:
            changed = conn.execute(
                "UPDATE ledger_snapshots SET state = %s WHERE originator_id = %s",
                (b"\xff not a snapshot", account),
            ).rowcount
        assert changed == 1
        services.ledger.repository.cache = None

        loaded = services.ledger.account(account)

    assert loaded.version == 100 and loaded.last_activity_at is not None


def test_a_decodable_state_missing_its_envelope_is_unreadable_too() -> None:
    with own_ledger() as services:
        account = with_activities(services, "Ann", 1)
        with services.pool.connection() as conn:
            conn.execute(
                "UPDATE ledger_events SET state = %s"
                " WHERE originator_id = %s AND originator_version = 2",
                (b'{"amount": "1.00"}', account),
            )
        services.ledger.repository.cache = None

        with pytest.raises(LedgerIntegrityError) as refused:
            services.ledger.account(account)
        entries = services.ledger.history(account)

    assert refused.value.version == 2
    assert isinstance(entries[1], UnreadableEvent) and entries[1].stored_hash is None
    assert "occurred_at is missing" in entries[1].reason
