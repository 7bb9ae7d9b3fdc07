"""`crmledger audit check`: proof bundles and checkpoints checked offline, each failure by name.

The bundles hold a real event stored by the session's ledger, a proof from a
small tree computed with domain/merkle.py, and a checkpoint signed with
infra/signed_note.py; the checks must accept it whole and name every change.
"""

from __future__ import annotations

import copy
import hashlib
import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from click.testing import Result
from typer.testing import CliRunner

from api.app import create_app
from crmledger.cli import app
from domain.integrity import event_hash
from domain.merkle import inclusion_ranges, leaf_hash, root
from infra.proof_bundle import make_bundle
from infra.proven_events import ProvenEvents
from infra.signed_note import (
    peek_checkpoint,
    sign_checkpoint,
    signing_key_from_seed,
    verifier_key,
)
from infra.wiring import Services
from tests.proofs_support import notarise
from tests.support import open_plain

ORIGIN = "crmledger/cli-test"
KEY = signing_key_from_seed(hashlib.sha256(b"cli proofs").digest())
VKEY = verifier_key(ORIGIN, KEY.public_key())
OTHER_KEY = signing_key_from_seed(hashlib.sha256(b"someone else").digest())
NOWHERE = "http://127.0.0.1:9"  # nothing listens: a check that needs no service asks none


def stored_event(services: Services, position: int) -> dict[str, Any]:
    """The event at `position` as the proof routes give it (infra/proven_events.py)."""
    found = ProvenEvents(services.pool, services.ledger).at(position)
    assert found is not None and found["unreadable"] is False
    return found


@pytest.fixture(scope="module")
def event(services: Services) -> dict[str, Any]:
    account = open_plain(services.ledger, "Ada Proof")
    position = services.ledger.recorder.max_notification_id()
    found = stored_event(services, position)
    assert found["account_id"] == str(account.id)
    return found


def tree_with(event: dict[str, Any], index: int = 5, size: int = 11) -> tuple[list[bytes], int]:
    """Leaf hashes of a small tree holding the event's hash at `index`."""
    leaves = [leaf_hash(hashlib.sha256(b"other %d" % i).digest()) for i in range(size)]
    leaves[index] = leaf_hash(bytes.fromhex(event["hash"]))
    return leaves, index


def bundle_of(event: dict[str, Any], key: Any = KEY) -> dict[str, Any]:
    event = copy.deepcopy(event)  # each test changes its own copy
    leaves, index = tree_with(event)
    path = [root(leaves[s:e]) for s, e in inclusion_ranges(index, len(leaves))]
    proof = {
        "position": event["position"],
        "leaf_index": index,
        "tree_size": len(leaves),
        "leaf_hash": leaves[index].hex(),
        "root_hash": root(leaves).hex(),
        "inclusion_path": [p.hex() for p in path],
        "event": event,
    }
    return make_bundle(proof, sign_checkpoint(ORIGIN, len(leaves), root(leaves), key))


def check(tmp_path: Path, bundle: object, *extra: str, key: str = VKEY) -> Result:
    file = tmp_path / "bundle.json"
    file.write_text(bundle if isinstance(bundle, str) else json.dumps(bundle))
    args = ["audit", "check", str(file), "--verifier-key", key, "--url", NOWHERE, *extra]
    return CliRunner().invoke(app, args)


def test_a_whole_bundle_of_a_stored_event_checks(tmp_path: Path, event: dict[str, Any]) -> None:
    result = check(tmp_path, bundle_of(event))
    assert result.exit_code == 0, result.output
    assert "FAILED" not in result.output
    assert "ok: event hash matches its fields" in result.output
    assert "ok: inclusion proof reaches the checkpoint's root" in result.output
    assert "ok: checkpoint signature verifies (crmledger/cli-test, 11 leaves)" in result.output


def test_the_event_hash_is_the_ledgers_own(event: dict[str, Any]) -> None:
    # The check recomputes what the ledger stamped; this holds the two together.
    recomputed = event_hash(
        event["prev_hash"],
        event["account_id"],  # type: ignore[arg-type]
        event["version"],
        event["type"],
        event["occurred_at"],  # type: ignore[arg-type]
        event["metadata"],
        event["data"],
    )
    assert recomputed == event["hash"]


