"""Group commit: concurrent commands saved together, one transaction for many.

The event store writes one transaction at a time (it locks its table to keep
the notification log in commit order), so a commit's round trips and its flush
to disk bound how many single-account commands a second can be saved. Under
concurrent load the first waiting command leads: it saves every command queued
behind it in one save() of many aggregates, then hands the results back. With
no concurrency a batch is one command, saved as before.

A batch holds each aggregate once (by `key`, its id unless told otherwise); a
conflict in a batch (one of the `conflicts` errors: another writer got there
first) saves its commands one by one, so each gets its own answer. Anything
saved many at a time can be grouped the same way: the access log groups its
rows (infra/access_log.py).

A thread waits with `save`; a coroutine awaits `save_async`, which never
blocks its event loop: when no batch is being saved, one is started in the
loop's executor, and the coroutine awaits a future the batch completes, so a
request on the loop costs no thread of its own while it waits.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable, Hashable, Sequence
from contextlib import suppress
from typing import Any

MAX_BATCH = 500


class _Job:
    """One item to save, and how its waiter learns the outcome.

    A thread waits on an Event; a coroutine awaits a future of its loop,
    which a batch settles with one call into that loop for all of its jobs
    there (a concurrent.futures.Future and its wrapper cost a lock, a
    condition and a callback each).
    """

    __slots__ = ("error", "event", "future", "item", "loop")

    def __init__(self, item: Any, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.item = item
        self.error: BaseException | None = None
        self.loop = loop
        self.event = threading.Event() if loop is None else None
        self.future: asyncio.Future[None] | None = None if loop is None else loop.create_future()


def _settle(jobs: list[_Job]) -> None:
    # On the jobs' own loop. A waiter that was cancelled has gone: its future is done.
    for job in jobs:
        assert job.future is not None
        if not job.future.done():
            if job.error is None:
                job.future.set_result(None)
            else:
                job.future.set_exception(job.error)


class GroupCommit:
    """Saves aggregates (or any items) from many threads in shared transactions."""

    def __init__(
        self,
        save: Callable[..., Any],
        max_batch: int = MAX_BATCH,
        key: Callable[[Any], Hashable] = lambda aggregate: aggregate.id,
        conflicts: tuple[type[Exception], ...] = (),
    ) -> None:
        self._save = save
        self._conflicts = conflicts
        self._key = key
        self._max_batch = max_batch
        self._lock = threading.Lock()
        self._pending: list[_Job] = []
        self._leading = False

    def save(self, item: Any) -> None:
        """Save one aggregate (perhaps with others); raise what its save raised."""
        job = _Job(item)
        if self._queue(job):
            self._lead()
        assert job.event is not None
        job.event.wait()
        if job.error is not None:
            raise job.error

    async def save_async(self, item: Any) -> None:
        """As `save`, awaited: the batch is saved in the running loop's executor."""
        loop = asyncio.get_running_loop()
        job = _Job(item, loop)
        if self._queue(job):
            loop.run_in_executor(None, self._lead)
        assert job.future is not None
        await job.future

    def _queue(self, job: _Job) -> bool:
        # The first job with no batch being saved leads: it saves until none waits.
        with self._lock:
            self._pending.append(job)
            lead = not self._leading
            self._leading = True
        return lead

    def _lead(self) -> None:
        while True:
            with self._lock:
                batch = self._take()
                if not batch:
                    self._leading = False
                    return
            self._commit(batch)

    def _take(self) -> list[_Job]:
        # Each aggregate once per batch: a second command on it waits for the next.
        batch: list[_Job] = []
        ids: set[Hashable] = set()
        rest: list[_Job] = []
        for job in self._pending:
            key = self._key(job.item)
            if key in ids or len(batch) >= self._max_batch:
                rest.append(job)
            else:
                ids.add(key)
                batch.append(job)
        self._pending = rest
        return batch

    def _commit(self, batch: Sequence[_Job]) -> None:
        try:
            self._save(*(job.item for job in batch))
        except self._conflicts as e:
            if len(batch) == 1:
                _finish(batch, e)
            else:
                for job in batch:
                    self._commit([job])
        except BaseException as e:  # every waiter must learn the outcome, whatever it was
            _finish(batch, e)
        else:
            _finish(batch, None)


def _finish(batch: Sequence[_Job], error: BaseException | None) -> None:
    waiting: dict[asyncio.AbstractEventLoop, list[_Job]] = {}
    for job in batch:
        job.error = error
        if job.loop is None:
            assert job.event is not None
            job.event.set()
        else:
            waiting.setdefault(job.loop, []).append(job)
    for loop, jobs in waiting.items():
        # A loop that has closed has no one waiting on it; the others must still hear.
        with suppress(RuntimeError):
            loop.call_soon_threadsafe(_settle, jobs)
