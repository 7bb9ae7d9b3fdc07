"""The Merkle tree kept in PostgreSQL (infra/merkle_tree.py): appends, roots, proofs, refusals."""

from __future__ import annotations

import hashlib
import itertools
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from domain import merkle
from domain.errors import InvalidCommand, PositionNotFound, TreeSizeNotFound
from infra.event_store import EventLog
from infra.merkle_tree import RAW_TEXT_HASH, STORED_BYTES, LedgerTree
from infra.wiring import Services
from tests.support import EVERY_ACTIVITY, open_plain, own_ledger


@pytest.fixture(scope="module")
def ledger() -> Iterator[Services]:
    """A ledger of its own: 61 events (gaps in no index) and a tree not yet built."""
    with own_ledger() as services:
        for n in range(7):
            account = open_plain(services.ledger, f"Customer {n}")
            for activity in EVERY_ACTIVITY:
                services.ledger.record_activity(
                    account.id, activity, datetime.now(UTC), {"actor": "t"}
                )
        open_plain(services.ledger, "Last")
        open_plain(services.ledger, "Very Last")
        yield services


def event_hashes(services: Services) -> list[tuple[int, bytes]]:
    """(position, leaf) of every event, from the decoded domain events: independent of the tree."""
    recorder = services.ledger.recorder
    notifications = recorder.select_notifications(start=1, limit=10_000)
    return [
        (n.id, bytes.fromhex(services.ledger.mapper.to_domain_event(n).hash)) for n in notifications
    ]


def fresh_tree(services: Services) -> LedgerTree:
    """The ledger's tree, emptied."""
    with services.pool.connection() as conn:
        conn.execute("TRUNCATE merkle_leaves, merkle_nodes")
        conn.execute("UPDATE merkle_head SET tree_size = 0, position = 0")
    return LedgerTree(services.pool, services.settings.database_schema)


def append_in_batches(services: Services, tree: LedgerTree, sizes: Iterator[int]) -> int:
    """Append the whole log through pages of the given sizes; return how many appends ran."""
    log = EventLog(services.ledger)
    appends = 0
    while True:
        with services.pool.connection() as conn:
            rows = log.page(conn, tree.head()[1], next(sizes))
        if not rows:
            return appends
        tree.append(rows)
        appends += 1


def test_the_tree_is_rfc_9162s_over_the_events_hashes_after_odd_batches(
    ledger: Services,
) -> None:
    tree = fresh_tree(ledger)
    expected = [merkle.leaf_hash(leaf) for _, leaf in event_hashes(ledger)]
    assert len(expected) == 7 * (1 + len(EVERY_ACTIVITY)) + 2
    assert tree.size() == 0 and tree.root() == merkle.EMPTY_ROOT

    appends = append_in_batches(ledger, tree, itertools.cycle([1, 3, 7, 5, 11]))

    assert appends > 5
    assert tree.size() == len(expected)
    for size in range(1, len(expected) + 1):
        assert tree.root(size) == merkle.root(expected[:size]), size


def test_a_batch_given_again_adds_nothing_and_a_new_tree_resumes(ledger: Services) -> None:
    tree = fresh_tree(ledger)
    log = EventLog(ledger.ledger)
    with ledger.pool.connection() as conn:
        first, second = log.page(conn, 0, 20), log.page(conn, 0, 33)
    assert tree.append(first).leaves == 20

    again = tree.append(first)  # a notary that died before it knew the commit went through
    resumed = LedgerTree(ledger.pool, ledger.settings.database_schema).append(second)

    assert again.leaves == 0 and again.tree_size == 20
    assert resumed.leaves == 13 and resumed.tree_size == 33
    with ledger.pool.connection() as conn:
        leaves = conn.execute("SELECT count(*), max(leaf_index) FROM merkle_leaves").fetchone()
    assert leaves == (33, 32)
    expected = [merkle.leaf_hash(leaf) for _, leaf in event_hashes(ledger)[:33]]
    assert tree.root() == merkle.root(expected)


def test_inclusion_proofs_verify_for_every_leaf_of_many_sizes(ledger: Services) -> None:
    tree = fresh_tree(ledger)
    append_in_batches(ledger, tree, itertools.repeat(1000))
    events = event_hashes(ledger)
    checked = 0
    for size in (1, 2, 3, 7, 8, 9, 16, 31, 33, len(events)):
        root = merkle.root([merkle.leaf_hash(leaf) for _, leaf in events[:size]])
        for index, (position, leaf) in enumerate(events[:size]):
            proof = tree.inclusion(position, size)
            assert (proof.leaf_index, proof.tree_size, proof.root_hash) == (index, size, root)
            assert proof.leaf_hash == merkle.leaf_hash(leaf)
            assert merkle.verify_inclusion(proof.leaf_hash, index, size, proof.path, root)
            checked += 1
    assert checked > 150
    latest = tree.inclusion(events[0][0])  # the current tree by default
    assert latest.tree_size == len(events)