@pytest.mark.parametrize(
    ("field", "change"),
    [
        ("data", lambda d: {**d, "segment": "platinum"}),
        ("metadata", lambda m: {**m, "actor": "mallory"}),
        ("occurred_at", lambda t: t.replace("20", "19", 1)),
        ("version", lambda v: v + 1),
        ("type", lambda t: "AccountClosed"),
        ("prev_hash", lambda h: "1" * 64),
    ],
)
def test_an_event_changed_after_it_was_proven_fails_its_own_hash(
    tmp_path: Path, event: dict[str, Any], field: str, change: Any
) -> None:
    bundle = bundle_of(event)
    bundle["event"][field] = change(bundle["event"][field])
    result = check(tmp_path, bundle)
    assert result.exit_code == 1, result.output
    assert "FAILED: event hash does not match its fields" in result.output
    assert "ok: checkpoint signature verifies" in result.output


def test_an_event_rewritten_with_a_matching_hash_fails_inclusion(
    tmp_path: Path, event: dict[str, Any]
) -> None:
    bundle = bundle_of(event)
    forged = bundle["event"]
    forged["metadata"] = {**forged["metadata"], "actor": "mallory"}
    forged["hash"] = event_hash(
        forged["prev_hash"],
        forged["account_id"],
        forged["version"],
        forged["type"],
        forged["occurred_at"],
        forged["metadata"],
        forged["data"],
    )
    result = check(tmp_path, bundle)
    assert result.exit_code == 1, result.output
    assert "ok: event hash matches its fields" in result.output
    assert "FAILED: the proof's leaf hash is not the event's leaf" in result.output
    assert "FAILED: inclusion proof does not reach the checkpoint's root" in result.output


@pytest.mark.parametrize("at", [0, 1, 2, 3])
def test_a_flipped_bit_in_the_path_fails_inclusion(
    tmp_path: Path, event: dict[str, Any], at: int
) -> None:
    bundle = bundle_of(event)
    path = bundle["proof"]["inclusion_path"]
    path[at] = f"{int(path[at][0], 16) ^ 1:x}" + path[at][1:]
    result = check(tmp_path, bundle)
    assert result.exit_code == 1, result.output
    assert "FAILED: inclusion proof does not reach the checkpoint's root" in result.output


@pytest.mark.parametrize(
    ("where", "change"),
    [
        ("leaf_index", lambda i: i + 1),
        ("inclusion_path", lambda p: p[:-1]),
        ("inclusion_path", lambda p: [*p, p[0]]),
        ("inclusion_path", lambda p: "not a list"),
    ],
)
def test_a_changed_proof_fails_inclusion(
    tmp_path: Path, event: dict[str, Any], where: str, change: Any
) -> None:
    bundle = bundle_of(event)
    bundle["proof"][where] = change(bundle["proof"][where])
    result = check(tmp_path, bundle)
    assert result.exit_code == 1, result.output
    assert "FAILED: inclusion proof does not reach the checkpoint's root" in result.output


def test_a_checkpoint_by_another_key_fails_its_signature(
    tmp_path: Path, event: dict[str, Any]
) -> None:
    result = check(tmp_path, bundle_of(event, OTHER_KEY))
    assert result.exit_code == 1, result.output
    assert "FAILED: checkpoint signature does not verify: the note has no signature" in (
        result.output
    )


def test_a_checkpoint_whose_root_was_changed_fails_its_signature_and_the_proof(
    tmp_path: Path, event: dict[str, Any]
) -> None:
    bundle = bundle_of(event)
    other = bundle_of({**event, "hash": "ab" * 32})
    signature = bundle["checkpoint"].split("\n\n")[1]
    bundle["checkpoint"] = other["checkpoint"].split("\n\n")[0] + "\n\n" + signature
    result = check(tmp_path, bundle)
    assert result.exit_code == 1, result.output
    assert "FAILED: checkpoint signature does not verify: invalid signature" in result.output
    assert "FAILED: inclusion proof does not reach the checkpoint's root" in result.output


