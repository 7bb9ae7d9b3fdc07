"""PostgreSQL: the URL to use, the event store's settings, and the pools, which fail fast.

Every connection the ledger opens carries libpq's `connect_timeout`, TCP
keepalives and a `statement_timeout` (CRMLEDGER_DB_CONNECT_TIMEOUT,
CRMLEDGER_DB_STATEMENT_TIMEOUT_MS); every pool waits CRMLEDGER_DB_POOL_TIMEOUT
at most for a connection. Both pools (ours, and the event store's, which
eventsourcing builds: EventStoreFactory swaps in the same kind) are
`FailFastPool`s:

- A failed attempt to connect marks the pool *unreachable* (logged once per
  outage) and drops its idle connections, which are as dead as the server, so
  no broken connection is handed out again after the server returns. So does
  a connection that comes back broken (a server that restarted quickly).
- While unreachable, a caller waits FAIL_FAST_WAIT at most (long enough for a
  fresh connection to a server that came back) and then gets
  `DatabaseUnavailable`; so does a caller whose wait ran out. It is not one of
  the errors eventsourcing retries (ten times, each after a full pool wait:
  minutes), so a request fails in about a second with a 503 (api/errors.py).
- The pool retries connecting for RECONNECT_WINDOW seconds after each loss
  (psycopg_pool's backoff: after 1 s, then 2 s), and starts again on the next
  demand; the first attempt that succeeds marks it reachable. So the ledger
  comes back by itself within seconds of the server's return.

Each pool is sized by the process's connection budget, and every connection
names its role in `application_name` (infra/connection_budget.py).

`DatabaseUnavailable` is an eventsourcing `PersistenceError`, so the consumers
treat it as the database's fault, not the message's (consumers/dead_letters.py).
"""

from __future__ import annotations

import logging
from time import monotonic
from typing import Any

import psycopg
import psycopg.errors
from eventsourcing.persistence import InterfaceError as StoreInterfaceError
from eventsourcing.persistence import OperationalError as StoreOperationalError
from eventsourcing.persistence import PersistenceError
from eventsourcing.postgres import ConnectionPool as StorePool
from eventsourcing.postgres import PostgresFactory
from eventsourcing.utils import Environment, EnvType
from psycopg.conninfo import conninfo_to_dict
from psycopg_pool import ConnectionPool, PoolTimeout

from infra.embedded_postgres import start_embedded_postgres
from infra.settings import Settings

log = logging.getLogger(__name__)

# Seconds a caller waits for a connection while the server is known to be away.
FAIL_FAST_WAIT = 0.5
# Seconds a pool keeps retrying a lost connection before it waits for demand again.
RECONNECT_WINDOW = 3.0
# What a 503 tells the caller to wait before trying again (seconds).
RETRY_AFTER_S = 2
# Keepalives find a server that vanished without closing the socket (a network cut).
_KEEPALIVES = {
    "keepalives": 1,
    "keepalives_idle": 5,
    "keepalives_interval": 2,
    "keepalives_count": 3,
}
# eventsourcing environment keys of ours, read by EventStoreFactory.
_STATEMENT_TIMEOUT_KEY = "CRMLEDGER_STATEMENT_TIMEOUT_MS"
_LIBPQ_CONNECT_TIMEOUT_KEY = "CRMLEDGER_CONNECT_TIMEOUT"
_POOL_TIMEOUT_KEY = "CRMLEDGER_POOL_TIMEOUT"
_APPLICATION_NAME_KEY = "CRMLEDGER_STORE_APPLICATION_NAME"


class DatabaseUnavailable(PersistenceError):
    """PostgreSQL cannot serve now (away, or no connection free in time); retry later."""

    code = "unavailable"

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail
        # api/errors.py adds these to the problem response.
        self.headers = {"Retry-After": str(RETRY_AFTER_S)}


