"""What every `crmledger` command shares: the consoles and the services of one command.

A command opens the services, does its work and closes them; a refusal of
the ledger or a database it cannot reach ends it with exit code 2 and the
reason in a line (infra/database.py says it within seconds), not a traceback.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator
from contextlib import contextmanager
from typing import NoReturn

import typer
from rich.console import Console

from domain.errors import LedgerError
from infra.database import DatabaseUnavailable
from infra.settings import Settings
from infra.wiring import Services, bootstrap

console = Console()
err = Console(stderr=True)


def fail(message: str) -> NoReturn:
    """Say why on stderr and exit 2 (a usage error or a refusal)."""
    err.print(message)
    raise typer.Exit(2)


def open_services(roles: Collection[str] | None = None) -> Services:
    """The services as the settings say, or exit 2 when the database cannot be reached.

    `roles`: the roles the process runs, which size its pools (infra/connection_budget.py).
    """
    try:
        return bootstrap(Settings(), roles)
    except DatabaseUnavailable as e:
        fail(e.detail)


@contextmanager
def command_services() -> Iterator[Services]:
    """The services for one command, closed after it; a refusal or an outage exits 2."""
    services = open_services()
    try:
        yield services
    except (LedgerError, DatabaseUnavailable) as e:
        fail(e.detail)
    finally:
        services.close()