def test_consistency_proofs_verify_for_many_pairs_of_sizes(ledger: Services) -> None:
    tree = fresh_tree(ledger)
    append_in_batches(ledger, tree, itertools.repeat(1000))
    leaves = [merkle.leaf_hash(leaf) for _, leaf in event_hashes(ledger)]
    n = len(leaves)
    for first in range(0, n + 1):
        for second in {first, first + 1, 2 * first, n, 32, 33}:
            if not first <= second <= n:
                continue
            proof = tree.consistency(first, second)
            assert proof.first_root == merkle.root(leaves[:first])
            assert proof.second_root == merkle.root(leaves[:second])
            assert merkle.verify_consistency(
                first, second, proof.first_root, proof.second_root, proof.path
            ), (first, second)


def test_a_proof_reads_its_nodes_in_one_query(ledger: Services) -> None:
    tree = fresh_tree(ledger)
    append_in_batches(ledger, tree, itertools.repeat(1000))
    queries: list[str] = []
    original = tree._read

    def counting(conn, wanted):  # type: ignore[no-untyped-def]
        queries.append("nodes")
        return original(conn, wanted)

    tree._read = counting  # type: ignore[method-assign]
    tree.inclusion(event_hashes(ledger)[5][0], 40)
    tree.consistency(13, 40)
    assert queries == ["nodes", "nodes"]


def test_what_the_tree_does_not_hold_is_refused(ledger: Services) -> None:
    tree = fresh_tree(ledger)
    events = event_hashes(ledger)
    log = EventLog(ledger.ledger)
    with ledger.pool.connection() as conn:
        tree.append(log.page(conn, 0, 10))
    with pytest.raises(TreeSizeNotFound):
        tree.root(11)
    with pytest.raises(TreeSizeNotFound):
        tree.inclusion(events[0][0], 11)
    with pytest.raises(TreeSizeNotFound):
        tree.consistency(3, 11)
    with pytest.raises(PositionNotFound):
        tree.inclusion(events[10][0])  # stored, not in the tree yet
    with pytest.raises(PositionNotFound):
        tree.inclusion(events[5][0], 5)  # in the tree, not in a tree of 5 leaves
    with pytest.raises(PositionNotFound):
        tree.inclusion(10**9)
    with pytest.raises(InvalidCommand):
        tree.consistency(6, 5)
    with pytest.raises(InvalidCommand):
        tree.consistency(-1, 5)


def test_a_row_whose_hash_cannot_be_read_still_gets_a_leaf() -> None:
    with own_ledger() as services:
        for n in range(4):
            open_plain(services.ledger, f"Customer {n}")
        events = event_hashes(services)
        named = "ab" * 32
        with services.pool.connection() as conn:
            # Not JSON, but naming a hash; and bytes that name none.
            conn.execute(
                "UPDATE ledger_events SET state = %s WHERE notification_id = %s",
                (f'{{"hash": "{named}", broken'.encode(), events[1][0]),
            )
            conn.execute(
                "UPDATE ledger_events SET state = %s WHERE notification_id = %s",
                (b"\xff not json", events[2][0]),
            )
        tree = LedgerTree(services.pool, services.settings.database_schema)
        log = EventLog(services.ledger)
        with services.pool.connection() as conn:
            appended = tree.append(log.page(conn, 0, 100))

        assert appended.leaves == 4
        assert appended.fallbacks == [(events[1][0], RAW_TEXT_HASH), (events[2][0], STORED_BYTES)]
        leaves = [
            events[0][1],
            bytes.fromhex(named),
            hashlib.sha256(b"\xff not json").digest(),
            events[3][1],
        ]
        assert tree.root() == merkle.root([merkle.leaf_hash(leaf) for leaf in leaves])
        with services.pool.connection() as conn:
            kinds = conn.execute(
                "SELECT fallback FROM merkle_leaves ORDER BY leaf_index"
            ).fetchall()
        assert [k for (k,) in kinds] == [None, RAW_TEXT_HASH, STORED_BYTES, None]
