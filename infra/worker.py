"""A background role (relay, ingest, projector...) in a thread that restarts it after failures.

A role is built by a factory, runs until a stop event is set, and is closed
after each run. When a run fails, the worker closes the role, waits and builds
a fresh one: the roles keep their positions in PostgreSQL, so a fresh one
resumes where the last one stopped.

- An outage (the database or the broker away: `is_outage`) is logged once,
  when it starts, and once more when a run has gone well for HEALTHY_AFTER
  seconds again; meanwhile the worker retries after 0.5 s, doubling up to
  OUTAGE_MAX_BACKOFF, so it is back within seconds of the server's return.
- Any other failure is a bug met by the role: logged with its traceback each
  time, retried after 1 s doubling up to `max_backoff` (30 s).

Running workers are listed by `live_workers()`, so /readyz can say which role
is failing and why. A role that rides out outages inside its own loop (the
verifier keeps its place in the ledger) uses `OutageLog` for the same backoff,
logging and /readyz entry.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from time import monotonic
from typing import Protocol

from kafka.errors import KafkaError

from infra.database import INFRASTRUCTURE_ERRORS, as_unavailable

log = logging.getLogger(__name__)

OUTAGE_FIRST_BACKOFF = 0.5
OUTAGE_MAX_BACKOFF = 4.0
# A run that lasts this long (seconds) counts as recovered: the backoff starts again.
HEALTHY_AFTER = 5.0

_live: set[Worker] = set()
_live_lock = threading.Lock()


class Role(Protocol):
    """Something that runs until `stop` is set, then is closed."""

    def run(self, stop: threading.Event) -> None:
        """Work until `stop` is set; raise on a failure worth a restart."""
        ...

    def close(self) -> None:
        """Release connections; called after every run."""
        ...


def is_outage(error: BaseException) -> bool:
    """True when `error` (or what caused it) says a server is away, not that our code failed."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, (*INFRASTRUCTURE_ERRORS, KafkaError, OSError)):
            return True
        seen = seen.__cause__
    return False


def outage_reason(error: BaseException) -> str:
    """One line saying which server is away and why."""
    if isinstance(error, INFRASTRUCTURE_ERRORS):
        return as_unavailable(error).detail
    if isinstance(error, KafkaError):
        return f"broker unreachable: {type(error).__name__}: {error}".splitlines()[0]
    return f"{type(error).__name__}: {error}".splitlines()[0]


class Worker:
    """Runs a role in a daemon thread; `stop()` ends it."""

    def __init__(
        self, name: str, factory: Callable[[], Role], *, max_backoff: float = 30.0
    ) -> None:
        self.name = name
        self._factory = factory
        self._max_backoff = max_backoff
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name=name, daemon=True)
        self._lock = threading.Lock()
        self._run = 0
        self._well = 0  # the last run that went well for HEALTHY_AFTER seconds
        self._outage_since: float | None = None
        self.failures = 0
        self.last_error: BaseException | None = None
        # Why the role is not running well now, or None.
        self.problem: str | None = None

    def start(self) -> Worker:
        """Start the thread; returns self, so `worker = Worker(...).start()` reads well."""
        with _live_lock:
            _live.add(self)
        self._thread.start()
        return self

    def stop(self, timeout: float = 15.0) -> None:
        """Ask the role to stop and wait for it (at most `timeout` seconds)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _loop(self) -> None:
        backoff = 0.0  # the last wait after a failure; 0 after a run that went well
        try:
            while not self._stop.is_set():
                role: Role | None = None
                with self._lock:
                    self._run += 1
                    run = self._run
                healthy = threading.Timer(HEALTHY_AFTER, self._ran_well, (run,))
                healthy.daemon = True
                healthy.start()
                try:
                    role = self._factory()
                    role.run(self._stop)
                except Exception as e:
                    backoff = self._failed(e, 0.0 if self._well == run else backoff)
                    delay = backoff
                else:
                    backoff, delay = 0.0, 1.0  # a run that ended by itself: no busy loop
                finally:
                    healthy.cancel()
                    if role is not None:
                        _close_quietly(self.name, role)
                if self._stop.wait(delay):
                    break
        finally:
            with _live_lock:
                _live.discard(self)

    def _failed(self, error: Exception, backoff: float) -> float:
        """Count and log a failed run; returns how long to wait before the next."""
        self.failures += 1
        self.last_error = error
        with self._lock:
            if is_outage(error):
                reason = outage_reason(error)
                self.problem = reason
                if self._outage_since is None:
                    self._outage_since = monotonic()
                    log.warning("%s: %s; retrying until it is back", self.name, reason)
                else:
                    log.debug("%s: still failing: %s", self.name, reason)
                if backoff == 0.0 or backoff > OUTAGE_MAX_BACKOFF:
                    return OUTAGE_FIRST_BACKOFF
                return min(backoff * 2, OUTAGE_MAX_BACKOFF)
            self.problem = f"{type(error).__name__}: {error}".splitlines()[0]
        wait = min(max(backoff * 2, 1.0), self._max_backoff)
        log.exception("%s failed; restarting in %.1f s", self.name, wait)
        return wait

    def _ran_well(self, run: int) -> None:
        with self._lock:
            if run != self._run:
                return
            self._well = run
            if self._outage_since is not None:
                log.warning(
                    "%s: running again after %.1f s", self.name, monotonic() - self._outage_since
                )
            self._outage_since = None
            self.problem = None


class OutageLog:
    """The outage policy for a loop that catches infrastructure errors itself."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._since: float | None = None
        self._wait = 0.0

    def failed(self, error: BaseException) -> float:
        """Log `error` if it starts an outage; returns how long to wait before retrying."""
        reason = outage_reason(error)
        if self._since is None:
            self._since = monotonic()
            self._wait = OUTAGE_FIRST_BACKOFF
            log.warning("%s: %s; retrying until it is back", self.name, reason)
        else:
            self._wait = min(self._wait * 2, OUTAGE_MAX_BACKOFF)
            log.debug("%s: still failing: %s", self.name, reason)
        _set_problem(reason)
        return self._wait

    def succeeded(self) -> None:
        """Note a step that went well: the end of an outage, if one was going on."""
        if self._since is not None:
            log.warning("%s: running again after %.1f s", self.name, monotonic() - self._since)
            self._since = None
            _set_problem(None)


def _set_problem(problem: str | None) -> None:
    # The worker running this thread, if any, shows it on /readyz.
    current = threading.current_thread()
    for worker in live_workers():
        if worker._thread is current:
            worker.problem = problem


def live_workers() -> list[Worker]:
    """The workers of this process that have started and not yet ended."""
    with _live_lock:
        return sorted(_live, key=lambda w: w.name)


def _close_quietly(name: str, role: Role) -> None:
    try:
        role.close()
    except Exception:
        log.exception("%s did not close cleanly", name)
