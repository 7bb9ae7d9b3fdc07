"""The `crmledger` command line: serving, tokens, integrity, reports, erasure, the demo.

The sub-commands of the read models are in crmledger/cli_projections.py, the
auditor's export and the operators' jobs in crmledger/cli_operations.py.
"""

from __future__ import annotations

import signal
import sys
import time
from datetime import UTC, datetime
from decimal import Decimal
from typing import Annotated, Any
from uuid import UUID

import typer
from pydantic import ValidationError
from rich.progress import Progress

from api.auth import ROLES
from crmledger.cli_operations import audit, dlq, retention
from crmledger.cli_projections import projections
from crmledger.cli_support import command_services, console, err, fail, open_services
from crmledger.cli_token import TokenRefused, sign, signing_secret
from domain.errors import LedgerError
from infra.broker import stop_embedded_broker
from infra.settings import Settings
from infra.wiring import Services
from projections.report_queries import Page
from projections.reports import Report

app = typer.Typer(
    help="crmledger: the event-sourced ledger of customer accounts.", no_args_is_help=True
)
app.add_typer(audit, name="audit")
app.add_typer(projections, name="projections")
app.add_typer(dlq, name="dlq")
app.add_typer(retention, name="retention")


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="address to listen on")] = None,
    port: Annotated[int | None, typer.Option(help="port to listen on")] = None,
    demo: Annotated[
        bool, typer.Option(help="load demo data first when the ledger is empty")
    ] = False,
    only: Annotated[
        str | None,
        typer.Option(help="run one role: api, relay, ingest, projector, verifier or notary"),
    ] = None,
) -> None:
    """Run the API, the relay and the consumers (or one of them with --only)."""
    from crmledger.process import ROLES, start_background, wait_for_signal

    if only is not None and only not in ROLES:
        fail(f"--only takes one of: {', '.join(ROLES)}")
    roles = {only} if only else set(ROLES)
    services = open_services(roles)
    settings = services.settings
    workers = []
    try:
        console.print(f"database: {_safe_url(services.database_url)}")
        workers = start_background(services, roles, console)
        if demo and not {"ingest", "relay", "projector"} <= roles:
            fail("--demo needs the ingest, relay and projector roles: leave out --only")
        if demo and services.ledger.recorder.max_notification_id() in (None, 0):
            _load_demo(services, customers=50, days=90)
        if "api" not in roles:
            wait_for_signal()
            return
        import uvicorn

        from api.app import create_app

        host = host or settings.host
        port = port or settings.port
        console.print(f"crmledger API on http://{host}:{port}  (docs: http://{host}:{port}/docs)")
        console.print("get a token: .venv/bin/crmledger token --role customer_service --sub you")
        console.print(f"staff console: http://{host}:{port}/console")
        # uvicorn re-raises SIGTERM after its graceful shutdown; with the default
        # action the process would die before this finally and the exit hooks
        # (the embedded broker would outlive it). Exit normally instead.
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        uvicorn.run(create_app(services), host=host, port=port, log_level="warning")
    finally:
        for worker in workers:
            worker.stop()
        services.close()
        stop_embedded_broker(settings.home)


@app.command()
def token(
    role: Annotated[list[str], typer.Option(help=f"one of: {', '.join(ROLES)}; repeat for more")],
    sub: Annotated[str, typer.Option(help="the subject: who the token is for")] = "staff",
    department: Annotated[str | None, typer.Option(help="department claim")] = None,
    ttl: Annotated[
        int, typer.Option(help="seconds it is valid, at most CRMLEDGER_JWT_MAX_LIFETIME_HOURS")
    ] = 43200,
) -> None:
    """Print a bearer token signed with the configured secret (and issuer and audience).

    Starts nothing: no database, no broker. Says on stderr which home and secret it used.
    """
    try:
        settings = Settings()
        secret = signing_secret(settings)
        signed = sign(settings, secret, role, sub, department, ttl)
    except (TokenRefused, ValidationError) as e:
        fail(str(e))
    said = f"home: {settings.home.resolve()}; signed with {secret.source}"
    err.print(said, highlight=False, soft_wrap=True)
    print(signed)


