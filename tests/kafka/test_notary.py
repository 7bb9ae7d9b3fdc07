"""The notary (infra/notary.py): follows the ledger into the tree, signs, publishes checkpoints."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import orjson
import pytest

from domain import merkle
from infra.broker import kafka_bootstrap, stop_embedded_broker
from infra.checkpoint_publisher import CHECKPOINT_TYPE, start_publisher
from infra.event_store import EventLog
from infra.notary import Notary, start_notary
from infra.signed_note import open_checkpoint
from infra.topics import CHECKPOINTS
from infra.wiring import Services
from infra.worker import Worker
from tests.kafka.conftest import Stack, open_account, read_topic, wait_until


def stored_leaves(services: Services) -> list[tuple[int, bytes]]:
    """(position, leaf hash) of every stored event, from the decoded events."""
    ledger = services.ledger
    return [
        (n.id, merkle.leaf_hash(bytes.fromhex(ledger.mapper.to_domain_event(n).hash)))
        for n in ledger.recorder.select_notifications(start=1, limit=100_000)
    ]


def kept_size(services: Services) -> int:
    """The size of the largest kept checkpoint; -1 before the first."""
    last = services.checkpoints.last()
    return last.tree_size if last else -1


def last_position(services: Services) -> int:
    return int(services.ledger.recorder.max_notification_id() or 0)


@pytest.fixture
def workers() -> Iterator[list[Worker]]:
    """Workers a test starts, stopped at its end."""
    started: list[Worker] = []
    yield started
    for worker in started:
        worker.stop()


def test_the_notary_keeps_the_tree_up_with_the_ledger_under_load(
    stack: Stack, workers: list[Worker]
) -> None:
    services = stack.services
    workers.extend(start_notary(services, stack.bootstrap, checkpoint_s=0.2))
    stop = threading.Event()

    def write() -> None:
        while not stop.is_set():
            open_account(services)

    writers = [threading.Thread(target=write) for _ in range(2)]
    for w in writers:
        w.start()
    try:
        # While events keep arriving, the tree keeps reaching positions just written.
        for round in range(1, 4):
            wait_until(lambda r=round: last_position(services) >= 20 * r)  # type: ignore[misc]
            target = last_position(services)
            wait_until(lambda t=target: services.tree.head()[1] >= t, timeout=10)  # type: ignore[misc]
    finally:
        stop.set()
        for w in writers:
            w.join()
    end = last_position(services)
    wait_until(lambda: services.tree.head()[1] == end, timeout=10)

    leaves = stored_leaves(services)
    assert services.tree.size() == len(leaves) > 20
    assert services.tree.root() == merkle.root([leaf for _, leaf in leaves])
    # Checkpoints were signed as it went, each the tree's root at its size.
    wait_until(lambda: kept_size(services) == len(leaves))
    kept = services.checkpoints.last()
    assert kept is not None
    checkpoint = open_checkpoint(kept.note, services.verifier_key)
    assert (checkpoint.size, checkpoint.root) == (len(leaves), services.tree.root())


def test_a_restarted_notary_resumes_without_adding_a_leaf_twice(stack: Stack) -> None:
    services = stack.services
    for _ in range(7):
        open_account(services)
    first = Notary(services, page=3)
    assert first.catch_up() == 7
    for _ in range(5):
        open_account(services)
    # A second notary (the worker built it anew) starts from the stored head.
    second = Notary(services, page=4)
    assert second.catch_up() == 5
    assert second.catch_up() == 0

    leaves = stored_leaves(services)
    with services.pool.connection() as conn:
        count, positions = conn.execute(
            "SELECT count(*), count(DISTINCT position) FROM merkle_leaves"
        ).fetchone()  # type: ignore[misc]
    assert count == positions == len(leaves) == 12
    assert services.tree.root() == merkle.root([leaf for _, leaf in leaves])


def test_a_row_whose_hash_cannot_be_read_does_not_stop_the_notary(
    stack: Stack, workers: list[Worker]
) -> None:
    services = stack.services
    for _ in range(3):
        open_account(services)
    broken = last_position(services) - 1
    with services.pool.connection() as conn:
        conn.execute(
            "UPDATE ledger_events SET state = %s WHERE notification_id = %s",
            (b"\x00 not an event", broken),
        )
    notary = Notary(services, checkpoint_s=0.1)
    workers.append(Worker("notary", lambda: notary).start())
    for _ in range(3):
        open_account(services)

    end = last_position(services)
    wait_until(lambda: services.tree.head()[1] == end)
    assert services.tree.size() == 6
    assert notary.fallbacks == 1
    proof = services.tree.inclusion(end)  # the events behind it are in the tree
    assert merkle.verify_inclusion(
        proof.leaf_hash, proof.leaf_index, proof.tree_size, proof.path, services.tree.root()
    )


def test_checkpoints_are_signed_kept_by_size_and_published(
    stack: Stack, workers: list[Worker]
) -> None:
    services = stack.services
    notary = Notary(services, checkpoint_s=60)
    workers.append(start_publisher(services, stack.bootstrap))
    sizes = [3, 7]
    while last_position(services) < 3:
        open_account(services)
    notary.catch_up()
    assert notary.checkpoint_if_due(now=100.0) == 3
    while last_position(services) < 7:
        open_account(services)
    notary.catch_up()
    assert notary.checkpoint_if_due(now=159.0) is None  # not a minute since the last
    assert notary.checkpoint_if_due(now=160.0) == 7
    # No new event, no new checkpoint.
    assert notary.checkpoint_if_due(now=10**6) is None

    for size in sizes:
        note = services.checkpoints.at(size)
        assert note is not None
        checkpoint = open_checkpoint(note, services.verifier_key)
        assert checkpoint.size == size
        assert checkpoint.root == services.tree.root(size)
        assert checkpoint.origin == services.signer.origin
    assert services.checkpoints.at(5) is None
    assert services.checkpoints.latest() == services.checkpoints.at(7)

    wait_until(lambda: not services.checkpoints.unpublished())
    records = read_topic(stack.bootstrap, CHECKPOINTS, 2, partitions=3)
    events = [orjson.loads(r.value) for r in records]
    assert [e["type"] for e in events] == [CHECKPOINT_TYPE] * 2
    assert [e["data"]["tree_size"] for e in events] == sizes
    assert [e["data"]["note"] for e in events] == [services.checkpoints.at(s) for s in sizes]
    assert {e["subject"] for e in events} == {services.signer.origin}
    assert len({e["id"] for e in events}) == 2


def test_a_broker_outage_stops_neither_the_tree_nor_the_signing(
    stack: Stack, workers: list[Worker]
) -> None:
    services = stack.services
    notary = Notary(services, checkpoint_s=0.1)
    workers.append(Worker("notary", lambda: notary).start())
    # As `serve` runs it: the embedded broker found again at every restart.
    workers.append(start_publisher(services))
    open_account(services)
    wait_until(lambda: services.checkpoints.last() is not None)
    wait_until(lambda: not services.checkpoints.unpublished())

    stop_embedded_broker(stack.settings.home)
    for _ in range(4):
        open_account(services)
    wait_until(lambda: kept_size(services) == 5)
    # Signed and kept while the broker is away (the publisher waits 10 s for it)...
    during = [c.tree_size for c in services.checkpoints.unpublished()]
    assert during[-1] == 5
    # ...and published once a broker is back (the embedded one, started anew).
    wait_until(lambda: not services.checkpoints.unpublished(), timeout=60)
    address = kafka_bootstrap(stack.settings)
    assert address != stack.bootstrap
    records = read_topic(address, CHECKPOINTS, len(during), partitions=3)
    assert [orjson.loads(r.value)["data"]["tree_size"] for r in records] == during


def test_the_tree_follows_the_log_the_relay_reads(stack: Stack) -> None:
    services = stack.services
    for _ in range(4):
        open_account(services)
    Notary(services).catch_up()
    with services.pool.connection() as conn:
        rows = EventLog(services.ledger).page(conn, 0, 100)
        stored = conn.execute("SELECT position FROM merkle_leaves ORDER BY leaf_index").fetchall()
    assert [p for (p,) in stored] == [row[0] for row in rows]