# Errors that say the database (not the request) failed: a 503 to an HTTP caller.
INFRASTRUCTURE_ERRORS: tuple[type[Exception], ...] = (
    DatabaseUnavailable,
    psycopg.OperationalError,  # PoolTimeout, a lost connection, statement_timeout
    psycopg.InterfaceError,
    StoreOperationalError,  # eventsourcing's wrappers of the two above
    StoreInterfaceError,
)


def as_unavailable(error: BaseException) -> DatabaseUnavailable:
    """`error`, one of INFRASTRUCTURE_ERRORS, as a DatabaseUnavailable with a one-line reason."""
    if isinstance(error, DatabaseUnavailable):
        return error
    cause = error.__cause__ if isinstance(error.__cause__, psycopg.Error) else error
    # A statement or lock that ran out of time: the server is there, but busy.
    busy = isinstance(cause, (psycopg.errors.QueryCanceled, psycopg.errors.LockNotAvailable))
    return DatabaseUnavailable(
        f"database {'busy' if busy else 'unreachable'}: {_first_line(error)}"
    )


def _first_line(error: BaseException) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0]


def database_url(settings: Settings) -> str:
    """The configured server, or the embedded one started for this home."""
    return settings.database_url or start_embedded_postgres(settings.home)


def connection_options(settings: Settings) -> dict[str, Any]:
    """libpq options for every connection: connect timeout, keepalives, statement timeout.

    For a connection opened outside the pools: `psycopg.connect(url, **connection_options(s))`.
    """
    return {
        "connect_timeout": settings.db_connect_timeout,
        **_KEEPALIVES,
        "options": f"-c statement_timeout={settings.db_statement_timeout_ms}",
        # Who holds the connection, in pg_stat_activity (infra/connection_budget.py).
        "application_name": settings.application_name,
    }


def event_store_env(url: str, settings: Settings, *, size: int | None = None) -> dict[str, str]:
    """The eventsourcing environment for a PostgreSQL event store at `url`.

    Its pool keeps one connection open and grows to `size` (by default three
    times CRMLEDGER_POOL_SIZE) on demand.
    """
    size = size or settings.pool_size * 3
    info = conninfo_to_dict(url)
    return {
        # eventsourcing's PostgreSQL store, with our pool (EventStoreFactory below).
        "PERSISTENCE_MODULE": f"{__name__}:EventStoreFactory",
        "POSTGRES_DBNAME": str(info.get("dbname", "postgres")),
        "POSTGRES_HOST": str(info.get("host", "127.0.0.1")),
        "POSTGRES_PORT": str(info.get("port", "5432")),
        "POSTGRES_USER": str(info.get("user", "postgres")),
        "POSTGRES_PASSWORD": str(info.get("password", "")),
        "POSTGRES_SCHEMA": settings.database_schema,
        # eventsourcing opens POOL_SIZE connections at once and up to
        # POOL_SIZE + MAX_OVERFLOW on demand.
        "POSTGRES_POOL_SIZE": "1",
        "POSTGRES_MAX_OVERFLOW": str(size - 1),
        "POSTGRES_LOCK_TIMEOUT": "10",
        # No pre-ping: it costs a round trip on every connection taken, and the
        # pool drops its idle connections when the server is found away.
        "POSTGRES_PRE_PING": "n",
        _STATEMENT_TIMEOUT_KEY: str(settings.db_statement_timeout_ms),
        _LIBPQ_CONNECT_TIMEOUT_KEY: str(settings.db_connect_timeout),
        _POOL_TIMEOUT_KEY: str(settings.db_pool_timeout),
        _APPLICATION_NAME_KEY: settings.application_name,
        "AGGREGATE_CACHE_MAXSIZE": str(settings.account_cache_size),
    }