@app.command()
def verify(
    account_id: Annotated[UUID | None, typer.Option(help="verify this account only")] = None,
    digest: Annotated[str | None, typer.Option(help="a ledger digest you kept")] = None,
    position: Annotated[int | None, typer.Option(help="the position of that digest")] = None,
) -> None:
    """Recompute every hash chain (and a kept digest); exit 1 on any break."""
    if (digest is None) != (position is None):
        fail("give --digest and --position together")
    with command_services() as services, console.status("verifying the ledger"):
        report = services.ledger.verify(account_id, up_to=position)
    failed = False
    if report.first_break is None:
        console.print(f"ok: {report.events} events in {report.accounts} accounts verified")
    else:
        b = report.first_break
        where = f"account {b.account_id} version {b.version} (position {b.position})"
        console.print(f"BROKEN: {where}: {b.reason}")
        failed = True
    if digest is not None:
        if report.digest == digest:
            console.print(f"ok: the digest at position {report.position} still holds")
        else:
            console.print(
                f"BROKEN: the history up to position {position} changed since the digest was taken"
            )
            failed = True
    if failed:
        raise typer.Exit(1)


@app.command("digest")
def digest_command(
    position: Annotated[int | None, typer.Option(help="digest at this past position")] = None,
) -> None:
    """Print the ledger digest (position and SHA-256): keep it to prove history later."""
    with command_services() as services:
        at, value = services.ledger.digest(position)
    print(f"{at} {value}")


@app.command()
def erase(
    account_id: UUID,
    reason: Annotated[str, typer.Option(help="request or retention")] = "request",
    actor: Annotated[str, typer.Option(help="who asks for the erasure")] = "cli",
) -> None:
    """Erase an account's personal data (crypto-shredding); the history stays."""
    meta = {"actor": actor, "department": "admin", "reason": reason, "source": "cli"}
    with command_services() as services:
        account, erased = services.ledger.erase(account_id, reason, datetime.now(UTC), meta)
    if erased:
        console.print(f"erased the personal data of {account_id} (version {account.version})")
    else:
        console.print(f"{account_id} was erased before; nothing to do")


@app.command()
def demo(
    customers: Annotated[int, typer.Option(min=1)] = 50,
    days: Annotated[int, typer.Option(min=1)] = 90,
    seed: Annotated[int, typer.Option(help="same seed, same history")] = 7,
) -> None:
    """Load a realistic retail history through commands and inbound Kafka messages."""
    from crmledger.process import start_background

    services = open_services()
    workers = []
    try:
        workers = start_background(services, {"relay", "ingest", "projector"}, console)
        _load_demo(services, customers, days, seed)
    finally:
        for worker in workers:
            worker.stop()
        services.close()


@app.command()
def report(
    name: Annotated[str, typer.Argument(help="accounts-summary, scheme-review, ...")],
    start: Annotated[
        str | None, typer.Option("--from", help="first day (YYYY-MM-DD); default 90 days before")
    ] = None,
    end: Annotated[
        str | None, typer.Option("--to", help="day after the last; default tomorrow")
    ] = None,
    period: Annotated[str, typer.Option(help="day, week, month or quarter")] = "month",
    segment: Annotated[str | None, typer.Option(help="only this segment")] = None,
    channel: Annotated[str | None, typer.Option(help="only this channel")] = None,
    split: Annotated[str | None, typer.Option(help="service-kpis: segment or channel")] = None,
    days: Annotated[int | None, typer.Option(help="accounts-due-for-review: age in days")] = None,
    limit: Annotated[
        int | None, typer.Option(help="accounts-due-for-review: rows a page (500; at most 5000)")
    ] = None,
    cursor: Annotated[
        str | None, typer.Option(help="accounts-due-for-review: the page after this cursor")
    ] = None,
    every: Annotated[
        bool, typer.Option("--all", help="accounts-due-for-review: every row, not a page")
    ] = False,
    format: Annotated[str, typer.Option(help="table, csv or json")] = "table",
) -> None:
    """Print a department report as a table, CSV or JSON.

    accounts-due-for-review prints a page, as the API answers it (the oldest
    500, or --limit); the next page's --cursor is said after a table and on
    stderr after CSV, and is the JSON's next_cursor. --all prints every row.
    """
    import json
    from datetime import date

    from api.errors import BadRequest
    from api.views import encode_page_cursor
    from crmledger.cli_report_table import report_table
    from projections.report_output import readable_csv, report_document
    from projections.reports import report_named

    if format not in ("table", "csv", "json"):
        fail("--format must be table, csv or json")
    try:
        chosen = report_named(name)
        first = date.fromisoformat(start) if start else None
        last = date.fromisoformat(end) if end else None
        page = _page_to_print(chosen, limit, cursor, every)
    except ValueError as e:
        fail(f"not a date (YYYY-MM-DD): {e}")
    except BadRequest as e:
        fail(str(e))
    except LedgerError as e:
        fail(e.detail)
    filters: dict[str, Any] = {"period": period, "segment": segment, "channel": channel}
    filters |= {"split": split, "start": first, "end": last, "days": days}
    paging: dict[str, Any] = {}
    footer = ""  # a page's: how many rows, and the next page's cursor
    with command_services() as services:
        if page is None:
            scope, rows = services.readmodels.report(chosen, **filters)
        else:
            scope, paged = services.readmodels.report_page(chosen, page, **filters)
            rows, key = paged.rows, paged.next_key
            next_cursor = encode_page_cursor(chosen.name, key) if key else None
            paging = {"limit": page.limit, "total": paged.total, "next_cursor": next_cursor}
            footer = f"{len(rows)} of {paged.total} rows; " + (
                f"next page: --cursor {next_cursor}" if next_cursor else "the last page"
            )
        zone = services.settings.timezone
    if format == "csv":
        sys.stdout.write(readable_csv(chosen, scope, rows))
        if footer:
            err.print(footer, soft_wrap=True)
    elif format == "json":
        print(json.dumps(report_document(chosen, scope, rows) | paging, indent=2))
    else:
        title = f"{chosen.title}, {scope.start} to {scope.end} (excluded)"
        console.print(report_table(console, title, chosen.columns_for(scope), rows, zone))
        if footer:
            console.print(footer, soft_wrap=True)


