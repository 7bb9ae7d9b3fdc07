"""The ledger's RFC 9162 Merkle tree, kept in PostgreSQL beside the event store.

An auditor who kept a signed checkpoint checks a proof of a few hundred bytes
instead of the whole ledger; so a proof must cost O(log n) reads, never a
scan. The tree is stored as its leaves (`merkle_leaves`: leaf index, ledger
position, leaf hash) and every perfect subtree of level 1 and more
(`merkle_nodes`); any node of any past tree size is a fold of at most log n
of them (domain/merkle.py has the algorithms). The notary (infra/notary.py)
appends new events in batches: leaves, the nodes they complete and the head
(`merkle_head`: size and last position) in one transaction, so a restart
resumes where the last commit stood and never adds a leaf twice.

A leaf is the 32 raw bytes of the event's own `hash`. A row whose state cannot
be read must not stop the tree: its leaf is the hash its raw text names, else
SHA-256 of the stored bytes (both reproducible by an auditor from the row),
and `fallback` says which (docs/design.md, Integrity).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from psycopg import Connection
from psycopg_pool import ConnectionPool

from domain import merkle
from domain.errors import InvalidCommand, PositionNotFound, TreeSizeNotFound
from domain.merkle import Node
from infra.event_store import LogRow, stored_hash_of

# How a leaf was made when the event's own hash could not be read.
RAW_TEXT_HASH = "raw_text_hash"  # the hash the row's raw text names (stored_hash_of)
STORED_BYTES = "stored_bytes_sha256"  # SHA-256 of the stored state's bytes


@dataclass(frozen=True)
class InclusionProof:
    """The event at `position` is leaf `leaf_index` of the tree of `tree_size` leaves."""

    position: int
    leaf_index: int
    tree_size: int
    leaf_hash: bytes
    root_hash: bytes
    path: list[bytes]


@dataclass(frozen=True)
class ConsistencyProof:
    """The tree of `second` leaves extends the tree of `first` leaves."""

    first: int
    second: int
    first_root: bytes
    second_root: bytes
    path: list[bytes]


@dataclass(frozen=True)
class Appended:
    """What one append did: leaves added, the new size, and the leaves made by a fallback."""

    leaves: int
    tree_size: int
    position: int
    fallbacks: list[tuple[int, str]]  # (ledger position, how its leaf was made)


def event_leaf(state: bytes) -> tuple[bytes, str | None]:
    """The leaf of a stored event: its own `hash` decoded, and None; or a fallback and its name."""
    try:
        value = orjson.loads(state)
        own = value.get("hash") if isinstance(value, dict) else None
        if isinstance(own, str) and len(own) == 64:
            return bytes.fromhex(own), None
    except ValueError:  # orjson's JSONDecodeError, or hex that is not hex
        pass
    named = stored_hash_of(state)
    if named is not None:
        return bytes.fromhex(named), RAW_TEXT_HASH
    return hashlib.sha256(state).digest(), STORED_BYTES


def frontier(size: int) -> list[Node]:
    """The perfect subtrees the tree of `size` leaves is made of, largest (leftmost) first."""
    return merkle.perfect_subtrees(0, size) if size else []


def root_of(size: int, nodes: dict[Node, bytes]) -> bytes:
    """The root of the tree of `size` leaves from its frontier's hashes."""
    return merkle.range_hash(0, size, nodes) if size else merkle.EMPTY_ROOT


