"""Proofs an auditor checks alone: signed checkpoints, inclusion and consistency (/v1/audit).

The tree (infra/merkle_tree.py) and the checkpoints the notary signs
(infra/notary.py) answer; these routes only read them. A proof is checked
with domain/merkle.py's verifiers against a checkpoint's root, so nothing here
needs to be trusted. The contract is in docs/design.md (HTTP API).
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query
from fastapi.responses import PlainTextResponse

from api.auth import Permission, Principal, require
from api.deps import ServicesDep
from api.proof_schemas import ConsistencyProofOut, InclusionProofOut
from domain.errors import NotFound
from infra.proven_events import ProvenEvents
from infra.wiring import Services

router = APIRouter(prefix="/v1/audit", tags=["audit"])

Auditor = Annotated[Principal, require(Permission.AUDIT)]
# Positions and sizes are PostgreSQL bigints: a larger number is refused (422), not looked up.
BIGINT = 2**63 - 1
TEXT = {200: {"content": {"text/plain": {"schema": {"type": "string"}}}}}


def _hex(values: list[bytes]) -> list[str]:
    return [v.hex() for v in values]


def latest_size(services: Services) -> int:
    """The tree size of the latest kept checkpoint; NotFound when none is kept yet."""
    last = services.checkpoints.last()
    if last is None:
        raise NotFound("no checkpoint is kept yet: give tree_size")
    return last.tree_size


@router.get("/checkpoint", response_class=PlainTextResponse, responses=TEXT)
def checkpoint(
    user: Auditor,
    services: ServicesDep,
    tree_size: Annotated[
        int | None, Query(ge=0, le=BIGINT, description="a kept checkpoint of this size")
    ] = None,
) -> PlainTextResponse:
    """The latest signed checkpoint (or a kept one), the note exactly as signed."""
    if tree_size is None:
        note = services.checkpoints.latest()
        if note is None:
            raise NotFound("no checkpoint is kept yet")
    else:
        note = services.checkpoints.at(tree_size)
        if note is None:
            raise NotFound(f"no checkpoint is kept at tree size {tree_size}")
    return PlainTextResponse(note)


@router.get("/verifier-key", response_class=PlainTextResponse, responses=TEXT)
def verifier_key(user: Auditor, services: ServicesDep) -> PlainTextResponse:
    """The key line that verifies the checkpoints' signatures (C2SP signed-note format)."""
    return PlainTextResponse(services.verifier_key)


@router.get("/proofs/inclusion", response_model=InclusionProofOut)
def inclusion(
    user: Auditor,
    services: ServicesDep,
    position: Annotated[int, Query(ge=1, le=BIGINT, description="the event's position")],
    tree_size: Annotated[
        int | None,
        Query(ge=1, le=BIGINT, description="the tree to prove against; the latest checkpoint's"),
    ] = None,
) -> InclusionProofOut:
    """Prove that the event at `position` is a leaf of the tree a checkpoint signs."""
    size = latest_size(services) if tree_size is None else tree_size
    proof = services.tree.inclusion(position, size)
    event = ProvenEvents(services.pool, services.ledger).at(position)
    return InclusionProofOut.model_validate(
        {
            "position": proof.position,
            "leaf_index": proof.leaf_index,
            "tree_size": proof.tree_size,
            "leaf_hash": proof.leaf_hash.hex(),
            "root_hash": proof.root_hash.hex(),
            "inclusion_path": _hex(proof.path),
            "event": event,
        }
    )


@router.get("/proofs/consistency", response_model=ConsistencyProofOut)
def consistency(
    user: Auditor,
    services: ServicesDep,
    first: Annotated[int, Query(ge=1, le=BIGINT, description="the older tree size")],
    second: Annotated[int, Query(ge=1, le=BIGINT, description="the newer tree size")],
) -> ConsistencyProofOut:
    """Prove that the tree of `second` leaves only extends the tree of `first` leaves."""
    proof = services.tree.consistency(first, second)
    return ConsistencyProofOut(
        first=proof.first,
        second=proof.second,
        first_root=proof.first_root.hex(),
        second_root=proof.second_root.hex(),
        consistency_path=_hex(proof.path),
    )
