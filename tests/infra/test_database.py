"""The pools fail fast on a server that is away, and long jobs can lift the statement limit."""

from __future__ import annotations

import subprocess
import sys

import psycopg
import pytest

from infra.database import DatabaseUnavailable, open_pool
from infra.wiring import Services
from tests.serving import free_port
from tests.support import JWT_SECRET, TEST_DATABASE_URL, make_settings


def dead_url() -> str:
    """A PostgreSQL URL where nothing listens."""
    return f"postgresql://postgres@127.0.0.1:{free_port()}/test"


def test_a_pool_on_a_server_that_is_away_says_so_instead_of_waiting() -> None:
    settings = make_settings(database_url=dead_url(), db_pool_timeout=1.0)
    with pytest.raises(DatabaseUnavailable, match="database unreachable: connection") as caught:
        open_pool(settings.database_url or "", settings)
    assert caught.value.code == "unavailable"
    assert caught.value.headers["Retry-After"]


def test_verify_on_a_server_that_is_away_exits_with_the_reason() -> None:
    settings = make_settings(database_url=dead_url())
    assert settings.master_key is not None
    env = {
        "PATH": "/usr/bin:/bin",
        "CRMLEDGER_DATABASE_URL": settings.database_url or "",
        "CRMLEDGER_JWT_SECRET": JWT_SECRET,
        "CRMLEDGER_SIGNING_KEY": settings.signing_key.get_secret_value()
        if settings.signing_key
        else "",
        "CRMLEDGER_MASTER_KEY": settings.master_key.get_secret_value(),
    }
    done = subprocess.run(
        [sys.executable, "-m", "crmledger", "verify"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,  # it waited 300 s and more before
    )
    assert done.returncode == 2
    assert "database unreachable" in done.stderr


def test_every_session_has_a_statement_limit(services: Services) -> None:
    with services.pool.connection() as conn:
        assert conn.execute("SHOW statement_timeout").fetchone() == ("5s",)
    with services.ledger.recorder.datastore.transaction() as curs:
        curs.execute("SHOW statement_timeout")
        assert curs.fetchone() == {"statement_timeout": "5s"}


def test_after_its_connections_were_cut_a_pool_hands_out_no_broken_one_again() -> None:
    settings = make_settings()
    pool = open_pool(settings.database_url or "", settings, size=4)
    try:
        # Four idle connections, then their server sessions end, as in a restart.
        held = [pool.getconn() for _ in range(4)]
        pids = [conn.info.backend_pid for conn in held]
        for conn in held:
            conn.rollback()
            pool.putconn(conn)
        with psycopg.connect(TEST_DATABASE_URL, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(pid) FROM unnest(%s::int[]) pid", (pids,))

        failures = 0
        for _ in range(6):
            try:
                with pool.connection() as conn:
                    conn.execute("SELECT 1")
            except psycopg.OperationalError:
                failures += 1
        assert failures == 1, "only the first caller met a cut connection"
    finally:
        pool.close()