def test_an_unreadable_or_missing_event_cannot_be_checked(
    tmp_path: Path, event: dict[str, Any]
) -> None:
    bundle = bundle_of(event)
    place = {k: event[k] for k in ("position", "account_id", "version", "type", "hash")}
    bundle["event"] = {**place, "unreadable": True, "reason": "its bytes"}
    result = check(tmp_path, bundle)
    assert result.exit_code == 1
    assert "FAILED: event cannot be checked: it cannot be read back: its bytes" in result.output
    bundle["event"] = None
    result = check(tmp_path, bundle)
    assert result.exit_code == 1
    assert "FAILED: event cannot be checked: the bundle holds none" in result.output


def said(result: Result) -> str:
    """The output on one line: the error console wraps long lines."""
    return " ".join(result.output.split())


def test_usage_errors_exit_2(tmp_path: Path, event: dict[str, Any]) -> None:
    bundle = bundle_of(event)
    bad_key = check(tmp_path, bundle, key="crmledger/cli-test+00000000+AAAA")
    assert bad_key.exit_code == 2 and "--verifier-key is not a verifier key" in said(bad_key)
    not_json = check(tmp_path, "{not json")
    assert not_json.exit_code == 2 and "is not a proof bundle: not JSON" in said(not_json)
    no_parts = check(tmp_path, {"event": {}})
    assert no_parts.exit_code == 2 and "is not a proof bundle" in said(no_parts)
    runner = CliRunner()
    missing = runner.invoke(app, ["audit", "check", str(tmp_path / "x"), "--verifier-key", VKEY])
    assert missing.exit_code == 2
    neither = runner.invoke(app, ["audit", "check", "--verifier-key", VKEY])
    assert neither.exit_code == 2 and "give a bundle FILE, or --consistency" in said(neither)
    file = tmp_path / "bundle.json"
    both = runner.invoke(
        app,
        [
            "audit",
            "check",
            str(file),
            "--consistency",
            str(file),
            str(file),
            "--verifier-key",
            VKEY,
        ],
    )
    assert both.exit_code == 2 and "one of them" in said(both)


def kept(tmp_path: Path, name: str, size: int, key: Any = KEY) -> Path:
    """A checkpoint file of a tree of `size` leaves (leaf i is SHA-256 of i)."""
    leaves = [leaf_hash(hashlib.sha256(b"%d" % i).digest()) for i in range(size)]
    file = tmp_path / name
    file.write_text(sign_checkpoint(ORIGIN, size, root(leaves), key))
    return file


def consistency(old: Path, new: Path, key: str = VKEY) -> Result:
    args = ["audit", "check", "--consistency", str(old), str(new), "--verifier-key", key]
    return CliRunner().invoke(app, [*args, "--url", NOWHERE])


def test_a_checkpoint_is_consistent_with_itself_without_asking_the_service(
    tmp_path: Path,
) -> None:
    same = kept(tmp_path, "a", 7)
    result = consistency(same, same)
    assert result.exit_code == 0, result.output
    assert "ok: the tree of 7 leaves extends the tree of 7" in result.output


def test_checkpoints_of_equal_size_and_different_roots_are_inconsistent(tmp_path: Path) -> None:
    old = kept(tmp_path, "old", 7)
    other = [leaf_hash(b"rewritten %d" % i) for i in range(7)]
    new = tmp_path / "new"
    new.write_text(sign_checkpoint(ORIGIN, 7, root(other), KEY))
    result = consistency(old, new)
    assert result.exit_code == 1, result.output
    assert "FAILED: consistency proof does not show the new checkpoint extends" in result.output


def test_an_old_checkpoint_larger_than_the_new_one_fails(tmp_path: Path) -> None:
    result = consistency(kept(tmp_path, "old", 9), kept(tmp_path, "new", 4))
    assert result.exit_code == 1, result.output
    assert "FAILED: the old checkpoint (9) is the larger tree" in result.output


