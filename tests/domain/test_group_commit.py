"""Group commit: concurrent saves share transactions and each learns its own outcome."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any
from uuid import uuid4

import pytest
from eventsourcing.persistence import IntegrityError

from domain.group_commit import GroupCommit


class Agg:
    def __init__(self) -> None:
        self.id = uuid4()


def test_concurrent_saves_are_grouped_and_each_returns() -> None:
    calls: list[int] = []

    def save(*aggregates: Any) -> None:
        time.sleep(0.02)  # a slow commit, so others queue behind it
        calls.append(len(aggregates))

    group = GroupCommit(save)
    threads = [threading.Thread(target=group.save, args=(Agg(),)) for _ in range(20)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(5)
    assert sum(calls) == 20
    assert len(calls) < 20, "some saves shared a transaction"


def test_two_commands_on_one_aggregate_never_share_a_batch() -> None:
    batches: list[list[Any]] = []
    same = Agg()
    gate = threading.Event()

    def save(*aggregates: Any) -> None:
        gate.wait(1)
        batches.append([a.id for a in aggregates])

    group = GroupCommit(save)
    threads = [threading.Thread(target=group.save, args=(a,)) for a in (same, same, Agg())]
    for t in threads:
        t.start()
    time.sleep(0.05)
    gate.set()
    for t in threads:
        t.join(5)
    assert all(len(b) == len(set(b)) for b in batches)
    assert sum(len(b) for b in batches) == 3


def test_a_conflict_in_a_batch_is_retried_alone_and_reported_to_its_command() -> None:
    loser = Agg()

    def save(*aggregates: Any) -> None:
        if loser in aggregates:
            raise IntegrityError("conflict")

    group = GroupCommit(save, conflicts=(IntegrityError,))
    errors: dict[Any, BaseException] = {}

    def run(a: Agg) -> None:
        try:
            group.save(a)
        except IntegrityError as e:
            errors[a.id] = e

    threads = [threading.Thread(target=run, args=(a,)) for a in (Agg(), loser, Agg())]
    for t in threads:
        t.start()
    for t in threads:
        t.join(5)
    assert list(errors) == [loser.id]


def test_an_unexpected_failure_reaches_every_waiter() -> None:
    def save(*aggregates: Any) -> None:
        raise RuntimeError("database gone")

    with pytest.raises(RuntimeError, match="database gone"):
        GroupCommit(save).save(Agg())


def test_awaited_saves_are_grouped_and_never_block_the_loop() -> None:
    calls: list[int] = []
    ticks = 0

    def save(*aggregates: Any) -> None:
        time.sleep(0.02)
        calls.append(len(aggregates))

    group = GroupCommit(save)

    async def main() -> None:
        nonlocal ticks
        saving = asyncio.gather(*(group.save_async(Agg()) for _ in range(20)))
        while not saving.done():  # the loop goes on while the batches are saved
            ticks += 1
            await asyncio.sleep(0.001)
        await saving

    asyncio.run(main())
    assert sum(calls) == 20 and len(calls) < 20
    assert ticks > 5


def test_an_awaited_save_raises_its_own_error_and_a_thread_saves_beside_it() -> None:
    bad = Agg()

    def save(*aggregates: Any) -> None:
        time.sleep(0.01)
        if any(a is bad for a in aggregates):
            raise IntegrityError("taken")

    group = GroupCommit(save, conflicts=(IntegrityError,))

    async def main() -> list[object]:
        beside = asyncio.to_thread(group.save, Agg())
        return await asyncio.gather(
            group.save_async(bad), group.save_async(Agg()), beside, return_exceptions=True
        )

    first, second, third = asyncio.run(main())
    assert isinstance(first, IntegrityError)
    assert second is None and third is None
