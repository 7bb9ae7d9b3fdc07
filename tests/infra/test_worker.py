"""A worker backs off on an outage, logs it once, and says when its role runs again."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable

import pytest

from infra import worker as worker_module
from infra.database import DatabaseUnavailable
from infra.worker import OutageLog, Worker, live_workers


class Flaky:
    """A role that fails with an outage the first `outages` times, then runs until stopped."""

    runs = 0

    def __init__(self, outages: int) -> None:
        self.outages = outages

    def run(self, stop: threading.Event) -> None:
        Flaky.runs += 1
        if Flaky.runs <= self.outages:
            raise DatabaseUnavailable("database unreachable: connection refused")
        stop.wait()

    def close(self) -> None:
        pass


def wait_until(check: Callable[[], bool], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline
        time.sleep(0.01)


def test_an_outage_is_logged_once_retried_quickly_and_its_end_reported(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(worker_module, "OUTAGE_FIRST_BACKOFF", 0.001)
    monkeypatch.setattr(worker_module, "OUTAGE_MAX_BACKOFF", 0.002)
    monkeypatch.setattr(worker_module, "HEALTHY_AFTER", 0.2)
    Flaky.runs = 0
    caplog.set_level(logging.DEBUG, logger="infra.worker")
    worker = Worker("flaky", lambda: Flaky(outages=30)).start()
    try:
        wait_until(lambda: worker.failures == 30)
        assert worker in live_workers()
        assert worker.problem == "database unreachable: connection refused"
        wait_until(lambda: worker.problem is None)
    finally:
        worker.stop()
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert warnings == [
        "flaky: database unreachable: connection refused; retrying until it is back",
        warnings[1],
    ]
    assert warnings[1].startswith("flaky: running again after")
    assert not any(r.exc_info for r in caplog.records), "no traceback for an outage"
    assert worker not in live_workers()


def test_a_loop_that_rides_out_outages_itself_backs_off_to_a_few_seconds_and_logs_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="infra.worker")
    outage = OutageLog("verifier")
    error = DatabaseUnavailable("database unreachable: connection refused")
    waits = [outage.failed(error) for _ in range(8)]
    assert waits == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0, 4.0, 4.0]
    outage.succeeded()
    outage.succeeded()
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 2
    assert (
        warnings[0]
        == "verifier: database unreachable: connection refused; retrying until it is back"
    )
    assert warnings[1].startswith("verifier: running again after")
