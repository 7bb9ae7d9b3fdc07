"""Response bodies of the proof routes (/v1/audit/proofs): hashes as lowercase hex."""

from __future__ import annotations

from typing import Any, Literal
from uuid import UUID

from pydantic import BaseModel, Field


class StoredEventOut(BaseModel):
    """The event as stored: every field its own hash covers, personal data as ciphertext."""

    position: int
    account_id: UUID
    version: int
    type: str
    unreadable: Literal[False] = False
    occurred_at: str = Field(description="as the stored text writes it (what the hash covers)")
    metadata: dict[str, Any]
    data: dict[str, Any] = Field(description="as stored, ciphertext included, never decrypted")
    prev_hash: str
    hash: str


class UnreadableStoredEventOut(BaseModel):
    """A stored event that cannot be read back: its place and the hash its raw text names."""

    position: int
    account_id: UUID
    version: int
    type: str
    unreadable: Literal[True] = True
    hash: str | None = Field(description="the hash named in its stored text, when one is found")
    reason: str


class InclusionProofOut(BaseModel):
    """An RFC 9162 inclusion proof of one event's leaf in the tree of `tree_size` leaves."""

    position: int = Field(description="the event's position in the ledger")
    leaf_index: int = Field(description="its leaf: the event's ordinal in position order, from 0")
    tree_size: int
    leaf_hash: str = Field(description="SHA-256(0x00 || the event's hash as 32 bytes)")
    root_hash: str = Field(description="the tree's root at tree_size, as its checkpoint signs it")
    inclusion_path: list[str]
    event: StoredEventOut | UnreadableStoredEventOut | None = Field(
        description="the event as stored; null when its row is no longer stored"
    )


class ConsistencyProofOut(BaseModel):
    """An RFC 9162 consistency proof: the tree of `second` leaves extends the one of `first`."""

    first: int
    second: int
    first_root: str
    second_root: str
    consistency_path: list[str]
