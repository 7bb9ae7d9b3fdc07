"""Long console work (a verification, a read-model rebuild) run in a thread, its progress polled.

A page starts a job with a form (POST, CSRF-checked) and is sent to the job's
own page, which asks for a progress fragment every second (htmx polling) until
the job is done; without JavaScript the page has a link that shows the same
fragment afresh. A job lives in the API process that started it, in app state,
keyed by a random id: with several API processes behind a load balancer, a
poll that lands on another process finds no such job and says so in words.

One job of a kind and key (one rebuild of `kpis`, one verification of the
whole ledger) runs at a time: asking again while it runs joins the running
one, so a double click or two auditors never do the work twice. At most
MAX_RUNNING jobs run at once (a rebuild holds one connection of the API's pool
of CRMLEDGER_POOL_SIZE for its whole run, and each job a core): enough for both
read models' rebuilds and a verification. The finished ones kept (KEEP) say
how the last run went.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal
from uuid import uuid4

from fastapi import FastAPI, Request, Response

from api.auth import Principal
from console.rendering import fragment, render, status_of
from infra.database import INFRASTRUCTURE_ERRORS, as_unavailable

log = logging.getLogger("crmledger.console.jobs")

State = Literal["running", "done", "failed"]
KEEP = 100
MAX_RUNNING = 3


@dataclass
class Job:
    """One piece of background work: what it is, how far it got, and how it ended."""

    id: str
    kind: str
    key: str
    owner: str
    total: int
    started_at: datetime
    # What it works on, in words ("the whole ledger", "read model kpis").
    title: str = ""
    done: int = 0
    state: State = "running"
    result: Any = None
    error: str | None = None
    finished_at: datetime | None = None
    # Monotonic start, and how long it took once finished: the page's elapsed time.
    _clock: float = 0.0
    _took: float = 0.0

    def add(self, count: int) -> None:
        """Count `count` more units of work done (a rebuild reports events by thousands)."""
        self.done += count

    def reached(self, done: int) -> None:
        """Say how far the work got (a verification reports the last position checked)."""
        self.done = done

    @property
    def running(self) -> bool:
        return self.state == "running"

    @property
    def percent(self) -> int:
        """How far along, 0 to 100; 100 only once done (the last step may take a moment)."""
        if self.state != "running":
            return 100
        if self.total <= 0:
            return 0
        return min(99, self.done * 100 // self.total)

    @property
    def seconds(self) -> float:
        """Seconds since the job started, or how long it took."""
        return time.monotonic() - self._clock if self.running else self._took


class JobsBusy(Exception):
    """Too many jobs run already: the page says so and asks to try again later."""


class JobRunner:
    """The jobs of one API process."""

    def __init__(self, keep: int = KEEP, max_running: int = MAX_RUNNING) -> None:
        self._jobs: dict[str, Job] = {}
        self._lock = threading.Lock()
        self._keep = keep
        self._max_running = max_running

    def start(
        self,
        kind: str,
        key: str,
        owner: str,
        total: int,
        work: Callable[[Job], Any],
        title: str = "",
    ) -> Job:
        """Run `work(job)` in a thread and return its job; a running job of `kind`/`key` is joined.

        Raises JobsBusy when MAX_RUNNING jobs are running already.
        """
        with self._lock:
            running = [j for j in self._jobs.values() if j.running]
            for job in running:
                if job.kind == kind and job.key == key:
                    return job
            if len(running) >= self._max_running:
                raise JobsBusy(f"{len(running)} jobs are running; try again when one has finished")
            job = Job(uuid4().hex, kind, key, owner, max(total, 0), datetime.now(UTC), title)
            job._clock = time.monotonic()
            self._jobs[job.id] = job
            self._forget_old()
        thread = threading.Thread(
            target=self._run, args=(job, work), name=f"console-{kind}-{job.id[:8]}", daemon=True
        )
        thread.start()
        return job

    def get(self, job_id: str, kind: str) -> Job | None:
        """The job of that id and kind, if this process still knows it."""
        job = self._jobs.get(job_id)
        return job if job is not None and job.kind == kind else None

    def latest(self, kind: str, key: str) -> Job | None:
        """The most recently started job of `kind` on `key`, running or finished."""
        with self._lock:
            jobs = [j for j in self._jobs.values() if j.kind == kind and j.key == key]
        return max(jobs, key=lambda j: j.started_at, default=None)

    def _run(self, job: Job, work: Callable[[Job], Any]) -> None:
        try:
            result = work(job)
        except Exception as exc:
            job.error = in_words(exc, job)
            job._took = time.monotonic() - job._clock
            job.finished_at = datetime.now(UTC)
            job.state = "failed"
            return
        # The result first, the state last: a poll that sees "done" finds the result.
        job.result = result
        job._took = time.monotonic() - job._clock
        job.finished_at = datetime.now(UTC)
        job.state = "done"

    def _forget_old(self) -> None:
        finished = sorted(
            (j for j in self._jobs.values() if not j.running), key=lambda j: j.started_at
        )
        for job in finished[: max(len(finished) - self._keep, 0)]:
            del self._jobs[job.id]


def in_words(exc: Exception, job: Job) -> str:
    """Why a job failed, as its page says it; an unexpected error is logged with a reference."""
    if isinstance(exc, INFRASTRUCTURE_ERRORS):
        # "database busy: ..." (a statement or lock out of time) or "database unreachable: ...".
        reason = as_unavailable(exc).detail
        return f"{reason[:1].upper()}{reason[1:]}. Start it again in a moment."
    if status_of(exc) != 500:
        text = str(exc)
        return text[:1].upper() + text[1:] + "."
    reference = str(uuid4())
    log.error(
        "console job %s (%s %s) failed, correlation id %s",
        job.id,
        job.kind,
        job.key,
        reference,
        exc_info=exc,
    )
    return f"Something went wrong on our side. Quote this reference: {reference}."


_create = threading.Lock()


def jobs_of(app: FastAPI) -> JobRunner:
    """The job runner of this API process (made on first use, kept in app state)."""
    runner: JobRunner | None = getattr(app.state, "console_jobs", None)
    if runner is None:
        with _create:
            runner = getattr(app.state, "console_jobs", None)
            if runner is None:
                runner = app.state.console_jobs = JobRunner()
    return runner


def polled(request: Request) -> bool:
    """Whether htmx asked (a poll or a swap), so a fragment answers instead of a whole page."""
    return request.headers.get("HX-Request") == "true"


# htmx stops polling on this status (and still swaps the fragment in).
STOP_POLLING = 286


def job_page(
    request: Request,
    user: Principal,
    job_id: str,
    *,
    kind: str,
    progress: str,
    page: str,
    tabs: list[tuple[str, str]],
    **context: Any,
) -> Response:
    """A job's page (`page`, which includes `progress`), or to htmx's poll the progress alone.

    A job this process does not know is a 404 page, and its poll stops.
    """
    job = jobs_of(request.app).get(job_id, kind)
    if polled(request):
        status = 200 if job is not None and job.running else STOP_POLLING
        return fragment(request, progress, {"job": job, "polled": True, **context}, status)
    status = 200 if job is not None else 404
    return render(request, page, user, status, tabs=tabs, job=job, **context)
