"""Steps of the auditor's proof features (features/audit/proofs.feature).

The auditor keeps what a checkpoint signs and checks every proof with
domain/merkle.py's verifiers, as they would on a machine of their own. The
ledger's follower (the notary) is brought up to date explicitly before a
checkpoint is fetched: in the test session no background role runs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

import httpx
import pytest
from pytest_bdd import given, parsers, then, when

from domain.integrity import event_hash
from domain.merkle import leaf_hash, verify_consistency, verify_inclusion
from features.conftest import CHECK, Account, Api
from infra.signed_note import Checkpoint, open_checkpoint
from infra.wiring import Services
from tests.proofs_support import notarise, rebuild_tree
from tests.support import forge


@dataclass
class Kept:
    """What an auditor keeps outside the system: the note, the key, and what they say."""

    note: str
    key: str
    checkpoint: Checkpoint


def fetch(api: Api, path: str, **params: str) -> httpx.Response:
    response = api.call("an auditor", "GET", path, params=params or None, sub=CHECK)
    assert response.status_code == 200, response.text
    return response


def keep(api: Api, services: Services) -> Kept:
    notarise(services)
    note = fetch(api, "/v1/audit/checkpoint").text
    key = fetch(api, "/v1/audit/verifier-key").text
    return Kept(note, key, open_checkpoint(note, key))


@when("an auditor fetches the latest checkpoint and the verifier key", target_fixture="kept")
@given("an auditor has kept a signed checkpoint", target_fixture="kept")
def kept_checkpoint(api: Api, services: Services) -> Kept:
    return keep(api, services)


@then("the checkpoint's signature holds under the verifier key")
def signature_holds(kept: Kept) -> None:
    assert open_checkpoint(kept.note, kept.key).size == kept.checkpoint.size
    lines = kept.note.split("\n")
    lines[1] = str(kept.checkpoint.size + 1)  # a checkpoint claiming a larger tree
    with pytest.raises(ValueError):
        open_checkpoint("\n".join(lines), kept.key)


@then("the checkpoint covers every event stored so far")
def covers_all(kept: Kept, services: Services) -> None:
    with services.pool.connection() as conn:
        row = conn.execute("SELECT count(*) FROM ledger_events").fetchone()
    assert row is not None and kept.checkpoint.size == row[0]


@then("the same checkpoint can be fetched again by its tree size")
def fetched_again(api: Api, kept: Kept) -> None:
    again = fetch(api, "/v1/audit/checkpoint", tree_size=str(kept.checkpoint.size)).text
    assert again == kept.note


def position_of(services: Services, account: Account, version: int) -> int:
    with services.pool.connection() as conn:
        row = conn.execute(
            "SELECT notification_id FROM ledger_events"
            " WHERE originator_id = %s AND originator_version = %s",
            (UUID(account.id), version),
        ).fetchone()
    assert row is not None
    return int(row[0])


@when(
    parsers.re(
        r"the auditor asks for a proof that the account's event at version (?P<v>\d+)"
        r" is in the ledger"
    ),
    target_fixture="proof",
)
def inclusion_proof(
    api: Api, services: Services, account: Account, kept: Kept, v: str
) -> dict[str, Any]:
    position = position_of(services, account, int(v))
    params = {"position": str(position), "tree_size": str(kept.checkpoint.size)}
    proof: dict[str, Any] = fetch(api, "/v1/audit/proofs/inclusion", **params).json()
    return proof


@then("the event's own hash holds")
def own_hash_holds(proof: dict[str, Any]) -> None:
    event = proof["event"]
    recomputed = event_hash(
        event["prev_hash"],
        UUID(event["account_id"]),
        event["version"],
        event["type"],
        event["occurred_at"],
        event["metadata"],
        event["data"],
    )
    assert recomputed == event["hash"]


def leads_to_root(proof: dict[str, Any], kept: Kept) -> bool:
    """The offline check: the event's leaf, up the path, to the kept checkpoint's root."""
    leaf = leaf_hash(bytes.fromhex(proof["event"]["hash"]))
    path = [bytes.fromhex(h) for h in proof["inclusion_path"]]
    checkpoint = kept.checkpoint
    return verify_inclusion(leaf, proof["leaf_index"], checkpoint.size, path, checkpoint.root)


@then("the proof leads from the event to the kept checkpoint's root")
def leads(proof: dict[str, Any], kept: Kept) -> None:
    assert leads_to_root(proof, kept)


@then("the proof does not lead from the event to the kept checkpoint's root")
def does_not_lead(proof: dict[str, Any], kept: Kept) -> None:
    assert not leads_to_root(proof, kept)


@given(
    parsers.re(
        r"someone has rewritten the account's event at version (?P<v>\d+),"
        r" recomputed its hashes and rebuilt the tree"
    )
)
def forged_and_rebuilt(
    request: pytest.FixtureRequest, services: Services, account: Account, kept: Kept, v: str
) -> None:
    with services.pool.connection() as conn:
        rows = conn.execute(
            "SELECT originator_version, state FROM ledger_events WHERE originator_id = %s",
            (UUID(account.id),),
        ).fetchall()

    def restore() -> None:
        # The session's ledger is shared: put the events back, and the tree they make.
        with services.pool.connection() as conn:
            for version, state in rows:
                conn.execute(
                    "UPDATE ledger_events SET state = %s"
                    " WHERE originator_id = %s AND originator_version = %s",
                    (state, UUID(account.id), version),
                )
            conn.execute("DELETE FROM checkpoints WHERE tree_size > %s", (kept.checkpoint.size,))
        rebuild_tree(services)

    request.addfinalizer(restore)
    forge(services, UUID(account.id), int(v), {"to_segment": "corporate"})
    rebuild_tree(services)


@when(
    "the auditor fetches a newer checkpoint and a proof it extends the kept one",
    target_fixture="consistency",
)
def newer_and_consistency(api: Api, services: Services, kept: Kept) -> dict[str, Any]:
    newer = keep(api, services)
    params = {"first": str(kept.checkpoint.size), "second": str(newer.checkpoint.size)}
    proof: dict[str, Any] = fetch(api, "/v1/audit/proofs/consistency", **params).json()
    # The auditor trusts only the roots the two signed checkpoints name.
    proof["newer"] = newer.checkpoint
    return proof


def extends(consistency: dict[str, Any], kept: Kept) -> bool:
    newer: Checkpoint = consistency["newer"]
    path = [bytes.fromhex(h) for h in consistency["consistency_path"]]
    old = kept.checkpoint
    return verify_consistency(old.size, newer.size, old.root, newer.root, path)


@then("the proof shows the newer ledger extends the kept one")
def shows_extends(consistency: dict[str, Any], kept: Kept) -> None:
    assert consistency["newer"].size > kept.checkpoint.size
    assert extends(consistency, kept)


@then("the proof does not show the newer ledger extends the kept one")
def does_not_extend(consistency: dict[str, Any], kept: Kept) -> None:
    assert not extends(consistency, kept)


@when(
    "an auditor asks for a proof against a tree larger than the ledger", target_fixture="response"
)
def beyond_the_tree(api: Api, services: Services) -> httpx.Response:
    notarise(services)
    size = services.tree.size()
    params = {"position": "1", "tree_size": str(size + 1)}
    return api.call("an auditor", "GET", "/v1/audit/proofs/inclusion", params=params)


# The step definitions pytest-bdd made above: the module that runs features/audit/
# (features/test_audit.py) imports exactly these.
__all__ = [name for name in list(globals()) if name.startswith("pytestbdd_")]
