"""The proof routes: checkpoints, the verifier key, inclusion and consistency proofs.

Every proof the API gives is checked here by domain/merkle.py's verifiers
against the root a signed checkpoint names, as an auditor does offline.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from uuid import UUID

import pytest
from fastapi.testclient import TestClient

from domain.integrity import event_hash
from domain.merkle import leaf_hash, verify_consistency, verify_inclusion
from infra.signed_note import Checkpoint, open_checkpoint
from infra.wiring import Services
from tests.proofs_support import notarise

Auth = Callable[..., dict[str, str]]
Opener = Callable[..., dict[str, Any]]
PROBLEM = "application/problem+json"
HEX = re.compile(r"^[0-9a-f]{64}$")
ROUTES = (
    "/v1/audit/checkpoint",
    "/v1/audit/verifier-key",
    "/v1/audit/proofs/inclusion?position=1&tree_size=1",
    "/v1/audit/proofs/consistency?first=1&second=1",
)


def get(client: TestClient, auth: Auth, path: str, **params: Any) -> Any:
    response = client.get(path, params=params, headers=auth("auditor"))
    assert response.status_code == 200, response.text
    return response


def kept(client: TestClient, auth: Auth, services: Services, **params: Any) -> Checkpoint:
    """A checkpoint as an auditor keeps it: fetched, and opened with the published key."""
    note = get(client, auth, "/v1/audit/checkpoint", **params).text
    key = get(client, auth, "/v1/audit/verifier-key").text
    return open_checkpoint(note, key)


def positions_of(services: Services, account_id: str) -> list[int]:
    with services.pool.connection() as conn:
        rows = conn.execute(
            "SELECT notification_id FROM ledger_events WHERE originator_id = %s"
            " ORDER BY originator_version",
            (UUID(account_id),),
        ).fetchall()
    return [row[0] for row in rows]


def assert_problem(response: Any, status: int, *words: str) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    for word in words:
        assert word in response.json()["detail"], response.json()


def test_the_checkpoint_is_the_signed_note_and_opens_with_the_published_key(
    client: TestClient, auth: Auth, open_account: Opener, services: Services
) -> None:
    open_account()
    notarise(services)
    response = get(client, auth, "/v1/audit/checkpoint")
    assert response.headers["content-type"].startswith("text/plain")
    assert response.text == services.checkpoints.latest()
    checkpoint = kept(client, auth, services)
    assert checkpoint.size == services.tree.size()
    assert checkpoint.root == services.tree.root(checkpoint.size)

    again = kept(client, auth, services, tree_size=checkpoint.size)
    assert (again.size, again.root) == (checkpoint.size, checkpoint.root)


def test_the_verifier_key_is_the_published_key_line(
    client: TestClient, auth: Auth, services: Services
) -> None:
    response = get(client, auth, "/v1/audit/verifier-key")
    assert response.headers["content-type"].startswith("text/plain")
    assert response.text == services.verifier_key
    # The key's base64 may itself hold "+": the name and the hash end at the first two.
    name, key_hash, key = response.text.strip().split("+", 2)
    assert name and re.fullmatch(r"[0-9a-f]{8}", key_hash) and key


def test_a_checkpoint_not_kept_at_a_size_is_404(
    client: TestClient, auth: Auth, services: Services
) -> None:
    notarise(services)
    beyond = services.tree.size() + 1000
    response = client.get(f"/v1/audit/checkpoint?tree_size={beyond}", headers=auth("auditor"))
    assert_problem(response, 404, str(beyond))


def test_every_event_of_an_account_is_proven_in_the_checkpointed_tree(
    client: TestClient, auth: Auth, open_account: Opener, services: Services
) -> None:
    account = open_account()
    url = f"/v1/accounts/{account['id']}"
    client.post(url + "/segment", json={"segment": "vip"}, headers=auth("customer_service"))
    visit = {"type": "purchase", "amount": "19.90", "cost": "7.5", "currency": "HKD", "store": "s"}
    client.post(url + "/activities", json=visit, headers=auth("customer_service"))
    notarise(services)
    checkpoint = kept(client, auth, services)

    for position in positions_of(services, account["id"]):
        proof = get(client, auth, "/v1/audit/proofs/inclusion", position=position).json()
        assert proof["tree_size"] == checkpoint.size
        assert proof["root_hash"] == checkpoint.root.hex()
        for value in (proof["leaf_hash"], proof["root_hash"], *proof["inclusion_path"]):
            assert HEX.match(value), value
        event = proof["event"]
        assert (event["position"], event["account_id"]) == (position, account["id"])
        # The event's own hash, recomputed from the event as stored.
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
        leaf = leaf_hash(bytes.fromhex(event["hash"]))
        assert leaf.hex() == proof["leaf_hash"]
        path = [bytes.fromhex(h) for h in proof["inclusion_path"]]
        assert verify_inclusion(leaf, proof["leaf_index"], checkpoint.size, path, checkpoint.root)


def test_the_proven_event_carries_its_data_as_stored_never_decrypted(
    client: TestClient, auth: Auth, open_account: Opener, services: Services
) -> None:
    account = open_account()
    notarise(services)
    opened = positions_of(services, account["id"])[0]
    event = get(client, auth, "/v1/audit/proofs/inclusion", position=opened).json()["event"]
    assert event["type"] == "AccountOpened" and event["version"] == 1
    assert "Ann Lee" not in str(event["data"])
    assert event["data"]["customer"]["name"] != "Ann Lee"


def test_a_proof_against_an_older_tree_size_verifies_against_that_size_root(
    client: TestClient, auth: Auth, open_account: Opener, services: Services
) -> None:
    account = open_account()
    notarise(services)
    older = kept(client, auth, services)
    open_account()
    notarise(services)
    position = positions_of(services, account["id"])[0]
    proof = get(
        client, auth, "/v1/audit/proofs/inclusion", position=position, tree_size=older.size
    ).json()
    path = [bytes.fromhex(h) for h in proof["inclusion_path"]]
    leaf = bytes.fromhex(proof["leaf_hash"])
    assert proof["tree_size"] == older.size
    assert verify_inclusion(leaf, proof["leaf_index"], older.size, path, older.root)


def test_the_ledger_only_grew_between_two_checkpoints(
    client: TestClient, auth: Auth, open_account: Opener, services: Services
) -> None:
    open_account()
    notarise(services)
    first = kept(client, auth, services)
    open_account()
    open_account()
    notarise(services)
    second = kept(client, auth, services)
    assert second.size > first.size

    proof = get(
        client, auth, "/v1/audit/proofs/consistency", first=first.size, second=second.size
    ).json()
    assert (proof["first"], proof["second"]) == (first.size, second.size)
    assert (proof["first_root"], proof["second_root"]) == (first.root.hex(), second.root.hex())
    assert all(HEX.match(h) for h in proof["consistency_path"])
    path = [bytes.fromhex(h) for h in proof["consistency_path"]]
    assert verify_consistency(first.size, second.size, first.root, second.root, path)
    # The same path does not prove a root the tree never had.
    assert not verify_consistency(first.size, second.size, first.root, bytes(32), path)


def test_a_size_above_the_tree_or_a_position_not_in_it_is_404(
    client: TestClient, auth: Auth, open_account: Opener, services: Services
) -> None:
    open_account()
    notarise(services)
    size = services.tree.size()
    for path in (
        f"/v1/audit/proofs/inclusion?position=1&tree_size={size + 1}",
        f"/v1/audit/proofs/inclusion?position={2**62}&tree_size={size}",
        f"/v1/audit/proofs/consistency?first=1&second={size + 1}",
    ):
        assert_problem(client.get(path, headers=auth("auditor")), 404)


def test_a_first_size_above_the_second_is_422(
    client: TestClient, auth: Auth, open_account: Opener, services: Services
) -> None:
    open_account()
    open_account()
    notarise(services)
    response = client.get("/v1/audit/proofs/consistency?first=2&second=1", headers=auth("auditor"))
    assert_problem(response, 422)


@pytest.mark.parametrize(
    "path, name",
    [
        ("/v1/audit/proofs/inclusion?position=abc", "position"),
        ("/v1/audit/proofs/inclusion?position=-1", "position"),
        ("/v1/audit/proofs/inclusion?position=0", "position"),
        ("/v1/audit/proofs/inclusion?position=1.5", "position"),
        ("/v1/audit/proofs/inclusion?position=1%00", "position"),
        (f"/v1/audit/proofs/inclusion?position={10**30}", "position"),
        ("/v1/audit/proofs/inclusion?position=1&tree_size=-5", "tree_size"),
        (f"/v1/audit/proofs/inclusion?position=1&tree_size={2**63}", "tree_size"),
        ("/v1/audit/proofs/inclusion", "position"),
        ("/v1/audit/proofs/consistency?first=1", "second"),
        ("/v1/audit/proofs/consistency?first=x&second=2", "first"),
        ("/v1/audit/proofs/consistency?first=0&second=2", "first"),
        (f"/v1/audit/proofs/consistency?first=1&second={10**20}", "second"),
        ("/v1/audit/checkpoint?tree_size=-1", "tree_size"),
        ("/v1/audit/checkpoint?tree_size=%00", "tree_size"),
        (f"/v1/audit/checkpoint?tree_size={10**40}", "tree_size"),
    ],
)
def test_bad_parameters_are_422_naming_the_parameter(
    client: TestClient, auth: Auth, path: str, name: str
) -> None:
    response = client.get(path, headers=auth("auditor"))
    assert_problem(response, 422, name)
    assert response.json()["type"] == "urn:crmledger:problem:invalid-request"


@pytest.mark.parametrize("path", ROUTES)
def test_auditors_and_admins_may_others_are_forbidden_and_no_token_is_401(
    client: TestClient, auth: Auth, open_account: Opener, services: Services, path: str
) -> None:
    open_account()
    notarise(services)
    for role in ("auditor", "admin"):
        assert client.get(path, headers=auth(role)).status_code == 200, role
    for role in ("customer_service", "marketing", "finance", "management", "integration"):
        assert_problem(client.get(path, headers=auth(role)), 403)
    assert_problem(client.get(path), 401)


def test_the_openapi_lists_the_proof_routes_problems(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for path in ("/v1/audit/checkpoint", "/v1/audit/proofs/inclusion"):
        responses = paths[path]["get"]["responses"]
        assert {"401", "403", "404", "422"} <= set(responses), (path, sorted(responses))
    consistency = paths["/v1/audit/proofs/consistency"]["get"]["responses"]
    assert {"404", "422"} <= set(consistency)
    assert "text/plain" in paths["/v1/audit/checkpoint"]["get"]["responses"]["200"]["content"]
