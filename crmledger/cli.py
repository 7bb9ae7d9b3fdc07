"""The `crmledger` command line."""

from __future__ import annotations

import signal
import sys
import time
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Annotated
from uuid import UUID

import typer
from rich.console import Console
from rich.progress import Progress

from api.auth import ROLES, issue_token
from domain.errors import LedgerError
from infra.broker import stop_embedded_broker
from infra.database import DatabaseUnavailable
from infra.settings import Settings
from infra.wiring import Services, bootstrap
from projections.parking import ParkedEvent

app = typer.Typer(
    help="crmledger: the event-sourced ledger of customer accounts.", no_args_is_help=True
)
console = Console()
err = Console(stderr=True)


def _services() -> Services:
    try:
        return bootstrap(Settings())
    except DatabaseUnavailable as e:
        # Said in a line within seconds (infra/database.py), not a traceback minutes later.
        err.print(e.detail)
        raise typer.Exit(2) from None


@app.command()
def serve(
    host: Annotated[str | None, typer.Option(help="address to listen on")] = None,
    port: Annotated[int | None, typer.Option(help="port to listen on")] = None,
    demo: Annotated[
        bool, typer.Option(help="load demo data first when the ledger is empty")
    ] = False,
    only: Annotated[
        str | None, typer.Option(help="run one role: api, relay, ingest, projector or verifier")
    ] = None,
) -> None:
    """Run the API, the relay and the consumers (or one of them with --only)."""
    from crmledger.process import ROLES, start_background, wait_for_signal

    if only is not None and only not in ROLES:
        err.print(f"--only takes one of: {', '.join(ROLES)}")
        raise typer.Exit(2)
    roles = {only} if only else set(ROLES)
    services = _services()
    settings = services.settings
    workers = []
    try:
        console.print(f"database: {_safe_url(services.database_url)}")
        workers = start_background(services, roles, console)
        if demo and not {"ingest", "relay", "projector"} <= roles:
            err.print("--demo needs the ingest, relay and projector roles: leave out --only")
            raise typer.Exit(2)
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
    """Print a bearer token signed with the configured secret (and issuer and audience)."""
    services = _services()
    settings = services.settings
    try:
        if services.jwt_secret is None:
            err.print("only a public key is configured: tokens are issued elsewhere")
            raise typer.Exit(2)
        if ttl <= 0:
            err.print("--ttl must be a positive number of seconds")
            raise typer.Exit(2)
        try:
            signed = issue_token(
                services.jwt_secret,
                sub,
                role,
                department=department,
                ttl=ttl,
                issuer=settings.jwt_issuer,
                audience=settings.jwt_audience,
                max_lifetime=settings.jwt_max_lifetime_hours * 3600,
            )
            print(signed)
        except ValueError as e:
            err.print(str(e))
            raise typer.Exit(2) from None
    finally:
        services.close()


@app.command()
def verify(
    account_id: Annotated[UUID | None, typer.Option(help="verify this account only")] = None,
    digest: Annotated[str | None, typer.Option(help="a ledger digest you kept")] = None,
    position: Annotated[int | None, typer.Option(help="the position of that digest")] = None,
) -> None:
    """Recompute every hash chain (and a kept digest); exit 1 on any break."""
    if (digest is None) != (position is None):
        err.print("give --digest and --position together")
        raise typer.Exit(2)
    services = _services()
    try:
        with console.status("verifying the ledger"):
            report = services.ledger.verify(account_id, up_to=position)
    except (LedgerError, DatabaseUnavailable) as e:
        err.print(e.detail)
        raise typer.Exit(2) from None
    finally:
        services.close()
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
    services = _services()
    try:
        at, value = services.ledger.digest(position)
    except LedgerError as e:
        err.print(e.detail)
        raise typer.Exit(2) from None
    finally:
        services.close()
    print(f"{at} {value}")


audit = typer.Typer(help="Auditor tools.", no_args_is_help=True)
app.add_typer(audit, name="audit")


@audit.command("export")
def audit_export(
    out: Annotated[Path, typer.Option(help="the JSON Lines file to write")],
    after: Annotated[int, typer.Option(help="export events after this position")] = 0,
    actor: Annotated[str, typer.Option(help="who exports, for the access log")] = "cli",
) -> None:
    """Stream the global event log, decrypted, to a JSON Lines file."""
    from api.auth import Principal
    from api.views import audit_events_out

    services = _services()
    user = Principal(actor, frozenset({"auditor"}), "audit")
    written = 0
    try:
        last = services.ledger.recorder.max_notification_id() or 0
        with out.open("w") as f, Progress(console=console, transient=True) as progress:
            task = progress.add_task("exporting events", total=max(last - after, 0))
            while True:
                page = services.audit_feed.page(after, 1000)
                for event in audit_events_out(services, page.events, user):
                    f.write(event.model_dump_json() + "\n")
                written += len(page.events)
                progress.advance(task, page.next_after - after)
                if page.next_after == after:
                    break
                after = page.next_after
    finally:
        services.close()
    console.print(f"exported {written} events to {out} (up to position {after})")