def _page_to_print(
    chosen: Report, limit: int | None, cursor: str | None, every: bool
) -> Page | None:
    """The page of `chosen` that `report` prints: None for every row (a report that is not
    paged, or --all). BadRequest for a cursor not given for it, LedgerError for a limit
    out of bounds or paging asked of a report that is not paged."""
    from api.views import decode_page_cursor
    from projections.reports import page_asked

    if every:
        if chosen.paged is None:
            fail(f"the {chosen.name} report is not paged: it prints whole without --all")
        if limit is not None or cursor is not None:
            fail("--all prints every row: leave out --limit and --cursor")
        return None
    if chosen.paged is None and limit is None and cursor is None:
        return None
    after = decode_page_cursor(chosen.name, cursor) if cursor and chosen.paged else None
    return page_asked(chosen, limit, after)


def _load_demo(services: Services, customers: int, days: int, seed: int = 7) -> None:
    """Load the demo (the ingest must be running) and print a KPI summary once projected."""
    from crmledger.demo import load_demo
    from infra.broker import kafka_bootstrap

    with Progress(console=console, transient=True) as progress:
        task = progress.add_task("loading demo customers", total=customers)
        result = load_demo(
            services,
            kafka_bootstrap(services.settings),
            customers,
            days,
            seed,
            progress=lambda n: progress.advance(task, n),
        )
    console.print(
        f"demo: {result.customers} customers; {result.commands} commands; "
        f"{result.applied} of {result.messages} inbound messages applied"
    )
    _wait_for_projections(services)
    _print_kpis(services, days)


def _wait_for_projections(services: Services, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(s["lag"] == 0 for s in services.readmodels.status()):
            return
        time.sleep(0.2)
    err.print("the read models have not caught up yet; figures may be partial")


def _print_kpis(services: Services, days: int) -> None:
    from datetime import date, timedelta

    from rich.table import Table

    from projections.kpis import Scope, service_kpis

    end = date.today() + timedelta(days=1)
    scope = Scope(start=end - timedelta(days=days + 1), end=end, period="month")
    with services.pool.connection() as conn:
        rows = service_kpis(conn, services.settings.readmodel_schema, scope)
    table = Table(title="Service KPIs per month")
    columns = {
        "new_customers": "new",
        "lost_customers": "lost",
        "turnover": "turnover",
        "profit": "profit",
        "visits": "visits",
        "inquiries": "inquiries",
        "first_response_hours_p90": "resp. p90 h",
        "complaints": "complaints",
        "satisfaction": "satisfaction",
    }
    table.add_column("month", no_wrap=True, min_width=7)
    for label in columns.values():
        table.add_column(label, justify="right", overflow="fold")
    for row in rows:
        cells = [_cell(row[k]) for k in columns]
        table.add_row(row["period_start"].strftime("%Y-%m"), *cells)
    console.print(table)


def _cell(value: object) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:.2f}"
    if isinstance(value, Decimal):
        return f"{value:,.0f}"
    return str(value)


def _safe_url(url: str) -> str:
    # Never print a password.
    from psycopg.conninfo import conninfo_to_dict, make_conninfo

    info = conninfo_to_dict(url)
    if info.get("password"):
        info["password"] = "***"
    return make_conninfo(**info)


if __name__ == "__main__":
    sys.exit(app())
