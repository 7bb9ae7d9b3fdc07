"""Tampering the stored rows with SQL is caught by the tree and a checkpoint kept before.

Three forgeries, each a step further than the last, each with the failure
that names it:
- an event's data changed in place: its own hash no longer holds (the chain
  check names the account and version, and the hash recomputed from the event
  as the proof route gives it differs from the stored one);
- the event and every later hash of its account recomputed, as a careful
  forger would: the chain holds again, but the event's leaf is not in the tree
  a checkpoint kept before signs (its inclusion fails);
- the tree itself rebuilt over the forged events: the tree's root at the kept
  size is no longer the kept root, so no consistency proof from the kept
  checkpoint to a newer one holds.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import pytest
from fastapi.testclient import TestClient

from api.app import create_app
from api.auth import issue_token
from domain import activities as act
from domain.integrity import event_hash
from domain.merkle import leaf_hash, node_hash, verify_consistency, verify_inclusion
from infra.proof_bundle import check_bundle, check_consistency, make_bundle
from infra.proven_events import ProvenEvents
from infra.signed_note import Checkpoint, open_checkpoint
from infra.wiring import Services
from tests.proofs_support import notarise, rebuild_tree
from tests.support import JWT_SECRET, forge, open_plain, own_ledger

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


def keep_checkpoint(services: Services) -> Checkpoint:
    """Bring the tree up to date, sign, and keep the checkpoint as an auditor does."""
    notarise(services)
    note = services.checkpoints.latest()
    assert note is not None
    return open_checkpoint(note, services.verifier_key)


def position_of(services: Services, account_id: UUID, version: int) -> int:
    with services.pool.connection() as conn:
        row = conn.execute(
            "SELECT notification_id FROM ledger_events"
            " WHERE originator_id = %s AND originator_version = %s",
            (account_id, version),
        ).fetchone()
    assert row is not None
    return int(row[0])


def own_hash(event: dict[str, Any]) -> str:
    """The event's hash recomputed from the event as stored (the offline check)."""
    return event_hash(
        event["prev_hash"],
        UUID(event["account_id"]),
        event["version"],
        event["type"],
        event["occurred_at"],
        event["metadata"],
        event["data"],
    )


def included(services: Services, position: int, kept: Checkpoint) -> bool:
    """Whether the stored event at `position` is proven in the kept checkpoint's tree."""
    event = ProvenEvents(services.pool, services.ledger).at(position)
    assert event is not None
    proof = services.tree.inclusion(position, kept.size)
    leaf = leaf_hash(bytes.fromhex(event["hash"]))
    return verify_inclusion(leaf, proof.leaf_index, kept.size, proof.path, kept.root)


@contextmanager
def api_client(services: Services) -> Iterator[tuple[TestClient, dict[str, str]]]:
    """The API over the tampered ledger, and an auditor's headers."""
    token = issue_token(JWT_SECRET, "auditor", ["auditor"])
    with TestClient(create_app(services)) as client:
        yield client, {"Authorization": f"Bearer {token}"}


def failed_checks(services: Services, position: int, kept: Checkpoint) -> list[str]:
    """What the auditor's offline check of a proof bundle (as `audit proof` writes it) finds."""
    with api_client(services) as (client, headers):
        params = {"position": position, "tree_size": kept.size}
        answer = client.get("/v1/audit/proofs/inclusion", params=params, headers=headers)
        note = client.get(f"/v1/audit/checkpoint?tree_size={kept.size}", headers=headers)
    assert answer.status_code == note.status_code == 200, (answer.text, note.text)
    bundle = make_bundle(answer.json(), note.text)
    return [f.message for f in check_bundle(bundle, services.verifier_key) if not f.ok]


def test_an_event_whose_data_was_changed_fails_its_own_hash(ledger_services: Services) -> None:
    services = ledger_services
    open_with_visits(services, "A", 2)
    victim = open_with_visits(services, "B", 2)
    kept = keep_checkpoint(services)
    position = position_of(services, victim, 2)
    events = ProvenEvents(services.pool, services.ledger)
    before = events.at(position)
    assert before is not None and own_hash(before) == before["hash"]

    with services.pool.connection() as conn:
        changed = conn.execute(
            "UPDATE ledger_events"
            " SET state = convert_to(replace(convert_from(state, 'UTF8'),"
            ' \'"location":"s0"\', \'"location":"sX"\'), \'UTF8\')'
            " WHERE originator_id = %s AND originator_version = 2",
            (victim,),
        ).rowcount
    assert changed == 1

    after = events.at(position)
    assert after is not None and after["data"]["location"] == "sX"
    assert own_hash(after) != after["hash"]
    broken = services.ledger.verify(victim).first_break
    assert broken is not None and broken.version == 2
    assert broken.reason == "hash does not match the event's content"
    # Its stored hash is untouched, so its leaf is still proven: only its own hash fails.
    assert included(services, position, kept)
    assert failed_checks(services, position, kept) == [
        f"event hash does not match its fields (position {position}, account {victim} v2)"
    ]


