"""The auditor's proof bundle, and the checks that need nothing but it and the verifier key.

A bundle is one JSON object: the event as stored, its inclusion proof and the
signed checkpoint the proof reaches. Its checks trust nothing the service
said: the event's hash is recomputed from its fields (domain/integrity.py, as
`verify` does), the leaf from that hash, the root from the leaf and the path
(domain/merkle.py), and the root is taken from the checkpoint only once its
signature holds (infra/signed_note.py). The format is in docs/design.md.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from uuid import UUID

from domain.integrity import event_hash
from domain.merkle import leaf_hash, verify_consistency, verify_inclusion
from infra.signed_note import NoteError, open_checkpoint, parse_verifier_key, peek_checkpoint

BUNDLE_KEYS = ("event", "proof", "checkpoint")


@dataclass(frozen=True)
class Finding:
    """One check of a bundle or a pair of checkpoints: whether it holds, and what it says."""

    ok: bool
    message: str


class NotABundle(ValueError):
    """The text is not a proof bundle at all (not JSON, or not its three parts)."""


def make_bundle(inclusion: Mapping[str, Any], checkpoint_note: str) -> dict[str, Any]:
    """The bundle of an inclusion proof answer (which carries the event) and its checkpoint."""
    proof = {k: v for k, v in inclusion.items() if k != "event"}
    return {"event": inclusion.get("event"), "proof": proof, "checkpoint": checkpoint_note}


def read_bundle(text: str) -> dict[str, Any]:
    """A bundle from its file's text; NotABundle when it is not one."""
    try:
        value = json.loads(text)
    except ValueError as e:
        raise NotABundle(f"not JSON ({e})") from None
    if not isinstance(value, dict) or any(k not in value for k in BUNDLE_KEYS):
        raise NotABundle(f"a proof bundle is a JSON object with {', '.join(BUNDLE_KEYS)}")
    return value


def check_bundle(bundle: Mapping[str, Any], verifier_key_line: str) -> list[Finding]:
    """Every check of a bundle, each found to hold or not; the bundle proves only if all hold.

    A malformed verifier key raises BadVerifierKey: that is the caller's input, not evidence.
    """
    parse_verifier_key(verifier_key_line)
    event, proof, note = bundle["event"], bundle["proof"], bundle["checkpoint"]
    findings = [_signature(note, verifier_key_line)]
    if not isinstance(event, dict):
        return [*findings, Finding(False, "event cannot be checked: the bundle holds none")]
    if event.get("unreadable"):
        why = f"it cannot be read back: {event.get('reason')}"
        return [*findings, Finding(False, f"event cannot be checked: {why}")]
    findings.append(_event_hash(event))
    if not isinstance(proof, dict):
        return [*findings, Finding(False, "inclusion proof is malformed: not an object")]
    findings.append(_leaf(event, proof))
    findings.append(_inclusion(event, proof, note))
    return findings


