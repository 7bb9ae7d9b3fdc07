"""A background role (relay, ingest) in a thread that restarts it after failures.

A role is built by a factory, runs until a stop event is set, and is closed
after each run. When a run fails (broker or database away), the worker logs it,
closes the role, waits (1 s, doubling up to 30 s) and builds a fresh one: the
roles keep their positions in PostgreSQL, so a fresh one resumes where the last
one stopped.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Protocol

log = logging.getLogger(__name__)


class Role(Protocol):
    """Something that runs until `stop` is set, then is closed."""

    def run(self, stop: threading.Event) -> None:
        """Work until `stop` is set; raise on a failure worth a restart."""
        ...

    def close(self) -> None:
        """Release connections; called after every run."""
        ...


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
        self.failures = 0
        self.last_error: BaseException | None = None

    def start(self) -> Worker:
        """Start the thread; returns self, so `worker = Worker(...).start()` reads well."""
        self._thread.start()
        return self

    def stop(self, timeout: float = 15.0) -> None:
        """Ask the role to stop and wait for it (at most `timeout` seconds)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    @property
    def running(self) -> bool:
        """True while the thread is alive."""
        return self._thread.is_alive()

    def _loop(self) -> None:
        backoff = 1.0
        while not self._stop.is_set():
            role: Role | None = None
            try:
                role = self._factory()
                role.run(self._stop)
                backoff = 1.0
            except Exception as e:
                self.failures += 1
                self.last_error = e
                log.exception("%s failed; restarting in %.0f s", self.name, backoff)
            finally:
                if role is not None:
                    _close_quietly(self.name, role)
            if self._stop.wait(backoff):
                break
            backoff = min(backoff * 2, self._max_backoff)


def _close_quietly(name: str, role: Role) -> None:
    try:
        role.close()
    except Exception:
        log.exception("%s did not close cleanly", name)
