"""The hash chain: recomputed from stored state, broken by any change."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from domain import activities as act
from domain.account import CustomerAccount
from domain.integrity import StoredRecord, verify_records

NOW = datetime.now(UTC)


def records_of(account: CustomerAccount) -> list[StoredRecord]:
    out = []
    for position, event in enumerate(account.collect_events(), start=1):
        state: dict[str, Any] = dict(vars(event))
        out.append(
            StoredRecord(
                position, account.id, event.originator_version, type(event).__name__, state
            )
        )
    return out


def account_with_three_events() -> CustomerAccount:
    account = CustomerAccount.open(
        external_ref=None,
        segment="silver",
        service_plan="standard",
        channel="app",
        customer={"name": "v1:abc"},
        occurred_at=NOW,
        metadata={"actor": "t"},
    )
    account.record(act.Visit("app", "home"), NOW, {"actor": "t"})
    account.record(act.GiveFeedback(5, "great"), NOW, {"actor": "t"})
    return account


def test_an_untouched_chain_verifies() -> None:
    report = verify_records(records_of(account_with_three_events()))
    assert report.ok and report.events == 3 and report.accounts == 1


def test_a_changed_field_breaks_the_chain_at_that_event() -> None:
    records = records_of(account_with_three_events())
    tampered = dict(records[1].state or {})
    tampered["location"] = "elsewhere"
    records[1] = StoredRecord(2, records[1].account_id, 2, "VisitRecorded", tampered)
    report = verify_records(records)
    assert report.first_break is not None
    assert report.first_break.version == 2
    assert "hash does not match" in report.first_break.reason


def test_a_recomputed_hash_still_breaks_the_next_link() -> None:
    records = records_of(account_with_three_events())
    state = dict(records[1].state or {})
    state["hash"] = "f" * 64
    records[1] = StoredRecord(2, records[1].account_id, 2, "VisitRecorded", state)
    report = verify_records(records)
    assert report.first_break is not None and report.first_break.version == 2


def test_a_missing_event_breaks_the_version_sequence() -> None:
    records = records_of(account_with_three_events())
    del records[1]
    report = verify_records(records)
    assert report.first_break is not None
    assert report.first_break.version == 3
    assert "follows version 1" in report.first_break.reason


def test_a_changed_type_breaks_the_chain() -> None:
    records = records_of(account_with_three_events())
    r = records[2]
    records[2] = StoredRecord(r.position, r.account_id, r.version, "VisitRecorded", r.state)
    assert verify_records(records).first_break is not None


def test_undecodable_state_is_named() -> None:
    records = records_of(account_with_three_events())
    r = records[0]
    records[0] = StoredRecord(r.position, r.account_id, r.version, r.event_type, None)
    report = verify_records(records)
    assert report.first_break is not None and "cannot be decoded" in report.first_break.reason


def test_chains_of_different_accounts_are_independent() -> None:
    a, b = records_of(account_with_three_events()), records_of(account_with_three_events())
    interleaved = [x for pair in zip(a, b, strict=True) for x in pair]
    report = verify_records(interleaved)
    assert report.ok and report.accounts == 2
