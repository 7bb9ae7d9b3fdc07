"""Processes started together on a new database all come up (compose starts every role at once)."""

from __future__ import annotations

import multiprocessing
from concurrent.futures import ProcessPoolExecutor

from infra.settings import Settings
from infra.wiring import bootstrap
from tests.support import drop_schema, make_settings


def _start(settings: Settings) -> int:
    services = bootstrap(settings)
    try:
        return services.ledger.recorder.max_notification_id() or 0
    finally:
        services.close()


def test_six_processes_create_the_same_new_ledger_at_once() -> None:
    settings = make_settings()
    try:
        for _ in range(2):  # the first creates the tables; the second finds them
            spawn = multiprocessing.get_context("spawn")
            with ProcessPoolExecutor(6, mp_context=spawn) as pool:
                assert list(pool.map(_start, [settings] * 6)) == [0] * 6
    finally:
        drop_schema(settings.database_schema)