class _FailFast:
    """The fail-fast behaviour, mixed into psycopg_pool pools (see the module's docstring)."""

    timeout: float
    name: str
    # Why the last attempt to connect failed, while no attempt since has succeeded.
    _unreachable: str | None = None
    _unreachable_since = 0.0

    def getconn(self, timeout: float | None = None) -> Any:
        """A connection, or DatabaseUnavailable quickly while the server is away."""
        wait = self.timeout if timeout is None else timeout
        if self._unreachable is not None:
            wait = min(wait, FAIL_FAST_WAIT)
        try:
            return super().getconn(wait)  # type: ignore[misc]
        except PoolTimeout as e:
            reason = self._unreachable
            if reason is not None:
                raise DatabaseUnavailable(f"database unreachable: {reason}") from e
            raise DatabaseUnavailable(f"no database connection free within {wait:g} s") from e

    def putconn(self, conn: Any) -> None:
        """Take a connection back; a broken one also retires the idle ones."""
        if conn.broken:
            # What broke it (the server restarting, say) broke the idle ones too.
            self.drain()  # type: ignore[attr-defined]
        super().putconn(conn)  # type: ignore[misc]

    def _connect(self, timeout: float | None = None) -> Any:
        try:
            conn = super()._connect(timeout)  # type: ignore[misc]
        except Exception as e:
            self._lost(e)
            raise
        if self._unreachable is not None:
            log.warning(
                "%s: database reachable again after %.1f s",
                self.name,
                monotonic() - self._unreachable_since,
            )
            self._unreachable = None
        return conn

    def _lost(self, error: Exception) -> None:
        reason = _first_line(error)
        first = self._unreachable is None
        self._unreachable = reason
        if first:
            self._unreachable_since = monotonic()
            log.warning("%s: database unreachable: %s", self.name, reason)
            # Idle connections died with the server: close them now, and retire
            # the ones in use when they come back, so none is handed out again.
            self.drain()  # type: ignore[attr-defined]


class FailFastPool(_FailFast, ConnectionPool):  # type: ignore[type-arg]
    """Our own tables' pool."""


class FailFastStorePool(_FailFast, StorePool):  # type: ignore[type-arg]
    """The event store's pool: eventsourcing's pool class, failing fast."""


class EventStoreFactory(PostgresFactory):
    """eventsourcing's PostgreSQL factory whose datastore gets a FailFastStorePool."""

    def __init__(self, env: Environment | EnvType | None) -> None:
        super().__init__(env)
        old = self.datastore.pool  # built, not opened yet
        statement_ms = self.env.get(_STATEMENT_TIMEOUT_KEY) or "0"
        kwargs = dict(old.kwargs) if isinstance(old.kwargs, dict) else {}
        kwargs.update(_KEEPALIVES)
        kwargs["connect_timeout"] = int(self.env.get(_LIBPQ_CONNECT_TIMEOUT_KEY) or "2")
        kwargs["options"] = f"-c statement_timeout={int(statement_ms)}"
        kwargs["application_name"] = self.env.get(_APPLICATION_NAME_KEY) or "crmledger"
        self.datastore.pool = FailFastStorePool(
            get_password_func=old.get_password_func,
            connection_class=old.connection_class,
            kwargs=kwargs,
            min_size=old.min_size,
            max_size=old.max_size,
            open=False,
            configure=old._configure,
            check=old._check,
            name="event-store",
            timeout=float(self.env.get(_POOL_TIMEOUT_KEY) or old.timeout),
            max_waiting=old.max_waiting,
            max_lifetime=old.max_lifetime,
            reconnect_timeout=RECONNECT_WINDOW,
        )


def open_pool(url: str, settings: Settings, *, size: int | None = None) -> ConnectionPool:
    """A fail-fast pool whose sessions look in the ledger's schema first.

    Raises DatabaseUnavailable within about CRMLEDGER_DB_POOL_TIMEOUT when the
    server cannot be reached.
    """
    options = connection_options(settings)
    schema = settings.database_schema
    options["options"] += f" -c search_path={schema},public"
    pool = FailFastPool(
        url,
        min_size=1,
        max_size=size or settings.pool_size * 2,
        kwargs={"autocommit": False, **options},
        name="ledger",
        timeout=settings.db_pool_timeout,
        reconnect_timeout=RECONNECT_WINDOW,
        open=True,
    )
    try:
        with pool.connection() as conn:
            conn.execute("SELECT 1")
    except BaseException:
        pool.close()
        raise
    return pool