def test_a_checkpoint_signed_by_another_key_fails_consistency(tmp_path: Path) -> None:
    result = consistency(kept(tmp_path, "old", 3, OTHER_KEY), kept(tmp_path, "new", 3))
    assert result.exit_code == 1, result.output
    assert "FAILED: old checkpoint signature does not verify" in result.output
    assert "ok: new checkpoint signature verifies" in result.output


def test_consistency_that_needs_an_unreachable_service_exits_2(tmp_path: Path) -> None:
    result = consistency(kept(tmp_path, "old", 3), kept(tmp_path, "new", 8))
    assert result.exit_code == 2, result.output
    assert "cannot ask http://127.0.0.1:9" in said(result)


# ---- end to end: the commands against the real API served over HTTP ---------------------


@pytest.fixture(scope="module")
def served(services: Services) -> Iterator[str]:
    """A real uvicorn over the session's services, in a thread; its base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    running = uvicorn.Server(uvicorn.Config(create_app(services), log_config=None))
    thread = threading.Thread(target=running.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not running.started:
        assert thread.is_alive(), "uvicorn did not start"
        time.sleep(0.01)
    host, port = sock.getsockname()
    yield f"http://{host}:{port}"
    running.should_exit = True
    thread.join(10)
    sock.close()


def test_an_auditor_proves_an_event_over_http_and_checks_it_offline(
    services: Services, served: str, token: Callable[..., str], tmp_path: Path
) -> None:
    runner = CliRunner()
    over_http = ["--url", served, "--token", token("auditor")]
    first = open_plain(services.ledger, "Eve Auditor")
    position = services.ledger.recorder.max_notification_id()
    notarise(services)
    old = tmp_path / "old.checkpoint"
    old.write_text(httpx.get(f"{served}/v1/audit/checkpoint", headers=bearer(token)).text)

    bundle = tmp_path / "bundle.json"
    made = runner.invoke(
        app, ["audit", "proof", "--position", str(position), "--out", str(bundle), *over_http]
    )
    assert made.exit_code == 0, made.output
    assert json.loads(bundle.read_text())["event"]["account_id"] == str(first.id)
    checked = runner.invoke(
        app, ["audit", "check", str(bundle), "--verifier-key", services.verifier_key]
    )
    assert checked.exit_code == 0, checked.output
    assert "FAILED" not in checked.output

    open_plain(services.ledger, "Eve Later")
    notarise(services)
    new = tmp_path / "new.checkpoint"
    new.write_text(httpx.get(f"{served}/v1/audit/checkpoint", headers=bearer(token)).text)
    assert peek_checkpoint(new.read_text()).size > peek_checkpoint(old.read_text()).size
    args = ["audit", "check", "--consistency", str(old), str(new)]
    grown = runner.invoke(app, [*args, "--verifier-key", services.verifier_key, *over_http])
    assert grown.exit_code == 0, grown.output
    assert "ok: the tree of" in grown.output and "FAILED" not in grown.output

    # The old checkpoint is kept: a proof can still be asked against it.
    old_size = old.read_text().split("\n")[1]
    proof_args = ["audit", "proof", "--position", str(position), "--out", str(bundle)]
    at_old = runner.invoke(app, [*proof_args, "--tree-size", old_size, *over_http])
    assert at_old.exit_code == 0, at_old.output
    again = runner.invoke(
        app, ["audit", "check", str(bundle), "--verifier-key", services.verifier_key]
    )
    assert again.exit_code == 0, again.output


def test_audit_proof_of_a_position_not_in_the_tree_exits_2(
    served: str, token: Callable[..., str], tmp_path: Path, services: Services
) -> None:
    notarise(services)
    out = tmp_path / "b.json"
    args = ["audit", "proof", "--position", str(10**12), "--out", str(out)]
    result = CliRunner().invoke(app, [*args, "--url", served, "--token", token("auditor")])
    assert result.exit_code == 2, result.output
    assert "/v1/audit/proofs/inclusion answered 404" in said(result)
    assert not out.exists()
    refused = CliRunner().invoke(app, [*args, "--url", served])  # no token
    assert refused.exit_code == 2 and "answered 401" in said(refused)


def bearer(token: Callable[..., str]) -> dict[str, str]:
    return {"Authorization": f"Bearer {token('auditor')}"}
