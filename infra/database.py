"""PostgreSQL: the URL to use, the event store's settings, and a pool for our own tables."""

from __future__ import annotations

from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool

from infra.embedded_postgres import start_embedded_postgres
from infra.settings import Settings


def database_url(settings: Settings) -> str:
    """The configured server, or the embedded one started for this home."""
    return settings.database_url or start_embedded_postgres(settings.home)


def event_store_env(url: str, settings: Settings) -> dict[str, str]:
    """The eventsourcing environment for a PostgreSQL event store at `url`."""
    info = conninfo_to_dict(url)
    return {
        "PERSISTENCE_MODULE": "eventsourcing.postgres",
        "POSTGRES_DBNAME": str(info.get("dbname", "postgres")),
        "POSTGRES_HOST": str(info.get("host", "127.0.0.1")),
        "POSTGRES_PORT": str(info.get("port", "5432")),
        "POSTGRES_USER": str(info.get("user", "postgres")),
        "POSTGRES_PASSWORD": str(info.get("password", "")),
        "POSTGRES_SCHEMA": settings.database_schema,
        "POSTGRES_POOL_SIZE": str(settings.pool_size),
        "POSTGRES_MAX_OVERFLOW": str(settings.pool_size * 2),
        "POSTGRES_LOCK_TIMEOUT": "10",
        # No pre-ping: it costs a round trip on every connection taken, and the
        # recorder retries a statement whose connection turned out broken.
        "POSTGRES_PRE_PING": "n",
    }


def open_pool(url: str, settings: Settings, *, size: int | None = None) -> ConnectionPool:
    """A connection pool whose sessions look in the ledger's schema first."""
    schema = settings.database_schema
    with_schema = {"options": f"-c search_path={schema},public"}
    pool = ConnectionPool(
        url,
        min_size=1,
        max_size=size or settings.pool_size * 2,
        kwargs={"autocommit": False, **with_schema},
        open=True,
    )
    pool.wait(timeout=30)
    return pool