class LedgerTree:
    """The Merkle tree over every event in ledger order, read and appended in PostgreSQL."""

    def __init__(self, pool: ConnectionPool, schema: str) -> None:
        self._pool = pool
        s = schema
        self._head = f"SELECT tree_size, position FROM {s}.merkle_head"
        self._lock_head = self._head + " FOR UPDATE"
        self._set_head = (
            f"UPDATE {s}.merkle_head SET tree_size = %s, position = %s, updated_at = now()"
        )
        self._leaf_at = f"SELECT leaf_index, leaf_hash FROM {s}.merkle_leaves WHERE position = %s"
        self._nodes = (
            f"SELECT 0, leaf_index, leaf_hash FROM {s}.merkle_leaves"
            " WHERE leaf_index = ANY(%(leaves)s)"
            f" UNION ALL SELECT n.level, n.index, n.hash FROM {s}.merkle_nodes n"
            " JOIN unnest(%(levels)s::smallint[], %(indexes)s::bigint[]) AS k(level, index)"
            " ON n.level = k.level AND n.index = k.index"
        )
        self._copy_leaves = (
            f"COPY {s}.merkle_leaves (leaf_index, position, leaf_hash, fallback) FROM STDIN"
        )
        self._copy_nodes = f"COPY {s}.merkle_nodes (level, index, hash) FROM STDIN"

    # ---- reading ------------------------------------------------------------------

    def size(self) -> int:
        """How many events the tree holds."""
        return self.head()[0]

    def head(self) -> tuple[int, int]:
        """The tree's size and the last ledger position in it (0 before the first)."""
        with self._pool.connection() as conn:
            row = conn.execute(self._head).fetchone()
        return (int(row[0]), int(row[1])) if row else (0, 0)

    def root(self, size: int | None = None) -> bytes:
        """The root hash of the tree of `size` leaves (the current tree by default)."""
        with self._pool.connection() as conn:
            size = self._checked_size(conn, size)
            nodes = self._read(conn, frontier(size))
        return root_of(size, nodes)

    def inclusion(self, position: int, size: int | None = None) -> InclusionProof:
        """The proof that the event at ledger `position` is in the tree of `size` leaves."""
        with self._pool.connection() as conn:
            size = self._checked_size(conn, size)
            row = conn.execute(self._leaf_at, (position,)).fetchone()
            if row is None or row[0] >= size:
                where = "the tree" if row is None else f"the tree of {size} leaves"
                raise PositionNotFound(f"no event at position {position} is in {where}")
            index, leaf_hash = int(row[0]), bytes(row[1])
            ranges = merkle.inclusion_ranges(index, size)
            nodes = self._read(conn, [*merkle.nodes_needed(ranges), *frontier(size)])
        return InclusionProof(
            position=position,
            leaf_index=index,
            tree_size=size,
            leaf_hash=leaf_hash,
            root_hash=root_of(size, nodes),
            path=merkle.assemble(ranges, nodes),
        )

    def consistency(self, first: int, second: int) -> ConsistencyProof:
        """The proof that the tree of `second` leaves extends the tree of `first` leaves."""
        if first < 0 or second < 0:
            raise InvalidCommand("tree sizes are 0 or more")
        if first > second:
            raise InvalidCommand(f"the first tree size ({first}) is above the second ({second})")
        with self._pool.connection() as conn:
            self._checked_size(conn, second)
            ranges = merkle.consistency_ranges(first, second)
            wanted = [*merkle.nodes_needed(ranges), *frontier(first), *frontier(second)]
            nodes = self._read(conn, wanted)
        return ConsistencyProof(
            first=first,
            second=second,
            first_root=root_of(first, nodes),
            second_root=root_of(second, nodes),
            path=merkle.assemble(ranges, nodes),
        )

    def _checked_size(self, conn: Connection[Any], size: int | None) -> int:
        row = conn.execute(self._head).fetchone()
        current = int(row[0]) if row else 0
        if size is None:
            return current
        if size < 0 or size > current:
            raise TreeSizeNotFound(f"the tree has {current} leaves, not {size}")
        return size

    def _read(self, conn: Connection[Any], wanted: Iterable[Node]) -> dict[Node, bytes]:
        """These nodes (level 0: leaves), in one query."""
        unique = set(wanted)
        leaves = [index for level, index in unique if level == 0]
        inner = [(level, index) for level, index in unique if level > 0]
        args = {
            "leaves": leaves,
            "levels": [level for level, _ in inner],
            "indexes": [index for _, index in inner],
        }
        rows = conn.execute(self._nodes, args, prepare=True).fetchall()
        found = {(int(level), int(index)): bytes(h) for level, index, h in rows}
        if len(found) != len(unique):
            missing = sorted(unique - found.keys())[:3]
            raise RuntimeError(f"the Merkle tree is missing nodes {missing}")
        return found

    # ---- appending ------------------------------------------------------------------

    def append(self, rows: Sequence[LogRow]) -> Appended:
        """Add the events of `rows` (in position order) after the tree's last position.

        Leaves, every perfect node they complete and the new head commit in one
        transaction; rows at or before the head's position are skipped, so a
        batch given twice (a restart) adds nothing the second time.
        """
        with self._pool.connection() as conn, conn.transaction():
            row = conn.execute(self._lock_head).fetchone()
            size, last = (int(row[0]), int(row[1])) if row else (0, 0)
            fresh = [r for r in rows if r[0] > last]
            if not fresh:
                return Appended(0, size, last, [])
            stack = self._read(conn, frontier(size))
            # The frontier by level: a binary counter whose carries are the new nodes.
            by_level = {level: stack[(level, index)] for level, index in frontier(size)}
            leaves: list[tuple[int, int, bytes, str | None]] = []
            nodes: list[tuple[int, int, bytes]] = []
            fallbacks: list[tuple[int, str]] = []
            node_hash, leaf_hash = merkle.node_hash, merkle.leaf_hash
            for i, (position, _, _, _, state) in enumerate(fresh):
                leaf, fallback = event_leaf(bytes(state))
                if fallback is not None:
                    fallbacks.append((position, fallback))
                index = size + i
                h = leaf_hash(leaf)
                leaves.append((index, position, h, fallback))
                level, at = 0, index
                while at & 1:
                    h = node_hash(by_level.pop(level), h)
                    level, at = level + 1, at >> 1
                    nodes.append((level, at, h))
                by_level[level] = h
            with conn.cursor() as cur:
                with cur.copy(self._copy_leaves) as copy:
                    for item in leaves:
                        copy.write_row(item)
                if nodes:
                    with cur.copy(self._copy_nodes) as copy:
                        for item in nodes:
                            copy.write_row(item)
            new_size, new_last = size + len(fresh), fresh[-1][0]
            conn.execute(self._set_head, (new_size, new_last))
        return Appended(len(fresh), new_size, new_last, fallbacks)
