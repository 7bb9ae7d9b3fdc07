"""The `crmledger` command line."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from typing import Annotated
from uuid import UUID

import typer
from rich.console import Console
from rich.progress import Progress

from api.auth import ROLES, issue_token
from domain.errors import LedgerError
from infra.settings import Settings
from infra.wiring import Services, bootstrap

app = typer.Typer(
    help="crmledger: the event-sourced ledger of customer accounts.", no_args_is_help=True
)
console = Console()
err = Console(stderr=True)


def _services() -> Services:
    return bootstrap(Settings())


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="address to listen on")] = None,
    port: Annotated[int | None, typer.Option(help="port to listen on")] = None,
    demo: Annotated[
        bool, typer.Option(help="load demo data first when the ledger is empty")
    ] = False,
) -> None:
    """Run the HTTP API."""
    import uvicorn

    from api.app import create_app

    services = _services()
    settings = services.settings
    host = host or settings.host
    port = port or settings.port
    try:
        if demo and services.ledger.recorder.max_notification_id() in (None, 0):
            _load_demo(services, customers=50, days=90)
        console.print(f"crmledger API on http://{host}:{port}  (docs: http://{host}:{port}/docs)")
        console.print(f"database: {_safe_url(services.database_url)}")
        console.print("get a token: .venv/bin/crmledger token --role customer_service --sub you")
        uvicorn.run(create_app(services), host=host, port=port, log_level="warning")
    finally:
        services.close()


@app.command()
def token(
    role: Annotated[list[str], typer.Option(help=f"one of: {', '.join(ROLES)}; repeat for more")],
    sub: Annotated[str, typer.Option(help="the subject: who the token is for")] = "staff",
    department: Annotated[str | None, typer.Option(help="department claim")] = None,
    ttl: Annotated[int, typer.Option(help="seconds the token is valid")] = 43200,
) -> None:
    """Print a bearer token signed with the configured secret."""
    services = _services()
    try:
        if services.jwt_secret is None:
            err.print("only a public key is configured: tokens are issued elsewhere")
            raise typer.Exit(2)
        try:
            print(issue_token(services.jwt_secret, sub, role, department=department, ttl=ttl))
        except ValueError as e:
            err.print(str(e))
            raise typer.Exit(2) from None
    finally:
        services.close()


@app.command()
def verify(
    account_id: Annotated[UUID | None, typer.Option(help="verify this account only")] = None,
) -> None:
    """Recompute every hash chain; exit 1 and name the first break if one is found."""
    services = _services()
    try:
        report = services.ledger.verify(account_id)
    except LedgerError as e:
        err.print(e.detail)
        raise typer.Exit(2) from None
    finally:
        services.close()
    if report.first_break is None:
        console.print(f"ok: {report.events} events in {report.accounts} accounts verified")
        return
    b = report.first_break
    console.print(
        f"BROKEN: account {b.account_id} version {b.version} (position {b.position}): {b.reason}"
    )
    raise typer.Exit(1)


@app.command()
def erase(
    account_id: UUID,
    reason: Annotated[str, typer.Option(help="request or retention")] = "request",
    actor: Annotated[str, typer.Option(help="who asks for the erasure")] = "cli",
) -> None:
    """Erase an account's personal data (crypto-shredding); the history stays."""
    services = _services()
    meta = {"actor": actor, "department": "admin", "reason": reason, "source": "cli"}
    try:
        account, erased = services.ledger.erase(account_id, reason, datetime.now(UTC), meta)
    except LedgerError as e:
        err.print(e.detail)
        raise typer.Exit(2) from None
    finally:
        services.close()
    if erased:
        console.print(f"erased the personal data of {account_id} (version {account.version})")
    else:
        console.print(f"{account_id} was erased before; nothing to do")


@app.command()
def demo(
    customers: Annotated[int, typer.Option(min=1)] = 50,
    days: Annotated[int, typer.Option(min=1)] = 90,
) -> None:
    """Load a realistic demo history through the real commands."""
    services = _services()
    try:
        written = _load_demo(services, customers, days)
    finally:
        services.close()
    console.print(f"demo: {written} events written")


def _load_demo(services: Services, customers: int, days: int) -> int:
    from crmledger.demo import load_demo

    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("loading demo customers", total=customers)
        return load_demo(
            services.ledger,
            customers,
            days,
            progress=lambda n: progress.advance(task, n),
        )


def _safe_url(url: str) -> str:
    # Never print a password.
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    info = conninfo_to_dict(url)
    if info.get("password"):
        info["password"] = "***"
    return make_conninfo(**info)


if __name__ == "__main__":
    sys.exit(app())