def test_a_rewritten_chain_fails_inclusion_against_a_checkpoint_kept_before(
    ledger_services: Services,
) -> None:
    services = ledger_services
    open_with_visits(services, "C", 2)
    victim = open_with_visits(services, "D", 3)
    kept = keep_checkpoint(services)
    positions = [position_of(services, victim, v) for v in (1, 2, 3, 4)]
    assert all(included(services, p, kept) for p in positions)

    forge(services, victim, 2, {"location": "forged"})

    events = ProvenEvents(services.pool, services.ledger)
    forged = events.at(positions[1])
    assert forged is not None and forged["data"]["location"] == "forged"
    assert own_hash(forged) == forged["hash"]
    assert services.ledger.verify(victim).ok  # the forger recomputed the chain
    assert included(services, positions[0], kept)  # version 1 was left alone
    for position in positions[1:]:  # version 2 and every later one were rehashed
        assert not included(services, position, kept), position
        assert failed_checks(services, position, kept) == [
            "the proof's leaf hash is not the event's leaf",
            "inclusion proof does not reach the checkpoint's root",
        ]
    assert failed_checks(services, positions[0], kept) == []


def test_a_tree_rebuilt_over_forged_events_fails_consistency_with_a_kept_checkpoint(
    ledger_services: Services,
) -> None:
    services = ledger_services
    victim = open_with_visits(services, "E", 2)
    open_with_visits(services, "F", 2)
    kept = keep_checkpoint(services)

    forge(services, victim, 2, {"location": "forged"})
    rebuild_tree(services)
    open_with_visits(services, "G", 1)
    newer = keep_checkpoint(services)
    assert newer.size > kept.size
    assert services.tree.root(kept.size) != kept.root

    proof = services.tree.consistency(kept.size, newer.size)
    assert not verify_consistency(kept.size, newer.size, kept.root, newer.root, proof.path)
    # The proof does hold between the rebuilt tree's own roots: only the kept root exposes it.
    assert verify_consistency(kept.size, newer.size, proof.first_root, newer.root, proof.path)
    assert consistency_failures(services, kept, newer) == [
        "the tree's root at the old size is not the old root",
        "consistency proof does not show the new checkpoint extends the old one",
    ]


def consistency_failures(services: Services, kept: Checkpoint, newer: Checkpoint) -> list[str]:
    """What `audit check --consistency` finds between two kept checkpoints, over the API."""
    with api_client(services) as (client, headers):
        params = {"first": kept.size, "second": newer.size}
        answer = client.get("/v1/audit/proofs/consistency", params=params, headers=headers)
        notes = [
            client.get(f"/v1/audit/checkpoint?tree_size={c.size}", headers=headers).text
            for c in (kept, newer)
        ]
    assert answer.status_code == 200, answer.text
    findings = check_consistency(notes[0], notes[1], answer.json(), services.verifier_key)
    return [f.message for f in findings if not f.ok]


def rewrite_leaf(services: Services, index: int, leaf: bytes) -> None:
    """Replace one leaf row and recompute every node row above it, as a forger would."""
    with services.pool.connection() as conn:
        conn.execute(
            "UPDATE merkle_leaves SET leaf_hash = %s WHERE leaf_index = %s",
            (leaf_hash(leaf), index),
        )
        level_hashes = [
            bytes(row[0])
            for row in conn.execute("SELECT leaf_hash FROM merkle_leaves ORDER BY leaf_index")
        ]
        conn.execute("DELETE FROM merkle_nodes")
        level = 0
        while len(level_hashes) > 1:
            level += 1
            level_hashes = [
                node_hash(level_hashes[i], level_hashes[i + 1])
                for i in range(0, len(level_hashes) - 1, 2)
            ]
            for i, h in enumerate(level_hashes):
                conn.execute(
                    "INSERT INTO merkle_nodes (level, index, hash) VALUES (%s, %s, %s)",
                    (level, i, h),
                )


def test_tree_rows_rewritten_fail_consistency_with_a_kept_checkpoint(
    ledger_services: Services,
) -> None:
    services = ledger_services
    open_with_visits(services, "H", 3)
    kept = keep_checkpoint(services)

    rewrite_leaf(services, 0, b"\x01" * 32)
    assert services.tree.root(kept.size) != kept.root
    open_with_visits(services, "I", 1)
    newer = keep_checkpoint(services)
    assert newer.size == kept.size + 2

    proof = services.tree.consistency(kept.size, newer.size)
    assert not verify_consistency(kept.size, newer.size, kept.root, newer.root, proof.path)
    assert consistency_failures(services, kept, newer) == [
        "the tree's root at the old size is not the old root",
        "consistency proof does not show the new checkpoint extends the old one",
    ]