projections = typer.Typer(help="The read models.", no_args_is_help=True)
app.add_typer(projections, name="projections")


@projections.command("status")
def projections_status() -> None:
    """Show each read model's position and lag behind the ledger."""
    from rich.table import Table

    services = _services()
    try:
        rows = services.readmodels.status()
    finally:
        services.close()
    table = Table("read model", "position", "ledger", "lag", "parked")
    for row in rows:
        table.add_row(
            row["name"],
            str(row["position"]),
            str(row["ledger_position"]),
            str(row["lag"]),
            str(row.get("parked", 0)),
        )
    console.print(table)


@projections.command("rebuild")
def projections_rebuild(
    name: Annotated[str | None, typer.Argument(help="the read model to rebuild")] = None,
    all_: Annotated[bool, typer.Option("--all", help="rebuild every read model")] = False,
) -> None:
    """Rebuild read models from the event store, with a progress bar."""
    from projections.catalog import READ_MODELS

    if (name is None) == (not all_):
        err.print("name one read model or give --all")
        raise typer.Exit(2)
    names = list(READ_MODELS) if all_ else [name or ""]
    unknown = [n for n in names if n not in READ_MODELS]
    if unknown:
        err.print(f"no read model {unknown[0]!r}; known: {', '.join(READ_MODELS)}")
        raise typer.Exit(2)
    services = _services()
    try:
        total = services.ledger.recorder.max_notification_id() or 0
        with Progress(console=console) as progress:
            task = progress.add_task(f"rebuilding {', '.join(names)}", total=total)
            started = time.perf_counter()
            outcome = services.readmodels.rebuild(
                *names, progress=lambda n: progress.advance(task, n)
            )
            progress.update(task, completed=total)
        seconds = time.perf_counter() - started
        console.print(f"{', '.join(names)}: {outcome.events} events in {seconds:.1f} s")
        positions = outcome.positions()
        if positions:
            shown = ", ".join(map(str, positions[:50])) + (" ..." if len(positions) > 50 else "")
            console.print(
                f"parked {len(positions)} events it could not apply, at positions {shown}"
                " (crmledger projections parked)",
                soft_wrap=True,
            )
    finally:
        services.close()


def _known_read_model(name: str | None) -> None:
    from projections.catalog import READ_MODELS

    if name is not None and name not in READ_MODELS:
        err.print(f"no read model {name!r}; known: {', '.join(READ_MODELS)}")
        raise typer.Exit(2)


def _print_parked(rows: list[ParkedEvent], verb: str = "parked") -> None:
    for r in rows:
        console.print(
            f"{r.projection} position {r.position} (partition {r.partition}, account"
            f" {r.account_id}, {r.event_type or 'unknown type'}): {verb}, {r.reason}:"
            f" {r.error_class}: {r.error} (attempts {r.attempts},"
            f" parked {r.parked_at:%Y-%m-%d %H:%M:%S})",
            soft_wrap=True,
            markup=False,
            highlight=False,
        )


@projections.command("parked")
def projections_parked(
    read_model: Annotated[str | None, typer.Option(help="only this read model's")] = None,
    limit: Annotated[int, typer.Option(help="show at most this many")] = 1000,
) -> None:
    """List the events the read models set aside because they could not apply them."""
    _known_read_model(read_model)
    services = _services()
    try:
        rows = services.readmodels.store.parked(read_model, limit=limit)
    finally:
        services.close()
    _print_parked(rows)
    console.print(f"{len(rows)} parked events")


@projections.command("retry")
def projections_retry(
    position: Annotated[int | None, typer.Argument(help="the parked event's position")] = None,
    read_model: Annotated[str | None, typer.Option(help="only this read model's")] = None,
) -> None:
    """Apply parked events again (every one, or the one at POSITION); exit 1 if any fails again."""
    _known_read_model(read_model)
    services = _services()
    try:
        if position is not None and not services.readmodels.store.parked(read_model, position):
            err.print(f"no parked event at position {position}")
            raise typer.Exit(2)
        applied, still = services.readmodels.retry(read_model, position)
    finally:
        services.close()
    _print_parked(applied, "applied")
    _print_parked(still, "still parked")
    console.print(f"{len(applied)} applied, {len(still)} still parked")
    if still:
        raise typer.Exit(1)


dlq = typer.Typer(help="Dead letters of the inbound integration topic.", no_args_is_help=True)
app.add_typer(dlq, name="dlq")