def check_consistency(
    old_note: str, new_note: str, proof: Mapping[str, Any] | None, verifier_key_line: str
) -> list[Finding]:
    """Whether the tree the new checkpoint signs only extends the one the old checkpoint signs.

    `proof` is the service's consistency proof between the two sizes; None when
    none was asked for (equal sizes, or an empty old tree, need none).
    """
    parse_verifier_key(verifier_key_line)
    findings, opened = [], []
    for which, note in (("old", old_note), ("new", new_note)):
        try:
            opened.append(open_checkpoint(note, verifier_key_line))
            findings.append(Finding(True, f"{which} checkpoint signature verifies"))
        except NoteError as e:
            findings.append(Finding(False, f"{which} checkpoint signature does not verify: {e}"))
    if len(opened) < 2:
        return findings
    old, new = opened
    if old.size > new.size:
        return [*findings, Finding(False, f"the old checkpoint ({old.size}) is the larger tree")]
    path: list[bytes] = []
    if proof is not None:
        try:
            path = _hashes(proof["consistency_path"])
            roots = (bytes.fromhex(proof["first_root"]), bytes.fromhex(proof["second_root"]))
            sizes = (proof["first"], proof["second"])
        except (KeyError, TypeError, ValueError) as e:
            return [*findings, Finding(False, f"consistency proof is malformed: {e}")]
        if sizes != (old.size, new.size):
            return [*findings, Finding(False, f"consistency proof is for sizes {sizes}")]
        if roots[0] != old.root:
            findings.append(Finding(False, "the tree's root at the old size is not the old root"))
        if roots[1] != new.root:
            findings.append(Finding(False, "the tree's root at the new size is not the new root"))
    if verify_consistency(old.size, new.size, old.root, new.root, path):
        findings.append(
            Finding(True, f"the tree of {new.size} leaves extends the tree of {old.size}")
        )
    else:
        findings.append(
            Finding(False, "consistency proof does not show the new checkpoint extends the old one")
        )
    return findings


def _signature(note: object, verifier_key_line: str) -> Finding:
    if not isinstance(note, str):
        return Finding(False, "checkpoint signature does not verify: the checkpoint is not text")
    try:
        checkpoint = open_checkpoint(note, verifier_key_line)
    except NoteError as e:
        return Finding(False, f"checkpoint signature does not verify: {e}")
    return Finding(
        True, f"checkpoint signature verifies ({checkpoint.origin}, {checkpoint.size} leaves)"
    )


def _event_hash(event: Mapping[str, Any]) -> Finding:
    try:
        expected = event_hash(
            event["prev_hash"],
            UUID(event["account_id"]),
            event["version"],
            event["type"],
            event["occurred_at"],  # the stored text, which is what the hash covers
            event["metadata"],
            event["data"],
        )
    except (KeyError, TypeError, ValueError, AttributeError) as e:
        return Finding(False, f"event hash does not match its fields: a field is missing ({e})")
    where = f"position {event.get('position')}, account {event['account_id']} v{event['version']}"
    if expected != event.get("hash"):
        return Finding(False, f"event hash does not match its fields ({where})")
    return Finding(True, f"event hash matches its fields ({where})")


def _leaf(event: Mapping[str, Any], proof: Mapping[str, Any]) -> Finding:
    if proof.get("position") != event.get("position"):
        return Finding(False, "the proof is not for the event's position")
    try:
        leaf = leaf_hash(bytes.fromhex(event["hash"]))
    except (TypeError, ValueError):
        return Finding(False, "the event's hash is not hex")
    if proof.get("leaf_hash") != leaf.hex():
        return Finding(False, "the proof's leaf hash is not the event's leaf")
    return Finding(True, f"the event is leaf {proof.get('leaf_index')}")


def _inclusion(event: Mapping[str, Any], proof: Mapping[str, Any], note: object) -> Finding:
    # The root and size come from the checkpoint: the proof's own copies are only claims.
    try:
        if not isinstance(note, str):
            raise TypeError("the checkpoint is not text")
        checkpoint = peek_checkpoint(note)
        path = _hashes(proof["inclusion_path"])
        leaf = leaf_hash(bytes.fromhex(event["hash"]))
        index = proof["leaf_index"]
    except (KeyError, TypeError, ValueError) as e:
        return Finding(False, f"inclusion proof does not reach the checkpoint's root: {e}")
    if not verify_inclusion(leaf, index, checkpoint.size, path, checkpoint.root):
        return Finding(False, "inclusion proof does not reach the checkpoint's root")
    return Finding(True, f"inclusion proof reaches the checkpoint's root ({len(path)} hashes)")


def _hashes(values: object) -> list[bytes]:
    if not isinstance(values, list) or not all(isinstance(v, str) for v in values):
        raise TypeError("a path is a list of hex hashes")
    return [bytes.fromhex(v) for v in values]