@dlq.command("list")
def dlq_list(
    error: Annotated[str | None, typer.Option(help="only dead letters with this error")] = None,
) -> None:
    """Show the dead letters: where, why, where from, and whether replayed."""
    from rich.table import Table

    from consumers.dead_letter_replay import list_dead_letters
    from infra.broker import kafka_bootstrap

    services = _services()
    try:
        letters = list_dead_letters(services, kafka_bootstrap(services.settings))
    finally:
        services.close()
    letters = [x for x in letters if error is None or x.error == error]
    table = Table("partition", "offset", "key", "error", "error_detail", "source", "replayed")
    for x in letters:
        key = "" if x.key is None else x.key.decode(errors="replace")
        replayed = "no" if x.replayed_at is None else f"{x.replayed_at:%Y-%m-%d %H:%M:%S}"
        if x.truncated:
            replayed = "truncated: not replayable"
        if x.replayed_to is not None:
            replayed += f" -> [{x.replayed_to[0]}]@{x.replayed_to[1]}"
        table.add_row(
            str(x.partition), str(x.offset), key, x.error, x.error_detail, x.source, replayed
        )
    console.print(table)
    done = sum(x.replayed_at is not None for x in letters)
    console.print(f"{len(letters)} dead letters, {done} replayed")


@dlq.command("replay")
def dlq_replay(
    error: Annotated[str | None, typer.Option(help="only dead letters with this error")] = None,
) -> None:
    """Send dead letters back to the integration topic as they arrived; each one at most once."""
    from consumers.dead_letter_replay import replay_dead_letters
    from infra.broker import kafka_bootstrap
    from infra.topics import INTEGRATION_EVENTS

    services = _services()
    try:
        report = replay_dead_letters(services, kafka_bootstrap(services.settings), error=error)
    finally:
        services.close()
    console.print(
        f"replayed {len(report.replayed)} dead letters to {INTEGRATION_EVENTS}"
        f" ({report.skipped} replayed before"
        + (f", {report.truncated} truncated: not replayable" if report.truncated else "")
        + ")"
    )


retention = typer.Typer(help="The retention job.", no_args_is_help=True)
app.add_typer(retention, name="retention")


@retention.command("run")
def retention_run(
    dry_run: Annotated[bool, typer.Option(help="list what would be erased, erase nothing")] = False,
) -> None:
    """Erase the personal data of accounts closed longer than CRMLEDGER_RETENTION_DAYS."""
    services = _services()
    days = services.settings.retention_days
    meta = {"actor": "retention-job", "department": "admin", "reason": "retention", "source": "cli"}
    try:
        erased = services.ledger.erase_expired(days, datetime.now(UTC), meta, dry_run=dry_run)
    finally:
        services.close()
    verb = "would erase" if dry_run else "erased"
    console.print(f"retention ({days} days): {verb} {len(erased)} accounts")
    for account_id in erased:
        console.print(f"  {account_id}")


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
    seed: Annotated[int, typer.Option(help="same seed, same history")] = 7,
) -> None:
    """Load a realistic retail history through commands and inbound Kafka messages."""
    from crmledger.process import start_background

    services = _services()
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
    format: Annotated[str, typer.Option(help="table, csv or json")] = "table",
) -> None:
    """Print a department report as a table, CSV or JSON."""
    import json
    from datetime import date

    from rich.table import Table

    from projections.report_output import csv_text, json_rows, report_document
    from projections.reports import report_named

    if format not in ("table", "csv", "json"):
        err.print("--format must be table, csv or json")
        raise typer.Exit(2)
    try:
        chosen = report_named(name)
        first = date.fromisoformat(start) if start else None
        last = date.fromisoformat(end) if end else None
    except ValueError as e:
        err.print(f"not a date (YYYY-MM-DD): {e}")
        raise typer.Exit(2) from None
    except LedgerError as e:
        err.print(e.detail)
        raise typer.Exit(2) from None
    services = _services()
    try:
        scope, rows = services.readmodels.report(
            chosen,
            start=first,
            end=last,
            period=period,
            segment=segment,
            channel=channel,
            split=split,
            days=days,
        )
    except LedgerError as e:
        err.print(e.detail)
        raise typer.Exit(2) from None
    finally:
        services.close()
    columns = chosen.columns_for(scope)
    if format == "csv":
        sys.stdout.write(csv_text(columns, rows))
    elif format == "json":
        print(json.dumps(report_document(chosen, scope, rows), indent=2))
    else:
        table = Table(title=f"{chosen.title}, {scope.start} to {scope.end} (excluded)")
        for column in columns:
            table.add_column(column)
        for row in json_rows(columns, rows):
            table.add_row(*("" if v is None else str(v) for v in row.values()))
        console.print(table)


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
